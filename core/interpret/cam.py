"""Class activation maps: the pipeline every CAM method shares.

:class:`BaseCAM` owns the steps: forward, backward from the target class's
logit to each tap, a per-tap map, ReLU, resize to the spectrogram's
``(n_mels, n_frames)`` and scale to [0, 1]. A method overrides one step; Grad-CAM
(:mod:`core.interpret.gradcam`) only the channel weights. A gradient-free
method sets ``uses_gradients = False`` and overrides :meth:`BaseCAM.layer_map`.

A tap is a conv output ``(B, C, F', T')`` or a transformer's tokens
``(B, n_special + P, D)``; tokens are turned into an image ``(B, D, n_freq,
n_time)`` by dropping the special tokens and reshaping to the patch grid.

Hooks exist only while a map is computed: :func:`core.models.taps.record` registers
them around the forward pass and removes them on leaving its block, even on
error. Adapted from jacobgil/pytorch-grad-cam (``base_cam.py``,
``activations_and_gradients.py``), letting errors rise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from core.models import taps as tap_hooks
from core.errors import InputError
from core.interpret.maps import (
    normalise_map,
    patch_geometry,
    pooling_geometry,
    resize_map,
    resize_patch_map,
    tokens_to_grid,
)
from core.kinds import MAP_TAP_KINDS
from core.models import find_tap

__all__ = ["BaseCAM"]


def _targets(target: int | Sequence[int] | None, logits: torch.Tensor) -> torch.Tensor:
    B, n_classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    targets = torch.as_tensor([target] * B if np.isscalar(target) else list(target), dtype=torch.long)
    if targets.shape != (B,):
        raise InputError("target", f"give one class or one per clip ({B}), got {len(targets)}")
    if targets.min() < 0 or targets.max() >= n_classes:
        raise InputError("target", f"classes are 0..{n_classes - 1}, got {targets.tolist()}")
    return targets


class BaseCAM:
    """Shared CAM pipeline over one or more taps.

    Parameters
    ----------
    model : nn.Module
        A model with ``taps()`` (see :mod:`core.models`). Takes
        ``(B, 1, n_mels, n_frames)`` and returns logits ``(B, n_classes)`` (or a
        tuple whose first item is the logits). Its mode is left as it is: use
        eval mode, or dropout makes maps random. A tap's output must not be
        changed in place later in the model (its gradient would be wrong).
    taps : sequence of str
        Names of conv or token taps, e.g. ``["block3"]`` or ``["layer8"]``.
    grid : (int, int) or None
        ``(n_freq_patches, n_time_patches)`` for token taps; defaults to
        ``model.grid``.
    n_special : int or None
        Special tokens before the patches; defaults to ``model.n_special``, else 1.

    Notes
    -----
    Cells are placed at their true centres (:func:`~core.interpret.maps.resize_patch_map`):
    a conv tap's cells at the centre of the input block its pooling reduced
    (when the model says how much, ``model.pooling_factor(tap)``; the frames the
    pooling rounds away are NaN), token maps at their patches' centres when the
    model's config gives the patch geometry. Otherwise the map is stretched
    over the spectrogram (:func:`~core.interpret.maps.resize_map`).

    Examples
    --------
    >>> from core.models.checkpoint import load_checkpoint
    >>> from core.interpret.gradcam import GradCAM
    >>> from core.paths import CHECKPOINTS_DIR
    >>> model = load_checkpoint(CHECKPOINTS_DIR / "secnn").model
    >>> x = torch.randn(2, 1, 128, 431, generator=torch.Generator().manual_seed(0))
    >>> per_tap = GradCAM(model, ["block3", "block4"]).maps(x, target=7)
    >>> {tap: m.shape for tap, m in per_tap.items()}  # (B, n_mels, n_frames) each, in [0, 1]
    {'block3': (2, 128, 431), 'block4': (2, 128, 431)}
    """

    uses_gradients = True

    def __init__(
        self,
        model: nn.Module,
        taps: Sequence[str],
        *,
        grid: tuple[int, int] | None = None,
        n_special: int | None = None,
    ):
        if isinstance(taps, str) or len(taps) == 0:
            raise InputError("taps", f"give a non-empty list of tap names, got {taps!r}")
        self.model = model
        self.taps = list(taps)
        if not hasattr(model, "taps"):
            raise InputError("model", f"{type(model).__name__} lists no taps")
        for name in self.taps:
            kind = find_tap(model, name).kind
            if kind not in MAP_TAP_KINDS:
                raise InputError("tap", f"{name!r} is a {kind} tap; a CAM needs a conv or token tap")
        self.grid = grid if grid is not None else getattr(model, "grid", None)
        self.n_special = n_special if n_special is not None else getattr(model, "n_special", 1)
        self.geometry = patch_geometry(model)

    # -- the steps a method may override ---------------------------------------------

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        """Tensor [shape=(B, C)]: one weight per channel; a method defines it."""
        raise NotImplementedError

    def layer_map(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        """Weighted sum of channels, before ReLU.

        Parameters
        ----------
        activations, gradients : Tensor [shape=(B, C, h, w)]

        Returns
        -------
        Tensor [shape=(B, h, w)]
        """
        weights = self.channel_weights(activations, gradients)  # (B, C)
        return (weights[:, :, None, None] * activations).sum(dim=1)

    # -- the pipeline ----------------------------------------------------------------

    def _pooling(self, name: str):
        factor = getattr(self.model, "pooling_factor", lambda tap: None)(name)
        return None if factor is None else pooling_geometry(factor)

    def _as_image(self, tensor: torch.Tensor, name: str) -> torch.Tensor:
        """Tap output as (B, C, h, w): conv maps as they are, tokens on the patch grid."""
        if tensor.ndim == 4:
            return tensor
        if tensor.ndim == 3:
            if self.grid is None:
                raise InputError("grid", f"tap {name!r} outputs tokens; give the patch grid (n_freq, n_time)")
            return tokens_to_grid(tensor, grid=self.grid, n_special=self.n_special)
        raise InputError("tap", f"{name!r} outputs shape {tuple(tensor.shape)}; a CAM needs (B,C,F,T) or (B,S,D)")

    def maps(
        self,
        x: torch.Tensor,
        *,
        target: int | Sequence[int] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> dict[str, np.ndarray]:
        """One map per tap.

        Parameters
        ----------
        x : Tensor [shape=(B, 1, n_mels, n_frames)]
        target : int, sequence of int of length B, or None
            Class explained per clip; ``None`` takes the predicted class.
        shape : (int, int) or None
            Output grid; defaults to ``x``'s ``(n_mels, n_frames)``.

        Returns
        -------
        dict
            ``tap -> np.ndarray [shape=(B, n_mels, n_frames)]``, float32, each
            map scaled to [0, 1] (all zeros where the ReLU leaves nothing).
        """
        if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or (x.ndim != 4 and shape is None):
            raise InputError("x", f"expected a float tensor (B, 1, n_mels, n_frames), or any batch of model "
                                  f"inputs with the map's shape given, got {getattr(x, 'shape', type(x))}")
        shape = tuple(shape) if shape is not None else tuple(x.shape[-2:])
        # A fresh leaf that needs grad keeps a graph even if the weights are frozen.
        x = x.detach().clone().requires_grad_(self.uses_gradients)
        with tap_hooks.record(self.model, self.taps, keep_graph=self.uses_gradients) as rec, \
                torch.set_grad_enabled(self.uses_gradients):
            logits = self.model(x)
        logits = logits[0] if isinstance(logits, (tuple, list)) else logits
        missing = [name for name in self.taps if name not in rec.outputs]
        if missing:
            raise InputError("tap", f"{missing} did not run in the forward pass")
        activations = [rec.outputs[name] for name in self.taps]
        targets = _targets(target, logits)
        if self.uses_gradients:
            # Gradients w.r.t. the recorded output tensors, not module backward hooks, which
            # miss or misplace gradients around in-place ops
            # (https://github.com/pytorch/pytorch/issues/61519).
            score = logits.gather(1, targets[:, None]).sum()  # each clip's target logit
            gradients = torch.autograd.grad(score, activations, allow_unused=True)
            # A tap the target logit does not depend on gets a zero gradient (and a zero map).
            gradients = [torch.zeros_like(a) if g is None else g for a, g in zip(activations, gradients)]
        else:
            gradients = [None] * len(activations)
        out = {}
        with torch.no_grad():
            for name, a, g in zip(self.taps, activations, gradients):
                is_tokens = a.ndim == 3
                a = self._as_image(a.detach(), name)
                g = self._as_image(g, name) if g is not None else None
                cam = torch.relu(self.layer_map(a, g))  # (B, h, w)
                geometry = self.geometry if is_tokens else self._pooling(name)
                if geometry is not None:
                    resized = resize_patch_map(cam, shape, geometry=geometry)
                else:
                    resized = resize_map(cam, shape)
                out[name] = normalise_map(resized).numpy()
        return out

    def __call__(
        self,
        x: torch.Tensor,
        *,
        target: int | Sequence[int] | None = None,
        shape: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """The taps' maps averaged, rescaled to [0, 1].

        Returns
        -------
        np.ndarray [shape=(B, n_mels, n_frames)], float32
        """
        per_tap = self.maps(x, target=target, shape=shape)
        mean = np.mean(np.stack(list(per_tap.values())), axis=0)  # NaN where any tap does not reach
        return normalise_map(mean).numpy()
