"""Where the project's own files live: shipped checkpoints and the local cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "CHECKPOINTS_DIR", "cache_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"


def cache_dir() -> Path:
    """The folder for generated data and caches (outside git): ``$EXPLORER_CACHE`` or ``<repo>/.cache``."""
    path = Path(os.environ.get("EXPLORER_CACHE", REPO_ROOT / ".cache"))
    path.mkdir(parents=True, exist_ok=True)
    return path
