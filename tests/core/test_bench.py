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
