import hashlib

import numpy as np

from core.audio import AudioConfig, frame_times_s, log_mel, mel_frequencies_hz
from core.datasets import load_mono, open_dataset
from core.demo_data import CLASSES, make_demo_data, synth_clip


def digest(folder):
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = make_demo_data(tmp_path / "a", seed=7, clips_per_class=2, workers=1, show_bar=False)
    b = make_demo_data(tmp_path / "b", seed=7, clips_per_class=2, workers=2, show_bar=False)
    c = make_demo_data(tmp_path / "c", seed=8, clips_per_class=2, workers=1, show_bar=False)
    assert digest(a) == digest(b) != digest(c)


def test_bundled_set_layout(demo_dir):
    ds = open_dataset(demo_dir)
    assert ds.layout == "esc50" and ds.classes == list(CLASSES) and len(ds.classes) >= 10
    assert len(ds.records) == 400 and not ds.skipped
    for fold in range(1, 6):
        labels = [r.label for r in ds.select(folds=[fold])]
        assert np.bincount(labels).tolist() == [8] * 10
    assert all(ds.boxes(r.clip_id) for r in ds.records)


def test_boxes_mark_where_the_event_is():
    """Inside the boxes, the defining event adds energy: the clip is louder there than without the event."""
    cfg = AudioConfig()
    times, freqs = frame_times_s(cfg.n_frames, cfg), mel_frequencies_hz(cfg)
    ratios = []
    for label in range(len(CLASSES)):
        audio, boxes = synth_clip(label, 3)
        X = log_mel(audio.mean(axis=0), cfg)
        inside = np.zeros_like(X, dtype=bool)
        for t0, t1, f0, f1 in boxes:
            inside[np.ix_((freqs >= f0) & (freqs <= f1), (times >= t0) & (times <= t1))] = True
        assert inside.any()
        ratios.append(X[inside].mean() - X[~inside].mean())
    assert np.mean(ratios) > 0.5 and min(ratios) > 0.0


def test_some_clips_are_stereo_with_the_event_panned(demo_dir):
    ds = open_dataset(demo_dir)
    import soundfile as sf

    stereo = [r for r in ds.records if sf.info(str(r.path)).channels == 2]
    assert 0.1 * len(ds.records) < len(stereo) < 0.4 * len(ds.records)
    y, _ = sf.read(str(stereo[0].path))
    left, right = np.sqrt((y**2).mean(axis=0))
    assert max(left, right) / min(left, right) > 1.5
    assert load_mono(stereo[0]).ndim == 1
