"""The explorer's remembered settings: a small JSON file under the cache folder, written atomically.

``cache_dir()/explorer-settings.json`` holds what a user opened so that it is there after a
restart: ``checkpoint_folders`` (checkpoint folders, or folders of them, beside ``checkpoints/``)
and ``dataset_folder`` (the dataset folder last opened; empty for the bundled demo set). A file
that cannot be read is reported and treated as empty; it is replaced on the next save, written to
a temporary file and renamed into place so that an interrupted save never leaves half a file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from core.errors import InputError
from core.paths import cache_dir

__all__ = ["SETTINGS_FILE", "DEFAULTS", "settings_path", "load_settings", "save_settings", "add_checkpoint_folder",
           "remove_checkpoint_folder", "is_checkpoint_source"]

SETTINGS_FILE = "explorer-settings.json"
DEFAULTS = {"checkpoint_folders": [], "dataset_folder": ""}


def settings_path() -> Path:
    return cache_dir() / SETTINGS_FILE


def load_settings() -> tuple[dict, str | None]:
    """The settings (defaults for what is missing), and the problem with the file when it could not be read."""
    path = settings_path()
    if not path.is_file():
        return dict(DEFAULTS), None
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return dict(DEFAULTS), f"{path}: unreadable settings, ignored ({error})"
    out = dict(DEFAULTS)
    if isinstance(doc.get("checkpoint_folders"), list):
        out["checkpoint_folders"] = [str(p) for p in doc["checkpoint_folders"] if isinstance(p, str)]
    if isinstance(doc.get("dataset_folder"), str):
        out["dataset_folder"] = doc["dataset_folder"]
    return out, None


def save_settings(**updates) -> dict:
    """Merge ``updates`` into the settings and write them atomically; returns the new settings."""
    unknown = set(updates) - set(DEFAULTS)
    if unknown:
        raise InputError("settings", f"unknown settings {sorted(unknown)}")
    settings, _ = load_settings()
    settings.update(updates)
    path = settings_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".settings-", suffix=".json.part")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(settings, f, indent=2)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return settings


def is_checkpoint_source(folder: Path) -> bool:
    """A checkpoint folder (``checkpoint.json`` or a Hugging Face ``config.json``), or a folder holding some."""
    def one(p: Path) -> bool:
        return (p / "checkpoint.json").is_file() or (p / "config.json").is_file()

    return folder.is_dir() and (one(folder) or any(one(p) for p in folder.iterdir() if p.is_dir()))


def add_checkpoint_folder(folder: str | Path) -> dict:
    """Remember a checkpoint folder (or a folder of them) for the explorer.

    Raises
    ------
    InputError
        When the folder does not exist or holds no checkpoint.
    """
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(path, "folder not found")
    if not is_checkpoint_source(path):
        raise InputError(path, "holds no checkpoint (checkpoint.json, or a Hugging Face config.json), "
                               "directly or one level down")
    resolved = str(path.resolve())
    settings, _ = load_settings()
    folders = [f for f in settings["checkpoint_folders"] if f != resolved] + [resolved]
    return save_settings(checkpoint_folders=folders)


def remove_checkpoint_folder(folder: str) -> dict:
    settings, _ = load_settings()
    return save_settings(checkpoint_folders=[f for f in settings["checkpoint_folders"] if f != folder])
