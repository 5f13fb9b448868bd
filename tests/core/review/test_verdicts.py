"""The verdict store: kept across reopenings, safe with concurrent writers, clear about unusable files."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading

import numpy as np
import pytest

from core.errors import InputError
from core.review.verdicts import (SCHEMA_VERSION, VERDICTS, ReportItem, Verdict, VerdictStore, map_png, nearest_clips,
                         report_html, review_queue, verdicts_csv)


def verdict(clip: str, value: str | None = "ambiguous", note: str = "") -> Verdict:
    return Verdict(dataset="ds", clip_id=clip, model="m", checkpoint="ck", verdict=value, note=note)


def test_a_verdict_is_kept_and_replaced_not_duplicated(tmp_path):
    db = tmp_path / "sub" / "review.sqlite"
    VerdictStore(db).save(verdict("a.wav", "label error", "first"))
    VerdictStore(db).save(verdict("a.wav", "model error", "second"))
    store = VerdictStore(db)
    assert [(v.clip_id, v.verdict, v.note) for v in store.all()] == [("a.wav", "model error", "second")]
    assert store.get(dataset="ds", clip_id="a.wav", model="m", checkpoint="ck").verdict == "model error"
    assert store.get(dataset="ds", clip_id="a.wav", model="m", checkpoint="other") is None
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]


def test_an_unknown_verdict_is_refused(tmp_path):
    with pytest.raises(InputError, match="is not one of"):
        VerdictStore(tmp_path / "r.sqlite").save(verdict("a.wav", "probably fine"))


def test_many_threads_writing_at_once_lose_nothing(tmp_path):
    db = tmp_path / "review.sqlite"
    VerdictStore(db)

    def write(k: int) -> None:
        store = VerdictStore(db)
        for j in range(10):
            store.save(verdict(f"{k}-{j}.wav", VERDICTS[j % len(VERDICTS)]))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(VerdictStore(db).all()) == 60


def _write_from_a_process(db: str, k: int) -> None:
    store = VerdictStore(db)
    for j in range(10):
        store.save(verdict(f"p{k}-{j}.wav", VERDICTS[j % len(VERDICTS)], note=f"process {k}"))


def test_processes_writing_at_once_lose_nothing(tmp_path):
    """Separate processes (two browser sessions of two app servers, or the app and a script) at once."""
    db = tmp_path / "review.sqlite"
    VerdictStore(db)
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_write_from_a_process, args=(str(db), k)) for k in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    saved = VerdictStore(db).all()
    assert len(saved) == 30
    assert {v.note for v in saved} == {"process 0", "process 1", "process 2"}


def test_a_locked_database_is_a_clear_error(tmp_path):
    db = tmp_path / "review.sqlite"
    VerdictStore(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(InputError, match="locked"):
            VerdictStore(db, timeout_s=0.2).save(verdict("a.wav"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    VerdictStore(db).save(verdict("a.wav"))  # free again


def test_corrupt_and_newer_databases_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"\x00garbage" * 1000)
    with pytest.raises(InputError, match="not a readable SQLite database"):
        VerdictStore(bad)
    newer = tmp_path / "newer.sqlite"
    VerdictStore(newer)
    with sqlite3.connect(newer) as con:
        con.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(InputError, match="newer version"):
        VerdictStore(newer)
    with pytest.raises(InputError, match="is a folder"):
        VerdictStore(tmp_path)


def test_csv_and_html_hold_the_verdicts(tmp_path):
    rows = [verdict("a.wav", "label error", 'quote " and, comma'), verdict("b.wav", None, "<b>x</b>")]
    text = verdicts_csv(rows).decode()
    assert text.splitlines()[0].startswith("dataset,clip_id,model,checkpoint,verdict,note")
    assert '"quote "" and, comma"' in text
    png = map_png(np.random.default_rng(0).normal(size=(8, 20)), np.zeros((8, 20)))
    assert png.startswith(b"\x89PNG")
    page = report_html([ReportItem(rows[0], [("map", png)], b"RIFF0000WAVE"), ReportItem(rows[1], [])])
    assert "a.wav" in page and "label error" in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert page.count("data:image/png;base64,") == 1 and page.count("data:audio/wav;base64,") == 1


class _Issues:
    def __init__(self, labels, model_proba, order, flagged):
        self.labels = np.asarray(labels)
        self.model_proba = np.asarray(model_proba, dtype=float)
        self.order = np.asarray(order)
        self.flagged = np.asarray(flagged, dtype=bool)
        self.clip_ids = [f"c{i}" for i in range(len(labels))]


def test_the_queue_holds_mistakes_flags_and_top_suspects_in_the_order_asked():
    # clip 0 right, 1 wrong (confident), 2 right but flagged, 3 wrong (unsure), 4 right and unsuspected
    proba = [[0.9, 0.1], [0.05, 0.95], [0.8, 0.2], [0.4, 0.6], [0.99, 0.01]]
    issues = _Issues([0, 0, 0, 0, 0], proba, order=[2, 3, 1, 0, 4], flagged=[0, 0, 1, 0, 0])
    assert review_queue(issues, n_suspects=0, order="suspicion") == [2, 3, 1]
    assert review_queue(issues, n_suspects=4, order="suspicion") == [2, 3, 1, 0]
    assert review_queue(issues, n_suspects=0, order="confidence") == [1, 3, 2]
    assert review_queue(issues, n_suspects=0, order="clip") == [1, 2, 3]


def test_nearest_clips_leave_out_the_query_and_non_candidates():
    v = np.array([[0.0, 0.0], [0.1, 0.0], [3.0, 3.0], [0.2, 0.1], [0.05, 0.0]])
    assert nearest_clips(v, 0, np.array([0, 1, 2, 3]), k=2) == [1, 3]
    assert nearest_clips(v, 0, np.array([0]), k=2) == []


def test_the_queue_needs_a_model_that_knows_the_classes():
    issues = _Issues([0, 1], [[0.5, 0.5], [0.5, 0.5]], order=[0, 1], flagged=[0, 0])
    issues.model_proba = None  # find_label_issues with another model's embedding
    with pytest.raises(InputError, match="other classes"):
        review_queue(issues)
