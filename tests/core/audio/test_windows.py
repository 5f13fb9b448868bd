"""Recordings longer than the model's window: windows read in blocks, a timeline, one window saved."""

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from core.audio import windows as W
from core.audio.features import AudioConfig
from core.errors import InputError

CFG = AudioConfig(sr=4000, n_mels=32, n_fft=256, hop_length=100, n_frames=41)  # a 1 s window


def test_windows_are_the_recordings_own_samples(tmp_path):
    sr = 4000
    y = np.random.default_rng(0).uniform(-0.5, 0.5, int(3.5 * sr)).astype(np.float32)
    sf.write(tmp_path / "r.wav", y, sr, subtype="FLOAT")
    got = list(W.iter_windows(tmp_path / "r.wav", CFG, hop_s=0.5))
    assert [w.start_s for w, _ in got] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert got[-1][0].end_s == 3.5
    for w, x in got:
        i = int(w.start_s * sr)
        np.testing.assert_array_equal(x, y[i:i + 4000])


def test_an_hour_long_recording_is_windowed_in_bounded_memory(tmp_path, monkeypatch):
    sr, minutes = 4000, 5
    with sf.SoundFile(tmp_path / "long.wav", "w", sr, 1, subtype="PCM_16") as f:
        for _ in range(minutes):
            f.write(np.random.default_rng(1).uniform(-0.3, 0.3, 60 * sr).astype(np.float32))
    tracemalloc.start()
    n = sum(1 for _ in W.iter_windows(tmp_path / "long.wav", CFG))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == minutes * 60  # 1 s windows at a 1 s hop
    assert peak < 1_000_000  # the samples alone would be 4.8 MB as float32
    monkeypatch.setattr(W, "MAX_RECORDING_S", 200.0)
    with pytest.raises(InputError, match="long.wav.*0.1 h long"):
        W.recording_info(tmp_path / "long.wav")


def test_predict_windows_prints_one_line_per_window(tmp_path, capsys):
    import torch

    from core.models.checkpoint import save_checkpoint
    from core.cli import main
    from core.models import build_model

    torch.manual_seed(0)
    save_checkpoint(tmp_path / "ckpt", build_model("secnn", {"channels": [4] * 5, "head": [4]}, n_classes=2),
                    CFG, ["a", "b"])
    t = np.arange(int(4.5 * 4000)) / 4000
    sf.write(tmp_path / "rec.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 4000)
    assert main(["predict", "--checkpoint", str(tmp_path / "ckpt"), "--windows", "--top-k", "1",
                 str(tmp_path / "rec.wav")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "5 windows" in lines[0]
    starts_ends = [tuple(map(float, line.split()[:2])) for line in lines[1:]]
    assert starts_ends == [(0.0, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 4.0), (3.5, 4.5)]
    assert main(["predict", "--checkpoint", str(tmp_path / "ckpt"), str(tmp_path / "rec.wav")]) == 0
    assert "3.5 s left out" in capsys.readouterr().out


def test_write_window_saves_that_span(tmp_path):
    y = np.arange(8000, dtype=np.float32) / 8000
    sf.write(tmp_path / "r.wav", y, 4000, subtype="FLOAT")
    out = W.write_window(tmp_path / "r.wav", W.Window(1, 0.5, 1.5), tmp_path / "w")
    back, sr = sf.read(out, dtype="float32")
    assert sr == 4000 and np.array_equal(back, y[2000:6000])
    assert W.write_window(tmp_path / "r.wav", W.Window(1, 0.5, 1.5), tmp_path / "w") == out
