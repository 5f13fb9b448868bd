"""Shared fixtures: the demo set is generated once per test session (about 10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    from core.demo_data import ensure_demo_data

    return ensure_demo_data()


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(int(os.environ.get("TEST_THREADS", "1")))
