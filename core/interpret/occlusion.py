"""Occlusion (Zeiler & Fergus, 2014): the model-agnostic reference.

The spectrogram is tiled with ``window x window`` blocks (the last row and
column of blocks are cut short so every cell is covered once). Each block in
turn is filled with the clip's minimum (silence) and the model rerun; a
block's relevance is how much the target class's probability drops::

    relevance(block) = p_t(x) - p_t(x with block filled)

and every cell of the block takes that value. It needs no gradient and no
access to the model's inside, only ``n_blocks`` forward passes. (captum's
``Occlusion`` leaves the cells past the last whole window unscored, so it is
not used here.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.errors import InputError
from core.interpret.maps import normalise_map

__all__ = ["occlusion_blocks", "occlusion", "occlusion_map"]


def occlusion_blocks(shape: tuple[int, int], window: int | tuple[int, int]) -> list[tuple[slice, slice]]:
    """The blocks that tile ``shape``, row-major; edge blocks are cut short.

    Examples
    --------
    >>> occlusion_blocks((4, 5), 2)[-1]
    (slice(2, 4, None), slice(4, 5, None))
    """
    wf, wt = (window, window) if np.isscalar(window) else window
    if min(wf, wt) < 1:
        raise InputError("window", f"must be >= 1, got {window}")
    n_mels, n_frames = shape
    return [(slice(f, min(f + wf, n_mels)), slice(t, min(t + wt, n_frames)))
            for f in range(0, n_mels, wf) for t in range(0, n_frames, wt)]


def occlusion(predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray, *, target: int,
              window: int | tuple[int, int] = 16, fill: float | None = None) -> np.ndarray:
    """Drop of the target's probability when each block is filled.

    Parameters
    ----------
    predict : callable
        ``(N, n_mels, n_frames) -> (N, n_classes)`` probabilities
        (:func:`core.interpret.faithfulness.model_predictor`).
    x : np.ndarray [shape=(n_mels, n_frames)]
    target : int
    window : int or (int, int)
        Block size in bands and frames.
    fill : float or None
        Value of a filled block; ``None`` is the clip's minimum.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float64, signed (a negative block
    raised the probability when removed)
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InputError("x", f"expected a spectrogram (n_mels, n_frames), got shape {x.shape}")
    blocks = occlusion_blocks(x.shape, window)
    value = float(x.min()) if fill is None else float(fill)
    inputs = np.repeat(x[None], len(blocks) + 1, axis=0)  # input 0 is the clip itself
    for i, (bands, frames) in enumerate(blocks, start=1):
        inputs[i, bands, frames] = value
    p = np.asarray(predict(inputs))[:, int(target)].astype(np.float64)
    out = np.empty(x.shape, dtype=np.float64)
    for i, (bands, frames) in enumerate(blocks, start=1):
        out[bands, frames] = p[0] - p[i]
    return out


def occlusion_map(predict, x: np.ndarray, *, target: int, window: int | tuple[int, int] = 16) -> np.ndarray:
    """:func:`occlusion` scaled to [0, 1]: np.ndarray [shape=(n_mels, n_frames)], float32."""
    return normalise_map(occlusion(predict, x, target=target, window=window)).numpy()
