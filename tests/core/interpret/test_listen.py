"""Listenable explanations: a map's top cells mask the STFT and are resynthesised with the clip's phase."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.features import AudioConfig, log_mel, mel_frequencies_hz
from core.errors import InputError
from core.interpret.listen import linear_mask, masked_audio, top_cells_mask


@pytest.fixture(scope="module")
def clip():
    """One second of a 1 kHz tone and a 6 kHz tone in noise, at the front end's rate."""
    cfg = AudioConfig(n_frames=87)  # 1 s at 44.1 kHz, hop 512
    t = np.arange(cfg.hop_length * (cfg.n_frames - 1)) / cfg.sr
    rng = np.random.default_rng(0)
    y = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t) + 0.01 * rng.normal(size=t.size)
    return y.astype(np.float32), cfg


def test_all_cells_kept_returns_the_clip(clip):
    y, cfg = clip
    out = masked_audio(y, np.random.default_rng(1).random((cfg.n_mels, cfg.n_frames)), cfg, top_percent=100)
    assert out.mel_mask.all()
    assert np.abs(out.masked_in - y).max() < 1e-4
    assert np.abs(out.masked_out).max() < 1e-4


def test_the_two_parts_add_up_to_the_clip_and_the_kept_band_is_what_is_heard(clip):
    y, cfg = clip
    bands = mel_frequencies_hz(cfg)
    heat = np.zeros((cfg.n_mels, cfg.n_frames))
    heat[np.abs(bands - 1000) < 150] = 1.0  # the map points at the 1 kHz tone only
    share = 100 * (heat > 0).mean()
    out = masked_audio(y, heat, cfg, top_percent=share)
    assert out.mel_mask.sum() == (heat > 0).sum()
    assert np.abs(out.masked_in + out.masked_out - y).max() < 1e-4
    spectrum = lambda a: np.abs(np.fft.rfft(a))
    hz = np.fft.rfftfreq(y.size, 1 / cfg.sr)
    at = lambda s, f: s[np.argmin(np.abs(hz - f))]
    kept, rest = spectrum(out.masked_in), spectrum(out.masked_out)
    assert at(kept, 1000) > 0.95 * at(spectrum(y), 1000) and at(kept, 6000) < 0.01 * at(spectrum(y), 6000)
    assert at(rest, 6000) > 0.95 * at(spectrum(y), 6000) and at(rest, 1000) < 0.05 * at(spectrum(y), 1000)
    # what the model would hear: the masked-in part's log-mel is loud where the map was and low elsewhere
    X = log_mel(out.masked_in, cfg)
    assert X[heat[:, 0] > 0].mean() > X[np.abs(bands - 6000) < 300].mean() + 1.0


def test_top_cells_and_the_linear_mask():
    heat = np.array([[0.1, 0.9, np.nan], [0.5, 0.2, 0.3]])
    assert top_cells_mask(heat, top_percent=50).tolist() == [[False, True, False], [True, False, True]]
    assert not top_cells_mask(heat, top_percent=100)[0, 2]  # a cell the method does not cover is never kept
    cfg = AudioConfig()
    M = linear_mask(np.ones((cfg.n_mels, 5)), cfg)
    assert M.shape == (1 + cfg.n_fft // 2, 5) and np.allclose(M, 1.0)  # DC and the top bin included
    assert np.allclose(linear_mask(np.zeros((cfg.n_mels, 5)), cfg), 0.0)
    with pytest.raises(InputError, match="top_percent"):
        top_cells_mask(heat, top_percent=120)
    with pytest.raises(InputError, match="mask"):
        linear_mask(np.ones((3, 5)), cfg)
