"""Stereo clips explained channel by channel, without erasing the level difference between them.

A model hears the mix-down. To ask which side its evidence comes from, each
channel is fed to it on its own; but the model's usual preprocessing scales
every clip to its own peak (dB relative to the peak) and standardises it, which
makes a quiet channel look as loud as a loud one. :func:`stereo_inputs`
instead takes one dB reference (the louder channel's peak) and one mean and
standard deviation (over both channels) for the pair, so a sound panned left
is stronger in the left input. Maps of the two channels are then scaled
together (:func:`core.interpret.rollout.stereo_rollout`).

:func:`pan_index` measures how a left/right pair of maps leans, for comparing
with the pan a clip was mixed with.
"""

from __future__ import annotations

from collections.abc import Sequence

import librosa
import numpy as np

from core.audio.features import fit_duration, fix_frames, mel_power
from core.errors import InputError
from core.interpret.faithfulness import box_cells

__all__ = ["stereo_inputs", "pan_index"]


def stereo_inputs(loaded, samples: np.ndarray) -> np.ndarray:
    """Left and right channels as model inputs, with their level difference kept.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
        Its ``audio_cfg`` gives the preprocessing. A Hugging Face AST's
        extractor normalises with fixed dataset statistics, which keep the
        level difference already, so its channels go through ``loaded.features``.
    samples : np.ndarray [shape=(2, n_samples)]
        At ``loaded.audio_cfg.sr``.

    Returns
    -------
    np.ndarray [shape=(2, n_mels, n_frames)], float32
        As :func:`core.audio.features.log_mel` makes them, but in dB relative to the
        louder channel's peak (floored ``top_db`` below it) and standardised
        with the pair's mean and standard deviation.
    """
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 2 or samples.shape[0] != 2:
        raise InputError("samples", f"expected (2, n_samples) for a stereo clip, got {samples.shape}")
    if loaded.own_front_end:
        return np.stack([loaded.features(channel) for channel in samples])
    cfg = loaded.audio_cfg
    n_samples = cfg.n_samples
    power = np.stack([mel_power(fit_duration(channel, n_samples), cfg) for channel in samples])  # (2, n_mels, t)
    db = librosa.power_to_db(power, ref=float(power.max()) or 1.0, top_db=cfg.top_db)  # one reference
    standardised = (db - db.mean()) / (db.std() + 1e-6)  # one mean and std for the pair
    return np.stack([fix_frames(channel, cfg.n_frames) for channel in standardised]).astype(np.float32)


def pan_index(left: np.ndarray, right: np.ndarray, boxes: Sequence = (), *, cfg=None) -> float:
    """How a left/right pair of maps leans: ``(R - L) / (R + L)`` of their summed relevance.

    Parameters
    ----------
    left, right : np.ndarray [shape=(n_mels, n_frames)]
        Maps on one shared scale (NaN cells ignored).
    boxes : sequence of Box or (t0_s, t1_s, f0_hz, f1_hz)
        When given, only cells inside them count (the event's region).
    cfg : AudioConfig or None
        For the boxes.

    Returns
    -------
    float in [-1, 1]
        -1: all on the left, 0: even, 1: all on the right (the sign of a pan
        value in ``meta/scene.csv``). NaN when both maps are empty there.
    """
    left, right = np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)
    if left.shape != right.shape or left.ndim != 2:
        raise InputError("maps", f"left {left.shape} and right {right.shape} must be one (n_mels, n_frames) shape")
    mask = np.ones(left.shape, dtype=bool)
    if len(boxes):
        from core.audio.features import AudioConfig

        mask[:] = False
        for box in boxes:
            bands, frames = box_cells(box, shape=left.shape, cfg=cfg or AudioConfig())
            mask[bands, frames] = True
    sum_l, sum_r = np.nansum(left[mask]), np.nansum(right[mask])
    total = sum_l + sum_r
    return float((sum_r - sum_l) / total) if total > 0 else float("nan")
