import numpy as np
import pytest
import soundfile as sf

from core.audio import AudioConfig
from core.datasets import load_features, open_dataset
from core.errors import InputError


def clip(path, seconds=0.5, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * sr))).astype(np.float32), sr)


def esc50(root, rows):
    (root / "meta").mkdir(parents=True)
    (root / "audio").mkdir()
    with open(root / "meta" / "esc50.csv", "w") as f:
        f.write("filename,fold,target,category,esc10,src_file,take\n")
        for name, fold, target, cat in rows:
            f.write(f"{name},{fold},{target},{cat},False,x,A\n")
    return root


def test_esc50_layout_reports_absent_files(tmp_path):
    root = esc50(tmp_path / "esc", [("1-a.wav", 1, 0, "dog"), ("2-b.wav", 2, 1, "cat"), ("3-c.wav", 3, 1, "cat")])
    clip(root / "audio" / "1-a.wav")
    clip(root / "audio" / "2-b.wav")
    ds = open_dataset(root)
    assert ds.classes == ["dog", "cat"] and [r.clip_id for r in ds.records] == ["1-a.wav", "2-b.wav"]
    assert ds.skipped == [("3-c.wav", "listed in the meta file but absent")]
    assert [r.clip_id for r in ds.select(folds=[2])] == ["2-b.wav"]


def test_folder_of_classes(tmp_path):
    for cls in ("bird", "rain"):
        for i in range(6):
            clip(tmp_path / cls / f"{i}.wav")
    (tmp_path / "rain" / "notes.txt").write_text("not audio")
    ds = open_dataset(tmp_path)
    assert ds.layout == "folders" and ds.classes == ["bird", "rain"] and len(ds.records) == 12
    assert sorted({r.fold for r in ds.records}) == [1, 2, 3, 4, 5]
    X = load_features(ds.records[:2], AudioConfig(), progress=False)
    assert X.shape == (2, 128, 431) and np.isfinite(X).all()


@pytest.mark.parametrize("make,words", [
    (lambda p: p / "missing", "not found"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "ESC-50's layout"),
    (lambda p: (p / "m" / "meta").mkdir(parents=True) or p / "m", "audio"),
    (lambda p: [(p / "n" / d).mkdir(parents=True) for d in ("audio", "meta")] and p / "n", "esc50.csv"),
])
def test_wrong_layout_names_what_is_missing(tmp_path, make, words):
    root = make(tmp_path)
    with pytest.raises(InputError, match=words) as info:
        open_dataset(root)
    assert str(root.name) in str(info.value)


def test_all_absent_is_an_error(tmp_path):
    root = esc50(tmp_path / "esc", [("1-a.wav", 1, 0, "dog")])
    with pytest.raises(InputError, match="no audio clips"):
        open_dataset(root)


def test_unreadable_files_are_skipped_with_the_reason(tmp_path):
    for i in range(5):
        clip(tmp_path / "bird" / f"{i}.wav")
    (tmp_path / "bird" / "empty.wav").write_bytes(b"")
    (tmp_path / "bird" / "text.wav").write_text("not audio at all")
    (tmp_path / "bird" / "trunc.wav").write_bytes((tmp_path / "bird" / "0.wav").read_bytes()[:20])
    ds = open_dataset(tmp_path)
    assert len(ds.records) == 5
    reasons = dict(ds.skipped)
    assert set(reasons) == {"bird/empty.wav", "bird/text.wav", "bird/trunc.wav"}
    assert "empty" in reasons["bird/empty.wav"] and "not a readable audio file" in reasons["bird/text.wav"]
    assert len(open_dataset(tmp_path, check_files=False).records) == 8
