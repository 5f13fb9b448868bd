"""Edit a sound to test a hypothesis about what a model hears: the counterfactual lab's operations.

A hypothesis such as "the model calls this a siren because of the sweep at
1-2 kHz" is tested by changing the sound and running the model again. The
edits, applied in this order by :func:`apply_edits`:

* **region** (:func:`edit_region`): a time span, a frequency band or a box
  (both), muted, kept alone, or attenuated by N dB, through a mask on the
  short-time Fourier transform (``librosa.stft`` / ``istft``; the mask's edges
  are hard, so expect a faint click at a muted span's ends);
* **shift** (:func:`shift`): the clip rolled in time by a number of seconds;
* **pitch** (``librosa.effects.pitch_shift``), in semitones;
* **stretch** (``librosa.effects.time_stretch``): faster (> 1) or slower
  (< 1), then cut or zero-padded back to the clip's length;
* **noise** (:func:`core.audio.augment.add_noise`): coloured noise at an SNR in dB,
  from a fixed seed.

Everything acts on the mix-down the models see, shape ``(n_samples,)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from core.errors import InputError

__all__ = ["MODES", "Region", "Edits", "edit_region", "shift", "apply_edits", "control_region", "covering_region"]

MODES = ("mute", "keep", "attenuate")


@dataclass(frozen=True)
class Region:
    """A time span, a frequency band, or a box; ``None`` bounds extend to the clip's edge.

    Attributes
    ----------
    t0_s, t1_s : float or None
        Seconds from the clip's start.
    f0_hz, f1_hz : float or None
        Hz.
    """

    t0_s: float | None = None
    t1_s: float | None = None
    f0_hz: float | None = None
    f1_hz: float | None = None

    def bounded(self, *, duration_s: float, fmax_hz: float) -> "Region":
        """The same region as a box: each ``None`` bound set to the clip's edge (for drawing and naming it).

        >>> Region(t0_s=1.0, t1_s=2.0).bounded(duration_s=5.0, fmax_hz=11025.0)
        Region(t0_s=1.0, t1_s=2.0, f0_hz=0.0, f1_hz=11025.0)
        """
        return Region(0.0 if self.t0_s is None else self.t0_s, duration_s if self.t1_s is None else self.t1_s,
                      0.0 if self.f0_hz is None else self.f0_hz, fmax_hz if self.f1_hz is None else self.f1_hz)


@dataclass(frozen=True)
class Edits:
    """A counterfactual recipe; the default changes nothing.

    Attributes
    ----------
    region : Region or None
    mode : {"mute", "keep", "attenuate"}
        Mute the region, keep only it, or attenuate it by ``attenuate_db``.
    attenuate_db : float >= 0
    shift_s : float
        Roll the clip by this many seconds (positive = later).
    pitch_semitones : float
    stretch_rate : float > 0
        1 = unchanged.
    noise_snr_db : float or None
        ``None`` adds no noise.
    noise_colour : {"white", "pink", "brown"}
    seed : int
    """

    region: Region | None = None
    mode: str = "mute"
    attenuate_db: float = 20.0
    shift_s: float = 0.0
    pitch_semitones: float = 0.0
    stretch_rate: float = 1.0
    noise_snr_db: float | None = None
    noise_colour: str = "white"
    seed: int = 0

    def to_json(self) -> str:
        """A stable string for cache keys."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Edits":
        d = json.loads(text)
        region = d.pop("region")
        return cls(region=Region(**region) if region is not None else None, **d)

    @property
    def is_identity(self) -> bool:
        """Whether the recipe leaves the clip as it is."""
        return (self.region is None and not self.shift_s and not self.pitch_semitones and self.stretch_rate == 1.0
                and self.noise_snr_db is None)


def _check(y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1 or y.size == 0:
        raise InputError("audio", f"expected a non-empty mono clip (n_samples,), got shape {y.shape}")
    return y


def covering_region(boxes) -> Region | None:
    """The smallest box holding every one of ``boxes`` (an event drawn as several boxes), or None for none.

    Parameters
    ----------
    boxes : sequence of objects with ``t0_s``, ``t1_s``, ``f0_hz``, ``f1_hz``
        E.g. a clip's event boxes (``Dataset.boxes``).

    Examples
    --------
    >>> covering_region([Region(1.0, 1.5, 400.0, 900.0), Region(3.0, 3.2, 300.0, 800.0)])
    Region(t0_s=1.0, t1_s=3.2, f0_hz=300.0, f1_hz=900.0)
    """
    boxes = list(boxes)
    if not boxes:
        return None
    return Region(min(b.t0_s for b in boxes), max(b.t1_s for b in boxes), min(b.f0_hz for b in boxes),
                  max(b.f1_hz for b in boxes))


def control_region(region: Region, *, duration_s: float, fmax_hz: float) -> Region:
    """The baseline for a region edit: a region of the same size in seconds and Hz, as far from it as fits.

    It moves to the other half of the clip in time and the other half of the
    band range in frequency (a span stays a span, a band a band). The same
    edit on it says how much of the change any edit of that size would make.

    Examples
    --------
    >>> control_region(Region(1.0, 2.0, 500.0, 1500.0), duration_s=5.0, fmax_hz=22050.0)
    Region(t0_s=4.0, t1_s=5.0, f0_hz=21050.0, f1_hz=22050.0)
    """
    t0, t1, f0, f1 = region.t0_s, region.t1_s, region.f0_hz, region.f1_hz
    if t0 is not None or t1 is not None:
        t0, t1 = (0.0 if t0 is None else t0), (duration_s if t1 is None else t1)
        width = t1 - t0
        t0 = 0.0 if (t0 + t1) / 2 > duration_s / 2 else max(duration_s - width, 0.0)
        t1 = t0 + width
    if f0 is not None or f1 is not None:
        f0, f1 = (0.0 if f0 is None else f0), (fmax_hz if f1 is None else f1)
        height = f1 - f0
        f0 = 0.0 if (f0 + f1) / 2 > fmax_hz / 2 else max(fmax_hz - height, 0.0)
        f1 = f0 + height
    return Region(t0, t1, f0, f1)


def edit_region(y: np.ndarray, sr: int, region: Region, *, mode: str = "mute", attenuate_db: float = 20.0,
                n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Mute a time-frequency region, keep only it, or attenuate it.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    sr : int > 0
    region : Region
    mode : {"mute", "keep", "attenuate"}
    attenuate_db : float >= 0
        For ``"attenuate"``: the region's gain is ``-attenuate_db`` dB.
    n_fft, hop_length : int > 0
        The STFT the mask is applied on.

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32

    Examples
    --------
    >>> sr = 8000
    >>> t = np.arange(sr) / sr
    >>> y = np.sin(2 * np.pi * 440 * t) + np.sin(2 * np.pi * 2000 * t)
    >>> z = edit_region(y, sr, Region(f0_hz=300, f1_hz=600), mode="mute", n_fft=512, hop_length=128)
    >>> spectrum = np.abs(np.fft.rfft(z))
    >>> bool(spectrum[440] < 0.01 * spectrum[2000])
    True
    """
    import librosa

    y = _check(y)
    if mode not in MODES:
        raise InputError("mode", f"{mode!r} is not one of {', '.join(MODES)}")
    if attenuate_db < 0:
        raise InputError("attenuate_db", f"must be >= 0 dB, got {attenuate_db}")
    D = librosa.stft(y, n_fft=n_fft, hop_length=hop_length)  # (1 + n_fft // 2, n_frames)
    freqs = librosa.fft_frequencies(sr=sr, n_fft=n_fft)
    times = librosa.frames_to_time(np.arange(D.shape[1]), sr=sr, hop_length=hop_length)
    t0 = -np.inf if region.t0_s is None else region.t0_s
    t1 = np.inf if region.t1_s is None else region.t1_s
    f0 = -np.inf if region.f0_hz is None else region.f0_hz
    f1 = np.inf if region.f1_hz is None else region.f1_hz
    if t1 <= t0 or f1 <= f0:
        raise InputError("region", f"empty: {t0:g}-{t1:g} s, {f0:g}-{f1:g} Hz")
    inside = ((freqs >= f0) & (freqs <= f1))[:, None] & ((times >= t0) & (times <= t1))[None, :]
    if mode == "mute":
        gain = np.where(inside, 0.0, 1.0)
    elif mode == "keep":
        gain = np.where(inside, 1.0, 0.0)
    else:
        gain = np.where(inside, 10.0 ** (-attenuate_db / 20.0), 1.0)
    return librosa.istft(D * gain, hop_length=hop_length, n_fft=n_fft, length=len(y)).astype(np.float32)


def shift(y: np.ndarray, sr: int, shift_s: float) -> np.ndarray:
    """Roll the clip by ``shift_s`` seconds (positive = later; what falls off the end comes back at the start).

    Examples
    --------
    >>> shift(np.array([1.0, 0, 0, 0]), 4, 0.25).tolist()
    [0.0, 1.0, 0.0, 0.0]
    """
    y = _check(y)
    return np.roll(y, int(round(shift_s * sr)))


def apply_edits(y: np.ndarray, sr: int, edits: Edits, *, n_fft: int = 2048, hop_length: int = 512) -> np.ndarray:
    """Apply a whole recipe: region, shift, pitch, stretch, noise, in that order.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    sr : int > 0
    edits : Edits

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32, the same length as ``y``
    """
    import librosa

    from core.audio.features import fit_duration
    from core.audio.augment import add_noise

    y = _check(y)
    if edits.stretch_rate <= 0:
        raise InputError("stretch_rate", f"must be > 0, got {edits.stretch_rate}")
    out = y
    if edits.region is not None:
        out = edit_region(out, sr, edits.region, mode=edits.mode, attenuate_db=edits.attenuate_db, n_fft=n_fft,
                          hop_length=hop_length)
    if edits.shift_s:
        out = shift(out, sr, edits.shift_s)
    if edits.pitch_semitones:
        out = librosa.effects.pitch_shift(out, sr=sr, n_steps=float(edits.pitch_semitones))
    if edits.stretch_rate != 1.0:
        out = fit_duration(librosa.effects.time_stretch(out, rate=float(edits.stretch_rate)), len(y))
    if edits.noise_snr_db is not None:
        out = add_noise(out, snr_db=float(edits.noise_snr_db), colour=edits.noise_colour,
                        rng=np.random.default_rng(edits.seed))
    return np.asarray(out, dtype=np.float32)
