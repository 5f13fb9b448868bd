"""Gradient-weighted attention relevance (Chefer, Gur & Wolf, ICCV 2021, "Generic Attention-model Explainability").

Rollout treats every head alike and every class alike. Chefer et al. weight
each head's attention by its gradient for the class explained, keep the
positive part, average over heads, and accumulate through the layers with the
residual path::

    R = I                                   # (S, S)
    for each layer l, first to last:
        Abar_l = mean over heads of relu(dy_t/dA_l * A_l)
        R = R + Abar_l @ R

where ``A_l`` (``H, S, S``) is layer ``l``'s attention and ``y_t`` the target
class's logit. The special tokens' rows of ``R`` over the patches (averaged
for Hugging Face's two special tokens) are the relevance map, placed at the
patches' centres.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.errors import InputError
from core.interpret.maps import normalise_map, patch_geometry, resize_map, resize_patch_map
from core.interpret.rollout import class_token_relevance

__all__ = ["relevance_matrix", "model_attention_relevance"]


def relevance_matrix(attentions: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor]) -> torch.Tensor:
    """Accumulated relevance ``R`` of Chefer et al. (see the module docstring).

    Parameters
    ----------
    attentions, gradients : sequence of Tensor [shape=(B, H, S, S)]
        Each layer's attention probabilities and the target logit's gradient
        with respect to them, first layer first.

    Returns
    -------
    Tensor [shape=(B, S, S)], float64
    """
    if len(attentions) == 0 or len(attentions) != len(gradients):
        raise InputError("gradients", f"need one gradient per attention layer, got {len(gradients)} "
                                      f"for {len(attentions)}")
    B, _, S, _ = attentions[0].shape
    R = torch.eye(S, dtype=torch.float64).expand(B, S, S).clone()
    for attention, gradient in zip(attentions, gradients):
        weighted = (gradient.detach().to(torch.float64) * attention.detach().to(torch.float64)).clamp(min=0)
        R = R + weighted.mean(dim=1) @ R  # (B, S, S)
    return R


def model_attention_relevance(model, x: torch.Tensor, *, target: int | Sequence[int]) -> np.ndarray:
    """Gradient-weighted attention relevance of a patch transformer for class ``target``.

    Parameters
    ----------
    model : nn.Module
        ``forward(x, output_attentions=True)`` returns ``(logits, attentions)``
        with the attentions in the autograd graph (our AST, Hugging Face's AST).
    x : Tensor [shape=(B, 1, n_mels, n_frames)]
    target : int or sequence of int (one per clip)

    Returns
    -------
    np.ndarray [shape=(B, n_mels, n_frames)], float32 in [0, 1], NaN where no patch reaches
    """
    if not hasattr(model, "grid"):
        raise InputError("model", f"attention relevance needs a transformer; this is {getattr(model, 'kind', '?')!r}")
    B = x.shape[0]
    targets = torch.as_tensor([target] * B if np.isscalar(target) else list(target), dtype=torch.long)
    with torch.enable_grad():
        logits, attentions = model(x.detach().clone().requires_grad_(True), output_attentions=True)
        if not all(a.requires_grad for a in attentions):
            raise InputError("model", "its attention probabilities are not part of the autograd graph")
        score = logits.gather(1, targets[:, None]).sum()
        gradients = torch.autograd.grad(score, attentions)
    R = relevance_matrix(attentions, gradients)
    n_special = getattr(model, "n_special", 1)
    relevance = class_token_relevance(R, grid=model.grid, n_special=n_special)  # (B, nF, nT)
    geometry = patch_geometry(model)
    shape = tuple(x.shape[-2:])
    resized = resize_map(relevance, shape) if geometry is None else resize_patch_map(relevance, shape, geometry=geometry)
    return normalise_map(resized).numpy()
