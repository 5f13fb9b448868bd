"""Audio in, features out: load and check a clip, then log-mel step by step.

Every step is a function of its own so that the explorer can show a clip as it
goes through the pipeline; :func:`log_mel` chains them. Defaults follow the
ESC-50 reference setting (44.1 kHz, 128 mel bands, ``n_fft`` 2048, hop 512,
5 s = 431 frames).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from core.errors import InputError


def _librosa():
    """``librosa``, imported when first used: it takes about 1.5 s (scipy.signal with it), and the app's first
    page draws the clip's waveform before it needs a mel filter bank."""
    import librosa

    return librosa

__all__ = [
    "AudioConfig",
    "Clip",
    "check_audio",
    "load_audio",
    "probe_audio",
    "to_mono",
    "resample",
    "fit_duration",
    "mel_power",
    "power_to_db",
    "standardise",
    "fix_frames",
    "log_mel",
    "feature_steps",
    "mel_db_to_audio",
    "mel_frequencies_hz",
    "frame_times_s",
    "SILENCE_PEAK",
]

# A clip whose peak is below this (-80 dBFS) is flagged as silent.
SILENCE_PEAK = 1e-4
# Extensions soundfile may not read on every libsndfile; librosa (audioread/ffmpeg) is the fallback.
_FALLBACK_EXTENSIONS = {".mp3", ".m4a", ".aac", ".wma", ".opus"}


@dataclass(frozen=True)
class AudioConfig:
    """Preprocessing settings shared by the data, the models and the views.

    Attributes
    ----------
    sr : int > 0
        Sample rate the models see, in Hz.
    n_mels : int > 0
        Number of mel bands.
    n_fft, hop_length : int > 0
        STFT window and hop, in samples.
    fmin_hz : float >= 0
        Lowest mel band edge, in Hz.
    fmax_hz : float or None
        Highest mel band edge, in Hz; ``None`` means ``sr / 2``.
    top_db : float or None
        Dynamic range kept by :func:`power_to_db`, in dB below the clip's peak.
    n_frames : int > 0
        Fixed number of frames a model sees (431 = 5 s at 44.1 kHz, hop 512).
    max_duration_s : float > 0
        Longer clips are refused when loading.
    min_duration_s : float >= 0
        Shorter clips are refused when loading.
    min_sr : int > 0
        Files recorded at a lower sample rate are refused when loading.
    """

    sr: int = 44100
    n_mels: int = 128
    n_fft: int = 2048
    hop_length: int = 512
    fmin_hz: float = 20.0
    fmax_hz: float | None = None
    top_db: float | None = 80.0
    n_frames: int = 431
    max_duration_s: float = 60.0
    min_duration_s: float = 0.05
    min_sr: int = 4000

    @property
    def fmax(self) -> float:
        """Upper mel edge in Hz (``sr / 2`` unless set)."""
        return float(self.fmax_hz) if self.fmax_hz is not None else self.sr / 2.0

    @property
    def n_samples(self) -> int:
        """Samples of one clip at ``sr``: the span ``n_frames`` frames cover, one hop apart (the one home of this length)."""
        return self.hop_length * (self.n_frames - 1)

    @property
    def clip_duration_s(self) -> float:
        """Duration covered by ``n_frames`` frames, in seconds."""
        return self.n_samples / self.sr

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "AudioConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise InputError("audio config", f"unknown fields {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Clip:
    """A loaded, checked clip.

    Attributes
    ----------
    samples : np.ndarray [shape=(n_channels, n_samples)], float32
        Channels kept as recorded (1 or 2); values in [-1, 1] for PCM files.
    sr : int
        Sample rate of ``samples``, in Hz.
    source : str
        Where it came from (a path or an upload's name).
    native_sr : int
        Sample rate of the file before any resampling.
    is_silent : bool
        True when the peak is below -80 dBFS: the clip loads but says so.
    """

    samples: np.ndarray
    sr: int
    source: str
    native_sr: int
    is_silent: bool

    @property
    def n_channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.sr

    @property
    def mono(self) -> np.ndarray:
        """np.ndarray [shape=(n_samples,)]: the mix-down the models see."""
        return to_mono(self.samples)


def check_audio(y: np.ndarray, *, source: str = "audio") -> None:
    """Refuse arrays that are not finite float audio of 1 or 2 channels.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
    source : str
        Named in the error message.

    Raises
    ------
    InputError
        When ``y`` is not floating point, has no samples, more than 2 channels,
        or holds NaN or infinite values.
    """
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.floating):
        raise InputError(source, f"audio must be a float numpy array, got {type(y).__name__}")
    if y.ndim not in (1, 2):
        raise InputError(source, f"audio must have 1 or 2 dimensions, got shape {y.shape}")
    if y.ndim == 2 and y.shape[0] > 2:
        raise InputError(source, f"{y.shape[0]} channels; only mono or stereo is supported")
    if y.size == 0:
        raise InputError(source, "the audio has zero samples")
    if not np.all(np.isfinite(y)):
        raise InputError(source, "the audio holds NaN or infinite samples")


def _read(path: Path, cfg: AudioConfig, first_s: float | None = None) -> tuple[np.ndarray, int]:
    """Read a file (or its first ``first_s`` seconds) as (channels, samples) float32 with its native rate,
    checking as early as possible."""
    try:
        info = sf.info(str(path))
    except Exception as sf_error:  # libsndfile cannot parse it: try audioread for compressed formats
        if path.suffix.lower() not in _FALLBACK_EXTENSIONS:
            raise InputError(path, f"not a readable audio file ({_short(sf_error)})") from None
        return _read_fallback(path, cfg, first_s)
    frames = -1 if first_s is None else int(np.ceil(first_s * info.samplerate))
    _check_header(path, info.channels, info.samplerate, info.frames if first_s is None else
                  min(info.frames, frames), cfg)
    try:
        data, native_sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except Exception as read_error:
        raise InputError(path, f"the audio data is unreadable or truncated ({_short(read_error)})") from None
    return np.ascontiguousarray(data.T), int(native_sr)


def _read_fallback(path: Path, cfg: AudioConfig, first_s: float | None = None) -> tuple[np.ndarray, int]:
    try:
        with warnings.catch_warnings():  # librosa warns that it falls back to audioread: expected here
            warnings.simplefilter("ignore")
            data, native_sr = _librosa().load(
                str(path), sr=None, mono=False, duration=first_s or cfg.max_duration_s + 1.0, dtype=np.float32
            )
    except Exception as error:
        raise InputError(path, f"not a readable audio file ({_short(error)})") from None
    data = np.atleast_2d(data)
    _check_header(path, data.shape[0], int(native_sr), data.shape[1], cfg)
    return data, int(native_sr)


def _check_header(path: Path, channels: int, sr: int, frames: int, cfg: AudioConfig) -> None:
    if channels > 2:
        raise InputError(path, f"{channels} channels; only mono or stereo is supported")
    if frames <= 0:
        raise InputError(path, "the audio has zero samples")
    if sr < cfg.min_sr:
        raise InputError(path, f"sample rate {sr} Hz is below the minimum of {cfg.min_sr} Hz")
    duration_s = frames / sr
    if duration_s > cfg.max_duration_s:
        raise InputError(
            path, f"the clip is {duration_s:.1f} s long; the limit is {cfg.max_duration_s:g} s"
        )
    if duration_s < cfg.min_duration_s:
        raise InputError(
            path, f"the clip is {duration_s * 1000:.1f} ms long; the minimum is {cfg.min_duration_s * 1000:g} ms"
        )


def _short(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text[:160]


def probe_audio(path: str | Path, cfg: AudioConfig = AudioConfig()) -> None:
    """Check a file's header without reading its samples (cheap: for listing a dataset).

    Raises
    ------
    InputError
        As :func:`load_audio` does for a missing, empty or non-audio file, more
        than 2 channels, zero samples, a low sample rate or a wrong length.
        Compressed formats that only librosa reads pass on their size alone.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    try:
        info = sf.info(str(path))
    except Exception as error:
        if path.suffix.lower() in _FALLBACK_EXTENSIONS:
            return
        raise InputError(path, f"not a readable audio file ({_short(error)})") from None
    _check_header(path, info.channels, info.samplerate, info.frames, cfg)


def load_audio(path: str | Path, cfg: AudioConfig = AudioConfig(), *, resample_to: int | None = None,
               first_s: float | None = None) -> Clip:
    """Load and check an audio file (wav, flac, ogg, mp3, ...), keeping its channels.

    Parameters
    ----------
    path : str or Path
    cfg : AudioConfig
        Supplies the limits (``max_duration_s``, ``min_duration_s``, ``min_sr``).
    resample_to : int or None
        Resample to this rate in Hz; ``None`` keeps the file's rate.
    first_s : float > 0 or None
        Read only the first ``first_s`` seconds (a model's window of a longer recording: the
        ``max_duration_s`` limit then applies to what is read, not to the file).

    Returns
    -------
    Clip
        ``samples`` has shape (n_channels, n_samples), 1 or 2 channels.

    Raises
    ------
    InputError
        Missing file, empty file, not audio, zero samples, NaN or infinite
        samples, more than 2 channels, too long, too short, or a sample rate
        below ``cfg.min_sr``. An all-silent clip loads with ``is_silent=True``.

    Examples
    --------
    >>> from core.audio.demo_data import ensure_demo_data
    >>> clip = load_audio(ensure_demo_data() / "audio" / "1-00001-A-3.wav", resample_to=22050)
    >>> clip.samples.shape, clip.sr, clip.is_silent  # 5 s, mono, channels first
    ((1, 110250), 22050, False)
    """
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "not a file")
    if path.stat().st_size == 0:
        raise InputError(path, "the file is empty (0 bytes)")
    data, native_sr = _read(path, cfg, first_s)
    check_audio(data, source=str(path))
    if resample_to is not None and resample_to != native_sr:
        data = resample(data, orig_sr=native_sr, target_sr=resample_to)
    sr = resample_to or native_sr
    is_silent = bool(np.max(np.abs(data)) < SILENCE_PEAK)
    return Clip(samples=data.astype(np.float32, copy=False), sr=sr, source=str(path),
                native_sr=native_sr, is_silent=is_silent)


def to_mono(y: np.ndarray) -> np.ndarray:
    """Mix down to one channel.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]

    Returns
    -------
    np.ndarray [shape=(n_samples,)]
    """
    return y if y.ndim == 1 else np.mean(y, axis=0, dtype=np.float32)


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample along the last axis (librosa, soxr high quality).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n_samples)]
    orig_sr, target_sr : int > 0, in Hz

    Returns
    -------
    np.ndarray [shape=(..., n_samples * target_sr / orig_sr)], float32
    """
    if orig_sr == target_sr:
        return y
    return _librosa().resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq").astype(np.float32)


def fit_duration(y: np.ndarray, n_samples: int) -> np.ndarray:
    """Cut or zero-pad the last axis to ``n_samples`` (for writing and mixing waveforms).

    >>> fit_duration(np.ones((2, 3)), 5).tolist(), fit_duration(np.arange(4.0), 2).tolist()
    ([[1.0, 1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0, 0.0]], [0.0, 1.0])
    """
    y = np.asarray(y)
    if y.shape[-1] >= n_samples:
        return y[..., :n_samples]
    return np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, n_samples - y.shape[-1])])


def mel_power(y: np.ndarray, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Mel power spectrogram.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], at ``cfg.sr``
    cfg : AudioConfig

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_samples // hop_length)], float32, power
    """
    return _librosa().feature.melspectrogram(
        y=y, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        n_mels=cfg.n_mels, fmin=cfg.fmin_hz, fmax=cfg.fmax, power=2.0,
    ).astype(np.float32)


def power_to_db(S: np.ndarray, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Power to dB relative to the clip's peak, floored ``cfg.top_db`` below it.

    Returns
    -------
    np.ndarray [shape=S.shape], values in [-top_db, 0] dB
    """
    return _librosa().power_to_db(S, ref=np.max, top_db=cfg.top_db).astype(np.float32)


def standardise(X: np.ndarray) -> np.ndarray:
    """Per-clip standardisation: ``(X - mean) / (std + 1e-6)`` over all cells."""
    return ((X - X.mean()) / (X.std() + 1e-6)).astype(np.float32)


def fix_frames(X: np.ndarray, n_frames: int) -> np.ndarray:
    """Truncate, or pad on the right with the clip's minimum, to ``n_frames`` frames.

    Parameters
    ----------
    X : np.ndarray [shape=(n_mels, t)]
    n_frames : int > 0

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)]
    """
    t = X.shape[1]
    if t >= n_frames:
        return np.ascontiguousarray(X[:, :n_frames])
    return np.pad(X, ((0, 0), (0, n_frames - t)), mode="constant", constant_values=X.min())


def log_mel(y: np.ndarray, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """The model's input: mel, dB, standardised, fixed to ``cfg.n_frames``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], mono at ``cfg.sr``

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32

    See Also
    --------
    feature_steps : the same, keeping every intermediate step.
    """
    return fix_frames(standardise(power_to_db(mel_power(y, cfg), cfg)), cfg.n_frames)


def feature_steps(y: np.ndarray, cfg: AudioConfig = AudioConfig()) -> dict[str, np.ndarray]:
    """Every step of :func:`log_mel`, in order, for showing a clip step by step.

    Returns
    -------
    dict
        ``"mel"`` (power), ``"db"``, ``"standardised"``, ``"fixed"``; the last
        equals ``log_mel(y, cfg)``.
    """
    mel = mel_power(y, cfg)
    db = power_to_db(mel, cfg)
    std = standardise(db)
    return {"mel": mel, "db": db, "standardised": std, "fixed": fix_frames(std, cfg.n_frames)}


def mel_db_to_audio(S_db: np.ndarray, cfg: AudioConfig = AudioConfig(), *, n_iter: int = 32) -> np.ndarray:
    """The way back: a mel spectrogram in dB to a waveform (Griffin-Lim).

    Any spectrogram-shaped result (a pattern, a masked clip, a reconstruction)
    can be heard this way; standardised values are treated as dB.

    Parameters
    ----------
    S_db : np.ndarray [shape=(n_mels, t)]
    n_iter : int > 0
        Griffin-Lim iterations.

    Returns
    -------
    np.ndarray [shape=(hop_length * (t - 1),)], float32, peak-normalised to 0.9
    """
    power = _librosa().db_to_power(S_db - np.max(S_db))
    y = _librosa().feature.inverse.mel_to_audio(
        power, sr=cfg.sr, n_fft=cfg.n_fft, hop_length=cfg.hop_length,
        fmin=cfg.fmin_hz, fmax=cfg.fmax, power=2.0, n_iter=n_iter,
    )
    peak = np.max(np.abs(y))
    return (0.9 * y / peak if peak > 0 else y).astype(np.float32)


def mel_frequencies_hz(cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """np.ndarray [shape=(n_mels,)]: centre frequency of each mel band, in Hz."""
    return _librosa().mel_frequencies(n_mels=cfg.n_mels + 2, fmin=cfg.fmin_hz, fmax=cfg.fmax)[1:-1]


def frame_times_s(n_frames: int, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """np.ndarray [shape=(n_frames,)]: centre time of each frame, in seconds."""
    return _librosa().frames_to_time(np.arange(n_frames), sr=cfg.sr, hop_length=cfg.hop_length)
