"""Counterfactual edits: each does what it says on a planted sound, and muting a clip's event box hurts the
shipped SE-CNN more than muting a box of the same size elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.review.counterfactual import Edits, Region, apply_edits, control_region, edit_region, shift
from core.errors import InputError

SR = 8000


def tones(*freqs_hz: float, duration_s: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * duration_s)) / SR
    return sum(np.sin(2 * np.pi * f * t) for f in freqs_hz).astype(np.float32)


def power_at(y: np.ndarray, f_hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(y)) ** 2
    freqs = np.fft.rfftfreq(len(y), 1 / SR)
    return float(spectrum[np.abs(freqs - f_hz) < 20].sum())


def test_mute_keep_and_attenuate_a_band():
    y = tones(500, 2500)
    kw = dict(n_fft=512, hop_length=128)
    muted = edit_region(y, SR, Region(f0_hz=300, f1_hz=800), mode="mute", **kw)
    assert power_at(muted, 500) < 1e-4 * power_at(y, 500)
    assert power_at(muted, 2500) == pytest.approx(power_at(y, 2500), rel=0.05)
    kept = edit_region(y, SR, Region(f0_hz=300, f1_hz=800), mode="keep", **kw)
    assert power_at(kept, 2500) < 1e-4 * power_at(y, 2500)
    assert power_at(kept, 500) == pytest.approx(power_at(y, 500), rel=0.05)
    quieter = edit_region(y, SR, Region(f0_hz=300, f1_hz=800), mode="attenuate", attenuate_db=20, **kw)
    assert 10 * np.log10(power_at(y, 500) / power_at(quieter, 500)) == pytest.approx(20, abs=1.0)


def test_mute_a_time_span_only():
    y = tones(1000)
    z = edit_region(y, SR, Region(t0_s=0.4, t1_s=0.6), mode="mute", n_fft=256, hop_length=64)
    middle, edge = slice(int(0.45 * SR), int(0.55 * SR)), slice(int(0.1 * SR), int(0.3 * SR))
    assert np.abs(z[middle]).max() < 1e-3
    np.testing.assert_allclose(z[edge], y[edge], atol=1e-3)


def test_shift_pitch_stretch_and_noise():
    y = tones(440)
    assert np.array_equal(shift(y, SR, 0.1), np.roll(y, 800))
    up = apply_edits(y, SR, Edits(pitch_semitones=12))
    assert len(up) == len(y) and power_at(up, 880) > 10 * power_at(up, 440)
    slow = apply_edits(y, SR, Edits(stretch_rate=0.5))
    assert len(slow) == len(y) and power_at(slow, 440) > 10 * power_at(slow, 880)
    noisy = apply_edits(y, SR, Edits(noise_snr_db=0.0))
    snr = 10 * np.log10(np.mean(y ** 2) / np.mean((noisy - y) ** 2))
    assert snr == pytest.approx(0.0, abs=0.5)
    assert np.array_equal(apply_edits(y, SR, Edits()), y)
    assert Edits().is_identity and not Edits(shift_s=0.1).is_identity
    assert Edits.from_json(Edits(region=Region(1, 2, None, 300)).to_json()) == Edits(region=Region(1, 2, None, 300))


def test_the_control_region_has_the_same_size_and_does_not_overlap():
    box = Region(1.0, 2.0, 500.0, 1500.0)
    other = control_region(box, duration_s=5.0, fmax_hz=4000.0)
    assert (other.t1_s - other.t0_s, other.f1_hz - other.f0_hz) == (1.0, 1000.0)
    assert other.t0_s >= box.t1_s and other.f0_hz >= box.f1_hz
    assert control_region(Region(t0_s=3.5, t1_s=4.5), duration_s=5.0, fmax_hz=4000.0) == Region(0.0, 1.0, None, None)
    assert control_region(Region(f0_hz=3000.0, f1_hz=4000.0), duration_s=5.0, fmax_hz=4000.0) == Region(
        None, None, 0.0, 1000.0)


def test_bad_edits_are_refused():
    y = tones(440)
    with pytest.raises(InputError, match="empty"):
        edit_region(y, SR, Region(t0_s=0.5, t1_s=0.2))
    with pytest.raises(InputError, match="mode"):
        edit_region(y, SR, Region(t0_s=0.1, t1_s=0.2), mode="erase")
    with pytest.raises(InputError, match="stretch_rate"):
        apply_edits(y, SR, Edits(stretch_rate=0))


def test_muting_the_event_box_hurts_the_shipped_secnn_more_than_muting_elsewhere(demo_dir):
    from core.audio.features import log_mel
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import load_mono, open_dataset
    from core.training.evaluate import spread
    from core.paths import CHECKPOINTS_DIR

    loaded = load_checkpoint(CHECKPOINTS_DIR / "secnn")
    loaded.model.eval()
    cfg = loaded.audio_cfg
    data = open_dataset(demo_dir)
    if set(data.classes) != set(loaded.classes):
        pytest.skip(f"the shipped SE-CNN knows {sorted(loaded.classes)}, the default demo set has "
                    f"{sorted(data.classes)}: retrain it on this demo set")
    index = {c: i for i, c in enumerate(loaded.classes)}
    clips = [r for r in spread(data.select(5), 40) if data.boxes(r.clip_id)][:: 4][:8]
    assert len(clips) >= 6

    def p_class(y: np.ndarray, label: int) -> float:
        with torch.no_grad():
            logits = loaded.model(torch.from_numpy(log_mel(y, cfg))[None, None])
        return float(torch.softmax(logits, dim=1)[0, label])

    wins = []
    for r in clips:
        y = load_mono(r, cfg)
        box = max(data.boxes(r.clip_id), key=lambda b: (b.t1_s - b.t0_s) * (b.f1_hz - b.f0_hz))
        event = Region(box.t0_s, box.t1_s, box.f0_hz, box.f1_hz)
        other = control_region(event, duration_s=len(y) / cfg.sr, fmax_hz=cfg.sr / 2)
        label = index[r.category]
        p_event = p_class(edit_region(y, cfg.sr, event, n_fft=cfg.n_fft, hop_length=cfg.hop_length), label)
        p_other = p_class(edit_region(y, cfg.sr, other, n_fft=cfg.n_fft, hop_length=cfg.hop_length), label)
        wins.append(p_event < p_other)
    assert sum(wins) > len(wins) / 2, wins
