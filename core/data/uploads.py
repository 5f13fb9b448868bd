"""Uploaded clips: checked, then kept under the cache folder by a hash of their bytes.

A copy named by its content's hash is a stable cache key: the same upload
twice is one file, a different upload a different file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.audio.features import AudioConfig, load_audio
from core.data.datasets import AUDIO_EXTENSIONS
from core.errors import InputError
from core.paths import cache_dir
from core.audio.windows import recording_info

__all__ = ["MAX_UPLOAD_MB", "save_upload"]

MAX_UPLOAD_MB = 50  # also server.maxUploadSize in .streamlit/config.toml


def save_upload(name: str, data: bytes, *, folder: str | Path | None = None) -> Path:
    """Check an upload's type and size, keep a copy named by its hash, and check it loads.

    Parameters
    ----------
    name : str
        The file's own name (its extension says its type; errors name it).
    data : bytes
    folder : str, Path or None
        Where copies are kept; ``None`` is ``cache_dir() / "uploads"``.

    Returns
    -------
    Path
        The saved copy.

    Raises
    ------
    InputError
        Wrong extension, too large, an unreadable header, or anything
        :func:`core.audio.features.load_audio` refuses in a recording short enough to be
        loaded whole (the copy is then removed); the message names ``name``.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        raise InputError(name, f"not an audio file type the explorer reads ({', '.join(AUDIO_EXTENSIONS)})")
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        raise InputError(name, f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB")
    folder = Path(folder) if folder is not None else cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
    if not path.is_file():
        path.write_bytes(data)
    try:
        duration_s = recording_info(path)[0]
        if duration_s <= AudioConfig.max_duration_s:  # a longer one is windowed (core.audio.windows), never loaded whole
            load_audio(path, AudioConfig())
    except InputError as error:
        path.unlink(missing_ok=True)
        raise InputError(name, error.problem) from None
    return path
