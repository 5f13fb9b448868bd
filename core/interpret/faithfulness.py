"""How faithful a heatmap is: deletion and insertion curves, and the pointing game.

Any method's heatmap on the spectrogram's ``(n_mels, n_frames)`` grid can be
scored here; nothing depends on how it was made.

Deletion (Petsiuk et al., 2018): remove the most important cells first, in
``n_steps`` equal steps, filling them from a fill (:func:`fill_values`: the
clip's minimum by default, i.e. silence in a log-mel; a blurred copy of the
clip, as Petsiuk et al. do for insertion; the training-mean spectrum; ...),
rerun the model and follow the target class's probability. A fill that is a
method's own baseline (the minimum is Integrated Gradients' baseline and
occlusion's patch) favours that method, so a fair report scores under fills
that are none of them (``explain-report`` uses :data:`FAIR_FILLS`). A
faithful map makes it fall fast: a *low* area under the curve is good.
Insertion starts from the all-filled clip and reveals the most important
cells first: a *high* area is good. Cells of equal importance (a
ReLU's zeros, a map's NaN cells, which come last) are taken in a random order
drawn from ``seed``, never in a fixed one. The baselines every method must
beat are in :mod:`core.interpret.baselines`.

Pointing game (Zhang et al., 2016): a hit when the heatmap's maximum falls in a
ground-truth event box; boxes in seconds and Hz are mapped to frames and mel
bands with :func:`core.audio.features.frame_times_s` and :func:`core.audio.features.mel_frequencies_hz`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioConfig, frame_times_s, mel_frequencies_hz
from core.errors import InputError
from core.interpret.maps import check_heatmap

__all__ = [
    "Curve",
    "FILLS",
    "FAIR_FILLS",
    "BLUR_SIGMA",
    "fill_values",
    "mean_spectrum",
    "model_predictor",
    "importance_order",
    "perturbed_inputs",
    "deletion_curve",
    "insertion_curve",
    "random_heatmap",
    "box_cells",
    "peak_cell",
    "in_boxes",
    "pointing_game_hit",
    "distractor_hit",
    "pointing_game",
]

Predictor = Callable[[np.ndarray], np.ndarray]
FILLS = ("min", "mean", "blur")  # named fills; an array (the training-mean spectrum) or a number also works
# The fills explain-report scores under: neither is a method's baseline (IG and occlusion use the minimum).
FAIR_FILLS = ("blur", "training mean")
# RISE's blur (Petsiuk et al. 2018, evaluation code): an 11-cell Gaussian kernel, sigma 5.
BLUR_SIGMA = 5.0


@dataclass(frozen=True)
class Curve:
    """A deletion or insertion curve.

    Attributes
    ----------
    fractions : np.ndarray [shape=(n_steps + 1,)]
        Share of cells removed (deletion) or revealed (insertion), 0 to 1.
    probabilities : np.ndarray [shape=(n_steps + 1,)]
        The target class's probability at each step.
    auc : float in [0, 1]
        Trapezoidal area under ``probabilities`` over ``fractions``.
    """

    fractions: np.ndarray
    probabilities: np.ndarray
    auc: float


def model_predictor(model: nn.Module, *, batch_size: int = 32) -> Predictor:
    """Wrap a classifier as ``spectrograms -> class probabilities``.

    Parameters
    ----------
    model : nn.Module
        Takes ``(B, 1, n_mels, n_frames)``, returns logits ``(B, n_classes)``;
        put it in eval mode first.
    batch_size : int > 0

    Returns
    -------
    callable
        ``predict(X)`` with ``X`` np.ndarray [shape=(N, n_mels, n_frames)]
        returning np.ndarray [shape=(N, n_classes)], softmax probabilities.
    """
    device = next(iter(model.parameters()), torch.empty(0)).device

    def predict(X: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(X), batch_size):
                batch = torch.as_tensor(X[start : start + batch_size], dtype=torch.float32, device=device)
                logits = model(batch[:, None])  # (b, 1, n_mels, n_frames) -> (b, n_classes)
                logits = logits[0] if isinstance(logits, (tuple, list)) else logits
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out)

    return predict


def importance_order(heatmap: np.ndarray, *, seed: int | None = 0) -> np.ndarray:
    """Flat cell indices, most important first; ties in a random order; NaN cells last.

    Parameters
    ----------
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    seed : int or None
        Of the random order among equal values; ``None`` keeps row-major order
        (only for tests that need it: a fixed order favours low bands and early frames).

    Returns
    -------
    np.ndarray [shape=(n_mels * n_frames,)], int

    Examples
    --------
    >>> importance_order(np.array([[0.0, 1.0, np.nan]]), seed=None)
    array([1, 0, 2])
    """
    values = np.asarray(heatmap, dtype=np.float64).ravel()
    key = -np.where(np.isnan(values), -np.inf, values)  # NaN (not covered) least important
    if seed is None:
        return np.argsort(key, kind="stable")
    tiebreak = np.random.default_rng(seed).random(values.size)
    return np.lexsort((tiebreak, key))  # by key, then by the random draw


def fill_values(x: np.ndarray, fill: str | float | np.ndarray) -> np.ndarray:
    """What a removed (or not yet revealed) cell becomes.

    Parameters
    ----------
    x : np.ndarray [shape=(n_mels, n_frames)]
    fill : {"min", "mean", "blur"}, float or np.ndarray
        ``"min"``: the clip's minimum (silence); ``"mean"``: its mean;
        ``"blur"``: the clip blurred by a Gaussian of :data:`BLUR_SIGMA` cells
        (kernel 11 cells wide, as RISE's); a number; an array of shape
        ``(n_mels,)`` (a spectrum, e.g. :func:`mean_spectrum`, the same in
        every frame) or ``(n_mels, n_frames)``.

    Returns
    -------
    np.ndarray [shape=x.shape], float32

    Examples
    --------
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> fill_values(x, "min").tolist(), fill_values(x, np.array([1.0, 2.0]))[:, 0].tolist()
    ([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [1.0, 2.0])
    """
    x = np.asarray(x, dtype=np.float32)
    if isinstance(fill, str):
        if fill not in FILLS:
            raise InputError("fill", f"{fill!r} is not one of {FILLS}, a number or a spectrum")
        if fill == "blur":
            from scipy.ndimage import gaussian_filter

            return gaussian_filter(x, sigma=BLUR_SIGMA, truncate=1.0, mode="nearest").astype(np.float32)
        return np.full_like(x, x.min() if fill == "min" else x.mean())
    values = np.asarray(fill, dtype=np.float32)
    if values.ndim == 0:
        return np.full_like(x, float(values))
    if values.shape == (x.shape[0],):
        return np.broadcast_to(values[:, None], x.shape).astype(np.float32)
    if values.shape == x.shape:
        return values
    raise InputError("fill", f"a fill array must be ({x.shape[0]},) or {x.shape}, got {values.shape}")


def mean_spectrum(features: np.ndarray) -> np.ndarray:
    """The mean spectrum of a set of clips: each band's mean over clips and frames (a fill for deletion curves).

    Parameters
    ----------
    features : np.ndarray [shape=(N, n_mels, n_frames)]
        The model's inputs for the training clips.

    Returns
    -------
    np.ndarray [shape=(n_mels,)], float32
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 3 or len(features) == 0:
        raise InputError("features", f"expected (N, n_mels, n_frames) with N > 0, got shape {features.shape}")
    return features.mean(axis=(0, 2)).astype(np.float32)


def perturbed_inputs(
    x: np.ndarray, heatmap: np.ndarray, *, mode: str, n_steps: int = 20, fill: str | float | np.ndarray = "min",
    seed: int | None = 0, sound: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The clips a deletion or insertion curve feeds the model.

    Parameters
    ----------
    x : np.ndarray [shape=(n_mels, n_frames)]
        The spectrogram the model sees.
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    mode : {"deletion", "insertion"}
    n_steps : int > 0
    fill : {"min", "mean", "blur"}, float or np.ndarray
        What removed (or not yet revealed) cells become (:func:`fill_values`).
    seed : int or None
        Order among equal values (:func:`importance_order`).
    sound : np.ndarray [shape=(n_mels, n_frames)], bool, or None
        The cells that hold sound (:func:`core.audio.frontend.sound_cells`: not padding, not above the
        recording's Nyquist frequency). Only they are ordered, removed and revealed, and the
        fractions count them alone; ``None``: every cell. Deleting padding tells nothing about a map.

    Returns
    -------
    inputs : np.ndarray [shape=(n_steps + 1, n_mels, n_frames)], float32
        Step ``i`` has the ``round(i * n_cells / n_steps)`` most important
        cells (of those holding sound) removed (deletion) or revealed (insertion); the others stay
        as they are (deletion) or at the fill value (insertion).
    fractions : np.ndarray [shape=(n_steps + 1,)]
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise InputError("x", f"expected a spectrogram (n_mels, n_frames), got shape {x.shape}")
    heatmap = check_heatmap(heatmap, x.shape, allow_nan=True)
    if mode not in ("deletion", "insertion"):
        raise InputError("mode", f"{mode!r} is not 'deletion' or 'insertion'")
    if n_steps < 1:
        raise InputError("n_steps", f"must be at least 1, got {n_steps}")
    value = fill_values(x, fill)
    order = importance_order(heatmap, seed=seed)
    if sound is not None:
        sound = np.asarray(sound, dtype=bool)
        if sound.shape != x.shape or not sound.any():
            raise InputError("sound", f"need a boolean mask of shape {x.shape} with some cell set")
        order = order[sound.ravel()[order]]  # the same order, cells without sound left out
    n_cells = order.size
    counts = np.round(np.arange(n_steps + 1) * n_cells / n_steps).astype(int)
    inputs = np.empty((n_steps + 1, *x.shape), dtype=np.float32)
    for i, count in enumerate(counts):
        chosen = np.zeros(x.size, dtype=bool)
        chosen[order[:count]] = True
        chosen = chosen.reshape(x.shape)
        if mode == "deletion":
            inputs[i] = np.where(chosen, value, x)
        else:
            inputs[i] = np.where(chosen, x, value)
    return inputs, counts / n_cells


def _curve(predict: Predictor, x, heatmap, *, mode, target, n_steps, fill, seed, sound=None) -> Curve:
    inputs, fractions = perturbed_inputs(x, heatmap, mode=mode, n_steps=n_steps, fill=fill, seed=seed, sound=sound)
    probabilities = np.asarray(predict(inputs))
    if probabilities.ndim != 2 or len(probabilities) != len(inputs):
        raise InputError("predict", f"must return (N, n_classes) probabilities, got shape {probabilities.shape}")
    if not 0 <= target < probabilities.shape[1]:
        raise InputError("target", f"classes are 0..{probabilities.shape[1] - 1}, got {target}")
    p = probabilities[:, target].astype(np.float64)
    return Curve(fractions=fractions, probabilities=p, auc=float(np.trapezoid(p, fractions)))


def deletion_curve(
    predict: Predictor, x: np.ndarray, heatmap: np.ndarray, *, target: int, n_steps: int = 20,
    fill: str | float | np.ndarray = "min", seed: int | None = 0, sound: np.ndarray | None = None,
) -> Curve:
    """Probability of ``target`` as the most important cells are removed; lower AUC is better.

    Parameters
    ----------
    predict : callable
        ``(N, n_mels, n_frames) -> (N, n_classes)`` probabilities, e.g. :func:`model_predictor`.
    x, heatmap : np.ndarray [shape=(n_mels, n_frames)]
    target : int
        The class followed.
    n_steps, fill, seed, sound
        As in :func:`perturbed_inputs`.

    Returns
    -------
    Curve
    """
    return _curve(predict, x, heatmap, mode="deletion", target=target, n_steps=n_steps, fill=fill, seed=seed,
                  sound=sound)


def insertion_curve(
    predict: Predictor, x: np.ndarray, heatmap: np.ndarray, *, target: int, n_steps: int = 20,
    fill: str | float | np.ndarray = "min", seed: int | None = 0, sound: np.ndarray | None = None,
) -> Curve:
    """Probability of ``target`` as the most important cells are revealed; higher AUC is better.

    Parameters are as in :func:`deletion_curve`.

    Returns
    -------
    Curve
    """
    return _curve(predict, x, heatmap, mode="insertion", target=target, n_steps=n_steps, fill=fill, seed=seed,
                  sound=sound)


def random_heatmap(shape: tuple[int, int], *, seed: int = 0) -> np.ndarray:
    """Independent uniform noise per cell (a weak baseline: real maps are smooth;
    see :func:`core.interpret.baselines.smooth_random_map`).

    Parameters
    ----------
    shape : (int, int)
        ``(n_mels, n_frames)``.
    seed : int

    Returns
    -------
    np.ndarray [shape=shape], float32 in [0, 1)
    """
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _box_tuple(box) -> tuple[float, float, float, float]:
    if hasattr(box, "t0_s"):
        return (box.t0_s, box.t1_s, box.f0_hz, box.f1_hz)
    if len(box) != 4:
        raise InputError("box", f"expected (t0_s, t1_s, f0_hz, f1_hz), got {box!r}")
    return tuple(box)


def _span(centres: np.ndarray, low: float, high: float) -> tuple[int, int]:
    """First and last index whose centre lies in [low, high]; the nearest one if none does."""
    inside = np.flatnonzero((centres >= low) & (centres <= high))
    if inside.size:
        return int(inside[0]), int(inside[-1])
    nearest = int(np.argmin(np.abs(centres - (low + high) / 2)))
    return nearest, nearest


def box_cells(box, *, shape: tuple[int, int], cfg: AudioConfig = AudioConfig()) -> tuple[slice, slice]:
    """The mel bands and frames an event box covers.

    Parameters
    ----------
    box : Box or (t0_s, t1_s, f0_hz, f1_hz)
    shape : (int, int)
        ``(n_mels, n_frames)``; ``n_mels`` must equal ``cfg.n_mels``.
    cfg : AudioConfig

    Returns
    -------
    bands, frames : slice
        Cells whose centre frequency (Hz) and centre time (s) fall in the box;
        at least the nearest band and frame when the box is narrower than a cell.
    """
    n_mels, n_frames = shape
    if n_mels != cfg.n_mels:
        raise InputError("heatmap", f"{n_mels} mel bands but the audio config has {cfg.n_mels}")
    t0_s, t1_s, f0_hz, f1_hz = _box_tuple(box)
    if t1_s < t0_s or f1_hz < f0_hz:
        raise InputError("box", f"{(t0_s, t1_s, f0_hz, f1_hz)} has an end before its start")
    b0, b1 = _span(mel_frequencies_hz(cfg), f0_hz, f1_hz)
    t0, t1 = _span(frame_times_s(n_frames, cfg), t0_s, t1_s)
    return slice(b0, b1 + 1), slice(t0, t1 + 1)


def peak_cell(heatmap: np.ndarray, *, seed: int | None = 0) -> tuple[int, int]:
    """(band, frame) of the heatmap's maximum, NaN cells ignored.

    Among equal maxima one is drawn at random from ``seed`` (so a constant map
    points anywhere, at chance); ``None`` takes the first in row-major order.
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2:
        raise InputError("heatmap", f"expected (n_mels, n_frames), got shape {heatmap.shape}")
    heatmap = check_heatmap(heatmap, heatmap.shape, allow_nan=True)
    peaks = np.flatnonzero(heatmap.ravel() == np.nanmax(heatmap))
    pick = peaks[0] if seed is None else np.random.default_rng(seed).choice(peaks)
    band, frame = np.unravel_index(int(pick), heatmap.shape)
    return int(band), int(frame)


def in_boxes(cell: tuple[int, int], boxes: Sequence, *, shape: tuple[int, int],
             cfg: AudioConfig = AudioConfig(), tolerance: int = 0) -> bool:
    """Whether a (band, frame) cell lies in any of the boxes (``tolerance`` cells around each)."""
    band, frame = cell
    for box in boxes:
        bands, frames = box_cells(box, shape=shape, cfg=cfg)
        if (bands.start - tolerance <= band < bands.stop + tolerance
                and frames.start - tolerance <= frame < frames.stop + tolerance):
            return True
    return False


def pointing_game_hit(
    heatmap: np.ndarray, boxes: Sequence, *, cfg: AudioConfig = AudioConfig(), tolerance: int = 0,
    seed: int | None = 0,
) -> bool:
    """Whether the heatmap's maximum falls in any of the boxes.

    Parameters
    ----------
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
        NaN cells (not covered by the method) are ignored; among equal maxima
        one is drawn at random (:func:`peak_cell`).
    boxes : sequence of Box or (t0_s, t1_s, f0_hz, f1_hz)
        At least one.
    cfg : AudioConfig
    tolerance : int >= 0
        Cells a hit may lie outside a box, in bands and in frames.
    seed : int or None
        Of the draw among equal maxima.

    Returns
    -------
    bool
    """
    if len(boxes) == 0:
        raise InputError("boxes", "the clip has no ground-truth box")
    cell = peak_cell(heatmap, seed=seed)
    return in_boxes(cell, boxes, shape=np.shape(heatmap), cfg=cfg, tolerance=tolerance)


def distractor_hit(
    heatmap: np.ndarray, distractors: Sequence, events: Sequence = (), *, cfg: AudioConfig = AudioConfig(),
    seed: int | None = 0,
) -> bool:
    """Whether the heatmap's maximum falls in a distractor box (a sound of no class) and in no event box.

    Parameters
    ----------
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    distractors, events : sequence of Box or (t0_s, t1_s, f0_hz, f1_hz)
        Where they overlap, a peak counts for the event, not as a distractor hit.
    cfg : AudioConfig
    seed : int or None
        As in :func:`pointing_game_hit` (the same seed gives the same peak).

    Returns
    -------
    bool
        False when the clip has no distractor.
    """
    if len(distractors) == 0:
        return False
    cell = peak_cell(heatmap, seed=seed)
    shape = np.shape(heatmap)
    return in_boxes(cell, distractors, shape=shape, cfg=cfg) and not in_boxes(cell, events, shape=shape, cfg=cfg)


def pointing_game(
    heatmaps: Sequence[np.ndarray], boxes: Sequence[Sequence], *, cfg: AudioConfig = AudioConfig(), tolerance: int = 0
) -> float:
    """Hit rate over clips.

    Parameters
    ----------
    heatmaps : sequence of np.ndarray [shape=(n_mels, n_frames)]
    boxes : sequence of sequences of boxes
        ``boxes[i]`` are clip ``i``'s boxes; each clip needs at least one.

    Returns
    -------
    float in [0, 1]
    """
    if len(heatmaps) != len(boxes) or len(heatmaps) == 0:
        raise InputError("boxes", f"need one box list per heatmap, got {len(boxes)} for {len(heatmaps)}")
    hits = [pointing_game_hit(h, b, cfg=cfg, tolerance=tolerance) for h, b in zip(heatmaps, boxes)]
    return float(np.mean(hits))
