"""A front end fitted to the data: clip length, sample rate and mel range read from the recordings.

The reference setting (:class:`~core.audio.features.AudioConfig`'s defaults: 5 s at 44.1 kHz, 128 mel bands
up to 22 kHz) suits ESC-50. For half-second words recorded at 8 kHz it makes an input that is
mostly padding, with half its bands above the recordings' Nyquist frequency. :func:`survey_recordings`
reads every file's header (no samples); :func:`propose_frontend` turns that into an
:class:`~core.audio.features.AudioConfig`, any field of which a flag may override; ``train`` records both in
the checkpoint. :func:`padding_share` and :func:`empty_bands` say, for one clip, how much of the
model's input is padding and which bands lie above the recording's Nyquist frequency.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from core.audio.features import AudioConfig, mel_frequencies_hz
from core.errors import InputError

__all__ = ["FRONTENDS", "ClipLimits", "clip_limits", "sound_cells", "Survey", "survey_recordings", "propose_frontend", "fit_frontend", "padding_share", "empty_bands", "MAX_CLIP_S"]

MAX_CLIP_S = 10.0  # a proposed window never exceeds this; longer recordings are windowed (core.audio.windows)
_LENGTH_QUANTILE = 0.95  # the window holds this share of the clips whole
_LENGTH_STEP_S = 0.5  # proposed lengths are whole multiples of this
_HOP_S = 512 / 44100  # the reference hop (11.6 ms), kept at every rate
_FFT_S = 2048 / 44100  # the reference window (46 ms)


@dataclass(frozen=True)
class Survey:
    """Durations and native sample rates of a dataset's recordings, from their headers.

    Attributes
    ----------
    durations_s : np.ndarray [shape=(n_clips,)]
    sample_rates : np.ndarray [shape=(n_clips,)], int, in Hz
    """

    durations_s: np.ndarray
    sample_rates: np.ndarray

    def summary(self) -> dict:
        """Counts and quantiles for the checkpoint's card (JSON-ready)."""
        d = self.durations_s
        return {"n_clips": int(d.size),
                "duration_s": {q: round(float(np.quantile(d, p)), 3)
                               for q, p in (("min", 0.0), ("median", 0.5), ("p95", 0.95), ("max", 1.0))},
                "sample_rates": {str(sr): n for sr, n in sorted(Counter(self.sample_rates.tolist()).items())}}


def survey_recordings(records) -> Survey:
    """Read the duration and sample rate of every clip from its header.

    Parameters
    ----------
    records : sequence of core.data.datasets.ClipRecord

    Returns
    -------
    Survey

    Raises
    ------
    InputError
        For no records, or a file whose header cannot be read.
    """
    if not records:
        raise InputError("dataset", "no clips to fit a front end to")
    durations, rates = [], []
    for r in records:
        try:
            info = sf.info(str(r.path))
        except Exception as error:  # compressed formats libsndfile does not read: decoded instead
            from core.audio.features import load_audio

            try:
                clip = load_audio(r.path)
            except InputError:
                raise
            except Exception:
                raise InputError(r.path, f"cannot read its header ({error})") from None
            durations.append(clip.duration_s)
            rates.append(clip.native_sr)
            continue
        durations.append(info.frames / info.samplerate)
        rates.append(int(info.samplerate))
    return Survey(np.asarray(durations, dtype=np.float64), np.asarray(rates, dtype=np.int64))


def propose_frontend(survey: Survey, *, clip_s: float | None = None, sr: int | None = None,
                     fmax_hz: float | None = None, n_mels: int | None = None) -> AudioConfig:
    """The preprocessing that fits these recordings; each keyword overrides what is proposed.

    - ``sr``: the most common native rate, at most 44.1 kHz (never upsampled past what most clips hold).
    - ``clip_s``: the 95th percentile of the durations rounded up to a multiple of 0.5 s, at most
      :data:`MAX_CLIP_S`; shorter clips are padded to it, longer ones windowed.
    - ``fmax_hz``: the Nyquist frequency of the lowest rate that 95 % of the clips reach, at most ``sr / 2``:
      no band lies above what most recordings hold.
    - ``n_fft`` and ``hop_length``: the reference 46 ms and 11.6 ms at ``sr`` (powers of two);
      ``n_mels``: 128 from 32 kHz up, 64 below (fewer FFT bins to share).

    Parameters
    ----------
    survey : Survey
    clip_s : float > 0 or None
    sr : int >= 4000 or None
    fmax_hz : float in (fmin_hz, sr / 2] or None
    n_mels : int > 0 or None

    Returns
    -------
    AudioConfig

    Examples
    --------
    >>> digits = Survey(np.array([0.14, 0.42, 0.5, 0.9, 1.31]), np.array([8000] * 5))
    >>> cfg = propose_frontend(digits)
    >>> cfg.sr, cfg.n_fft, cfg.hop_length, cfg.n_mels, cfg.fmax, round(cfg.clip_duration_s, 3)
    (8000, 512, 128, 64, 4000.0, 1.488)
    >>> esc50 = Survey(np.full(4, 5.0), np.full(4, 44100))
    >>> propose_frontend(esc50) == AudioConfig()  # the reference setting
    True
    """
    rates = survey.sample_rates
    if sr is None:
        counts = Counter(rates.tolist())
        sr = min(max(counts, key=lambda r: (counts[r], r)), 44100)
    sr = int(sr)
    if sr < AudioConfig.min_sr:
        raise InputError("--sr", f"need at least {AudioConfig.min_sr} Hz, got {sr}")
    if clip_s is None:
        longest = float(np.quantile(survey.durations_s, _LENGTH_QUANTILE))
        clip_s = min(MAX_CLIP_S, max(_LENGTH_STEP_S, math.ceil(longest / _LENGTH_STEP_S - 1e-9) * _LENGTH_STEP_S))
    if not clip_s > 0:
        raise InputError("--clip-s", f"need a positive length in seconds, got {clip_s}")
    n_fft = 2 ** int(round(math.log2(_FFT_S * sr)))
    hop_length = 2 ** int(round(math.log2(_HOP_S * sr)))
    if n_mels is None:
        n_mels = 128 if sr >= 32000 else 64
    if fmax_hz is None:
        reached = float(np.quantile(rates, 1 - _LENGTH_QUANTILE)) / 2
        fmax_hz = None if reached >= sr / 2 else reached
    elif not AudioConfig.fmin_hz < fmax_hz <= sr / 2:
        raise InputError("--fmax-hz", f"need a value in ({AudioConfig.fmin_hz:g}, {sr / 2:g}] Hz at {sr} Hz, "
                                      f"got {fmax_hz:g}")
    n_frames = int(clip_s * sr // hop_length) + 1  # the last frame ends within clip_s (5 s -> 431 frames)
    return AudioConfig(sr=sr, n_mels=int(n_mels), n_fft=n_fft, hop_length=hop_length,
                       fmax_hz=None if fmax_hz is None else float(fmax_hz), n_frames=n_frames)


def padding_share(n_samples: int, cfg: AudioConfig) -> float:
    """Share of the model's ``n_frames`` frames that are padding for a clip of ``n_samples`` at ``cfg.sr``.

    A clip fills ``1 + n_samples // hop_length`` frames (centred STFT frames, as :func:`core.audio.features.log_mel`);
    the rest of the window is padding. A clip as long as the window or longer has none.

    Examples
    --------
    >>> cfg = AudioConfig(sr=8000, hop_length=128, n_frames=64)
    >>> padding_share(4000, cfg), padding_share(8064, cfg), padding_share(80000, cfg)  # 0.5 s, 1 s, 10 s
    (0.5, 0.0, 0.0)
    """
    filled = 1 + int(n_samples) // cfg.hop_length
    return max(0, cfg.n_frames - filled) / cfg.n_frames


def empty_bands(native_sr: int, cfg: AudioConfig) -> np.ndarray:
    """Mel bands whose centre lies above a recording's Nyquist frequency: they hold no signal from it.

    Returns
    -------
    np.ndarray [shape=(n_mels,)], bool

    Examples
    --------
    >>> int(empty_bands(8000, AudioConfig()).sum()), int(empty_bands(44100, AudioConfig()).sum())
    (53, 0)
    """
    return mel_frequencies_hz(cfg) > native_sr / 2


FRONTENDS = ("fitted", "reference")  # train --frontend: fitted to the data, or the ESC-50 reference setting


def fit_frontend(records, *, frontend: str = "fitted", **overrides) -> tuple[AudioConfig, dict]:
    """The front end ``train`` uses for these clips, and the card that records how it was chosen.

    Parameters
    ----------
    records : sequence of core.data.datasets.ClipRecord
    frontend : {"fitted", "reference"}
        ``"reference"``: :class:`~core.audio.features.AudioConfig`'s defaults whatever the data (overrides refused).
    **overrides
        ``clip_s``, ``sr``, ``fmax_hz``, ``n_mels`` for :func:`propose_frontend`; ``None`` values are ignored.

    Returns
    -------
    cfg : AudioConfig
    card : dict
        ``frontend``, the data's ``survey`` (:meth:`Survey.summary`), the ``overrides`` given and the
        median ``padding_share`` of the clips in that window.
    """
    if frontend not in FRONTENDS:
        raise InputError("--frontend", f"use one of {', '.join(FRONTENDS)}, got {frontend!r}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if frontend == "reference" and overrides:
        raise InputError("--frontend", f"the reference front end takes no overrides ({', '.join(overrides)})")
    survey = survey_recordings(records)
    cfg = AudioConfig() if frontend == "reference" else propose_frontend(survey, **overrides)
    shares = [padding_share(int(d * cfg.sr), cfg) for d in survey.durations_s]
    card = {"frontend": frontend, "survey": survey.summary(), "overrides": overrides,
            "clip_s": round(cfg.clip_duration_s, 3), "padding_share_median": round(float(np.median(shares)), 3),
            "bands_above_nyquist_of_slowest": int(empty_bands(int(survey.sample_rates.min()), cfg).sum())}
    return cfg, card


@dataclass(frozen=True)
class ClipLimits:
    """Where a clip does not fill the model's input: padded frames, and bands above its Nyquist frequency.

    Attributes
    ----------
    duration_s : float
        The clip (or window) as heard, in seconds.
    padding_share : float in [0, 1]
        Share of the input's frames that are padding (:func:`padding_share`).
    padded_from_s : float or None
        Where the padding starts on the map's time axis, in seconds (``None``: no padding).
    empty_from_band : int or None
        First mel band above the recording's Nyquist frequency (``None``: every band can hold signal).
    native_sr : int
    """

    duration_s: float
    padding_share: float
    padded_from_s: float | None
    empty_from_band: int | None
    native_sr: int

    def describe(self, cfg: AudioConfig) -> str:
        """One sentence for a caption: what share is padding, which bands are empty."""
        parts = []
        if self.padded_from_s is not None:
            share = f"{100 * self.padding_share:.0f} %" if self.padding_share >= 0.005 else "under 1 %"
            parts.append(f"{share} of the model's input is padding (the clip is "
                         f"{self.duration_s:.2f} s, the model's window {cfg.clip_duration_s:.2f} s)")
        if self.empty_from_band is not None:
            parts.append(f"bands {self.empty_from_band}-{cfg.n_mels - 1} lie above the recording's Nyquist "
                         f"frequency ({self.native_sr / 2:g} Hz): they hold no sound from it")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "." if text else ""


def clip_limits(n_samples: int, native_sr: int, cfg: AudioConfig) -> ClipLimits:
    """The :class:`ClipLimits` of a clip of ``n_samples`` at ``cfg.sr``, recorded at ``native_sr``.

    Examples
    --------
    >>> cfg = AudioConfig(sr=8000, n_fft=512, hop_length=128, n_frames=64, n_mels=64)
    >>> lim = clip_limits(4000, 8000, cfg)
    >>> lim.padding_share, lim.padded_from_s, lim.empty_from_band
    (0.5, 0.512, None)
    >>> clip_limits(44100 * 5, 8000, AudioConfig()).empty_from_band
    75
    """
    share = padding_share(n_samples, cfg)
    filled = cfg.n_frames - int(round(share * cfg.n_frames))
    empty = np.flatnonzero(empty_bands(native_sr, cfg))
    return ClipLimits(duration_s=n_samples / cfg.sr, padding_share=share,
                      padded_from_s=filled * cfg.hop_length / cfg.sr if share > 0 else None,
                      empty_from_band=int(empty[0]) if empty.size else None, native_sr=int(native_sr))


def sound_cells(limits: ClipLimits, cfg: AudioConfig) -> np.ndarray:
    """The cells of the model's input that hold sound: not padding, not above the recording's Nyquist frequency.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], bool

    Examples
    --------
    >>> cfg = AudioConfig(sr=8000, n_fft=512, hop_length=128, n_frames=64, n_mels=64)
    >>> cells = sound_cells(clip_limits(4000, 8000, cfg), cfg)
    >>> cells.shape, int(cells[0].sum()), bool(cells.all(axis=1).any())
    ((64, 64), 32, False)
    """
    cells = np.ones((cfg.n_mels, cfg.n_frames), dtype=bool)
    if limits.padded_from_s is not None:
        cells[:, int(round(limits.padded_from_s * cfg.sr / cfg.hop_length)):] = False
    if limits.empty_from_band is not None:
        cells[limits.empty_from_band:] = False
    return cells
