"""A demo-set variant with a planted shortcut: the positive control for explanations.

Every clip of one class (:data:`SHORTCUT_CLASS`, ``singing_bowl``) carries a
short, quiet pure tone at one fixed frequency (:data:`TONE_HZ`), at a random
time, and that class's own event is turned down by :data:`EVENT_CUT_DB` (its
background noise and distractors are not), so the tone is the easiest cue the
class has. No other class ever carries the tone. A model trained on it learns
the shortcut; an explanation method that works should then point at the tone
(Adebayo et al. 2022, "Post hoc explanations may be ineffective for detecting
unknown spurious correlation", use such planted models as the positive control).

Everything else is the demo set (:mod:`core.audio.demo_data`): the same scenes, the
same folds, the same label flips. ``tone=False`` writes the same set with the
tone left out and nothing else changed (the same draws, the same final scale):
the ablation that shows whether a model uses the tone.

Besides the demo set's files, ``meta/shortcut.csv`` holds each toned clip's
tone box: ``filename, t0_s, t1_s, f0_hz, f1_hz``.

Examples
--------
``python -m core make-shortcut-data --out .cache/shortcut-seed0``
``python -m core make-shortcut-data --out .cache/shortcut-seed0-notone --no-tone``
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.audio.demo_data import (
    CLASSES,
    CLIPS_PER_CLASS,
    DEFAULT_SEED,
    DURATION_S,
    SR,
    Scene,
    Source,
    _fade,
    _peak_level,
    _place,
    make_demo_data,
    render_scene,
)
from core.errors import InputError

__all__ = ["SHORTCUT_CLASS", "TONE_HZ", "TONE_S", "TONE_DB", "EVENT_CUT_DB", "tone_box", "render_shortcut_scene",
           "render_no_tone_scene", "make_shortcut_data", "read_tone_boxes"]

SHORTCUT_CLASS = "singing_bowl"
TONE_HZ = 8000.0
TONE_S = 0.3
TONE_DB = -20.0  # the tone's loudest log-mel cell relative to the event's, before the event is cut
EVENT_CUT_DB = -12.0  # the shortcut class's event, turned down against its background and distractors
_BOX_HALF_HZ = 250.0  # half the tone box's height: one mel band or two at 8 kHz
_LABEL = list(CLASSES).index(SHORTCUT_CLASS)


def tone_box(onset_s: float) -> tuple[float, float, float, float]:
    """(t0_s, t1_s, f0_hz, f1_hz) of a tone starting at ``onset_s``."""
    return (round(onset_s, 4), round(min(DURATION_S, onset_s + TONE_S), 4), TONE_HZ - _BOX_HALF_HZ,
            TONE_HZ + _BOX_HALF_HZ)


def _tone_onset_s(index: int, seed: int) -> float:
    rng = np.random.default_rng([seed, _LABEL, index, 104729])  # apart from the scene's own draws
    return float(rng.uniform(0.0, DURATION_S - TONE_S))


def _render(label: int, index: int, seed: int, *, tone: bool) -> Scene:
    scene = render_scene(label, index, seed)
    if label != _LABEL:
        return scene
    event = scene.sources[0]
    event.track = event.track * 10 ** (EVENT_CUT_DB / 20)
    if tone:
        onset_s = _tone_onset_s(index, seed)
        t = np.arange(int(TONE_S * SR)) / SR
        y = _fade(np.sin(2 * np.pi * TONE_HZ * t), 0.01)
        y = y / _peak_level(y) * 10 ** (TONE_DB / 20)  # dry: the tone's cells sit exactly in its box
        scene.sources.append(Source("tone", "shortcut", _place(y, int(onset_s * SR)), event.pan,
                                    [tone_box(onset_s)], TONE_DB))
    return scene


def render_shortcut_scene(label: int, index: int, seed: int = DEFAULT_SEED) -> Scene:
    """One clip of the shortcut set: the demo scene, and for :data:`SHORTCUT_CLASS` the event cut and the tone added.

    Parameters
    ----------
    label, index, seed
        As in :func:`core.audio.demo_data.render_scene`.

    Returns
    -------
    Scene
        For the shortcut class, its last source is the tone (``kind="shortcut"``).
    """
    return _render(label, index, seed, tone=True)


def render_no_tone_scene(label: int, index: int, seed: int = DEFAULT_SEED) -> Scene:
    """The same clip without its tone (the ablation); every other draw and the final scale are unchanged."""
    return _render(label, index, seed, tone=False)


def make_shortcut_data(out: str | Path, *, tone: bool = True, seed: int = DEFAULT_SEED,
                       clips_per_class: int = CLIPS_PER_CLASS, workers: int | None = None,
                       show_bar: bool = True) -> Path:
    """Write the shortcut set (or, with ``tone=False``, its tone-free twin) in ESC-50's layout.

    Parameters
    ----------
    out : str or Path
        Folder to create (its ``audio/`` and ``meta/`` are replaced).
    tone : bool
        Plant the tone; False gives the ablation set.
    seed, clips_per_class, workers, show_bar
        As in :func:`core.audio.demo_data.make_demo_data`.

    Returns
    -------
    Path
        ``out``; with ``tone``, ``meta/shortcut.csv`` lists the tone boxes.
    """
    out = make_demo_data(out, seed=seed, clips_per_class=clips_per_class, workers=workers, show_bar=show_bar,
                         render=render_shortcut_scene if tone else render_no_tone_scene)
    rows = []
    if tone:  # make_demo_data wrote every source's boxes to boxes.csv; the tone's move to shortcut.csv
        boxes_path = out / "meta" / "boxes.csv"
        with open(boxes_path, newline="") as f:
            table = list(csv.reader(f))
        kind = table[0].index("kind")
        rows = [r[:5] for r in table[1:] if r[kind] == "shortcut"]
        with open(boxes_path, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows([table[0]] + [r for r in table[1:] if r[kind] != "shortcut"])
    with open(out / "meta" / "shortcut.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["filename", "t0_s", "t1_s", "f0_hz", "f1_hz"])
        w.writerows(rows)
    return out


def read_tone_boxes(root: str | Path) -> dict[str, list[tuple[float, float, float, float]]]:
    """``meta/shortcut.csv`` of a shortcut set: file name -> its tone boxes (empty dict for a tone-free set).

    Raises
    ------
    InputError
        When the folder has no ``meta/shortcut.csv`` (not a shortcut set).
    """
    path = Path(root) / "meta" / "shortcut.csv"
    if not path.is_file():
        raise InputError(path, "missing: not a shortcut set (python -m core make-shortcut-data writes one)")
    boxes: dict[str, list] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            boxes.setdefault(row["filename"], []).append(
                tuple(float(row[k]) for k in ("t0_s", "t1_s", "f0_hz", "f1_hz")))
    return boxes


def configure(parser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder to write")
    parser.add_argument("--no-tone", action="store_true", help="the same set without the tone (the ablation)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--clips-per-class", type=int, default=CLIPS_PER_CLASS)
    parser.add_argument("--workers", type=int, default=None)


def run(args) -> int:
    out = make_shortcut_data(args.out, tone=not args.no_tone, seed=args.seed, clips_per_class=args.clips_per_class,
                             workers=args.workers)
    n = len(list((out / "audio").glob("*.wav")))
    print(f"{n} clips in {out}; {SHORTCUT_CLASS}: event {EVENT_CUT_DB:+.0f} dB"
          + ("" if args.no_tone else f", tone {TONE_HZ:.0f} Hz for {TONE_S} s at {TONE_DB:+.0f} dB")
          )
    return 0
