"""Out-of-distribution clips made on the spot, to measure a novelty score against.

None of these sounds is one of the demo set's classes:

* ``"tones"``: steady chords of sine, square or sawtooth tones;
* ``"music"``: a synthesised melody of plucked harmonic notes over a bass line;
* ``"noise"``: white, pink or brown noise, steady or swelling;
* ``"chirps"``: repeated linear or exponential sweeps;
* ``"distractors"``: one to three of the demo set's distractor sounds
  (:data:`core.audio.demo_data.DISTRACTORS`: babble, hum, ratchet, passing vehicle,
  beeps) with no class event: sounds every training clip holds in its
  background, so the hardest set;
* ``"speech"``: sentences spoken by ``espeak-ng`` (optional: only where it is
  installed; :func:`speech_available`).

Every clip is mono, ``duration_s`` long at ``sr``, peak 0.5, a pure function of
the seed.

>>> clips = ood_clips("chirps", 2, seed=0, sr=8000, duration_s=1.0)
>>> clips.shape, float(np.abs(clips).max())
((2, 8000), 0.5)
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from core.errors import InputError

__all__ = ["KINDS", "MADE_KINDS", "ood_clips", "ood_set", "speech_available"]

MADE_KINDS = ("tones", "music", "noise", "chirps", "distractors")  # synthesised here, no external tool
KINDS = MADE_KINDS + ("speech",)
_SENTENCES = (
    "The quick brown fox jumps over the lazy dog.", "Please call Stella and ask her to bring these things.",
    "Seven slim swans swam south in the summer sun.", "It is a fine day to go for a long walk.",
    "Numbers one two three four five six seven.", "Where did you put the keys to the blue car?",
    "The weather report says rain is coming tonight.", "We will meet again at the station at noon.",
)


def _tones(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    wave = rng.choice(["sine", "square", "saw"])
    x = np.zeros_like(t)
    for f in 110.0 * 2 ** (rng.integers(0, 36, size=rng.integers(1, 4)) / 12):
        phase = 2 * np.pi * f * t
        x += np.sin(phase) if wave == "sine" else np.sign(np.sin(phase)) if wave == "square" else \
            2 * ((f * t) % 1.0) - 1
    return x


def _music(rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12])
    note_s = rng.uniform(0.12, 0.4)
    x = np.zeros_like(t)
    root = 220.0 * 2 ** (rng.integers(-5, 6) / 12)
    for start in np.arange(0, t[-1], note_s):
        f = root * 2 ** (rng.choice(scale) / 12 + rng.integers(0, 2))
        seg = (t >= start) & (t < start + 2 * note_s)
        tau = t[seg] - start
        env = np.exp(-tau / (0.3 * note_s))
        x[seg] += env * sum(np.sin(2 * np.pi * k * f * tau) / k for k in range(1, 5))
    bass_f = root / 2
    x += 0.4 * np.sin(2 * np.pi * bass_f * t) * (0.6 + 0.4 * np.sin(2 * np.pi * t / (4 * note_s)))
    return x


def _noise(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    from core.audio.augment import coloured_noise

    x = coloured_noise(len(t), colour=str(rng.choice(["white", "pink", "brown"])), rng=rng).astype(np.float64)
    if rng.random() < 0.5:  # swelling and fading
        x *= np.exp(-0.5 * ((t - rng.uniform(0, t[-1])) / rng.uniform(0.5, 2.0)) ** 2)
    return x


def _chirps(rng: np.random.Generator, t: np.ndarray, sr: int) -> np.ndarray:
    period = rng.uniform(0.3, 2.5)
    f0, f1 = sorted(rng.uniform(100, min(8000, 0.45 * sr), size=2))
    if rng.random() < 0.5:
        f0, f1 = f1, f0
    tau = t % period
    if rng.random() < 0.5:
        freq = f0 + (f1 - f0) * tau / period
    else:
        freq = f0 * (f1 / f0) ** (tau / period)
    return np.sin(2 * np.pi * np.cumsum(freq) / sr)


def _distractors(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    from core.audio.demo_data import DISTRACTORS, SR
    from core.audio.features import resample

    x = np.zeros(n)
    names = list(DISTRACTORS)
    for name in rng.choice(names, size=rng.integers(1, 4), replace=False):
        sound, _ = DISTRACTORS[str(name)](rng)
        if sr != SR:
            sound = resample(np.asarray(sound, np.float32), orig_sr=SR, target_sr=sr)
        sound = np.asarray(sound[:n], np.float64)
        onset = int(rng.integers(0, max(1, n - len(sound) + 1)))
        x[onset:onset + len(sound)] += sound / max(np.abs(sound).max(), 1e-9) * rng.uniform(0.3, 1.0)
    return x


def _speech(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    import soundfile as sf

    from core.audio.features import resample

    text = " ".join(rng.choice(_SENTENCES, size=2, replace=False))
    voice = str(rng.choice(["en", "en-us", "en+f3", "en+m3", "de", "fr"]))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(120, 200))), "-w", str(path), text],
                       check=True, capture_output=True)
        y, rate = sf.read(path, dtype="float32", always_2d=False)
    y = resample(y, orig_sr=rate, target_sr=sr) if rate != sr else y
    x = np.zeros(n)
    x[:min(n, len(y))] = y[:n]
    return x


def speech_available() -> bool:
    """Whether ``espeak-ng`` is installed (the ``"speech"`` set needs it)."""
    return shutil.which("espeak-ng") is not None


def ood_clips(kind: str, n: int, *, seed: int = 0, sr: int = 44100, duration_s: float = 5.0) -> np.ndarray:
    """``n`` clips of one out-of-distribution kind.

    Parameters
    ----------
    kind : {"tones", "music", "noise", "chirps", "distractors", "speech"}
    n : int > 0
    seed : int
    sr : int > 0
    duration_s : float > 0

    Returns
    -------
    np.ndarray [shape=(n, round(sr * duration_s))], float32, each clip's peak 0.5
    """
    if kind not in KINDS:
        raise InputError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    if kind == "speech" and not speech_available():
        raise InputError("espeak-ng", "is not installed: the speech set needs it (apt-get install espeak-ng)")
    if n < 1 or sr < 1 or duration_s <= 0:
        raise InputError("ood_clips", f"need n >= 1, sr >= 1 and duration_s > 0, got {n}, {sr}, {duration_s}")
    n_samples = int(round(sr * duration_s))
    t = np.arange(n_samples) / sr
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    out = np.empty((n, n_samples), np.float32)
    for i in range(n):
        x = {"tones": lambda: _tones(rng, t), "music": lambda: _music(rng, t, sr), "noise": lambda: _noise(rng, t),
             "chirps": lambda: _chirps(rng, t, sr), "distractors": lambda: _distractors(rng, n_samples, sr),
             "speech": lambda: _speech(rng, n_samples, sr)}[kind]()
        out[i] = 0.5 * x / max(np.abs(x).max(), 1e-9)
    return out


def ood_set(kinds=MADE_KINDS, *, per_kind: int = 10, seed: int = 0, sr: int = 44100,
            duration_s: float = 5.0) -> tuple[np.ndarray, list[str]]:
    """``per_kind`` clips of each kind, stacked, and each clip's kind.

    Returns
    -------
    clips : np.ndarray [shape=(len(kinds) * per_kind, n_samples)], float32
    kinds : list of str
    """
    clips = [ood_clips(k, per_kind, seed=seed, sr=sr, duration_s=duration_s) for k in kinds]
    return np.concatenate(clips), [k for k in kinds for _ in range(per_kind)]
