"""Embeddings: any tap pooled to one vector per clip, then projected to 2-D.

Pooling (:func:`core.data.activations.pool_tap`, re-exported here), by the tap's kind:
    * ``"conv"`` ``(N, C, F, T)``: mean over frequency and time -> ``(N, C)``;
    * ``"tokens"`` ``(N, S, D)``: the class token (``token="cls"``) or the mean
      of the patch tokens (``token="mean"``) -> ``(N, D)``;
    * ``"attention"`` ``(N, H, S, S)``: the class token's attention to the
      patches, averaged over heads -> ``(N, P)``;
    * ``"se"``, ``"embedding"``, ``"logits"``: flattened per clip (already one vector).

Projection (:func:`project`): PCA, t-SNE (scikit-learn) or UMAP (umap-learn),
each with a fixed seed, so the same vectors and seed give the same points.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from core.data.activations import extract, pool_tap
from core.errors import InputError

__all__ = ["METHODS", "pool_tap", "project", "embed", "cached_embedding", "numba_cache_dir", "umap_compiled"]

METHODS = ("pca", "tsne", "umap")
NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"
# packages whose jitted functions are compiled into numba's on-disk cache (umap-learn and its pynndescent)
_UMAP_PACKAGES = ("umap", "pynndescent")


def numba_cache_dir() -> Path:
    """numba's compile cache: ``$NUMBA_CACHE_DIR`` when the user set it, else ``<cache>/numba`` (set here).

    Set before UMAP is imported, so that numba writes what it compiles there
    and the next process loads it instead of compiling again (once per
    machine, not once per run). numba may already be imported (librosa uses
    it) with the old setting; its configuration is then re-read.

    Returns
    -------
    pathlib.Path
    """
    if not os.environ.get(NUMBA_CACHE_ENV):
        from core.paths import cache_dir

        os.environ[NUMBA_CACHE_ENV] = str(cache_dir() / "numba")
        if "numba" in sys.modules:
            from numba.core import config

            config.reload_config()
    path = Path(os.environ[NUMBA_CACHE_ENV])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _umap_marker() -> Path:
    from importlib.metadata import version

    return numba_cache_dir() / f"umap-{version('umap-learn')}-numba-{version('numba')}.compiled"


def umap_compiled() -> bool:
    """Whether UMAP's code is already compiled in numba's cache on this machine (so the next UMAP is quick)."""
    return _umap_marker().is_file()


def _import_umap():
    """``import umap`` with numba's on-disk cache on, for umap's own functions too.

    umap-learn jits most of its functions without ``cache=True`` (and
    pynndescent some), so numba would compile them again in every process;
    :meth:`Dispatcher.enable_caching` is what ``cache=True`` does, applied
    before their first call.
    """
    numba_cache_dir()
    import umap
    from numba.core.dispatcher import Dispatcher

    modules = [m for name, m in list(sys.modules.items()) if name.split(".")[0] in _UMAP_PACKAGES and m is not None]
    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, Dispatcher) and type(getattr(value, "_cache", None)).__name__ == "NullCache":
                value.enable_caching()
    return umap


def project(
    vectors: np.ndarray,
    *,
    method: str = "pca",
    seed: int = 0,
    standardise: bool = True,
    perplexity: float = 30.0,
    n_neighbors: int = 15,
) -> np.ndarray:
    """Project vectors to 2-D.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
        N >= 3 clips, D >= 2 dimensions.
    method : {"pca", "tsne", "umap"}
    seed : int
        Fixes PCA's solver, t-SNE's and UMAP's initialisation and randomness.
    standardise : bool
        Scale each dimension to zero mean and unit variance first (constant
        dimensions become 0), so no channel dominates by scale alone.
    perplexity : float > 0
        t-SNE; lowered to ``(N - 1) / 3`` for small N.
    n_neighbors : int >= 2
        UMAP; lowered to ``N - 1`` for small N.

    Returns
    -------
    np.ndarray [shape=(N, 2)], float32

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> project(rng.normal(size=(20, 4, 3, 5)).mean(axis=(2, 3)), method="pca").shape
    (20, 2)
    """
    X = np.asarray(vectors, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 3 or X.shape[1] < 2:
        raise InputError("vectors", f"need (N, D) with N >= 3 clips and D >= 2, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise InputError("vectors", "hold NaN or infinite values")
    if method not in METHODS:
        raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    if standardise:
        std = X.std(axis=0)
        X = np.divide(X - X.mean(axis=0), std, out=np.zeros_like(X), where=std > 0)
    N = X.shape[0]
    if method == "pca":
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=seed).fit_transform(X)
    elif method == "tsne":
        from sklearn.manifold import TSNE

        points = TSNE(n_components=2, perplexity=min(perplexity, (N - 1) / 3), init="pca",
                      random_state=seed).fit_transform(X)
    else:
        first = not umap_compiled()
        if first:
            print(f"UMAP: compiling its numba code, once on this machine (about 30 s; kept in {numba_cache_dir()})",
                  file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        umap = _import_umap()  # slow to import (numba); only when asked
        points = umap.UMAP(n_components=2, n_neighbors=max(2, min(n_neighbors, N - 1)),
                           random_state=seed, n_jobs=1).fit_transform(X)
        if first:
            _umap_marker().write_text(f"{time.perf_counter() - t0:.1f} s\n")
            print(f"UMAP: compiled in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return np.asarray(points, dtype=np.float32)


def embed(
    activation: np.ndarray, *, kind: str, method: str = "pca", seed: int = 0, token: str = "cls", n_special: int = 1
) -> np.ndarray:
    """:func:`pool_tap` then :func:`project`.

    Returns
    -------
    np.ndarray [shape=(N, 2)], float32
    """
    return project(pool_tap(activation, kind=kind, token=token, n_special=n_special), method=method, seed=seed)


def cached_embedding(
    loaded,
    records,
    tap: str,
    *,
    method: str = "pca",
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = False,
    on_progress=None,
    cache=None,
) -> dict[str, np.ndarray]:
    """A dataset's 2-D embedding at one tap, computed once per checkpoint, data, tap, method and seed.

    The tap is pooled per clip by :func:`core.data.activations.extract` with
    ``reduce="vector"`` (class token for token taps), then projected; both
    steps are cached on disk, under the same keys from the CLI and the app.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    records : sequence of ClipRecord
    tap : str
    method : {"pca", "tsne", "umap"}
    seed : int
    batch_size : int
    progress : bool
        A tqdm bar while extracting.
    on_progress : callable or None
        ``on_progress(done, total)`` in clips while extracting.
    cache : core.data.cache.ArrayCache or None
        ``None`` uses :func:`core.data.cache.default_cache`.

    Returns
    -------
    dict
        ``"points"`` np.ndarray [shape=(N, 2)], ``"vectors"`` [shape=(N, D)],
        ``"labels"`` [shape=(N,)].
    """
    from core.data.cache import checkpoint_fingerprint, dataset_fingerprint, default_cache

    if method not in METHODS:
        raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    cache = default_cache() if cache is None else cache
    pooled = extract(loaded, records, [tap], reduce="vector", batch_size=batch_size, progress=progress,
                     on_progress=on_progress, cache=cache)

    def compute() -> dict[str, np.ndarray]:
        return {"points": project(np.asarray(pooled[tap]), method=method, seed=seed)}

    points = cache.get_or_compute(
        checkpoint=checkpoint_fingerprint(loaded.folder), dataset=dataset_fingerprint(records),
        preprocessing=loaded.audio_cfg.to_dict(),
        extra={"what": "embedding", "tap": tap, "method": method, "seed": seed},
        compute=compute,
    )["points"]
    return {"points": points, "vectors": pooled[tap], "labels": pooled["labels"]}
