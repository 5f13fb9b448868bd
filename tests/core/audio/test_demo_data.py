import csv
import hashlib

import numpy as np
import pytest
import soundfile as sf

from core.audio.features import AudioConfig, fit_duration, mel_power
from core.data.datasets import load_mono, open_dataset
from core.audio.demo_data import (CLASSES, DURATION_S, PAIRS, SR, _filename, _jobs, make_demo_data, pan_gains,
                            read_label_truth, read_scene, render_scene)
from core.audio.difficulty import _cell_mask, ensure_card


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return make_demo_data(tmp_path_factory.mktemp("demo") / "s", seed=3, clips_per_class=4, workers=1, show_bar=False)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_demo_data(tmp_path / "a", seed=7, clips_per_class=2, workers=1, show_bar=False)
    b = make_demo_data(tmp_path / "b", seed=7, clips_per_class=2, workers=2, show_bar=False)
    c = make_demo_data(tmp_path / "c", seed=8, clips_per_class=2, workers=1, show_bar=False)
    assert digest(a) == digest(b) != digest(c)


def test_classes_come_in_pairs_and_the_names_say_what_they_are():
    assert len(CLASSES) == 10 and len(PAIRS) == 5
    assert {name for pair in PAIRS for name in pair} == set(CLASSES)


def test_bundled_set_layout_with_a_few_flipped_labels_spread_over_the_folds(demo_dir):
    ds = open_dataset(demo_dir)
    assert ds.layout == "esc50" and ds.classes == list(CLASSES)
    assert len(ds.records) == 600 and not ds.skipped
    truth = read_label_truth(demo_dir)
    assert 12 <= len(truth) <= 24  # about 3 %
    flipped_folds = {r.fold for r in ds.records if r.clip_id in truth}
    assert flipped_folds == {1, 2, 3, 4, 5}
    for fold in range(1, 6):  # every class in every fold, 12 clips each before the flips
        true = [truth.get(r.clip_id, r.label) for r in ds.select(folds=[fold])]
        assert np.bincount(true, minlength=10).tolist() == [12] * 10
    assert all(ds.boxes(r.clip_id) and ds.distractor_boxes(r.clip_id) for r in ds.records)


def test_a_flipped_clip_carries_the_wrong_label_and_the_true_class_sound(small):
    ds = open_dataset(small)
    truth = read_label_truth(small)
    assert truth, "40 clips hold one flipped label"
    jobs = {_filename(job)[0]: job for job in _jobs(3, 4, "")}
    for name, true_target in truth.items():
        record = ds.record(name)
        assert record.label != true_target
        job = jobs[name]
        assert job.label == true_target and job.given == record.label
        written, sr = sf.read(str(record.path), always_2d=True)
        rendered = render_scene(true_target, job.index, seed=3).mix().T
        assert sr == SR and np.max(np.abs(written - rendered)) < 2 / 32768  # 16-bit rounding only
    # A label error never shows in the file name or clip id: both carry the given label only.
    for r in ds.records:
        assert r.clip_id.endswith(f"-{r.label}.wav")


def test_every_box_lies_inside_its_clip(small):
    ds = open_dataset(small)
    with open(small / "meta" / "boxes.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {row["kind"] for row in rows} == {"event", "distractor"}
    for row in rows:
        t0, t1, f0, f1 = (float(row[k]) for k in ("t0_s", "t1_s", "f0_hz", "f1_hz"))
        assert 0.0 <= t0 < t1 <= DURATION_S and 0.0 <= f0 < f1 <= SR / 2, row
        assert row["source"]
    for r in ds.records:
        assert ds.boxes(r.clip_id) and ds.distractor_boxes(r.clip_id)


def test_event_boxes_hold_most_of_the_events_own_energy():
    """The event alone, through the models' front end: its energy lies in its boxes, not spread elsewhere."""
    cfg = AudioConfig()
    n = cfg.hop_length * (cfg.n_frames - 1)
    for label in range(len(CLASSES)):
        for index in (1, 2):
            scene = render_scene(label, index)
            power = mel_power(fit_duration(scene.sources[0].track.astype(np.float32), n), cfg)
            from core.data.datasets import Box

            inside = _cell_mask([Box(*b) for b in scene.sources[0].boxes], power.shape, cfg)
            share = power[inside].sum() / power.sum()
            assert share > 0.5, (list(CLASSES)[label], index, share)


def test_stereo_pans_match_the_metadata_measured_from_the_audio(small):
    """Each channel of a stereo file, fitted by least squares on the scene's sources, gives back their pans."""
    scene_meta = read_scene(small)
    truth = read_label_truth(small)
    ds = open_dataset(small)
    jobs = {_filename(job)[0]: job for job in _jobs(3, 4, "")}
    stereo = [r for r in ds.records if scene_meta[r.clip_id]["channels"] == 2]
    assert len(stereo) == 10  # a quarter of 40
    for r in stereo:
        job = jobs[r.clip_id]
        scene = render_scene(truth.get(r.clip_id, r.label), job.index, seed=3)
        written, _ = sf.read(str(r.path), always_2d=True)  # (N, 2)
        pans = []
        for ch in range(2):
            A = np.stack([s.track * scene.scale for s in scene.sources] + [scene.background[ch] * scene.scale], axis=1)
            gains, *_ = np.linalg.lstsq(A, written[:, ch], rcond=None)
            pans.append(gains[: len(scene.sources)])
        left, right = pans
        measured = [4 / np.pi * np.arctan2(g_r, g_l) - 1 for g_l, g_r in zip(left, right)]
        meta = scene_meta[r.clip_id]
        assert measured[0] == pytest.approx(meta["event_pan"], abs=0.02)
        loudest = 1 + int(np.argmax([s.rel_db for s in scene.sources[1:]]))
        assert measured[loudest] == pytest.approx(meta["distractor_pan"], abs=0.02)
        assert np.sign(meta["event_pan"]) == -np.sign(meta["distractor_pan"]) and abs(meta["event_pan"]) >= 0.5
    assert pan_gains(-1.0) == pytest.approx((1.0, 0.0)) and pan_gains(1.0) == pytest.approx((0.0, 1.0), abs=1e-12)


def test_a_pair_differs_in_temporal_order_only():
    """Rising and falling whistles, struck and swelling bells: the same frames in another order."""
    cfg = AudioConfig()
    rng_pairs = [("whistle_rising", "whistle_falling"), ("church_bell", "singing_bowl")]
    names = list(CLASSES)
    for a, b in rng_pairs:
        xa, _ = CLASSES[a](np.random.default_rng(5), 1.5)
        xb, _ = CLASSES[b](np.random.default_rng(5), 1.5)
        pa, pb = (np.sort(mel_power(x.astype(np.float32), cfg), axis=1) for x in (xa, xb))
        assert pa.shape == pb.shape and names.index(a) ^ 1 == names.index(b)
        # Per band, the sorted frame energies (all a per-band statistic can see) agree closely.
        assert np.abs(np.log10(pa[:, 5:-5] + 1e-9) - np.log10(pb[:, 5:-5] + 1e-9)).mean() < 0.35


def test_difficulty_card_of_the_default_set_meets_the_benchmark_targets(demo_dir):
    card = ensure_card(demo_dir, progress=False)
    assert max(card.probes.values()) <= 0.60, card.text
    assert card.loudest_in_event <= 0.50, card.text
    assert card.loud_distractor_share >= 0.5, card.text
    assert 0.0 < card.event_cell_share < 0.2 and card.stereo_share == pytest.approx(0.25)
    assert "linear probes" in card.text


def test_the_models_hear_stereo_clips_as_mono(demo_dir):
    ds = open_dataset(demo_dir)
    stereo = [r for r in ds.records if sf.info(str(r.path)).channels == 2]
    assert load_mono(stereo[0]).ndim == 1
