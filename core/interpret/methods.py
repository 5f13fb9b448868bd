"""Every heatmap method and baseline a model can be explained with, by name: one function per map.

``explain-report`` scores these, the app draws them, the sanity check
randomises the model under them; all three call :func:`method_map` (or the
:class:`Method` it looks up), so a map on a page is the map in the report.

Methods per model kind:

* SE-CNN (and any model with conv taps): Grad-CAM at each conv tap;
* transformers (``"ast"``, ``"hf-ast"``): rollout (mean fusion; max fusion
  with 0.9 of the weakest links discarded), gradient-weighted attention
  relevance (Chefer et al., 2021), the last layer's attention, Grad-CAM on the
  second-to-last layer's tokens (the last layer's patch tokens get no
  gradient: only the class token reaches the head);
* every model: Integrated Gradients from silence, occlusion;
* the energy baseline: the input spectrogram itself (it ignores the model).

The smooth random baseline and pointing-game chance are not maps of a clip;
see :mod:`core.interpret.baselines`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import InputError

__all__ = ["ENERGY", "Method", "rollout_name", "model_methods", "find_method", "method_map"]

ENERGY = "energy (input itself)"
TRANSFORMER_KINDS = ("ast", "hf-ast")

Explain = Callable[[object, torch.Tensor, int], np.ndarray]


@dataclass(frozen=True)
class Method:
    """A named heatmap method.

    Attributes
    ----------
    name : str
        As the report's table and the app label it.
    explain : callable
        ``explain(model, x, target) -> np.ndarray [shape=(n_mels, n_frames)]`` in [0, 1]
        (NaN where the method covers no cell), with ``x`` a tensor ``(1, 1, n_mels, n_frames)``.
    baseline : bool
        True for a map that needs no model (the energy map).
    class_specific : bool
        Whether the map depends on the class explained.
    """

    name: str
    explain: Explain
    baseline: bool = False
    class_specific: bool = True


def _gradcam(tap: str) -> Explain:
    def explain(model, x, target):
        from core.interpret.gradcam import GradCAM

        return GradCAM(model, [tap]).maps(x, target=int(target))[tap][0]

    return explain


def _rollout(head_fusion: str, discard_ratio: float) -> Explain:
    def explain(model, x, target):
        from core.interpret.rollout import model_rollout

        return model_rollout(model, x, head_fusion=head_fusion, discard_ratio=discard_ratio)[0]

    return explain


def rollout_name(head_fusion: str = "mean", discard_ratio: float = 0.0) -> str:
    """The method name of a rollout setting: ``"rollout (mean)"``, ``"rollout (max, discard 0.9)"``.

    Examples
    --------
    >>> rollout_name("max", 0.9)
    'rollout (max, discard 0.9)'
    """
    if discard_ratio == 0:
        return f"rollout ({head_fusion})"
    return f"rollout ({head_fusion}, discard {discard_ratio:g})"


def _last_attention(model, x, target):
    from core.interpret.last_attention import model_last_attention

    return model_last_attention(model, x)[0]


def _attention_relevance(model, x, target):
    from core.interpret.attention_relevance import model_attention_relevance

    return model_attention_relevance(model, x, target=int(target))[0]


def _integrated_gradients(n_steps: int) -> Explain:
    def explain(model, x, target):
        from core.interpret.integrated_gradients import integrated_gradients_map

        return integrated_gradients_map(model, x, target=int(target), n_steps=n_steps)

    return explain


def _occlusion(window: int) -> Explain:
    def explain(model, x, target):
        from core.interpret.faithfulness import model_predictor
        from core.interpret.occlusion import occlusion_map

        return occlusion_map(model_predictor(model), x[0, 0].detach().numpy(), target=int(target), window=window)

    return explain


def _energy(model, x, target):
    from core.interpret.baselines import energy_map

    return energy_map(x[0, 0].detach().numpy())


def model_methods(model, *, ig_steps: int = 32, occlusion_window: int = 16,
                  reference: bool = True) -> dict[str, Method]:
    """The methods for this model, in the order the report lists them, the energy baseline last.

    Parameters
    ----------
    model : nn.Module
        A project model (``taps()``; ``kind`` "secnn", "ast" or "hf-ast").
    ig_steps : int
        Integrated Gradients' integration steps.
    occlusion_window : int
        Occlusion's block size, in bands and frames.
    reference : bool
        Include the model-agnostic reference methods (Integrated Gradients,
        occlusion), which cost tens to hundreds of forward passes per map.

    Returns
    -------
    dict
        Name -> :class:`Method`.
    """
    methods: list[Method] = []
    token_taps = [t.name for t in model.taps() if t.kind == "tokens"]
    conv_taps = [t.name for t in model.taps() if t.kind == "conv"]
    if getattr(model, "kind", "") in TRANSFORMER_KINDS or hasattr(model, "grid"):
        methods += [
            Method(rollout_name("mean", 0.0), _rollout("mean", 0.0), class_specific=False),
            Method(rollout_name("max", 0.9), _rollout("max", 0.9), class_specific=False),
            Method("attention × gradient (Chefer)", _attention_relevance),
            Method("attention (last layer)", _last_attention, class_specific=False),
        ]
        if token_taps:
            tap = token_taps[-2] if len(token_taps) > 1 else token_taps[-1]
            methods.append(Method(f"grad-cam {tap}", _gradcam(tap)))
    else:
        methods += [Method(f"grad-cam {tap}", _gradcam(tap)) for tap in conv_taps]
    if reference:
        methods += [Method("integrated gradients", _integrated_gradients(ig_steps)),
                    Method("occlusion", _occlusion(occlusion_window))]
    methods.append(Method(ENERGY, _energy, baseline=True, class_specific=False))
    return {m.name: m for m in methods}


def find_method(model, name: str, **options) -> Method:
    """The method called ``name``: a key of :func:`model_methods`, ``"grad-cam <tap>"`` for any CAM tap,
    or any rollout setting (:func:`rollout_name`)."""
    if name.startswith("grad-cam "):
        return Method(name, _gradcam(name.removeprefix("grad-cam ")))
    match = re.fullmatch(r"rollout \((mean|max|min)(?:, discard ([0-9.]+))?\)", name)
    if match:
        fusion, discard = match.group(1), float(match.group(2) or 0.0)
        return Method(name, _rollout(fusion, discard), class_specific=False)
    methods = model_methods(model, **options)
    if name not in methods:
        raise InputError("method", f"{name!r} is not one of {list(methods)}")
    return methods[name]


def method_map(model, name: str, x: torch.Tensor | np.ndarray, target: int, **options) -> np.ndarray:
    """The map of method ``name`` for one clip: what the report scores and the app draws.

    Parameters
    ----------
    model : nn.Module
        In eval mode.
    name : str
        A key of :func:`model_methods`, or ``"grad-cam <tap>"`` for any CAM tap.
    x : Tensor or np.ndarray [shape=(n_mels, n_frames)] or (1, 1, n_mels, n_frames)
    target : int
    **options
        Passed to :func:`model_methods` (``ig_steps``, ``occlusion_window``).

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32 in [0, 1], NaN where not covered
    """
    x = torch.as_tensor(x, dtype=torch.float32)
    if x.ndim == 2:
        x = x[None, None]
    if x.ndim != 4 or x.shape[:2] != (1, 1):
        raise InputError("x", f"expected one spectrogram, got shape {tuple(x.shape)}")
    return np.asarray(find_method(model, name, **options).explain(model, x, target), dtype=np.float32)
