"""The shortcut set: one class carries a quiet tone at a fixed frequency; the tone-free twin differs only there."""

from __future__ import annotations

import csv

import numpy as np

from core.audio.demo_data import CLASSES, render_scene
from core.audio.shortcut_data import (SHORTCUT_CLASS, TONE_HZ, make_shortcut_data, read_tone_boxes, render_no_tone_scene,
                                render_shortcut_scene)

LABEL = list(CLASSES).index(SHORTCUT_CLASS)


def test_the_tone_is_the_only_difference_and_only_in_the_shortcut_class():
    toned, plain = render_shortcut_scene(LABEL, 3), render_no_tone_scene(LABEL, 3)
    tone = toned.sources[-1]
    assert tone.kind == "shortcut" and tone.boxes[0][2] < TONE_HZ < tone.boxes[0][3]
    difference = toned.mix() - plain.mix()
    assert np.allclose(difference[0], toned.scale * tone.track, atol=1e-6)  # nothing else moved
    t0, t1 = tone.boxes[0][:2]
    outside = np.ones(difference.shape[1], dtype=bool)
    outside[int(t0 * 44100):int(t1 * 44100) + 1] = False
    assert np.abs(difference[:, outside]).max() < 1e-6
    spectrum = np.abs(np.fft.rfft(difference[0]))
    assert abs(np.fft.rfftfreq(difference.shape[1], 1 / 44100)[spectrum.argmax()] - TONE_HZ) < 5
    # the class's own event is turned down against the demo scene; other classes are the demo's scenes
    assert np.abs(plain.sources[0].track).max() < 0.3 * np.abs(render_scene(LABEL, 3).sources[0].track).max()
    other = (LABEL + 1) % len(CLASSES)
    assert np.array_equal(render_shortcut_scene(other, 3).mix(), render_scene(other, 3).mix())


def test_the_set_lists_its_tone_boxes_apart_from_the_demo_boxes(tmp_path):
    out = make_shortcut_data(tmp_path / "s", clips_per_class=1, workers=1, show_bar=False)
    boxes = read_tone_boxes(out)
    with open(out / "meta" / "esc50.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    toned = {r["filename"] for r in rows if r["category"] == SHORTCUT_CLASS}
    assert set(boxes) == toned and all(len(b) == 1 for b in boxes.values())  # no flip among 10 clips
    with open(out / "meta" / "boxes.csv", newline="") as f:
        assert {r["kind"] for r in csv.DictReader(f)} == {"event", "distractor"}
