import numpy as np
import pytest
import soundfile as sf

from core.audio.features import AudioConfig
from core.data.datasets import LAYOUT_NEEDS, load_features, open_dataset
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
    (lambda p: (p / "empty").mkdir() or p / "empty", "matches no dataset layout"),
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


def urbansound8k(root, rows):
    (root / "metadata").mkdir(parents=True)
    with open(root / "metadata" / "UrbanSound8K.csv", "w") as f:
        f.write("slice_file_name,fsID,start,end,salience,fold,classID,class\n")
        for name, fold, class_id, cls in rows:
            f.write(f"{name},1,0.0,0.5,1,{fold},{class_id},{cls}\n")
            clip(root / "audio" / f"fold{fold}" / name)
    return root


def tiny_checkpoint(folder, classes, meta=None):
    import torch

    from core.models.checkpoint import save_checkpoint
    from core.models import build_model

    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 4, 4, 4], "head": [4]}, n_classes=len(classes))
    cfg = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=128, n_frames=64)
    return save_checkpoint(folder, model, cfg, classes, meta)


def evaluates(capsys, checkpoint, data, fold) -> str:
    from core.cli import main

    assert main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--fold", str(fold),
                 "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "accuracy" in out.out
    return out.err


def test_urbansound8k_layout_opens_and_evaluates(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    rows = [(f"{i}-{c}.wav", 1 + i % 10, c, ["dog_bark", "siren"][c]) for i in range(10) for c in (0, 1)]
    root = urbansound8k(tmp_path / "UrbanSound8K", rows)
    (root / "audio" / "fold3" / "2-1.wav").unlink()
    ds = open_dataset(root)
    assert ds.layout == "urbansound8k" and ds.classes == ["dog_bark", "siren"]
    assert ds.folds == list(range(1, 11))
    assert ds.record("fold7/6-1.wav").path == root / "audio" / "fold7" / "6-1.wav"
    assert ds.skipped == [("fold3/2-1.wav", "listed in the metadata but absent")]
    assert ds.describe() == "UrbanSound8K layout: 19 clips, 2 classes, folds 1-10 (1 files skipped)"
    err = evaluates(capsys, tiny_checkpoint(tmp_path / "ckpt", ds.classes), root, 7)
    assert "UrbanSound8K layout" in err


def test_csv_dataset_opens_and_evaluates_with_or_without_folds(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    for i in range(10):
        clip(tmp_path / "data" / "clips" / f"{i}.wav")
    (tmp_path / "data" / "list.csv").write_text("path,label,fold\n" + "".join(
        f"clips/{i}.wav,{'cat' if i % 2 else 'dog'},{1 + i % 2}\n" for i in range(10)) + "clips/gone.wav,dog,1\n")
    ds = open_dataset(tmp_path / "data")  # the folder's one CSV with a path column
    assert ds.layout == "csv" and ds.classes == ["cat", "dog"]
    assert [r.fold for r in ds.records[:3]] == [1, 2, 1]
    assert ds.skipped == [("clips/gone.wav", "listed in the CSV but absent")]
    assert "a CSV of paths and labels layout: 10 clips" in ds.describe()
    err = evaluates(capsys, tiny_checkpoint(tmp_path / "ckpt", ds.classes), tmp_path / "data" / "list.csv", 2)
    assert "CSV" in err

    # several labels per clip, no fold column: folds dealt in turn within each class
    (tmp_path / "multi.csv").write_text("path,labels\n" + "".join(
        f"data/clips/{i}.wav,{'dog;cat' if i < 3 else 'cat'}\n" for i in range(10)))
    multi = open_dataset(tmp_path / "multi.csv")
    assert multi.classes == ["cat", "dog"]
    assert multi.records[0].labels == ("dog", "cat") and multi.records[0].label == 1 and multi.records[5].labels == ("cat",)
    assert multi.records[0].label_set == ("dog", "cat") and ds.records[0].label_set == (ds.records[0].category,)
    assert [r.fold for r in multi.records if r.category == "cat"] == [1, 2, 3, 4, 5, 1, 2]


def test_bad_csv_datasets_are_input_errors(tmp_path):
    clip(tmp_path / "a.wav")
    (tmp_path / "one.csv").write_text("path,category\na.wav,x\n")
    with pytest.raises(InputError, match="label"):
        open_dataset(tmp_path / "one.csv")
    (tmp_path / "one.csv").write_text("path,label\na.wav,\n")
    with pytest.raises(InputError, match="no label"):
        open_dataset(tmp_path / "one.csv")
    (tmp_path / "one.csv").write_text("path,label\na.wav,x\n")
    (tmp_path / "two.csv").write_text("path,label\na.wav,y\n")
    with pytest.raises(InputError, match="2 CSV files"):
        open_dataset(tmp_path)
    with pytest.raises(InputError, match="not a folder or a .csv"):
        open_dataset(tmp_path / "a.wav")


def test_labels_csv_beside_audio_opens_as_the_csv_with_its_metadata_and_the_checkpoints_fold(tmp_path, capsys,
                                                                                              monkeypatch):
    """The README's own CSV layout, ``labels.csv`` beside ``audio/``: not taken for ESC-50 (it once was)."""
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "digits"
    rows = [(f"audio/{s}_{d}.wav", ["zero", "one"][d], 1 + s, f"spk{s}") for s in range(3) for d in (0, 1)]
    for path, *_ in rows:
        clip(root / path)
    (root / "labels.csv").write_text("path,label,fold,speaker\n" + "".join(f"{p},{c},{f},{s}\n" for p, c, f, s in rows))
    ds = open_dataset(root)
    assert ds.layout == "csv" and ds.classes == ["one", "zero"] and ds.folds == [1, 2, 3]
    assert ds.metadata_columns == ["speaker"] and ds.record("audio/2_1.wav").metadata == {"speaker": "spk2"}
    # evaluate without --fold scores the checkpoint's own test fold (3 here), not 5
    from core.cli import main

    ckpt = tiny_checkpoint(tmp_path / "ckpt", ds.classes, {"test_fold": 3})
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(root), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "a CSV of paths and labels layout" in out.err and "fold 3" in out.out


def test_audio_folder_without_metadata_lists_every_layout(tmp_path):
    clip(tmp_path / "x" / "audio" / "a.wav")
    with pytest.raises(InputError) as info:
        open_dataset(tmp_path / "x")
    text = str(info.value)
    assert "no meta/esc50.csv" in text and all(need in text for need in LAYOUT_NEEDS)


def test_a_recording_past_a_minute_is_listed_and_heard_by_its_first_window(tmp_path):
    from core.data.datasets import load_mono

    sr = 4000
    y = (0.1 * np.sin(np.arange(70 * sr) * 0.05)).astype(np.float32)
    (tmp_path / "birds").mkdir()
    sf.write(tmp_path / "birds" / "dawn.wav", y, sr, subtype="FLOAT")
    ds = open_dataset(tmp_path)
    assert [r.clip_id for r in ds.records] == ["birds/dawn.wav"] and not ds.skipped
    cfg = AudioConfig(sr=sr, n_mels=16, n_fft=256, hop_length=100, n_frames=41)  # 1 s
    np.testing.assert_array_equal(load_mono(ds.records[0], cfg), y[:4000])
