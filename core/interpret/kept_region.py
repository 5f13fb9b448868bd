"""The clip with only the most relevant cells of a map kept, as sound.

The mel spectrogram (dB) keeps the ``keep_fraction`` highest-relevance cells;
the others drop to the clip's floor; Griffin-Lim turns it back into a waveform
(:func:`core.audio.mel_db_to_audio`).
"""

from __future__ import annotations

import numpy as np

from core.audio import AudioConfig, mel_db_to_audio
from core.errors import InputError

__all__ = ["kept_region_audio"]


def kept_region_audio(S_db: np.ndarray, heat: np.ndarray, keep_fraction: float,
                      cfg: AudioConfig) -> tuple[np.ndarray, float]:
    """Keep the map's top cells of a dB mel spectrogram and turn it back into sound.

    Parameters
    ----------
    S_db : np.ndarray [shape=(n_mels, n_frames)]
        The clip in dB on the model's grid.
    heat : np.ndarray [shape=(n_mels, n_frames)]
        The map; NaN (not covered) cells are dropped.
    keep_fraction : float in (0, 1]
    cfg : AudioConfig

    Returns
    -------
    audio : np.ndarray [shape=(n_samples,)], float32, at ``cfg.sr``
    threshold : float
        Relevance at or above which cells were kept.
    """
    if not 0.0 < keep_fraction <= 1.0:
        raise InputError("keep_fraction", f"must be in (0, 1], got {keep_fraction}")
    if S_db.shape != heat.shape:
        raise InputError("heat", f"shape {heat.shape} is not the spectrogram's {S_db.shape}")
    threshold = float(np.nanquantile(heat, 1.0 - keep_fraction))
    masked = np.where(heat >= threshold, S_db, S_db.min())
    return mel_db_to_audio(masked, cfg), threshold
