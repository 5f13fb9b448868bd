"""The AppTest modules' shared set-up: a small demo set and two tiny random checkpoints.

A test module sets ``EXPLORER_ENV = {"clips_per_class": N, "ast": {...}}`` and
uses the ``env`` fixture: a demo set of N clips per class in a temporary
``$EXPLORER_CACHE`` and a tiny SE-CNN and AST found through
``$EXPLORER_CHECKPOINTS``, so the pages are tested without the shipped ones.
"""

from __future__ import annotations

import os

import pytest
import torch

_VARS = ("EXPLORER_CACHE", "EXPLORER_CHECKPOINTS")


@pytest.fixture(scope="module")
def env(tmp_path_factory, request):
    from core.audio.features import AudioConfig
    from core.models.checkpoint import save_checkpoint
    from core.data.datasets import open_dataset
    from core.audio.demo_data import default_demo_dir, make_demo_data
    from core.models import build_model

    settings = getattr(request.module, "EXPLORER_ENV", {})
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    saved = {k: os.environ.get(k) for k in _VARS}
    os.environ["EXPLORER_CACHE"] = str(root / "cache")
    os.environ["EXPLORER_CHECKPOINTS"] = str(root / "checkpoints")
    try:
        demo = make_demo_data(default_demo_dir(), clips_per_class=settings.get("clips_per_class", 2), workers=1,
                              show_bar=False)
        data = open_dataset(demo)
        torch.manual_seed(0)
        secnn = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [16]}, n_classes=len(data.classes))
        ast = build_model("ast", settings.get("ast", {"dim": 16, "depth": 2, "heads": 2, "mlp_ratio": 1.0}),
                          n_classes=len(data.classes))
        save_checkpoint(root / "checkpoints" / "tiny-secnn", secnn, AudioConfig(), data.classes, {"note": "test"})
        save_checkpoint(root / "checkpoints" / "tiny-ast", ast, AudioConfig(), data.classes, {"note": "test"})
        yield {"root": root, "demo": demo, "data": data, "classes": data.classes}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(autouse=True)
def _forget_settings():
    """The explorer remembers the last dataset and checkpoint folders across restarts (core.data.settings); each test
    starts from none, as a fresh install does."""
    yield
    from core.data.settings import settings_path

    settings_path().unlink(missing_ok=True)
