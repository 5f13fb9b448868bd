"""Grad-CAM (Selvaraju et al., 2017): channels weighted by their mean gradient.

For a tap's activations ``A`` (``B, C, h, w``) and the target class's logit
``y``::

    w_c = mean over (h, w) of dy/dA_c
    map = ReLU(sum_c w_c A_c)

then resized to the spectrogram and scaled to [0, 1] by :class:`BaseCAM`.
"""

from __future__ import annotations

import torch

from core.interpret.cam import BaseCAM

__all__ = ["GradCAM"]


class GradCAM(BaseCAM):
    """Grad-CAM at any conv tap (SE-CNN) or token tap (AST).

    See :class:`core.interpret.cam.BaseCAM` for the parameters and
    :meth:`~core.interpret.cam.BaseCAM.maps` for the output.
    """

    def channel_weights(self, activations: torch.Tensor, gradients: torch.Tensor | None) -> torch.Tensor:
        """Mean gradient over the spatial axes.

        Parameters
        ----------
        activations, gradients : Tensor [shape=(B, C, h, w)]

        Returns
        -------
        Tensor [shape=(B, C)]
        """
        return gradients.mean(dim=(2, 3))
