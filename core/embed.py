"""Embeddings: any tap pooled to one vector per clip, then projected to 2-D.

Pooling (:func:`pool_tap`), by the tap's kind:
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

import numpy as np

from core.errors import InputError

__all__ = ["METHODS", "pool_tap", "project", "embed", "cached_embedding"]

METHODS = ("pca", "tsne", "umap")


def pool_tap(activation: np.ndarray, *, kind: str, token: str = "cls", n_special: int = 1) -> np.ndarray:
    """One vector per clip from a tap's output.

    Parameters
    ----------
    activation : np.ndarray [shape=(N, ...)]
        A tap's output for N clips (see the module docstring for the shapes).
    kind : {"conv", "tokens", "attention", "se", "embedding", "logits"}
        The tap's kind (``Tap.kind``).
    token : {"cls", "mean"}
        For token taps: the class token or the mean of the patch tokens.
    n_special : int >= 0
        Special tokens before the patches.

    Returns
    -------
    np.ndarray [shape=(N, D)], float32
    """
    a = np.asarray(activation, dtype=np.float32)
    if a.ndim < 2:
        raise InputError("activation", f"expected (N, ...), got shape {a.shape}")
    if kind == "conv":
        if a.ndim != 4:
            raise InputError("activation", f"a conv tap is (N, C, F, T), got shape {a.shape}")
        return a.mean(axis=(2, 3))
    if kind == "tokens":
        if a.ndim != 3:
            raise InputError("activation", f"a token tap is (N, S, D), got shape {a.shape}")
        if token == "cls":
            return a[:, 0]
        if token == "mean":
            return a[:, n_special:].mean(axis=1)
        raise InputError("token", f"{token!r} is not 'cls' or 'mean'")
    if kind == "attention":
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise InputError("activation", f"an attention tap is (N, H, S, S), got shape {a.shape}")
        return a[:, :, 0, n_special:].mean(axis=1)
    if kind in ("se", "embedding", "logits"):
        return a.reshape(len(a), -1)
    raise InputError("kind", f"{kind!r} is not a tap kind")


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
    >>> points = project(pool_tap(acts, kind="conv"), method="umap", seed=0)  # doctest: +SKIP
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
        import umap  # slow to import (numba); only when asked

        points = umap.UMAP(n_components=2, n_neighbors=max(2, min(n_neighbors, N - 1)),
                           random_state=seed, n_jobs=1).fit_transform(X)
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
    cfg,
    *,
    method: str = "pca",
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    cache=None,
) -> dict[str, np.ndarray]:
    """A dataset's 2-D embedding at one tap, computed once per checkpoint, data, tap, method and seed.

    The tap is pooled per clip (:func:`pool_tap`, class token for token taps)
    through :func:`core.cache.cached_activations` with ``reduction="vector"``,
    then projected; both steps are cached on disk.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
    records : sequence of ClipRecord
    tap : str
    cfg : AudioConfig
    method : {"pca", "tsne", "umap"}
    seed : int
    batch_size : int
    progress : bool
    cache : core.cache.ArrayCache or None
        ``None`` uses :func:`core.cache.default_cache`.

    Returns
    -------
    dict
        ``"points"`` np.ndarray [shape=(N, 2)], ``"vectors"`` [shape=(N, D)],
        ``"labels"`` [shape=(N,)].
    """
    from core.cache import cached_activations, checkpoint_fingerprint, dataset_fingerprint, default_cache

    if method not in METHODS:
        raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    cache = default_cache() if cache is None else cache
    pooled = cached_activations(loaded, records, [tap], cfg, batch_size=batch_size, progress=progress,
                                reduction="vector", cache=cache)

    def compute() -> dict[str, np.ndarray]:
        return {"points": project(pooled[tap], method=method, seed=seed)}

    points = cache.get_or_compute(
        checkpoint=checkpoint_fingerprint(loaded.folder), dataset=dataset_fingerprint(records),
        preprocessing=cfg.to_dict(), extra={"what": "embedding", "tap": tap, "method": method, "seed": seed},
        compute=compute,
    )["points"]
    return {"points": points, "vectors": pooled[tap], "labels": pooled["labels"]}
