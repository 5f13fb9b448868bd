"""SmoothGrad (Smilkov et al., 2017): the input gradient averaged over noisy copies of the input.

For input ``x``, the target class's logit ``F`` and ``n`` noise draws
``e_k ~ N(0, sigma^2)`` (one value per cell, ``sigma = noise * (max(x) - min(x))``)::

    S(x) = 1/n * sum_k dF(x + e_k) / dx
    map  = |S(x)| scaled to [0, 1]

With ``noise = 0`` it is the plain gradient (saliency) map. The draws come from
a ``torch.Generator`` seeded with ``seed``, so a map is the same on every call
(captum's ``NoiseTunnel`` draws from the global generator instead).

torch is imported inside the functions: the method registry, which the app
imports at its cold start, imports this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from core.errors import InputError

if TYPE_CHECKING:
    import torch

__all__ = ["smoothgrad", "smoothgrad_map", "explain"]


def smoothgrad(model, x: torch.Tensor, *, target: int, n_samples: int = 16, noise: float = 0.15,
               seed: int = 0) -> np.ndarray:
    """The mean gradient of the target logit over noisy copies of ``x``.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, n_mels, n_frames)``, returns logits (or a tuple whose first item is); in eval mode.
    x : Tensor [shape=(1, 1, n_mels, n_frames)]
    target : int
    n_samples : int >= 1
        Noise draws.
    noise : float >= 0
        The noise's standard deviation as a share of the input's range.
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float64
        Signed mean gradient ``S(x)``.
    """
    import torch

    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1:
        raise InputError("x", f"expected one clip (1, 1, n_mels, n_frames), got {getattr(x, 'shape', type(x))}")
    if n_samples < 1:
        raise InputError("n_samples", f"must be at least 1, got {n_samples}")
    if noise < 0:
        raise InputError("noise", f"must be at least 0, got {noise}")
    x = x.detach().to(torch.float32)
    sigma = noise * float(x.max() - x.min())
    draws = torch.randn((n_samples, *x.shape[1:]), generator=torch.Generator().manual_seed(seed))
    noisy = (x + sigma * draws).requires_grad_(True)  # (n_samples, 1, n_mels, n_frames)
    with torch.enable_grad():
        logits = model(noisy)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        (gradients,) = torch.autograd.grad(logits[:, int(target)].sum(), noisy)
    return gradients.mean(dim=0)[0].to(torch.float64).numpy()


def smoothgrad_map(model, x: torch.Tensor, *, target: int, n_samples: int = 16, noise: float = 0.15,
                   seed: int = 0) -> np.ndarray:
    """``|smoothgrad(...)|`` scaled to [0, 1]: np.ndarray [shape=(n_mels, n_frames)], float32."""
    from core.interpret.maps import normalise_map

    return normalise_map(np.abs(smoothgrad(model, x, target=target, n_samples=n_samples, noise=noise,
                                           seed=seed))).numpy()


def explain(loaded, x: torch.Tensor, target: int, *, n_samples: int = 16, noise: float = 0.15) -> np.ndarray:
    """The registry's entry (:mod:`core.interpret.registry`): :func:`smoothgrad_map` of a loaded model."""
    return smoothgrad_map(loaded.model, x, target=target, n_samples=n_samples, noise=noise)
