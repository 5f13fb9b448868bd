"""The bundled demo sound set (version 2), synthesised by our own code, with ground-truth boxes.

A benchmark for explanations as much as a teaching set. Ten classes in five
pairs; the two classes of a pair share the same bands and the same sounds and
differ only in how those sounds are ordered in time, so per-band loudness
statistics (which do not see order) cannot tell them apart:

=================  =====================  ====================================
pair               class A                class B
=================  =====================  ====================================
resonant clicks    ``clock_tick``         ``keyboard_typing``
                   (a regular beat)       (the same clicks, irregular gaps)
low thumps         ``door_knock``         ``heartbeat``
                   (evenly spaced)        (lub-dub pairs)
harmonic sweep     ``whistle_rising``     ``whistle_falling`` (its time reverse)
noise grains       ``rain``               ``crackling_fire``
                   (grains at random)     (the same grains in bursts)
inharmonic partials ``church_bell``       ``singing_bowl``
                   (struck: decays)       (swells: the envelope reversed)
=================  =====================  ====================================

Each clip's pitch, rate, length (0.3 to 4 s) and level are drawn at random
within its class. A scene is built like a recording: the event at any onset,
one to three distractors drawn from a pool of sounds that belong to no class
(babble, mains hum, ratchet clicks, a passing vehicle, beeps), in at least half
of the clips one as loud as the event or louder, a synthetic room response, and
coloured background noise at 0 to 15 dB SNR. A quarter of the clips are stereo,
with the event panned to one side and the loudest distractor to the other.
About 3 % of the labels are flipped on purpose, as in a real dataset.

Written in ESC-50's layout, with:

* ``meta/esc50.csv``: the labels as given, flipped ones included;
* ``meta/boxes.csv``: ``filename, t0_s, t1_s, f0_hz, f1_hz, kind, source``, where
  ``kind`` is ``event`` (the evidence for the clip's true class) or
  ``distractor``, and ``source`` names the sound;
* ``meta/scene.csv``: per clip the channels, the pans of the event and of the
  loudest distractor (-1 left, 0 centre, 1 right), levels, SNR and RT60;
* ``meta/label_truth.csv``: the flipped clips and their true class. No model or
  page reads it; only scoring a label-error finder may (:func:`read_label_truth`).

The set is a pure function of the seed: the same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
import threading
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from core.audio.features import AudioConfig, mel_power
from core.audio.augment import NOISE_COLOURS, coloured_noise
from core.data.datasets import read_label_truth, read_scene  # the readers of what this module writes
from core.errors import InputError
from core.paths import cache_dir


def _signal():
    """``scipy.signal``, imported on first synthesis: it takes about 1 s, and the app's first page imports this
    module only to find the demo set on disk."""
    from scipy import signal

    return signal

__all__ = ["CLASSES", "PAIRS", "DISTRACTORS", "SR", "DURATION_S", "VERSION", "Scene", "render_scene",
           "synth_clip", "pan_gains", "make_demo_data", "ensure_demo_data", "default_demo_dir",
           "read_scene", "read_label_truth", "configure", "run"]

SR = 44100
DURATION_S = 5.0
N_SAMPLES = int(SR * DURATION_S)
DEFAULT_SEED = 0
CLIPS_PER_CLASS = 60
STEREO_SHARE = 0.25
FLIP_SHARE = 0.03
LOUD_DISTRACTOR_SHARE = 0.65  # clips whose loudest distractor is at or above the event's level
_MEL_CFG = AudioConfig()
VERSION = 2  # bump when the synthesis changes, so cached copies are rebuilt

# An event is (waveform, boxes), boxes as (t0_s, t1_s, f0_hz, f1_hz) relative to the event's start.
Event = tuple[np.ndarray, list[tuple[float, float, float, float]]]


# --- building blocks -------------------------------------------------------------------------

def _t(duration_s: float) -> np.ndarray:
    return np.arange(int(duration_s * SR)) / SR


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _band_noise(n: int, lo_hz: float, hi_hz: float, rng: np.random.Generator, order: int = 4) -> np.ndarray:
    sos = _signal().butter(order, [max(lo_hz, 10.0), min(hi_hz, SR / 2 - 100)], btype="bandpass", fs=SR, output="sos")
    x = _signal().sosfilt(sos, rng.standard_normal(n))
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _fade(x: np.ndarray, fade_s: float = 0.01) -> np.ndarray:
    k = min(int(fade_s * SR), len(x) // 2)
    if k > 0:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def _harmonic(f0: np.ndarray, amps) -> np.ndarray:
    """Sum of harmonics of a time-varying fundamental f0 (Hz per sample), silent above Nyquist."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(a * np.sin(k * phase) * (k * f0 < SR / 2) for k, a in enumerate(amps, start=1))


def _impulses(onsets_s: np.ndarray, grain: Callable[[int], np.ndarray], length_s: float) -> np.ndarray:
    """A track of ``length_s`` with ``grain(i)`` added at each onset."""
    x = np.zeros(int(length_s * SR) + 1)
    for i, onset in enumerate(onsets_s):
        g = grain(i)
        a = int(onset * SR)
        end = min(len(x), a + len(g))
        x[a:end] += g[: end - a]
    return x


# --- the classes: five pairs that share bands and differ in temporal order -------------------

def _click_event(rng: np.random.Generator, dur: float, regular: bool) -> Event:
    """Resonant clicks (a clock's tick, a key's click); the pair differs only in their spacing.

    A clock ticks at one steady period (0.12-0.4 s); typing mixes quick double
    strokes (40-70 ms apart) with pauses. Both draw the number of clicks and
    their levels from the same distribution, so they hold the same frames.
    """
    ring_hz = _log_uniform(rng, 1200, 5000)
    click_s = 0.03
    n = int(rng.integers(4, 12))
    if regular:
        gaps = np.full(n - 1, rng.uniform(0.12, 0.4)) + rng.normal(0, 0.002, n - 1)
    else:
        gaps = np.where(rng.random(n - 1) < 0.45, rng.uniform(0.04, 0.07, n - 1), rng.uniform(0.1, 0.45, n - 1))
    gaps *= min(1.0, 3.9 / gaps.sum())  # at most 4 s long
    onsets = np.concatenate([[0.0], np.cumsum(gaps)])
    t = _t(click_s)
    amps = rng.uniform(0.6, 1.0, n)
    x = _impulses(onsets, lambda i: amps[i] * np.sin(2 * np.pi * ring_hz * t) * np.exp(-t / 0.004), onsets[-1] + click_s)
    return x, [(o, o + click_s, 0.7 * ring_hz, 1.4 * ring_hz) for o in onsets]


def clock_tick(rng: np.random.Generator, dur: float) -> Event:
    return _click_event(rng, dur, regular=True)


def keyboard_typing(rng: np.random.Generator, dur: float) -> Event:
    return _click_event(rng, dur, regular=False)


def _thump_event(rng: np.random.Generator, dur: float, paired: bool) -> Event:
    """Low thumps (knuckles on a door, a heart); evenly spaced (0.22-0.45 s) or in lub-dub pairs.

    A heartbeat's two sounds lie 0.13-0.2 s apart, its beats 0.55-1 s apart.
    Both classes draw the number of thumps and their levels alike.
    """
    f = _log_uniform(rng, 55, 160)
    thump_s = 0.1
    n = 2 * int(rng.integers(2, 5))  # 4 to 8 thumps
    if paired:
        starts = np.arange(n // 2) * rng.uniform(0.55, 1.0)
        onsets = np.sort(np.concatenate([starts, starts + rng.uniform(0.13, 0.2)]))
    else:
        onsets = np.arange(n) * rng.uniform(0.22, 0.45)
    onsets = np.maximum(onsets + rng.normal(0, 0.004, n), 0.0)
    t = _t(thump_s)
    amps = rng.uniform(0.6, 1.0, n)

    def thump(i: int) -> np.ndarray:
        body = np.sin(2 * np.pi * f * t * (1 - 0.3 * t / thump_s)) * np.exp(-t / 0.03)
        return amps[i] * (body + 0.35 * np.sin(2 * np.pi * 2.7 * f * t) * np.exp(-t / 0.012))

    x = _impulses(onsets, thump, onsets.max() + thump_s)
    return x, [(o, o + 0.08, 0.7 * f, 3.2 * f) for o in onsets]


def door_knock(rng: np.random.Generator, dur: float) -> Event:
    return _thump_event(rng, dur, paired=False)


def heartbeat(rng: np.random.Generator, dur: float) -> Event:
    return _thump_event(rng, dur, paired=True)


def _whistle_event(rng: np.random.Generator, dur: float, rising: bool) -> Event:
    """A harmonic glide on a log-frequency path; falling is the exact time reverse of rising."""
    dur = min(dur, 2.5)
    lo = _log_uniform(rng, 300, 1100)
    hi = lo * rng.uniform(1.6, 3.0)
    t = _t(dur)
    f0 = lo * (hi / lo) ** (t / dur)
    f0 = f0 * (1 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 7) * t))
    x = _fade(_harmonic(f0, [1.0, 0.45, 0.2]), 0.02)
    edges = np.linspace(0, dur, 5)
    boxes = [(a, b, 0.92 * lo * (hi / lo) ** (a / dur), 3.1 * lo * (hi / lo) ** (b / dur)) for a, b in zip(edges, edges[1:])]
    if rising:
        return x, boxes
    return x[::-1].copy(), [(dur - b, dur - a, f_lo, f_hi) for a, b, f_lo, f_hi in boxes]


def whistle_rising(rng: np.random.Generator, dur: float) -> Event:
    return _whistle_event(rng, dur, rising=True)


def whistle_falling(rng: np.random.Generator, dur: float) -> Event:
    return _whistle_event(rng, dur, rising=False)


def _grain_event(rng: np.random.Generator, dur: float, bursts: bool) -> Event:
    """Band-limited noise grains over a hiss: at random (rain) or gathered in bursts (fire)."""
    dur = max(dur, 0.5)
    lo = _log_uniform(rng, 600, 2000)
    hi = min(lo * rng.uniform(3.5, 6.0), 15000.0)
    n = max(5, int(dur * rng.uniform(25, 60)))
    if bursts:  # pops of 5-10 grains within a few tens of ms
        n_bursts = max(1, int(round(n / rng.uniform(5, 10))))
        centres = rng.uniform(0.03, dur - 0.03, n_bursts)
        onsets = centres[rng.integers(0, n_bursts, n)] + rng.normal(0, 0.008, n)
    else:
        onsets = rng.uniform(0.0, dur, n)
    onsets = np.clip(onsets, 0.0, dur - 0.01)
    sos = _signal().butter(2, [lo, hi], "bandpass", fs=SR, output="sos")
    length = int(0.008 * SR)
    decay = np.exp(-np.arange(length) / (0.0015 * SR))
    amps = rng.uniform(0.4, 1.0, n)
    x = _impulses(onsets, lambda i: amps[i] * decay * rng.standard_normal(length), dur)
    x = _signal().sosfilt(sos, x)
    x = x / (np.sqrt(np.mean(x**2)) + 1e-12) + rng.uniform(0.1, 0.3) * _band_noise(len(x), lo, hi, rng)
    env = np.minimum(1.0, np.minimum(np.arange(len(x)), len(x) - np.arange(len(x))) / (0.05 * SR))
    return x * env, [(0.0, dur, lo, hi)]


def rain(rng: np.random.Generator, dur: float) -> Event:
    return _grain_event(rng, dur, bursts=False)


def crackling_fire(rng: np.random.Generator, dur: float) -> Event:
    return _grain_event(rng, dur, bursts=True)


_BELL_RATIOS = np.array([0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 3.0])
_BELL_AMPS = np.array([0.6, 1.0, 0.7, 0.5, 0.4, 0.25, 0.2])


def _bell_event(rng: np.random.Generator, dur: float, struck: bool) -> Event:
    """Inharmonic partials: struck (instant attack, decay) or swelling (the envelope reversed)."""
    dur = max(dur, 0.6)
    f = _log_uniform(rng, 180, 650)
    t = _t(dur)
    tau = np.arange(len(t))[::-1] / SR if not struck else t  # time since the strike, or until the release
    rate = np.log(10 ** (40 / 20)) / dur  # the fundamental falls 40 dB over the event
    phases = rng.uniform(0, 2 * np.pi, len(_BELL_RATIOS))
    x = sum(a * np.sin(2 * np.pi * r * f * t + p) * np.exp(-tau * rate * (0.7 + 0.3 * r))
            for r, a, p in zip(_BELL_RATIOS, _BELL_AMPS, phases))
    x = _fade(x, 0.002 if struck else 0.01)
    loud = 0.6 * dur  # the span where the fundamental is within 24 dB of its peak
    box = (0.0, loud) if struck else (dur - loud, dur)
    return x, [(*box, 0.45 * f, 3.1 * f)]


def church_bell(rng: np.random.Generator, dur: float) -> Event:
    return _bell_event(rng, dur, struck=True)


def singing_bowl(rng: np.random.Generator, dur: float) -> Event:
    return _bell_event(rng, dur, struck=False)


CLASSES: dict[str, Callable[[np.random.Generator, float], Event]] = {
    "clock_tick": clock_tick, "keyboard_typing": keyboard_typing,
    "door_knock": door_knock, "heartbeat": heartbeat,
    "whistle_rising": whistle_rising, "whistle_falling": whistle_falling,
    "rain": rain, "crackling_fire": crackling_fire,
    "church_bell": church_bell, "singing_bowl": singing_bowl,
}
_NAMES = list(CLASSES)
PAIRS: list[tuple[str, str]] = [(_NAMES[i], _NAMES[i + 1]) for i in range(0, len(_NAMES), 2)]


def _partner(label: int) -> int:
    return label ^ 1


# --- the distractor pool: sounds that belong to no class -----------------------------------

def babble(rng: np.random.Generator) -> Event:
    """Voice-like: a gliding harmonic source through formants that change every syllable."""
    dur = rng.uniform(0.6, 3.0)
    t = _t(dur)
    f0 = _log_uniform(rng, 95, 260) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * t))
    syllable = rng.uniform(0.15, 0.3)
    n_syl = int(np.ceil(dur / syllable))
    f1 = np.repeat(rng.uniform(300, 850, n_syl), int(syllable * SR) + 1)[: len(t)]
    f2 = np.repeat(rng.uniform(900, 2400, n_syl), int(syllable * SR) + 1)[: len(t)]
    f1, f2 = (_signal().savgol_filter(f, 2 * int(0.02 * SR) + 1, 1) for f in (f1, f2))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = np.zeros(len(t))
    for k in range(1, 25):
        fk = k * f0
        gain = np.exp(-0.5 * ((fk - f1) / 120) ** 2) + 0.6 * np.exp(-0.5 * ((fk - f2) / 200) ** 2) + 0.05 / k
        x += gain * np.sin(k * phase) * (fk < SR / 2)
    x *= np.abs(np.sin(np.pi * t / syllable)) ** 0.7  # syllabic rhythm
    return _fade(x, 0.02), [(0.0, dur, 80.0, 3000.0)]


def hum(rng: np.random.Generator) -> Event:
    """Mains hum: 50 or 60 Hz and its harmonics, steady."""
    dur = rng.uniform(1.5, 5.0)
    mains = 50.0 if rng.random() < 0.5 else 60.0
    amps = rng.uniform(0.2, 1.0, 6)
    x = _harmonic(np.full(len(_t(dur)), mains), amps)
    return _fade(x, 0.1), [(0.0, dur, 0.8 * mains, 6.5 * mains)]


def ratchet(rng: np.random.Generator) -> Event:
    """Dry broadband clicks in a fast train (a ratchet, a pen)."""
    n = int(rng.integers(4, 14))
    period = rng.uniform(0.015, 0.04)
    length = int(0.004 * SR)
    sos = _signal().butter(2, [1500, 12000], "bandpass", fs=SR, output="sos")
    x = _impulses(np.arange(n) * period, lambda i: rng.standard_normal(length) * np.exp(-np.arange(length) / 40),
                  n * period + 0.01)
    x = _signal().sosfilt(sos, x)
    return x, [(0.0, n * period + 0.005, 1500.0, 12000.0)]


def passing(rng: np.random.Generator) -> Event:
    """A vehicle passing: low noise swelling and fading, its band sliding down."""
    dur = rng.uniform(1.5, 4.0)
    n = int(dur * SR)
    cutoff = rng.uniform(400, 1500)
    x = _band_noise(n, 30, cutoff, rng, order=2)
    t = np.arange(n) / SR
    x *= np.exp(-0.5 * ((t - dur / 2) / (dur / 5)) ** 2)
    return x, [(0.1 * dur, 0.9 * dur, 20.0, 1.3 * cutoff)]


def beeps(rng: np.random.Generator) -> Event:
    """One to three steady electronic beeps."""
    f = _log_uniform(rng, 500, 3000)
    n = int(rng.integers(1, 4))
    beep_s, gap_s = rng.uniform(0.15, 0.5), rng.uniform(0.1, 0.3)
    t = _t(beep_s)
    tone = _fade(np.sin(2 * np.pi * f * t) + 0.2 * np.sin(4 * np.pi * f * t), 0.005)
    x = _impulses(np.arange(n) * (beep_s + gap_s), lambda i: tone, n * (beep_s + gap_s))
    return x, [(k * (beep_s + gap_s), k * (beep_s + gap_s) + beep_s, 0.9 * f, 2.2 * f) for k in range(n)]


DISTRACTORS: dict[str, Callable[[np.random.Generator], Event]] = {
    "babble": babble, "hum": hum, "ratchet": ratchet, "passing": passing, "beeps": beeps,
}


# --- scenes ----------------------------------------------------------------------------------

def pan_gains(pan: float) -> tuple[float, float]:
    """Constant-power (left, right) gains for a pan in [-1, 1] (-1 fully left)."""
    theta = (pan + 1) * np.pi / 4
    return float(np.cos(theta)), float(np.sin(theta))


def _room(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A synthetic room response: the direct path, then exponentially decaying noise."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(min(rt60, 0.6) * SR)
    t = np.arange(n) / SR
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * SR)] = 0.0  # the first reflection a few ms after the direct sound
    tail *= 10 ** (-rng.uniform(0, 10) / 20) / (np.sqrt(np.sum(tail**2)) + 1e-12)  # direct-to-reverberant 0-10 dB
    tail[0] = 1.0
    return tail, rt60


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def _peak_level(x: np.ndarray) -> float:
    """The amplitude of a sound's loudest log-mel cell (the models' own front end): how loud it looks."""
    return float(np.sqrt(mel_power(x.astype(np.float32), _MEL_CFG).max()) + 1e-12)


@dataclass
class Source:
    """One sound of a scene, as heard in the room (mono), with where it sits in the mix."""

    name: str
    kind: str  # "event" or "distractor"
    track: np.ndarray  # (N_SAMPLES,), reverberant, at its level in the mix before the final scaling
    pan: float
    boxes: list[tuple[float, float, float, float]]
    rel_db: float  # level of its loudest log-mel cell relative to the event's (each dry, alone)


@dataclass
class Scene:
    """A clip before mixing: its sources, background and final scale (see :func:`render_scene`)."""

    label: int
    sources: list[Source]
    background: np.ndarray  # (n_channels, N_SAMPLES)
    scale: float
    snr_db: float
    rt60_s: float
    stereo: bool
    meta: dict = field(default_factory=dict)

    def mix(self) -> np.ndarray:
        """np.ndarray [shape=(n_channels, N_SAMPLES)], float32."""
        out = self.background.copy()
        for s in self.sources:
            gains = pan_gains(s.pan) if self.stereo else (1.0,)
            out += np.stack([g * s.track for g in gains])
        return (out * self.scale).astype(np.float32)


def _place(x: np.ndarray, onset: int) -> np.ndarray:
    track = np.zeros(N_SAMPLES)
    end = min(N_SAMPLES, onset + len(x))
    track[onset:end] = x[: end - onset]
    return track


def _clip_boxes(boxes, onset_s: float, pad_s: float = 0.02) -> list[tuple[float, float, float, float]]:
    out = []
    for a, b, lo, hi in boxes:
        t0, t1 = onset_s + a, min(DURATION_S, onset_s + b + pad_s)
        if t0 < DURATION_S and t1 > t0:
            out.append((round(t0, 4), round(t1, 4), round(max(lo, 0.0), 1), round(min(hi, SR / 2), 1)))
    return out


def render_scene(label: int, index: int, seed: int = DEFAULT_SEED) -> Scene:
    """The sources of one demo clip, before mixing; :meth:`Scene.mix` gives its audio.

    Parameters
    ----------
    label : int
        Index into :data:`CLASSES`: the clip's true class.
    index : int
        Clip number within the class.
    seed : int
    """
    rng = np.random.default_rng([seed, label, index])
    room, rt60 = _room(rng)

    def in_room(x: np.ndarray) -> np.ndarray:
        return _signal().fftconvolve(x, room)[: len(x) + len(room) - 1]

    dur = _log_uniform(rng, 0.3, 4.0)
    event, rel_boxes = CLASSES[_NAMES[label]](rng, dur)
    event = event[: N_SAMPLES - 1]
    event_span = len(event)
    event = in_room(event / _peak_level(event))
    onset = int(rng.uniform(0, N_SAMPLES - event_span))
    sources = [Source(_NAMES[label], "event", _place(event, onset), 0.0, _clip_boxes(rel_boxes, onset / SR), 0.0)]

    n_distractors = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
    loud = rng.random() < LOUD_DISTRACTOR_SHARE
    top_db = rng.uniform(0.5, 6.0) if loud else rng.uniform(-15.0, -1.0)
    names = list(DISTRACTORS)
    for k in range(n_distractors):
        name = names[int(rng.integers(len(names)))]
        d, d_boxes = DISTRACTORS[name](rng)
        d = d[: N_SAMPLES - 1]
        span = len(d)
        rel_db = top_db if k == 0 else top_db - rng.uniform(3.0, 15.0)
        d = in_room(d / _peak_level(d)) * 10 ** (rel_db / 20)
        d_onset = int(rng.uniform(0, N_SAMPLES - span))
        sources.append(Source(name, "distractor", _place(d, d_onset), 0.0, _clip_boxes(d_boxes, d_onset / SR), rel_db))

    stereo = index % round(1 / STEREO_SHARE) == (label + seed) % round(1 / STEREO_SHARE)  # a quarter of each class
    n_channels = 2 if stereo else 1
    if stereo:  # the event to one side, the loudest distractor to the other, the rest near the centre
        side = 1.0 if rng.random() < 0.5 else -1.0
        sources[0].pan = side * rng.uniform(0.5, 1.0)
        sources[1].pan = -side * rng.uniform(0.5, 1.0)
        for s in sources[2:]:
            s.pan = rng.uniform(-0.3, 0.3)

    # Background: noise of a random colour at 0-15 dB under the event (RMS over the event's span).
    snr_db = rng.uniform(0.0, 15.0)
    colour = list(NOISE_COLOURS)[int(rng.integers(len(NOISE_COLOURS)))]
    event_rms = _rms(sources[0].track[onset:onset + event_span])
    background = np.stack([coloured_noise(N_SAMPLES, colour=colour, rng=rng) for _ in range(n_channels)])
    background *= event_rms * 10 ** (-snr_db / 20) / np.sqrt(np.mean(background**2))

    scene = Scene(label, sources, background, 1.0, snr_db, rt60, stereo)
    peak = float(np.max(np.abs(scene.mix())))
    scene.scale = rng.uniform(0.3, 0.9) / peak
    distractors = sources[1:]
    loudest = max(distractors, key=lambda s: s.rel_db)
    scene.meta = {
        "channels": n_channels,
        "event_pan": round(sources[0].pan, 4),
        "distractor_pan": round(loudest.pan, 4),
        "event_db": round(20 * np.log10(event_rms * scene.scale), 2),
        "loudest_distractor_rel_db": round(loudest.rel_db, 2),
        "snr_db": round(snr_db, 2),
        "rt60_s": round(rt60, 3),
    }
    return scene


def synth_clip(label: int, index: int, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, list[tuple]]:
    """One demo clip and its true class's event boxes.

    Returns
    -------
    audio : np.ndarray [shape=(n_channels, 220500)], float32, n_channels 1 or 2
    boxes : list of (t0_s, t1_s, f0_hz, f1_hz)
        The event's boxes, in seconds and Hz from the clip's start.
    """
    scene = render_scene(label, index, seed)
    return scene.mix(), list(scene.sources[0].boxes)


# --- the set ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Job:
    label: int  # true class
    index: int
    seed: int
    audio_dir: str
    given: int  # the label written to esc50.csv (differs from `label` for a flipped clip)
    uid: int
    render: Callable[[int, int, int], "Scene"] = render_scene  # (label, index, seed) -> Scene; module-level


def _filename(job: _Job) -> tuple[str, int]:
    fold = job.index % 5 + 1
    # ESC-50's {fold}-{clip id}-{take}-{target}.wav; the clip id is a shuffled number, so it tells nothing.
    return f"{fold}-{job.uid:05d}-A-{job.given}.wav", fold


def _write_one(job: _Job) -> tuple[str, int, _Job, list[tuple], dict]:
    scene = job.render(job.label, job.index, job.seed)
    name, fold = _filename(job)
    sf.write(os.path.join(job.audio_dir, name), scene.mix().T, SR, subtype="PCM_16")
    boxes = [(*b, s.kind, s.name) for s in scene.sources for b in s.boxes]
    return name, fold, job, boxes, scene.meta


def _jobs(seed: int, clips_per_class: int, audio_dir: str, render: Callable = render_scene) -> list[_Job]:
    """Every clip's true class, index, given label and clip id; ~3 % of labels flipped, spread over the folds."""
    n_classes = len(_NAMES)
    rng = np.random.default_rng([seed, 7919])
    pairs = [(label, i) for label in range(n_classes) for i in range(clips_per_class)]
    uids = rng.permutation(len(pairs))
    n_flip = int(round(FLIP_SHARE * len(pairs)))
    by_fold: dict[int, list[int]] = {}
    for k, (_, i) in enumerate(pairs):
        by_fold.setdefault(i % 5 + 1, []).append(k)
    for fold_list in by_fold.values():
        rng.shuffle(fold_list)
    flipped: dict[int, int] = {}
    folds = sorted(by_fold)
    for j in range(n_flip):  # fold by fold in turn
        k = by_fold[folds[j % len(folds)]].pop()
        label = pairs[k][0]
        # Half go to the pair's partner (the confusion a tired annotator makes), half anywhere.
        flipped[k] = _partner(label) if rng.random() < 0.5 else int(rng.choice([c for c in range(n_classes) if c != label]))
    return [_Job(label, i, seed, audio_dir, flipped.get(k, label), int(uids[k]), render)
            for k, (label, i) in enumerate(pairs)]


def make_demo_data(out: str | Path, *, seed: int = DEFAULT_SEED, clips_per_class: int = CLIPS_PER_CLASS,
                   workers: int | None = None, progress: Callable[[float], None] | None = None,
                   show_bar: bool = True, render: Callable[[int, int, int], Scene] = render_scene) -> Path:
    """Write the demo sound set in ESC-50's layout.

    Parameters
    ----------
    out : str or Path
        Folder to create (its ``audio/`` and ``meta/`` are replaced).
    seed : int
        The same seed gives byte-identical files.
    clips_per_class : int > 0
    workers : int or None
        Processes to use; ``None`` uses every core.
    progress : callable or None
        Called with the fraction done, in [0, 1] (the app's progress bar): 0 at once, then after each clip.
    show_bar : bool
        Show a terminal progress bar.
    render : callable
        ``(label, index, seed) -> Scene``, a module-level function (it crosses
        process boundaries); :func:`render_scene` by default, a variant's own
        (:mod:`core.audio.shortcut_data`) otherwise.

    Returns
    -------
    Path
        ``out``, holding ``audio/*.wav`` and ``meta/{esc50,boxes,scene,label_truth}.csv``.
    """
    if clips_per_class < 1:
        raise InputError("clips_per_class", f"must be at least 1, got {clips_per_class}")
    out = Path(out)
    audio_dir, meta_dir = out / "audio", out / "meta"
    for d in (audio_dir, meta_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    jobs = _jobs(seed, clips_per_class, str(audio_dir), render)
    workers = workers or os.cpu_count() or 1
    rows = []
    with tqdm(total=len(jobs), desc=f"demo data: {COMPILING}", unit="clip", disable=not show_bar) as bar:
        if progress is not None:
            progress(0.0)
        with _ticking(bar):  # numba compiles librosa's code once, here, before the workers would each compile it
            _compile_front_end()
        bar.set_description("demo data")
        with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
            for done, row in enumerate(pool.map(_write_one, jobs, chunksize=1), start=1):
                rows.append(row)
                bar.update(1)
                if progress is not None:
                    progress(done / len(jobs))
    rows.sort(key=lambda r: r[0])
    _write_csv(meta_dir / "esc50.csv", ["filename", "fold", "target", "category", "esc10", "src_file", "take"],
               [[name, fold, job.given, _NAMES[job.given], "False", f"{job.uid:05d}", "A"]
                for name, fold, job, _, _ in rows])
    _write_csv(meta_dir / "boxes.csv", ["filename", "t0_s", "t1_s", "f0_hz", "f1_hz", "kind", "source"],
               [[name, *box] for name, _, _, boxes, _ in rows for box in boxes])
    scene_cols = ["channels", "event_pan", "distractor_pan", "event_db", "loudest_distractor_rel_db", "snr_db", "rt60_s"]
    _write_csv(meta_dir / "scene.csv", ["filename", *scene_cols],
               [[name, *(meta[c] for c in scene_cols)] for name, _, _, _, meta in rows])
    _write_csv(meta_dir / "label_truth.csv",
               ["filename", "given_target", "given_category", "true_target", "true_category"],
               [[name, job.given, _NAMES[job.given], job.label, _NAMES[job.label]]
                for name, _, job, _, _ in rows if job.given != job.label])
    return out


COMPILING = "numba compiling librosa's code (first run on this machine only, about 30 s)"


def _compile_front_end() -> None:
    """One log-mel in this process: on a machine where numba has not yet compiled librosa's code, it does so now
    (about 30 s) and caches it, so the synthesis workers load it instead of each compiling it at once."""
    _peak_level(np.zeros(2048, dtype=np.float32))


@contextmanager
def _ticking(bar, every_s: float = 1.0):
    """Redraw a tqdm bar every ``every_s`` inside the block, so its clock moves while one long call runs."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(every_s):
            bar.refresh()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


class _Serial:
    """Stand-in for a process pool with one worker."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @staticmethod
    def map(fn, jobs, chunksize=1):
        return map(fn, jobs)


def default_demo_dir(seed: int = DEFAULT_SEED) -> Path:
    return cache_dir() / f"demo-v{VERSION}-seed{seed}"


def demo_ready(seed: int = DEFAULT_SEED) -> str | None:
    """The bundled demo set's folder when it is complete, else ``None`` (nothing is made)."""
    target = default_demo_dir(seed)
    return str(target) if (target / "meta" / "label_truth.csv").is_file() else None


def ensure_demo_data(*, seed: int = DEFAULT_SEED, progress: Callable[[float], None] | None = None) -> Path:
    """The bundled demo set's folder, synthesised first if it is missing (about 20 s on 2 cores).

    Generation goes to a temporary folder that is renamed when complete, so an
    interrupted run never leaves a half-written set behind.
    """
    target = default_demo_dir(seed)
    if demo_ready(seed) is not None:
        return target
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        make_demo_data(tmp, seed=seed, progress=progress, show_bar=progress is None)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "meta" / "label_truth.csv").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def configure(parser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="folder to write (default: the cache folder the explorer uses)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--clips-per-class", type=int, default=CLIPS_PER_CLASS)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-card", action="store_true", help="skip the difficulty card")


def run(args) -> int:
    import time

    start = time.perf_counter()
    if args.out is None and args.clips_per_class == CLIPS_PER_CLASS:
        out = ensure_demo_data(seed=args.seed)
    else:
        out = make_demo_data(args.out or default_demo_dir(args.seed), seed=args.seed,
                             clips_per_class=args.clips_per_class, workers=args.workers)
    n = len(list((out / "audio").glob("*.wav")))
    print(f"{n} clips of {len(_NAMES)} classes in {out} ({time.perf_counter() - start:.1f} s)")
    if not args.no_card:
        from core.audio.difficulty import ensure_card

        print(ensure_card(out).text)
    return 0
