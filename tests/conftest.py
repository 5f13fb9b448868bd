"""Shared fixtures: the demo set is generated once per test session (about 10 s)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# numba's compile cache (UMAP, librosa) in the repository's .cache/, shared by every test session and the
# app, whatever temporary $EXPLORER_CACHE a test uses: set before anything imports numba
os.environ.setdefault("NUMBA_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "numba"))
# the app starts no background warm-up of the bundled set (core.warm_background) in a test, nor in the servers the
# browser tests start (they inherit this): a test that wants one asks for it
os.environ["EXPLORER_WARM_CACHE"] = "0"


@pytest.fixture(scope="session")
def demo_dir() -> Path:
    from core.audio.demo_data import ensure_demo_data

    return ensure_demo_data()


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    import torch

    torch.set_num_threads(int(os.environ.get("TEST_THREADS", "1")))


@pytest.fixture()
def tiny_hf_ast():
    """A factory: ``make(folder, classes, **config)`` saves a tiny random Hugging Face AST classifier and its
    feature extractor with ``save_pretrained`` and returns the folder."""
    transformers = pytest.importorskip("transformers")
    import torch

    def make(folder: Path, classes: list[str], **extra) -> Path:
        torch.manual_seed(0)
        labels = {i: c for i, c in enumerate(classes)}
        config = transformers.ASTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, num_mel_bins=32, max_length=128,
                                        num_labels=len(labels), id2label=labels,
                                        label2id={c: i for i, c in labels.items()}, **extra)
        transformers.ASTForAudioClassification(config).eval().save_pretrained(folder)
        transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=128).save_pretrained(folder)
        return folder

    return make


@pytest.fixture()
def offline_hub(tmp_path, monkeypatch, tiny_hf_ast):
    """An offline Hugging Face hub cache (``tmp_path / "hub"``, laid out as huggingface_hub lays it out, nothing
    downloaded) holding ``someone/tiny-hub-ast``, a multi-label tiny AST over 'dog' and 'rain'. Returns the id."""
    import shutil

    from huggingface_hub import constants

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    # huggingface_hub reads both when it is imported: set what it already read, too
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    repo_id, revision = "someone/tiny-hub-ast", "0" * 40
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    shutil.copytree(tiny_hf_ast(tmp_path / "hub-src", ["dog", "rain"], problem_type="multi_label_classification"),
                    repo / "snapshots" / revision)
    return repo_id
