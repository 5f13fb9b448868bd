"""The baselines that give an explanation's score its meaning.

A heatmap's pointing game or deletion AUC says little alone; it says
something beside what needs no model at all:

* the **energy map** (:func:`energy_map`): the input spectrogram itself as the
  heatmap. Loud cells are often the event, so a method that does not beat it
  has shown nothing the spectrogram did not;
* a **smooth random map** (:func:`smooth_random_map`): uniform noise on a
  coarse grid (one value per 16 x 16 cells, like an AST patch), upsampled
  bilinearly. Real maps are smooth, and deleting a smooth region hurts a model
  more than deleting scattered cells, so per-cell noise is too easy a bar.
  :func:`random_curves` scores many draws and gives their mean and spread;
* **chance** for the pointing game (:func:`pointing_chance`): the share of
  cells inside the clip's boxes, the hit rate of a peak placed at random.

Per-clip scores are summarised with a bootstrap interval
(:func:`bootstrap_interval`), not only a mean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.faithfulness import box_cells, deletion_curve, insertion_curve
from core.interpret.maps import normalise_map, resize_map

__all__ = [
    "SMOOTH_CELL",
    "energy_map",
    "smooth_random_map",
    "RandomCurves",
    "random_curves",
    "pointing_chance",
    "bootstrap_interval",
]

# Input cells per value of the smooth random map, in bands and frames (an AST patch).
SMOOTH_CELL = 16


def energy_map(x: np.ndarray) -> np.ndarray:
    """The input spectrogram as its own heatmap, scaled to [0, 1].

    Parameters
    ----------
    x : np.ndarray [shape=(n_mels, n_frames)]
        The (log-mel) input the model sees.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32

    Examples
    --------
    >>> energy_map(np.array([[1.0, 3.0], [2.0, 5.0]]))
    array([[0.  , 0.5 ],
           [0.25, 1.  ]], dtype=float32)
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InputError("x", f"expected a spectrogram (n_mels, n_frames), got shape {x.shape}")
    return normalise_map(x).numpy()


def smooth_random_map(shape: tuple[int, int], *, seed: int = 0, coarse: tuple[int, int] | None = None) -> np.ndarray:
    """Uniform noise on a coarse grid, upsampled bilinearly to ``shape``.

    Parameters
    ----------
    shape : (int, int)
        ``(n_mels, n_frames)``.
    seed : int
    coarse : (int, int) or None
        The coarse grid; ``None`` takes one value per :data:`SMOOTH_CELL` bands
        and frames (8 x 27 for 128 x 431).

    Returns
    -------
    np.ndarray [shape=shape], float32 in [0, 1]
    """
    if len(shape) != 2 or min(shape) < 1:
        raise InputError("shape", f"must be (n_mels, n_frames) with both > 0, got {shape}")
    if coarse is None:
        coarse = tuple(max(1, round(n / SMOOTH_CELL)) for n in shape)
    grid = np.random.default_rng(seed).random(coarse, dtype=np.float32)
    return normalise_map(resize_map(grid, tuple(shape))).numpy()


@dataclass(frozen=True)
class RandomCurves:
    """Deletion and insertion scores of many smooth random maps for one clip.

    Attributes
    ----------
    deletion_aucs, insertion_aucs : np.ndarray [shape=(draws,)]
    fractions : np.ndarray [shape=(n_steps + 1,)]
    deletion_mean : np.ndarray [shape=(n_steps + 1,)]
        The deletion curves' mean probability at each step (the app's dashed curve).
    """

    deletion_aucs: np.ndarray
    insertion_aucs: np.ndarray
    fractions: np.ndarray
    deletion_mean: np.ndarray

    @property
    def deletion_auc(self) -> float:
        return float(self.deletion_aucs.mean())

    @property
    def insertion_auc(self) -> float:
        return float(self.insertion_aucs.mean())

    @property
    def deletion_spread(self) -> float:
        """Standard deviation of the deletion AUC over draws."""
        return float(self.deletion_aucs.std())


def random_curves(
    predict: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    *,
    target: int,
    draws: int = 8,
    n_steps: int = 20,
    fill: str | float = "min",
    seed: int = 0,
    insertion: bool = True,
    sound: np.ndarray | None = None,
) -> RandomCurves:
    """Score ``draws`` smooth random maps (:func:`smooth_random_map`) on one clip.

    Parameters
    ----------
    predict : callable
        ``(N, n_mels, n_frames) -> (N, n_classes)`` probabilities.
    x : np.ndarray [shape=(n_mels, n_frames)]
    target : int
    draws : int > 0
    n_steps, fill
        As in :func:`core.interpret.faithfulness.deletion_curve`.
    seed : int
        Draw ``k`` uses seed ``seed + k``.
    insertion : bool
        Also score insertion (else its AUCs are NaN).
    sound : np.ndarray [shape=x.shape], bool, or None
        Only these cells are ordered (:func:`core.interpret.faithfulness.perturbed_inputs`).

    Returns
    -------
    RandomCurves
    """
    if draws < 1:
        raise InputError("draws", f"must be at least 1, got {draws}")
    deletions, insertions, curves = [], [], []
    for k in range(draws):
        heat = smooth_random_map(np.shape(x), seed=seed + k)
        curve = deletion_curve(predict, x, heat, target=target, n_steps=n_steps, fill=fill, seed=seed + k,
                               sound=sound)
        deletions.append(curve.auc)
        curves.append(curve.probabilities)
        insertions.append(insertion_curve(predict, x, heat, target=target, n_steps=n_steps, fill=fill,
                                          seed=seed + k, sound=sound).auc if insertion else np.nan)
    return RandomCurves(np.array(deletions), np.array(insertions), curve.fractions, np.mean(curves, axis=0))


def pointing_chance(boxes: Sequence, *, shape: tuple[int, int], cfg: AudioConfig = AudioConfig()) -> float:
    """Chance level of the pointing game: the share of cells inside any of the boxes.

    A peak placed uniformly at random hits with exactly this probability.

    Parameters
    ----------
    boxes : sequence of Box or (t0_s, t1_s, f0_hz, f1_hz)
    shape : (int, int)
        ``(n_mels, n_frames)``.
    cfg : AudioConfig

    Returns
    -------
    float in [0, 1]
    """
    inside = np.zeros(shape, dtype=bool)
    for box in boxes:
        bands, frames = box_cells(box, shape=shape, cfg=cfg)
        inside[bands, frames] = True
    return float(inside.mean())


def bootstrap_interval(values: Sequence[float], *, level: float = 0.95, n_resamples: int = 2000,
                       seed: int = 0) -> tuple[float, float, float]:
    """Mean of per-clip values and its bootstrap (percentile) interval.

    Parameters
    ----------
    values : sequence of float
        One per clip (hits as 0/1); NaN values are dropped.
    level : float in (0, 1)
    n_resamples : int
    seed : int

    Returns
    -------
    (mean, low, high) : tuple of float
        NaN for all three without values; the interval is ``(mean, mean)``
        with one value or when all are equal.

    Examples
    --------
    >>> bootstrap_interval([1.0, 1.0, 1.0])
    (1.0, 1.0, 1.0)
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return (float("nan"),) * 3
    mean = float(values.mean())
    if values.size == 1 or np.all(values == values[0]):
        return mean, mean, mean
    result = stats.bootstrap((values,), np.mean, confidence_level=level, n_resamples=n_resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    return mean, float(result.confidence_interval.low), float(result.confidence_interval.high)
