"""The explorer's remembered settings: written atomically, a bad file reported and not trusted."""

import json

import pytest

from core.errors import InputError
from core.data.settings import add_checkpoint_folder, load_settings, remove_checkpoint_folder, save_settings, settings_path


def test_settings_round_trip_and_checkpoint_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    assert load_settings() == ({"checkpoint_folders": [], "dataset_folder": ""}, None)
    ckpt = tmp_path / "runs" / "a"
    ckpt.mkdir(parents=True)
    (ckpt / "checkpoint.json").write_text("{}")
    with pytest.raises(InputError, match="holds no checkpoint"):
        add_checkpoint_folder(tmp_path)  # two levels above the checkpoint
    add_checkpoint_folder(tmp_path / "runs")  # a folder of checkpoints
    add_checkpoint_folder(ckpt)
    add_checkpoint_folder(ckpt)  # once only
    save_settings(dataset_folder="/data/digits")
    settings, problem = load_settings()
    assert problem is None and settings == {"checkpoint_folders": [str((tmp_path / "runs").resolve()),
                                                                   str(ckpt.resolve())],
                                            "dataset_folder": "/data/digits"}
    remove_checkpoint_folder(str(ckpt.resolve()))
    assert load_settings()[0]["checkpoint_folders"] == [str((tmp_path / "runs").resolve())]
    assert [p.name for p in settings_path().parent.iterdir()] == [settings_path().name]  # no temporary file left
    with pytest.raises(InputError, match="unknown settings"):
        save_settings(colour="red")


def test_an_unreadable_settings_file_is_reported_and_replaced(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    settings_path().write_text("{not json")
    settings, problem = load_settings()
    assert settings["checkpoint_folders"] == [] and str(settings_path()) in problem
    save_settings(dataset_folder="x")
    assert json.loads(settings_path().read_text())["dataset_folder"] == "x"
