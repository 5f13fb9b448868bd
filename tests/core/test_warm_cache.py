"""``python -m core warm-cache``: bad input ends with status 2 and one line; what it fills is tested with the pages
(``tests/explorer/test_warm_cache_pages.py``)."""

from __future__ import annotations

from core.cli import main


def test_a_folder_without_a_checkpoint_exits_2_with_one_line(tmp_path, capsys):
    assert main(["warm-cache", "--checkpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path) in err[0] and "checkpoint.json" in err[0]


def test_a_missing_dataset_folder_exits_2_with_one_line(tmp_path, capsys):
    from core.paths import CHECKPOINTS_DIR

    assert main(["warm-cache", "--checkpoints", str(CHECKPOINTS_DIR / "secnn"), "--data", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no" in err[0]
