"""Listenable explanations: a map's top cells as sound, masked in and masked out.

As L-MAC (Paissan et al., ICML 2024) does with its masks, any map on the
``(n_mels, n_frames)`` grid becomes a mask on the clip's STFT, and the masked
magnitude is resynthesised with the clip's own phase:

1. the map's top ``top_percent`` % cells are kept (a binary mel mask ``m``);
2. each linear STFT bin ``f`` takes the mel filters' weighted vote
   ``M[f, t] = sum_b W[b, f] m[b, t] / sum_b W[b, f]`` (``W`` the mel filterbank
   the front end uses; a bin no filter covers, like DC, takes its nearest band);
3. masked in: ``istft(M * S)``; masked out: ``istft((1 - M) * S)``, with ``S``
   the complex STFT, so the phase is the original's. The two add up to the clip.

Keeping every cell gives the clip back (up to the STFT round trip's error,
well under 1e-4). The front end's STFT (``n_fft``, ``hop_length``, centred
frames) is the one :func:`core.audio.features.mel_power` uses, so frame ``t`` of the map
is frame ``t`` of the STFT.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.maps import check_heatmap

def _librosa():
    import librosa  # deferred: the pages that never play a mask do not pay its import

    return librosa


__all__ = ["TOP_PERCENT", "top_cells_mask", "linear_mask", "MaskedAudio", "masked_audio", "Listened", "listen"]

TOP_PERCENT = 20.0  # share of the map's cells kept by default, in %


def top_cells_mask(heatmap: np.ndarray, *, top_percent: float = TOP_PERCENT) -> np.ndarray:
    """The map's ``top_percent`` % highest cells (NaN cells never kept); ties broken in row-major order.

    Parameters
    ----------
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    top_percent : float in [0, 100]

    Returns
    -------
    np.ndarray [shape=heatmap.shape], bool

    Examples
    --------
    >>> top_cells_mask(np.array([[0.1, 0.9], [0.5, 0.2]]), top_percent=50).tolist()
    [[False, True], [True, False]]
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.ndim != 2:
        raise InputError("heatmap", f"expected (n_mels, n_frames), got shape {heatmap.shape}")
    heatmap = check_heatmap(heatmap, heatmap.shape, allow_nan=True)
    if not 0.0 <= top_percent <= 100.0:
        raise InputError("top_percent", f"must be in [0, 100], got {top_percent}")
    values = np.where(np.isnan(heatmap), -np.inf, heatmap).ravel()
    n_keep = min(int(round(top_percent / 100.0 * values.size)), int(np.isfinite(values).sum()))
    keep = np.zeros(values.size, dtype=bool)
    keep[np.argsort(-values, kind="stable")[:n_keep]] = True
    return keep.reshape(heatmap.shape)


def linear_mask(mel_mask: np.ndarray, cfg: AudioConfig = AudioConfig(), *, n_stft_frames: int | None = None
                ) -> np.ndarray:
    """A mel-grid mask on the linear STFT bins.

    Parameters
    ----------
    mel_mask : np.ndarray [shape=(n_mels, n_frames)], values in [0, 1]
    cfg : AudioConfig
        The front end's ``sr``, ``n_fft``, ``n_mels``, ``fmin_hz``, ``fmax``.
    n_stft_frames : int or None
        Frames of the STFT to mask; frames past the map's are masked out
        (0), frames the map has beyond the STFT's are dropped. ``None``: the map's.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2, n_stft_frames)], float64 in [0, 1]
    """
    mel_mask = np.asarray(mel_mask, dtype=np.float64)
    if mel_mask.ndim != 2 or mel_mask.shape[0] != cfg.n_mels:
        raise InputError("mask", f"expected ({cfg.n_mels}, n_frames), got shape {mel_mask.shape}")
    weights = _librosa().filters.mel(sr=cfg.sr, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.fmin_hz,
                                     fmax=cfg.fmax).astype(np.float64)  # (n_mels, n_bins)
    total = weights.sum(axis=0)  # (n_bins,)
    uncovered = np.flatnonzero(total <= 0)
    if uncovered.size:  # DC, bins under fmin or over fmax: the nearest band's vote
        bin_hz = np.linspace(0, cfg.sr / 2, weights.shape[1])
        centres = _librosa().mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin_hz, fmax=cfg.fmax)[1:-1]
        nearest = np.abs(bin_hz[uncovered, None] - centres[None, :]).argmin(axis=1)
        weights[nearest, uncovered] = 1.0
        total = weights.sum(axis=0)
    lin = (weights / total).T @ mel_mask  # (n_bins, n_frames)
    n = lin.shape[1] if n_stft_frames is None else int(n_stft_frames)
    out = np.zeros((lin.shape[0], n))
    out[:, : min(n, lin.shape[1])] = lin[:, :n]
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class MaskedAudio:
    """A clip split by a map into what the map keeps and the rest.

    Attributes
    ----------
    masked_in, masked_out : np.ndarray [shape=(n_samples,)], float32
        Resynthesised with the clip's phase; they sum to the clip.
    mel_mask : np.ndarray [shape=(n_mels, n_frames)], bool
        The cells kept.
    top_percent : float
    """

    masked_in: np.ndarray
    masked_out: np.ndarray
    mel_mask: np.ndarray
    top_percent: float


def masked_audio(y: np.ndarray, heatmap: np.ndarray, cfg: AudioConfig = AudioConfig(), *,
                 top_percent: float = TOP_PERCENT) -> MaskedAudio:
    """Mask a mono clip's STFT with a map's top cells and resynthesise both parts with the original phase.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono, at ``cfg.sr`` (what the model heard).
    heatmap : np.ndarray [shape=(cfg.n_mels, n_frames)]
        Any method's map on the model's input grid.
    cfg : AudioConfig
    top_percent : float in [0, 100]
        Share of cells kept; 100 keeps the whole clip.

    Returns
    -------
    MaskedAudio

    Examples
    --------
    >>> y = np.random.default_rng(0).normal(size=22050).astype(np.float32)
    >>> cfg = AudioConfig(n_frames=44)
    >>> out = masked_audio(y, np.ones((128, 44)), cfg, top_percent=100)
    >>> bool(np.abs(out.masked_in - y).max() < 1e-4), bool(np.abs(out.masked_out).max() < 1e-4)
    (True, True)
    """
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise InputError("y", f"expected one mono clip (n_samples,), got shape {y.shape}")
    mel_mask = top_cells_mask(heatmap, top_percent=top_percent)
    librosa = _librosa()
    S = librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length)  # (n_bins, n_stft_frames), complex
    M = linear_mask(mel_mask.astype(np.float64), cfg, n_stft_frames=S.shape[1])
    kept = librosa.istft(M * S, hop_length=cfg.hop_length, n_fft=cfg.n_fft, length=y.size)
    rest = librosa.istft((1.0 - M) * S, hop_length=cfg.hop_length, n_fft=cfg.n_fft, length=y.size)
    return MaskedAudio(kept.astype(np.float32), rest.astype(np.float32), mel_mask, float(top_percent))


@dataclass(frozen=True)
class Listened:
    """A clip, its masked-in and masked-out parts, and the model's class probabilities for each.

    Attributes
    ----------
    audio : MaskedAudio
    p, p_in, p_out : np.ndarray [shape=(n_classes,)]
        Probabilities of the clip, of its masked-in part and of its masked-out
        part, each through the model's own front end.
    """

    audio: MaskedAudio
    p: np.ndarray
    p_in: np.ndarray
    p_out: np.ndarray


def listen(loaded, y: np.ndarray, heatmap: np.ndarray, *, top_percent: float = TOP_PERCENT) -> Listened:
    """Split a clip by a map (:func:`masked_audio`) and run the model on the clip and on both parts.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
        Its ``input(y, sr)`` is the front end, ``probabilities`` the output.
    y : np.ndarray [shape=(n_samples,)]
        Mono, at ``loaded.audio_cfg.sr``.
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    top_percent : float in [0, 100]

    Returns
    -------
    Listened
    """
    import torch

    cfg = loaded.audio_cfg
    parts = masked_audio(y, heatmap, cfg, top_percent=top_percent)
    batch = np.stack([loaded.input(a, cfg.sr) for a in (np.asarray(y, dtype=np.float32), parts.masked_in,
                                                         parts.masked_out)])
    with torch.no_grad():
        logits = loaded.model(torch.as_tensor(batch))
    logits = logits[0] if isinstance(logits, (tuple, list)) else logits
    p, p_in, p_out = loaded.probabilities(logits)
    return Listened(parts, p, p_in, p_out)
