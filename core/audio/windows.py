"""Recordings of any length: a model's window slid over the whole recording.

A model hears ``n_frames`` frames (its window: 5 s for the shipped ones). A longer recording is
cut into windows at a hop of about a second, each classified on its own: a timeline of the top
classes over time, as in sound event detection. The file is read in blocks with ``soundfile``
(:func:`iter_windows`), so memory holds one window at a time whatever the recording's length;
:func:`write_window` saves one window as a file of its own, which every page then explains.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from core.audio.features import AudioConfig, check_audio, fit_duration, resample, to_mono
from core.errors import InputError

__all__ = ["DEFAULT_HOP_S", "MAX_RECORDING_S", "Window", "window_starts", "recording_info", "iter_windows",
           "most_confident", "write_window"]

DEFAULT_HOP_S = 1.0
MAX_RECORDING_S = 4 * 3600.0  # longer recordings are refused: a day of windows is not a page


@dataclass(frozen=True)
class Window:
    """One window of a recording, in seconds from its start."""

    index: int
    start_s: float
    end_s: float


def window_starts(duration_s: float, window_s: float, hop_s: float = DEFAULT_HOP_S) -> np.ndarray:
    """Start times of the windows that cover a recording: every ``hop_s``, and one more ending at its end when
    the regular ones leave more than a quarter of a hop unheard.

    Returns
    -------
    np.ndarray [shape=(n_windows,)], seconds; ``[0.0]`` when the recording fits one window

    Examples
    --------
    >>> window_starts(20.0, 5.0).tolist()[:3], len(window_starts(20.0, 5.0)), window_starts(3.0, 5.0).tolist()
    ([0.0, 1.0, 2.0], 16, [0.0])
    >>> window_starts(7.5, 5.0).tolist()  # the last window ends where the recording does
    [0.0, 1.0, 2.0, 2.5]
    """
    if not hop_s > 0:
        raise InputError("--hop-s", f"need a positive hop in seconds, got {hop_s}")
    if duration_s <= window_s:
        return np.zeros(1)
    n = int(math.floor((duration_s - window_s) / hop_s + 1e-9)) + 1
    starts = np.arange(n) * hop_s
    if duration_s - (starts[-1] + window_s) > 0.25 * hop_s:
        starts = np.append(starts, duration_s - window_s)
    return starts


def recording_info(path: str | Path) -> tuple[float, int]:
    """Duration (s) and native sample rate (Hz) of a file, from its header; checked for windowing.

    Raises
    ------
    InputError
        For a file soundfile cannot read, more than 2 channels, no samples, a rate under the minimum,
        or a recording longer than :data:`MAX_RECORDING_S`.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        info = sf.info(str(path))
    except Exception as error:
        raise InputError(path, f"cannot be read in blocks ({str(error).splitlines()[0][:120]}); "
                               "convert it to WAV or FLAC to window it") from None
    if info.channels > 2:
        raise InputError(path, f"{info.channels} channels; only mono or stereo is supported")
    if info.frames <= 0:
        raise InputError(path, "the audio has zero samples")
    if info.samplerate < AudioConfig.min_sr:
        raise InputError(path, f"sample rate {info.samplerate} Hz is below the minimum of {AudioConfig.min_sr} Hz")
    duration_s = info.frames / info.samplerate
    if duration_s > MAX_RECORDING_S:
        raise InputError(path, f"the recording is {duration_s / 3600:.1f} h long; windows are made for up to "
                               f"{MAX_RECORDING_S / 3600:g} h: cut it first")
    return duration_s, int(info.samplerate)


def iter_windows(path: str | Path, cfg: AudioConfig, *, hop_s: float = DEFAULT_HOP_S
                 ) -> Iterator[tuple[Window, np.ndarray]]:
    """Each window of a recording as the model hears it, read from disk one window at a time.

    Parameters
    ----------
    path : str or Path
    cfg : AudioConfig
        The model's: its window is ``cfg.n_samples`` samples at ``sr``.
    hop_s : float > 0

    Yields
    ------
    window : Window
    y : np.ndarray [shape=(cfg.n_samples,)], float32, mono at ``cfg.sr``; the last
        (or only) window of a short recording is zero-padded.
    """
    duration_s, native_sr = recording_info(path)
    n_model = cfg.n_samples
    window_s = n_model / cfg.sr
    n_native = int(round(window_s * native_sr))
    with sf.SoundFile(str(path)) as f:
        for i, start_s in enumerate(window_starts(duration_s, window_s, hop_s)):
            f.seek(int(round(start_s * native_sr)))
            block = f.read(n_native, dtype="float32", always_2d=True).T  # (channels, samples)
            check_audio(block, source=str(path))
            y = resample(to_mono(block), orig_sr=native_sr, target_sr=cfg.sr)
            yield Window(i, float(start_s), float(min(start_s + window_s, duration_s))), fit_duration(y, n_model)


def most_confident(proba: np.ndarray) -> int:
    """The window whose top class is the most probable: the default window to look inside.

    >>> most_confident(np.array([[0.5, 0.5], [0.1, 0.9], [0.8, 0.2]]))
    1
    """
    return int(np.argmax(np.max(proba, axis=1)))


def write_window(path: str | Path, window: Window, out_dir: str | Path) -> Path:
    """Save one window of a recording, at its own rate and channels, as a WAV file of its own.

    The name holds the source's name, size and modification time and the window's span, so the same
    window of the same file is the same file (written once, renamed into place when whole).

    Returns
    -------
    Path
    """
    import hashlib

    path = Path(path)
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    out = Path(out_dir) / f"{path.stem}.{key}.{window.start_s:09.3f}-{window.end_s:09.3f}s.wav"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(str(path)) as f:
        f.seek(int(round(window.start_s * f.samplerate)))
        data = f.read(int(round((window.end_s - window.start_s) * f.samplerate)), dtype="float32", always_2d=True)
        sr = f.samplerate
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".wav.part")
    os.close(fd)
    try:
        sf.write(tmp, data, sr, format="WAV", subtype="FLOAT")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
