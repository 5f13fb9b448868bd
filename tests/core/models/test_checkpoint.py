"""Checkpoints: round trip, and every kind of mismatch refused with a clear message."""

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from core.audio.features import AudioConfig
from core.models.checkpoint import META_FILE, WEIGHTS_FILE, load_checkpoint, save_checkpoint
from core.errors import InputError
from core.models import build_model

CFG = AudioConfig(n_mels=32, n_frames=32)
SECNN = {"channels": [4, 4, 8, 8, 8], "head": [8, 8], "reduction": 2}
AST = {"patch": 8, "dim": 8, "depth": 1, "heads": 2, "n_mels": 32, "n_frames": 32}
CLASSES = ["dog", "rain", "siren"]


def _save(tmp_path, kind="secnn", config=SECNN, name="ckpt"):
    torch.manual_seed(0)
    model = build_model(kind, config, n_classes=3).eval()
    meta = {"epochs_run": np.int64(3), "accuracy": np.float32(0.5), "data": tmp_path, "curve": np.arange(3)}
    return model, save_checkpoint(tmp_path / name, model, CFG, CLASSES, meta)


@pytest.mark.parametrize("kind,config", [("secnn", SECNN), ("ast", AST)])
def test_round_trip(tmp_path, kind, config):
    model, folder = _save(tmp_path, kind, config)
    loaded = load_checkpoint(folder)
    assert loaded.kind == kind and loaded.classes == CLASSES and loaded.audio_cfg == CFG
    assert loaded.meta == {"epochs_run": 3, "accuracy": 0.5, "data": str(tmp_path), "curve": [0, 1, 2]}
    assert not loaded.model.training and loaded.model.config == model.config
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))
    assert loaded.features(np.zeros(CFG.hop_length * 31, np.float32)).shape == (32, 32)
    assert sorted(p.name for p in folder.iterdir()) == [META_FILE, WEIGHTS_FILE]


def test_missing_files_are_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_checkpoint(tmp_path / "nowhere")
    _, folder = _save(tmp_path)
    (folder / WEIGHTS_FILE).unlink()
    with pytest.raises(InputError, match="weights are missing"):
        load_checkpoint(folder)
    (folder / META_FILE).unlink()
    with pytest.raises(InputError, match="not a checkpoint folder"):
        load_checkpoint(folder)


def test_malformed_json_is_refused(tmp_path):
    _, folder = _save(tmp_path)
    (folder / META_FILE).write_text('{"kind": "secnn", ')
    with pytest.raises(InputError, match="malformed JSON"):
        load_checkpoint(folder)
    (folder / META_FILE).write_text("[1, 2]")
    with pytest.raises(InputError, match="not an object"):
        load_checkpoint(folder)
    (folder / META_FILE).write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an explorer checkpoint"):
        load_checkpoint(folder)


def _edit_json(folder, **changes):
    doc = json.loads((folder / META_FILE).read_text())
    doc.update(changes)
    (folder / META_FILE).write_text(json.dumps(doc))
    return doc


def test_another_kind_is_refused(tmp_path):
    _, folder = _save(tmp_path)
    with pytest.raises(InputError, match="is a 'secnn' model, not 'ast'"):
        load_checkpoint(folder, kind="ast")
    _edit_json(folder, kind="ast", model_config=AST)  # JSON says AST, weights are an SE-CNN's
    with pytest.raises(InputError, match="another architecture"):
        load_checkpoint(folder)
    _edit_json(folder, kind="vgg")
    with pytest.raises(InputError, match="unknown model kind 'vgg'"):
        load_checkpoint(folder)


def test_other_shapes_are_refused(tmp_path):
    _, folder = _save(tmp_path)
    _edit_json(folder, model_config={**SECNN, "channels": [4, 4, 8, 8, 16]})
    with pytest.raises(InputError, match=r"'blocks.4.features.0.weight' has shape \(8, 8, 3, 3\).*\(16, 8, 3, 3\)"):
        load_checkpoint(folder)
    _edit_json(folder, model_config=SECNN, n_classes=4, classes=CLASSES + ["cat"])
    with pytest.raises(InputError, match="'out.weight' has shape"):
        load_checkpoint(folder)


def test_missing_and_unexpected_tensors_are_refused(tmp_path):
    _, folder = _save(tmp_path)
    state = load_file(str(folder / WEIGHTS_FILE))
    save_file({k: v for k, v in state.items() if k != "out.bias"}, str(folder / WEIGHTS_FILE))
    with pytest.raises(InputError, match=r"1 tensors missing for 'secnn': \['out.bias'\]"):
        load_checkpoint(folder)
    save_file({**state, "extra.weight": torch.zeros(2)}, str(folder / WEIGHTS_FILE))
    with pytest.raises(InputError, match="not in a 'secnn' model"):
        load_checkpoint(folder)


def test_bad_config_values_are_refused(tmp_path):
    _, folder = _save(tmp_path)
    _edit_json(folder, model_config={**SECNN, "depth": 3})
    with pytest.raises(InputError, match="unknown fields"):
        load_checkpoint(folder)
    _edit_json(folder, model_config=SECNN, classes=["dog"])
    with pytest.raises(InputError, match="3 classes declared"):
        load_checkpoint(folder)


class _Bomb:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('UNPICKLED').write_text('x')",))


def test_a_pickle_named_as_weights_is_never_unpickled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _, folder = _save(tmp_path)
    (folder / WEIGHTS_FILE).write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(InputError, match="not a safetensors file"):
        load_checkpoint(folder)
    torch.save({"out.bias": torch.zeros(3)}, folder / WEIGHTS_FILE)  # torch's zip pickle
    with pytest.raises(InputError, match="not a safetensors file"):
        load_checkpoint(folder)
    assert not (tmp_path / "UNPICKLED").exists()


def test_save_refuses_a_wrong_class_list(tmp_path):
    model = build_model("secnn", SECNN, n_classes=3)
    with pytest.raises(InputError, match="2 names for a model with 3 outputs"):
        save_checkpoint(tmp_path / "x", model, CFG, ["a", "b"], {})


def test_the_audio_config_is_read_without_loading_the_model(tmp_path):
    from core.models.checkpoint import checkpoint_audio_config

    cfg = AudioConfig(sr=16000, n_mels=64, hop_length=160, n_frames=101)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [16]}, n_classes=3)
    save_checkpoint(tmp_path / "ck", model, cfg, ["a", "b", "c"], {})
    assert checkpoint_audio_config(tmp_path / "ck") == load_checkpoint(tmp_path / "ck").audio_cfg == cfg
    assert checkpoint_audio_config(tmp_path) is None  # no checkpoint.json: only loading tells
    doc = json.loads((tmp_path / "ck" / META_FILE).read_text())
    doc["audio_config"]["no_such_field"] = 1
    (tmp_path / "ck" / META_FILE).write_text(json.dumps(doc))
    with pytest.raises(InputError, match="no_such_field"):
        checkpoint_audio_config(tmp_path / "ck")


def test_the_apps_first_imports_leave_torch_for_later():
    """Cold start: the app's entry modules and checkpoint.json reading import no torch (seconds to load)."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; import explorer.cached, explorer.ui, explorer.state, explorer.figures, core.models.checkpoint; "
            "core.models.checkpoint.checkpoint_audio_config('checkpoints/secnn'); "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                            env={**__import__("os").environ, "PYTHONPATH": str(root)})
    assert result.returncode == 0, result.stderr[-2000:] or "torch was imported"
