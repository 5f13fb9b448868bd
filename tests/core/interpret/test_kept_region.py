"""The kept region as sound: the map's top share of cells stays, the rest drops to the floor."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio import AudioConfig, feature_steps, mel_power
from core.errors import InputError
from core.interpret.kept_region import kept_region_audio

CFG = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=64, n_frames=64)


def test_only_the_highlighted_band_is_heard():
    """Two tones; the map highlights the high one's band: the sound that comes back has the high tone only."""
    t = np.arange(CFG.n_samples) / CFG.sr
    y = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.3 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)
    S_db = feature_steps(y, CFG)["db"][:, : CFG.n_frames]
    power = mel_power(y, CFG).mean(axis=1)
    high = int(np.argmax(power[CFG.n_mels // 2:])) + CFG.n_mels // 2
    heat = np.zeros_like(S_db)
    heat[high - 2: high + 3] = 1.0  # 5 of 32 bands
    heat[0, 0] = np.nan  # not covered: dropped
    audio, threshold = kept_region_audio(S_db, heat, 0.1, CFG)  # the top 10 % lie in the 5 bands
    assert threshold == pytest.approx(1.0)
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(len(audio), 1 / CFG.sr)
    near = lambda f: spectrum[np.abs(freqs - f) < 50].max()
    assert near(2500) > 10 * near(300)


def test_bad_arguments_are_refused():
    S_db = np.zeros((CFG.n_mels, CFG.n_frames), dtype=np.float32)
    with pytest.raises(InputError, match="keep_fraction"):
        kept_region_audio(S_db, S_db, 0.0, CFG)
    with pytest.raises(InputError, match="shape"):
        kept_region_audio(S_db, S_db[:, :10], 0.5, CFG)
