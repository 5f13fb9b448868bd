"""The bundled demo sound set, synthesised by our own code, with ground-truth boxes.

Ten classes of environmental-like sounds, 40 clips each, 5 s, five folds, in
ESC-50's layout. Each clip has one defining event at a random onset and level,
over background noise of a random colour, with distractor events from other
classes at a lower level; a quarter of the clips are stereo with the defining
event panned to one side. For every clip, the time-frequency boxes (s, Hz) of
its defining event are written to ``meta/boxes.csv``, so explanations can be
checked against where the event really is.

The set is a pure function of the seed: the same seed gives the same bytes.
"""

from __future__ import annotations

import csv
import os
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
from scipy import signal
from tqdm.auto import tqdm

from core.augment import NOISE_COLOURS, coloured_noise
from core.errors import InputError
from core.paths import cache_dir

__all__ = ["CLASSES", "SR", "DURATION_S", "make_demo_data", "ensure_demo_data", "configure", "run"]

SR = 44100
DURATION_S = 5.0
N_SAMPLES = int(SR * DURATION_S)
DEFAULT_SEED = 0
CLIPS_PER_CLASS = 40
STEREO_SHARE = 0.25
VERSION = 1  # bump when the synthesis changes, so cached copies are rebuilt

# An event is (waveform, boxes), boxes as (t0_s, t1_s, f0_hz, f1_hz) relative to the event's start.
Event = tuple[np.ndarray, list[tuple[float, float, float, float]]]


def _t(duration_s: float) -> np.ndarray:
    return np.arange(int(duration_s * SR)) / SR


def _band_noise(n: int, lo_hz: float, hi_hz: float, rng: np.random.Generator, order: int = 4) -> np.ndarray:
    sos = signal.butter(order, [lo_hz, min(hi_hz, SR / 2 - 100)], btype="bandpass", fs=SR, output="sos")
    x = signal.sosfilt(sos, rng.standard_normal(n))
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _fade(x: np.ndarray, fade_s: float = 0.01) -> np.ndarray:
    k = min(int(fade_s * SR), len(x) // 2)
    if k > 0:
        ramp = np.linspace(0.0, 1.0, k)
        x[:k] *= ramp
        x[-k:] *= ramp[::-1]
    return x


def _harmonic(f0: np.ndarray, amps) -> np.ndarray:
    """Sum of harmonics of a time-varying fundamental f0 (Hz per sample)."""
    phase = 2 * np.pi * np.cumsum(f0) / SR
    return sum(a * np.sin(k * phase) * (k * f0 < SR / 2) for k, a in enumerate(amps, start=1))


def siren(rng: np.random.Generator) -> Event:
    dur = rng.uniform(1.5, 3.0)
    t = _t(dur)
    lo, hi = rng.uniform(600, 800), rng.uniform(1300, 1700)
    rate = rng.uniform(0.8, 2.0)  # wails per second
    f0 = lo + (hi - lo) * 0.5 * (1 - np.cos(2 * np.pi * rate * t))
    x = _fade(_harmonic(f0, [1.0, 0.5, 0.25]))
    return x, [(0.0, dur, 0.9 * lo, 3.1 * hi)]


def dog_bark(rng: np.random.Generator) -> Event:
    parts, boxes, t0 = [], [], 0.0
    for _ in range(int(rng.integers(2, 5))):
        dur = rng.uniform(0.12, 0.25)
        t = _t(dur)
        f_start = rng.uniform(450, 700)
        f0 = f_start * (1.0 - 0.35 * t / dur)
        env = np.sin(np.pi * t / dur) ** 0.5 * np.exp(-3 * t / dur)
        voice = _harmonic(f0, [1.0, 0.8, 0.6, 0.5, 0.35, 0.25, 0.15])
        x = env * (voice + 0.3 * _band_noise(len(t), 600, 3000, rng)[: len(t)])
        gap = rng.uniform(0.15, 0.45)
        parts += [x, np.zeros(int(gap * SR))]
        boxes.append((t0, t0 + dur, 0.6 * f_start, 3800.0))
        t0 += dur + gap
    return np.concatenate(parts[:-1]), boxes


def rain(rng: np.random.Generator) -> Event:
    dur = rng.uniform(2.0, 3.5)
    n = int(dur * SR)
    hiss = _band_noise(n, 2000, 9000, rng)
    drops = np.zeros(n)
    for i in rng.integers(0, n - 400, size=int(dur * rng.uniform(40, 80))):
        drops[i : i + 400] += rng.uniform(0.5, 2.0) * np.exp(-np.arange(400) / 40) * rng.standard_normal(400)
    x = 0.6 * hiss + signal.sosfilt(signal.butter(2, 1500, "highpass", fs=SR, output="sos"), drops)
    env = np.minimum(1.0, np.minimum(np.arange(n), n - np.arange(n)) / (0.3 * SR))
    return x * env, [(0.0, dur, 1500.0, 10000.0)]


def clock_tick(rng: np.random.Generator) -> Event:
    dur = rng.uniform(2.0, 3.5)
    n = int(dur * SR)
    x = np.zeros(n)
    period = rng.uniform(0.25, 0.5)
    ring_hz = rng.uniform(2500, 4000)
    tick_t = np.arange(int(0.03 * SR)) / SR
    tick = np.sin(2 * np.pi * ring_hz * tick_t) * np.exp(-tick_t / 0.004)
    for k, start in enumerate(np.arange(0.02, dur - 0.04, period)):
        i = int(start * SR)
        x[i : i + len(tick)] += tick * (1.0 if k % 2 == 0 else 0.7)
    return x, [(0.0, dur, 0.6 * ring_hz, 1.6 * ring_hz)]


def engine(rng: np.random.Generator) -> Event:
    dur = rng.uniform(2.0, 3.5)
    t = _t(dur)
    f0 = rng.uniform(35, 60) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t))
    x = _harmonic(f0, [1.0, 0.9, 0.7, 0.6, 0.45, 0.35, 0.25, 0.2, 0.15, 0.1])
    x *= 1 + 0.3 * np.sin(2 * np.pi * rng.uniform(6, 12) * t)  # cylinder firing flutter
    x += 0.2 * _band_noise(len(t), 30, 400, rng)
    return _fade(x, 0.2), [(0.0, dur, 20.0, 650.0)]


def bird_chirp(rng: np.random.Generator) -> Event:
    parts, boxes, t0 = [], [], 0.0
    for _ in range(int(rng.integers(3, 7))):
        dur = rng.uniform(0.05, 0.15)
        t = _t(dur)
        f_lo, f_hi = rng.uniform(2500, 3500), rng.uniform(5000, 7000)
        if rng.random() < 0.5:
            f_lo, f_hi = f_hi, f_lo
        f = f_lo + (f_hi - f_lo) * (t / dur) ** 2
        x = np.sin(2 * np.pi * np.cumsum(f) / SR) * np.sin(np.pi * t / dur)
        gap = rng.uniform(0.05, 0.3)
        parts += [x, np.zeros(int(gap * SR))]
        boxes.append((t0, t0 + dur, 0.9 * min(f_lo, f_hi), 1.1 * max(f_lo, f_hi)))
        t0 += dur + gap
    return np.concatenate(parts[:-1]), boxes


def church_bell(rng: np.random.Generator) -> Event:
    f = rng.uniform(350, 700)
    ratios, amps = [0.5, 1.0, 1.19, 1.5, 2.0, 2.51, 3.0], [0.6, 1.0, 0.7, 0.5, 0.4, 0.25, 0.2]
    dur = rng.uniform(1.5, 2.5)
    t = _t(dur)
    x = sum(a * np.sin(2 * np.pi * r * f * t) * np.exp(-t * (1.2 + r)) for r, a in zip(ratios, amps))
    return _fade(x, 0.002), [(0.0, min(dur, 1.5), 0.45 * f, 3.1 * f)]


def crackling_fire(rng: np.random.Generator) -> Event:
    dur = rng.uniform(2.0, 3.5)
    n = int(dur * SR)
    x = 0.15 * _band_noise(n, 40, 300, rng)
    crackle_len = int(0.006 * SR)
    for i in rng.integers(0, n - crackle_len, size=int(dur * rng.uniform(12, 25))):
        burst = rng.standard_normal(crackle_len) * np.exp(-np.arange(crackle_len) / (0.0015 * SR))
        x[i : i + crackle_len] += rng.uniform(1.0, 4.0) * burst
    x = signal.sosfilt(signal.butter(2, [400, 7000], "bandpass", fs=SR, output="sos"), x)
    return x, [(0.0, dur, 400.0, 7000.0)]


def wind(rng: np.random.Generator) -> Event:
    dur = rng.uniform(2.0, 3.5)
    n = int(dur * SR)
    t = np.arange(n) / SR
    x = _band_noise(n, 150, 1200, rng, order=2)
    swell = 0.5 * (1 - np.cos(2 * np.pi * t / dur)) * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 1.5) * t))
    return x * swell, [(0.0, dur, 120.0, 1300.0)]


def door_knock(rng: np.random.Generator) -> Event:
    parts, boxes, t0 = [], [], 0.0
    f = rng.uniform(100, 220)
    for _ in range(int(rng.integers(2, 6))):
        dur = 0.12
        t = _t(dur)
        x = np.sin(2 * np.pi * f * t) * np.exp(-t / 0.025) + 0.3 * np.sin(2 * np.pi * 2.7 * f * t) * np.exp(-t / 0.01)
        x[: int(0.003 * SR)] += 0.5 * rng.standard_normal(int(0.003 * SR))
        gap = rng.uniform(0.12, 0.3)
        parts += [x, np.zeros(int(gap * SR))]
        boxes.append((t0, t0 + 0.08, 0.7 * f, 3.0 * f))
        t0 += dur + gap
    return np.concatenate(parts[:-1]), boxes


CLASSES: dict[str, Callable[[np.random.Generator], Event]] = {
    "siren": siren, "dog_bark": dog_bark, "rain": rain, "clock_tick": clock_tick, "engine": engine,
    "bird_chirp": bird_chirp, "church_bell": church_bell, "crackling_fire": crackling_fire,
    "wind": wind, "door_knock": door_knock,
}
_NAMES = list(CLASSES)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)) + 1e-12)


def _place(track: np.ndarray, x: np.ndarray, onset: int) -> None:
    end = min(len(track), onset + len(x))
    track[onset:end] += x[: end - onset]


def synth_clip(label: int, index: int, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, list[tuple]]:
    """One demo clip and its ground-truth boxes.

    Parameters
    ----------
    label : int
        Index into :data:`CLASSES`.
    index : int
        Clip number within the class.
    seed : int

    Returns
    -------
    audio : np.ndarray [shape=(n_channels, 220500)], float32, n_channels 1 or 2
    boxes : list of (t0_s, t1_s, f0_hz, f1_hz)
        The defining event's boxes, in seconds and Hz from the clip's start.
    """
    rng = np.random.default_rng([seed, label, index])
    event, rel_boxes = CLASSES[_NAMES[label]](rng)
    event = event[:N_SAMPLES] / _rms(event)
    onset_s = rng.uniform(0.0, max(0.0, DURATION_S - len(event) / SR))
    event_gain = 10 ** (rng.uniform(-22, -14) / 20)

    # Background: noise of a random colour, 15 to 30 dB under the event.
    colour = list(NOISE_COLOURS)[int(rng.integers(len(NOISE_COLOURS)))]
    background = coloured_noise(N_SAMPLES, colour=colour, rng=rng) * event_gain * 10 ** (-rng.uniform(15, 30) / 20)

    # Distractors: events of other classes, 10 to 20 dB under the defining one.
    distract = np.zeros(N_SAMPLES)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        other = int(rng.choice([k for k in range(len(_NAMES)) if k != label]))
        d, _ = CLASSES[_NAMES[other]](rng)
        d = d[:N_SAMPLES] / _rms(d) * event_gain * 10 ** (-rng.uniform(10, 20) / 20)
        _place(distract, d, int(rng.uniform(0, max(1.0, N_SAMPLES - len(d)))))

    main = np.zeros(N_SAMPLES)
    _place(main, event * event_gain, int(onset_s * SR))
    if rng.random() < STEREO_SHARE:
        near, far = 1.0, rng.uniform(0.1, 0.3)  # the defining event panned to one side
        gains = (near, far) if rng.random() < 0.5 else (far, near)
        audio = np.stack([g * main + background + distract for g in gains])
    else:
        audio = (main + background + distract)[None, :]
    peak = np.max(np.abs(audio))
    audio = audio * (min(0.9, rng.uniform(0.3, 0.9)) / peak)

    boxes = [(round(onset_s + a, 4), round(min(DURATION_S, onset_s + b), 4), round(lo, 1), round(min(hi, SR / 2), 1))
             for a, b, lo, hi in rel_boxes if onset_s + a < DURATION_S]
    return audio.astype(np.float32), boxes


def _filename(label: int, index: int) -> tuple[str, int]:
    fold = index % 5 + 1
    return f"{fold}-{label:02d}{index:03d}-A-{label}.wav", fold


def _write_one(job: tuple[int, int, int, str]) -> tuple[str, int, int, list[tuple]]:
    label, index, seed, audio_dir = job
    audio, boxes = synth_clip(label, index, seed)
    name, fold = _filename(label, index)
    sf.write(os.path.join(audio_dir, name), audio.T, SR, subtype="PCM_16")
    return name, fold, label, boxes


def make_demo_data(out: str | Path, *, seed: int = DEFAULT_SEED, clips_per_class: int = CLIPS_PER_CLASS,
                   workers: int | None = None, progress: Callable[[float], None] | None = None,
                   show_bar: bool = True) -> Path:
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
        Called with the fraction done, in [0, 1] (the app's progress bar).
    show_bar : bool
        Show a terminal progress bar.

    Returns
    -------
    Path
        ``out``, holding ``audio/*.wav``, ``meta/esc50.csv`` and ``meta/boxes.csv``.
    """
    if clips_per_class < 1:
        raise InputError("clips_per_class", f"must be at least 1, got {clips_per_class}")
    out = Path(out)
    audio_dir, meta_dir = out / "audio", out / "meta"
    for d in (audio_dir, meta_dir):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    jobs = [(label, i, seed, str(audio_dir)) for label in range(len(_NAMES)) for i in range(clips_per_class)]
    workers = workers or os.cpu_count() or 1
    rows = []
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else _Serial() as pool:
        bar = tqdm(pool.map(_write_one, jobs, chunksize=4), total=len(jobs), desc="demo data",
                   unit="clip", disable=not show_bar)
        for done, row in enumerate(bar, start=1):
            rows.append(row)
            if progress is not None:
                progress(done / len(jobs))
    rows.sort(key=lambda r: r[0])
    with open(meta_dir / "esc50.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["filename", "fold", "target", "category", "esc10", "src_file", "take"])
        for name, fold, label, _ in rows:
            w.writerow([name, fold, label, _NAMES[label], "False", name[2:7], "A"])
    with open(meta_dir / "boxes.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["filename", "t0_s", "t1_s", "f0_hz", "f1_hz"])
        for name, _, _, boxes in rows:
            w.writerows([name, *box] for box in boxes)
    return out


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


def ensure_demo_data(*, seed: int = DEFAULT_SEED, progress: Callable[[float], None] | None = None) -> Path:
    """The bundled demo set's folder, synthesised first if it is missing (about 20 s on 2 cores).

    Generation goes to a temporary folder that is renamed when complete, so an
    interrupted run never leaves a half-written set behind.
    """
    target = default_demo_dir(seed)
    if (target / "meta" / "boxes.csv").is_file():
        return target
    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        make_demo_data(tmp, seed=seed, progress=progress, show_bar=progress is None)
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "meta" / "boxes.csv").is_file():
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
    return 0
