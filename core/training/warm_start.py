"""Start a model from another checkpoint's weights: transfer, as the AST literature does.

Tensors whose name and shape match are copied; a transformer's position
embeddings are resized over its patch grid (bilinear, the class token's kept),
as AST does when it moves ImageNet weights to spectrograms; everything else
(a head for other classes) keeps its fresh initialisation.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["resize_positions", "warm_start"]


def resize_positions(pos: torch.Tensor, old_grid: tuple[int, int], new_grid: tuple[int, int],
                     n_special: int = 1) -> torch.Tensor:
    """Position embeddings (1, n_special + F*T, D) resized to another patch grid.

    The special tokens' rows are kept; the grid rows are interpolated
    bilinearly with corners aligned, so the first and last patch of each axis
    keep their embeddings exactly.
    """
    special, grid = pos[:, :n_special], pos[:, n_special:]  # (1, S, D), (1, F*T, D)
    (fo, to), (fn, tn) = old_grid, new_grid
    D = pos.shape[-1]
    g = grid.reshape(1, fo, to, D).permute(0, 3, 1, 2)  # (1, D, F, T)
    g = F.interpolate(g, size=(fn, tn), mode="bilinear", align_corners=True)  # (1, D, Fn, Tn)
    return torch.cat([special, g.permute(0, 2, 3, 1).reshape(1, fn * tn, D)], dim=1)


def warm_start(net: nn.Module, folder: str | Path) -> dict[str, list[str]]:
    """Copy what fits from the checkpoint in ``folder`` into ``net``, in place.

    Returns
    -------
    dict
        ``copied``, ``resized`` and ``kept`` (left as initialised) tensor names.
    """
    from core.models.checkpoint import load_checkpoint

    source = load_checkpoint(folder).model
    old = source.state_dict()
    state = net.state_dict()
    report: dict[str, list[str]] = {"copied": [], "resized": [], "kept": []}
    for name, tensor in state.items():
        if name in old and old[name].shape == tensor.shape:
            state[name] = old[name].clone()
            report["copied"].append(name)
        elif name == "embed.pos" and name in old and hasattr(source, "grid") and hasattr(net, "grid"):
            state[name] = resize_positions(old[name], source.grid, net.grid, getattr(net, "n_special", 1))
            report["resized"].append(name)
        else:
            report["kept"].append(name)
    net.load_state_dict(state)
    return report
