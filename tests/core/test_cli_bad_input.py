"""``predict`` and ``evaluate`` end with status 2 and one line naming the file and the problem."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio.features import AudioConfig
from core.models.checkpoint import save_checkpoint
from core.cli import main
from core.models import build_model

CLASSES = ["a", "b"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt") / "tiny"
    model = build_model("secnn", {"channels": [4, 4, 4, 4, 4], "head": [8]}, n_classes=2)
    save_checkpoint(folder, model, AudioConfig(), CLASSES, {"note": "test"})
    return folder


def _wav(path, y, sr, subtype="PCM_16"):
    sf.write(path, y, sr, subtype=subtype)
    return path


BAD_FILES = {
    "empty": (lambda p: (p.write_bytes(b""), p)[1], "empty"),
    "not audio": (lambda p: (p.write_text("hello " * 100), p)[1], "not a readable audio file"),
    "truncated header": (lambda p: (p.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt "), p)[1], "not a readable"),
    "one sample": (lambda p: _wav(p, np.array([0.1], np.float32), 44100), "minimum"),
    "ten minutes": (lambda p: _wav(p, np.zeros(8000 * 600, np.int16), 8000), "limit is 60 s"),
    "three channels": (lambda p: _wav(p, np.zeros((4410, 3), np.float32), 44100), "3 channels"),
    "missing": (lambda p: p, "not found"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_predict_bad_file(ckpt, tmp_path, capsys, case):
    make, words = BAD_FILES[case]
    path = make(tmp_path / "clip.wav")
    assert main(["predict", "--checkpoint", str(ckpt), str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and words in err[0], err


def test_predict_a_96k_float_file_works(ckpt, tmp_path, capsys):
    t = np.arange(96000) / 96000
    path = _wav(tmp_path / "hi.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 96000, "FLOAT")
    assert main(["predict", "--checkpoint", str(ckpt), str(path)]) == 0
    assert str(path) in capsys.readouterr().out


def _bad_checkpoints(root, ckpt):
    import shutil

    cases = {}
    malformed = root / "malformed"
    shutil.copytree(ckpt, malformed)
    (malformed / "checkpoint.json").write_text("{ not json")
    cases["malformed"] = (malformed, "checkpoint.json")
    other = root / "other-arch"
    shutil.copytree(ckpt, other)
    doc = json.loads((other / "checkpoint.json").read_text())
    doc["kind"] = "ast"
    doc["model_config"] = {}
    (other / "checkpoint.json").write_text(json.dumps(doc))
    cases["other architecture"] = (other, "other-arch")
    cases["no folder"] = (root / "nothing", "nothing")
    return cases


@pytest.mark.parametrize("case", ["malformed", "other architecture", "no folder"])
def test_bad_checkpoint_for_both_commands(ckpt, tmp_path, capsys, case, demo_dir):
    folder, words = _bad_checkpoints(tmp_path, ckpt)[case]
    clip = _wav(tmp_path / "ok.wav", np.zeros(44100, np.float32) + 0.01, 44100)
    for argv in (["predict", "--checkpoint", str(folder), str(clip)],
                 ["evaluate", "--checkpoint", str(folder), "--data", str(demo_dir), "--fold", "5", "--limit", "2"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "Traceback" not in err[0], err


def test_evaluate_wrong_dataset_layout(ckpt, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(tmp_path / "empty"), "--fold", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "matches no dataset layout" in err[0] and "ESC-50's audio/ beside meta/esc50.csv" in err[0]
