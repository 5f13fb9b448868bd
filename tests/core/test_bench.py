"""The benchmark command runs and writes its JSON (figures are measured there, never asserted here)."""

import json

from core.cli import main


def test_bench_preprocessing_writes_json(tmp_path, demo_dir, capsys):
    assert main(["bench", "--only", "preprocessing", "--data", str(demo_dir), "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("bench-*.json")
    result = json.loads(path.read_text())
    assert result["machine"]["cores"] >= 1 and "torch" in result["machine"]
    names = [row["name"] for row in result["preprocessing"]]
    assert "preprocess: whole log_mel from waveform" in names
    assert all(row["ms"] > 0 for row in result["preprocessing"])
    assert "log_mel" in capsys.readouterr().out


def test_scale_folder_links_the_clips_into_a_bigger_dataset(tmp_path):
    import numpy as np
    import soundfile as sf

    from core.bench import scale_folder
    from core.data.datasets import open_dataset

    source = tmp_path / "source"
    (source / "audio").mkdir(parents=True)
    (source / "meta").mkdir()
    rows = ["filename,fold,target,category"]
    for i in range(3):
        sf.write(source / "audio" / f"c{i}.wav", np.full(4410, 0.1 * (i + 1), np.float32), 44100)
        rows.append(f"c{i}.wav,1,{i % 2},{'ab'[i % 2]}")
    (source / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")

    big = open_dataset(scale_folder(source, 7, tmp_path / "big"))
    assert big.layout == "esc50" and len(big.records) == 7 and len({r.clip_id for r in big.records}) == 7
    assert [r.fold for r in big.records] == [1, 2, 3, 4, 5, 1, 2]
    assert [r.category for r in big.records] == ["a", "b", "a", "a", "b", "a", "a"]
    assert big.records[4].path.samefile(source / "audio" / "c1.wav")  # a link, not a copy
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left
    assert scale_folder(source, 7, tmp_path / "big") == tmp_path / "big"  # reused as it is


def test_the_scale_tables_page_rerender_runs_on_a_linked_folder(tmp_path, demo_dir):
    """bench --full's Embeddings and Errors rerender (scripts/bench_pages.py --scale-folder, in a subprocess)
    on a small linked set: a page that fails, or a driver that no longer runs, is a row without timings."""
    from core.bench import _scale_pages, scale_folder

    root = scale_folder(demo_dir, 30, tmp_path / "scale-30")
    row = _scale_pages(root, tmp_path / "cache", repeats=1)
    assert "pages_note" not in row, row["pages_note"]
    assert row["embeddings_ms"] > 0 and row["errors_ms"] > 0 and row["embeddings_first_s"] > 0
    assert any((tmp_path / "cache").rglob("*.npy"))  # the pages extracted into the cache they were given
