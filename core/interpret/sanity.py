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

The verdict reads the size of the correlation, ``|rho|``: a map that turns into
its own inverse (rho = -0.8) still shows the model's weights did not matter. A
map that *vanishes* (every cell equal, e.g. a ReLU'd Grad-CAM that is all zero
once the weights are noise) has no ranks: it is its own outcome, never rho = 0.
The verdict is drawn over at least :data:`MIN_CLIPS` clips from the bootstrap
interval of the mean ``|rho|`` (:func:`verdict`): "passes" when the whole interval
lies under :data:`PASS_BELOW`, "fails" when it lies at or above it, and
"inconclusive" otherwise, or when too few clips were measured or most maps vanished.
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

__all__ = ["PASS_BELOW", "MIN_CLIPS", "OUTCOMES", "layer_groups", "randomise_", "rank_correlation", "is_vanished",
           "SanityResult", "cascading_randomisation", "SanityVerdict", "verdict"]

# A map whose rank correlation with the trained model's map stays at or above this (in size, |rho|) once
# every layer is random fails the check.
PASS_BELOW = 0.5
MIN_CLIPS = 10  # fewer measured clips give no verdict
OUTCOMES = ("passes", "fails", "inconclusive")


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


def is_vanished(heatmap: np.ndarray) -> bool:
    """Whether a map has vanished: every covered cell equal (all zero, say), so it ranks nothing.

    >>> is_vanished(np.zeros((2, 3))), is_vanished(np.eye(2))
    (True, False)
    """
    values = np.asarray(heatmap, dtype=np.float64).ravel()
    values = values[~np.isnan(values)]
    return values.size == 0 or bool(np.ptp(values) == 0)


@dataclass(frozen=True)
class SanityResult:
    """One method's cascade on one clip.

    Attributes
    ----------
    layers : list of str
        Layers randomised, top first; step ``k`` has the first ``k + 1`` random.
    correlations : np.ndarray [shape=(len(layers),)]
        Signed rank correlation with the trained model's map after each step;
        NaN where either map vanished.
    vanished : np.ndarray [shape=(len(layers),)], bool
        Whether the randomised map (or the trained one) had vanished at that step.
    """

    layers: list[str]
    correlations: np.ndarray
    vanished: np.ndarray

    @property
    def top(self) -> float:
        """After only the top (output) layer is random (NaN when the map vanished)."""
        return float(self.correlations[0])

    @property
    def all_random(self) -> float:
        """After every layer is random (NaN when the map vanished)."""
        return float(self.correlations[-1])


def cascading_randomisation(
    model: nn.Module,
    explain: Callable[[nn.Module, torch.Tensor, int], np.ndarray],
    x: torch.Tensor,
    target: int,
    *,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
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
    progress : callable or None
        ``progress(done, total)`` after each map (``total`` = 1 + the number of
        layer groups); whatever it raises stops the check there.

    Returns
    -------
    SanityResult
    """
    n_maps = 1 + len(layer_groups(model))
    trained = explain(model, x, target)
    if progress is not None:
        progress(1, n_maps)
    trained_vanished = is_vanished(trained)
    copy_ = copy.deepcopy(model).eval()
    groups = dict(layer_groups(copy_))
    generator = torch.Generator().manual_seed(seed)
    names, correlations, vanished = [], [], []
    for name in reversed(list(groups)):
        randomise_(groups[name], generator=generator)
        names.append(name)
        random_map = explain(copy_, x, target)
        gone = trained_vanished or is_vanished(random_map)
        vanished.append(gone)
        correlations.append(np.nan if gone else rank_correlation(trained, random_map))
        if progress is not None:
            progress(1 + len(names), n_maps)
    return SanityResult(names, np.array(correlations, dtype=np.float64), np.array(vanished, dtype=bool))


@dataclass(frozen=True)
class SanityVerdict:
    """A method's sanity verdict over clips.

    Attributes
    ----------
    outcome : {"passes", "fails", "inconclusive"}
    passed : bool
        ``outcome == "passes"``.
    n_clips, n_vanished : int
        Clips checked, and those whose map vanished (left out of the correlations).
    abs_rho : tuple (mean, low, high) or None
        Mean ``|rho|`` over the other clips with its bootstrap 95 % interval.
    signed_rho : float or None
        Mean signed rho (negative: the randomised map is the trained one inverted).
    sentence : str
        In words a student understands.
    """

    outcome: str
    n_clips: int
    n_vanished: int
    abs_rho: tuple[float, float, float] | None
    signed_rho: float | None
    sentence: str

    @property
    def passed(self) -> bool:
        return self.outcome == "passes"


def verdict(all_random, *, threshold: float = PASS_BELOW, min_clips: int = MIN_CLIPS) -> SanityVerdict:
    """Whether a method passes the check over clips, from the interval of its mean ``|rho|``.

    Parameters
    ----------
    all_random : sequence of float
        Per clip, the signed rank correlation once every layer is random
        (:attr:`SanityResult.all_random`); NaN for a clip whose map vanished.
    threshold : float in (0, 1)
        Passes when the interval of the mean ``|rho|`` lies under it; fails when it lies at or above it.
    min_clips : int
        Fewer clips checked give "inconclusive".

    Returns
    -------
    SanityVerdict

    Examples
    --------
    >>> verdict([0.9, -0.8, 0.95, -0.9, 0.85, 0.9, -0.92, 0.88, 0.9, 0.91]).outcome  # inverted maps count as alike
    'fails'
    >>> verdict([np.nan] * 10).outcome  # every map vanished: nothing was compared
    'inconclusive'
    """
    from core.interpret.baselines import bootstrap_interval

    rho = np.asarray(all_random, dtype=np.float64).ravel()
    n, gone = rho.size, int(np.isnan(rho).sum())
    measured = rho[~np.isnan(rho)]
    vanished_words = (f"; in {gone} of {n} clips the map vanished (every cell equal) once the weights were noise, "
                      f"which is no evidence either way and is left out") if gone else ""
    if measured.size == 0 or gone > n / 2:
        return SanityVerdict("inconclusive", n, gone, None, None,
                             f"inconclusive: in {gone} of {n} clips the map vanished (every cell equal) once the "
                             f"weights were noise, so there was nothing left to compare; a map that disappears "
                             f"has not been shown to depend on what the model learned")
    mean, low, high = bootstrap_interval(np.abs(measured))
    signed = float(measured.mean())
    over = "on 1 clip" if measured.size == 1 else \
        f"[95 % interval {low:.2f}-{high:.2f}] over {measured.size} clips"
    numbers = f"|rank correlation| {mean:.2f} {over}, signed {signed:+.2f}"
    if n < min_clips:
        checked = "1 clip was" if n == 1 else f"{n} clips were"
        outcome, words = "inconclusive", (f"inconclusive: only {checked} checked ({numbers}); "
                                          f"a verdict needs at least {min_clips} (explain-report runs it on more)")
    elif low >= threshold:
        outcome, words = "fails", (f"fails: with every weight of the model replaced by noise the map stays alike "
                                   f"({numbers}; {threshold} or more counts as alike), so it shows the sound more "
                                   f"than what the model learned")
    elif high < threshold:
        outcome, words = "passes", (f"passes: with every weight replaced by noise the map changes ({numbers}; "
                                    f"under {threshold} counts as changed), so it depends on what the model learned")
    else:
        outcome, words = "inconclusive", (f"inconclusive: the interval of the map's likeness to the random model's "
                                          f"straddles {threshold} ({numbers}); more clips may decide")
    return SanityVerdict(outcome, n, gone, (mean, low, high), signed, words + vanished_words)
