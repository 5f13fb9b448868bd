"""The last layer's raw attention from the class token: where the final layer looks, mean over heads.

For the last layer's attention ``A`` (``B, H, S, S``) and ``n_special``
special tokens before the patches::

    relevance[p] = mean over heads h, over special tokens s of A[h, s, n_special + p]

(with Hugging Face's AST the class and distillation rows are averaged, as its
classifier averages the two tokens), reshaped to the patch grid and placed at
the patches' centres. Unlike rollout it ignores every earlier layer, and unlike
gradient methods it is the same for every class.

See Also
--------
core.interpret.rollout : attention multiplied through all layers.
core.interpret.attention_relevance : attention weighted by its gradient (Chefer et al., 2021).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.errors import InputError
from core.interpret.maps import PatchGeometry, normalise_map, patch_geometry, resize_map, resize_patch_map
from core.interpret.rollout import class_token_relevance

__all__ = ["last_layer_attention", "model_last_attention"]


def last_layer_attention(
    attentions: Sequence[torch.Tensor],
    *,
    grid: tuple[int, int],
    shape: tuple[int, int],
    n_special: int = 1,
    geometry: PatchGeometry | None = None,
) -> np.ndarray:
    """The last layer's attention from the special tokens to the patches, on the spectrogram.

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
        One per layer; only the last is used.
    grid : (int, int)
        ``(n_freq_patches, n_time_patches)``.
    shape : (int, int)
        ``(n_mels, n_frames)``.
    n_special : int >= 1
    geometry : PatchGeometry or None

    Returns
    -------
    np.ndarray [shape=(B, n_mels, n_frames)], float32 in [0, 1], NaN where no patch reaches
    """
    if len(attentions) == 0:
        raise InputError("attentions", "no layers given")
    last = attentions[-1]
    if last.ndim != 4 or last.shape[-1] != last.shape[-2]:
        raise InputError("attentions", f"each layer must be (batch, heads, seq, seq), got {tuple(last.shape)}")
    fused = last.detach().to(torch.float64).mean(dim=1)  # (B, S, S)
    relevance = class_token_relevance(fused, grid=grid, n_special=n_special)  # (B, nF, nT)
    resized = resize_map(relevance, shape) if geometry is None else resize_patch_map(relevance, shape, geometry=geometry)
    return normalise_map(resized).numpy()


def model_last_attention(model, x: torch.Tensor) -> np.ndarray:
    """:func:`last_layer_attention` of a patch transformer for inputs ``x`` (B, 1, n_mels, n_frames)."""
    if not hasattr(model, "grid"):
        raise InputError("model", f"attention maps need a transformer; this is {getattr(model, 'kind', '?')!r}")
    with torch.no_grad():
        _, attentions = model(x, output_attentions=True)
    return last_layer_attention(attentions, grid=model.grid, shape=tuple(x.shape[-2:]),
                                n_special=getattr(model, "n_special", 1), geometry=patch_geometry(model))
