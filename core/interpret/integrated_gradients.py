"""Integrated Gradients (Sundararajan, Taly & Yan, 2017), through captum.

For input ``x``, baseline ``x'`` and the target class's logit ``F``::

    IG_i(x) = (x_i - x'_i) * integral over a in [0, 1] of dF(x' + a (x - x')) / dx_i

approximated by the midpoint rule with ``n_steps`` points (captum's
``riemann_middle``: ``a_k = (k - 1/2) / n_steps``, each weighted ``1 / n_steps``;
exact for a linear model). captum's ``riemann_trapezoid`` is not used: its
weights sum to ``(n - 1) / n``, not 1. By the completeness axiom the
attributions sum to ``F(x) - F(x')`` (up to the approximation's error).

The baseline stated here is **silence**: every cell set to the clip's minimum,
the value the deletion and insertion curves fill with. The map is the signed
attribution scaled to [0, 1] (cells that speak against the class lowest).

How far a run is from that sum is its **completeness gap**
(:func:`completeness_gap`): ``|sum_i IG_i - (F(x) - F(x'))| / |F(x) - F(x')|``.
A gap of a few per cent says the step count is enough. :data:`DEFAULT_STEPS`
is chosen so that the median gap is under :data:`GAP_WARN`: on one fold-5 clip
per class with the shipped SE-CNN, 16 steps left a median gap of 7.5 % (up to
54 %), 32 steps 2.9 % (up to 15 %). ``explain-report`` prints the gaps of
every clip it scores (the model card gives them for both shipped models).

captum is the field's own library for gradient attributions; it is an
optional dependency (``pip install captum``).
"""

from __future__ import annotations

import numpy as np
import torch

from core.errors import InputError
from core.interpret.maps import normalise_map

__all__ = ["BASELINE", "DEFAULT_STEPS", "GAP_WARN", "integrated_gradients", "integrated_gradients_map",
           "completeness_gap", "completeness_note"]

BASELINE = "silence (every cell at the clip's minimum)"
DEFAULT_STEPS = 32
GAP_WARN = 0.05  # a clip whose completeness gap is above this gets a warning


def _captum_ig():
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise InputError("captum", "not installed; Integrated Gradients needs it (pip install captum)") from None
    return IntegratedGradients


def _logits(model):
    def forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return out[0] if isinstance(out, (tuple, list)) else out

    return forward


def integrated_gradients(model, x: torch.Tensor, *, target: int, n_steps: int = DEFAULT_STEPS,
                         baseline: torch.Tensor | None = None) -> np.ndarray:
    """Integrated Gradients of the target logit, per input cell.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, n_mels, n_frames)``, returns logits (or a tuple whose first item is).
    x : Tensor [shape=(1, 1, n_mels, n_frames)]
    target : int
    n_steps : int > 1
    baseline : Tensor or None
        Same shape as ``x``; ``None`` is silence, ``x.min()`` everywhere.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float64
        Signed attributions; they sum to about ``F(x) - F(baseline)``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != 1:
        raise InputError("x", f"expected one clip (1, 1, n_mels, n_frames), got {getattr(x, 'shape', type(x))}")
    if n_steps < 2:
        raise InputError("n_steps", f"must be at least 2, got {n_steps}")
    x = x.detach().to(torch.float32)
    baseline = torch.full_like(x, float(x.min())) if baseline is None else baseline.detach().to(torch.float32)
    ig = _captum_ig()(_logits(model))
    with torch.enable_grad():
        attributions = ig.attribute(x, baselines=baseline, target=int(target), n_steps=n_steps,
                                    method="riemann_middle", internal_batch_size=n_steps)
    return attributions[0, 0].detach().to(torch.float64).numpy()


def integrated_gradients_map(model, x: torch.Tensor, *, target: int, n_steps: int = DEFAULT_STEPS) -> np.ndarray:
    """:func:`integrated_gradients` from silence, scaled to [0, 1]: np.ndarray [shape=(n_mels, n_frames)], float32."""
    return normalise_map(integrated_gradients(model, x, target=target, n_steps=n_steps)).numpy()


def completeness_gap(model, x: torch.Tensor, attributions: np.ndarray, *, target: int,
                     baseline: torch.Tensor | None = None) -> float:
    """How far attributions miss the completeness axiom: ``|sum IG - (F(x) - F(x'))| / |F(x) - F(x')|``.

    Parameters
    ----------
    model : nn.Module
    x : Tensor [shape=(1, 1, n_mels, n_frames)]
    attributions : np.ndarray [shape=(n_mels, n_frames)]
        :func:`integrated_gradients` of ``x`` (signed, not scaled).
    target : int
    baseline : Tensor or None
        The one the attributions were computed from; ``None`` is silence.

    Returns
    -------
    float >= 0
        A share of ``|F(x) - F(x')|`` (0.05 is 5 %); NaN when ``F(x) == F(x')``.
    """
    x = x.detach().to(torch.float32)
    baseline = torch.full_like(x, float(x.min())) if baseline is None else baseline.detach().to(torch.float32)
    with torch.no_grad():
        logits = _logits(model)(torch.cat([x, baseline]))
    delta = float(logits[0, int(target)] - logits[1, int(target)])
    if delta == 0:
        return float("nan")
    return abs(float(np.sum(attributions)) - delta) / abs(delta)


def completeness_note(gap: float, *, n_steps: int, warn_at: float = GAP_WARN) -> str | None:
    """A warning for a page when a clip's completeness gap is above ``warn_at``, else None.

    Examples
    --------
    >>> completeness_note(0.02, n_steps=32) is None
    True
    >>> completeness_note(0.12, n_steps=32)  # doctest: +ELLIPSIS
    "Integrated Gradients at 32 steps misses the completeness axiom by 12% on this clip ..."
    """
    if np.isnan(gap) or gap <= warn_at:
        return None
    return (f"Integrated Gradients at {n_steps} steps misses the completeness axiom by {gap:.0%} on this clip "
            f"(its cells should add up to the logit's change from the baseline; above {warn_at:.0%} the "
            f"integral is not converged): read the map with care, or use more steps.")
