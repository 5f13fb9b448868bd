"""Sanity check for saliency maps (Adebayo et al., NeurIPS 2018): cascading model-parameter randomisation.

A map that explains the *model* must change when the model's weights are
destroyed. The check randomises the model's layers one at a time from the top
(output) down, cumulatively, and after each step compares the map from the
randomised model with the map from the trained one by Spearman's rank
correlation over the cells. A method whose map still correlates strongly once
every layer is random explains the input (edges, loud cells), not what the
model learned.

Randomising a layer redraws each of its parameter tensors i.i.d. from a normal
with that tensor's own mean and standard deviation: the learned structure is
gone, the scale (so the activations' range) is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats
from torch import nn

from core.errors import InputError

__all__ = ["PASS_BELOW", "layer_groups", "randomise_", "rank_correlation", "SanityResult", "cascading_randomisation",
           "verdict"]

# A map whose rank correlation with the trained model's map stays at or above this once
# every layer is random fails the check.
PASS_BELOW = 0.5


def _has_module_list(module: nn.Module) -> bool:
    return any(isinstance(m, nn.ModuleList) for m in module.modules())


def layer_groups(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The model's layers with parameters, input to output.

    Each element of a ``ModuleList`` (a conv block, a transformer layer) is one
    layer; a module holding no ``ModuleList`` is one layer; others are opened.

    Returns
    -------
    list of (name, module)
    """
    groups: list[tuple[str, nn.Module]] = []

    def visit(prefix: str, module: nn.Module) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, nn.ModuleList):
                groups.extend((f"{full}.{i}", m) for i, m in enumerate(child) if any(True for _ in m.parameters()))
            elif _has_module_list(child):
                visit(f"{full}.", child)
            elif any(True for _ in child.parameters(recurse=True)):
                groups.append((full, child))

    visit("", model)
    own = [p for name, p in model.named_parameters(recurse=False)]
    if own:
        raise InputError("model", f"{type(model).__name__} holds parameters outside its layers")
    return groups


def randomise_(module: nn.Module, *, generator: torch.Generator) -> None:
    """Redraw every parameter of ``module`` in place from N(its mean, its std); one-element tensors are kept."""
    with torch.no_grad():
        for p in module.parameters():
            if p.numel() < 2:
                continue
            mean, std = p.mean(), p.std()
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype) * std + mean)


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two maps over the cells both cover (NaN cells left out).

    A constant map has no ranks: two constant maps count as 1 (nothing
    changed), one constant and one not as 0.
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError("maps", f"shapes differ: {a.shape} and {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    flat_a, flat_b = np.ptp(a) == 0 if a.size else True, np.ptp(b) == 0 if b.size else True
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    return float(stats.spearmanr(a, b).statistic)


@dataclass(frozen=True)
class SanityResult:
    """One method's cascade on one clip.

    Attributes
    ----------
    layers : list of str
        Layers randomised, top first; step ``k`` has the first ``k + 1`` random.
    correlations : np.ndarray [shape=(len(layers),)]
        Rank correlation with the trained model's map after each step.
    """

    layers: list[str]
    correlations: np.ndarray

    @property
    def top(self) -> float:
        """After only the top (output) layer is random."""
        return float(self.correlations[0])

    @property
    def all_random(self) -> float:
        """After every layer is random."""
        return float(self.correlations[-1])


def cascading_randomisation(
    model: nn.Module,
    explain: Callable[[nn.Module, torch.Tensor, int], np.ndarray],
    x: torch.Tensor,
    target: int,
    *,
    seed: int = 0,
) -> SanityResult:
    """Randomise the layers top down, cumulatively, and follow how the map changes.

    Parameters
    ----------
    model : nn.Module
        The trained model, in eval mode; it is not changed (a copy is randomised).
    explain : callable
        ``explain(model, x, target) -> np.ndarray (n_mels, n_frames)``, e.g. a
        :meth:`core.interpret.registry.MethodSpec.bind`'s result.
    x : Tensor [shape=(1, 1, n_mels, n_frames)]
    target : int
    seed : int

    Returns
    -------
    SanityResult
    """
    trained = explain(model, x, target)
    copy_ = copy.deepcopy(model).eval()
    groups = dict(layer_groups(copy_))
    generator = torch.Generator().manual_seed(seed)
    names, correlations = [], []
    for name in reversed(list(groups)):
        randomise_(groups[name], generator=generator)
        names.append(name)
        correlations.append(rank_correlation(trained, explain(copy_, x, target)))
    return SanityResult(names, np.array(correlations))


def verdict(all_random: float, *, threshold: float = PASS_BELOW) -> tuple[bool, str]:
    """Whether a method passes, and why, in words a student understands.

    Parameters
    ----------
    all_random : float
        Rank correlation of the map with the trained model's once every layer
        is random (a mean over clips).

    Returns
    -------
    (passed, sentence) : (bool, str)
    """
    if np.isnan(all_random):
        return False, "not measured"
    if all_random >= threshold:
        return False, (f"fails: with every weight of the model replaced by noise the map stays alike "
                       f"(rank correlation {all_random:.2f}), so it shows the sound more than what the model learned")
    return True, (f"passes: with every weight replaced by noise the map changes (rank correlation "
                  f"{all_random:.2f}), so it depends on what the model learned")
