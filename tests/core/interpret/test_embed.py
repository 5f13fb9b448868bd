"""Pooling taps to vectors and projecting them reproducibly."""

from __future__ import annotations


import numpy as np
import pytest

from core.interpret.embed import embed, pool_tap, project
from core.errors import InputError


def clusters(seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((3, 6)) * 5
    return np.concatenate([c + rng.standard_normal((8, 6)) for c in centres]).astype(np.float32)


def test_pooling_by_tap_kind():
    rng = np.random.default_rng(0)
    conv = rng.random((4, 3, 5, 6))
    np.testing.assert_allclose(pool_tap(conv, kind="conv"), conv.mean(axis=(2, 3)), rtol=1e-6)
    tokens = rng.random((4, 1 + 6, 8))
    np.testing.assert_allclose(pool_tap(tokens, kind="tokens"), tokens[:, 0], rtol=1e-6)
    np.testing.assert_allclose(pool_tap(tokens, kind="tokens", token="mean"), tokens[:, 1:].mean(axis=1), rtol=1e-6)
    attention = rng.random((4, 2, 7, 7))
    np.testing.assert_allclose(pool_tap(attention, kind="attention"), attention[:, :, 0, 1:].mean(axis=1), rtol=1e-6)
    assert pool_tap(rng.random((4, 9, 1, 1)), kind="embedding").shape == (4, 9)
    with pytest.raises(InputError):
        pool_tap(tokens, kind="conv")


@pytest.mark.parametrize("method", ["pca", "tsne"])
def test_same_seed_same_points(method):
    X = clusters()
    a = project(X, method=method, seed=1)
    assert a.shape == (24, 2)
    np.testing.assert_array_equal(a, project(X, method=method, seed=1))


def test_umap_is_reproducible_with_a_seed():
    X = clusters()
    a = project(X, method="umap", seed=3, n_neighbors=5)
    np.testing.assert_array_equal(a, project(X, method="umap", seed=3, n_neighbors=5))


def test_pca_matches_the_first_two_principal_components_up_to_sign():
    X = clusters().astype(np.float64)
    Z = (X - X.mean(0)) / X.std(0)
    _, _, vt = np.linalg.svd(Z, full_matrices=False)
    expected = Z @ vt[:2].T
    got = project(X, method="pca")
    for k in range(2):
        assert np.allclose(got[:, k], expected[:, k], atol=1e-4) or np.allclose(got[:, k], -expected[:, k], atol=1e-4)


def test_embed_chains_pooling_and_projection():
    conv = np.random.default_rng(0).random((10, 4, 3, 3))
    np.testing.assert_allclose(embed(conv, kind="conv"), project(conv.mean(axis=(2, 3)), method="pca"), atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(method="lda"), dict(vectors=np.ones((2, 5))), dict(vectors=np.ones(5))])
def test_bad_projection_input_is_an_input_error(kwargs):
    args = dict(vectors=clusters()) | kwargs
    with pytest.raises(InputError):
        project(**args)


def test_cached_embedding_is_computed_once(tmp_path):
    import soundfile as sf
    import torch

    from core.audio.features import AudioConfig
    from core.data.cache import ArrayCache
    from core.models.checkpoint import load_checkpoint, save_checkpoint
    from core.data.datasets import ClipRecord
    from core.interpret.embed import cached_embedding
    from core.models import build_model

    cfg = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=128, n_frames=64)
    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=2)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, cfg, ["a", "b"]))
    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        path = tmp_path / f"{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        records.append(ClipRecord(path.name, path, i % 2, "ab"[i % 2], 1))
    cache = ArrayCache(tmp_path / "cache")
    first = cached_embedding(loaded, records, "block3", cache=cache)
    assert first["points"].shape == (6, 2) and first["vectors"].shape == (6, 8)
    assert (cache.stats.hits, cache.stats.misses) == (0, 2)  # activations, then projection
    second = cached_embedding(loaded, records, "block3", cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)
    np.testing.assert_array_equal(first["points"], second["points"])
    np.testing.assert_allclose(first["points"], project(first["vectors"], method="pca"), atol=1e-5)


def test_numba_cache_dir_is_the_users_when_set_else_ours(monkeypatch, tmp_path):
    from numba.core import config

    from core.interpret.embed import NUMBA_CACHE_ENV, numba_cache_dir

    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)  # restored after the test
    monkeypatch.setenv(NUMBA_CACHE_ENV, str(tmp_path / "mine"))
    assert numba_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(NUMBA_CACHE_ENV)
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    assert numba_cache_dir() == tmp_path / "cache" / "numba" and (tmp_path / "cache" / "numba").is_dir()
    assert config.CACHE_DIR == str(tmp_path / "cache" / "numba")  # numba, imported before, re-read it


def test_umaps_own_jitted_functions_are_cached_on_disk():
    from numba.core.caching import FunctionCache
    from numba.core.dispatcher import Dispatcher

    from core.interpret.embed import _import_umap

    umap = _import_umap()
    jitted = [v for v in vars(umap.umap_).values() if isinstance(v, Dispatcher)]
    assert jitted and all(isinstance(v._cache, FunctionCache) for v in jitted)
