"""The background warm-up (:mod:`core.warm_background`): its lock, its status file, a killed one started again.

The processes here run ``python -m core warm-cache --background`` with options that end it before any model loads
(another warm-up holds the lock), or on a folder that is not a checkpoint; the real warm-up's work is tested in
``tests/explorer/test_warm_cache_pages.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core import warm_background
from core.paths import CHECKPOINTS_DIR, REPO_ROOT
from core.warm_background import StatusWriter, WarmStatus, held, read_status, write_status


def test_the_status_file_holds_the_fraction_the_step_and_the_time_left(tmp_path):
    write = StatusWriter(tmp_path, every_s=0.0)
    write.start -= 30.0  # 30 s in, a quarter done: 90 s left
    write(0.25, "secnn: every layer, fold 5")
    status = read_status(tmp_path)
    assert (status.state, status.fraction, status.step, status.pid) == ("running", 0.25, "secnn: every layer, fold 5",
                                                                         os.getpid())
    assert abs(status.seconds_left - 90.0) < 1.0
    assert status.alive()  # this process
    assert status.progress_text() == ("Preparing the demo set in the background: secnn: every layer, fold 5, 25%, "
                                      "about 2 min left")
    write.finish(stamp="abc")
    assert (read_status(tmp_path).state, read_status(tmp_path).stamp) == ("done", "abc")
    assert not read_status(tmp_path).alive()


def test_a_missing_or_torn_status_file_reads_as_none(tmp_path):
    assert read_status(tmp_path) is None
    (tmp_path / "warm-cache.json").write_text('{"state": "runn')
    assert read_status(tmp_path) is None


def test_the_lock_is_held_once_and_a_second_background_run_ends_at_once(tmp_path):
    env = dict(os.environ, EXPLORER_CACHE=str(tmp_path))
    command = [sys.executable, "-m", "core", "warm-cache", "--background",
               "--checkpoints", str(CHECKPOINTS_DIR / "secnn"), "--data", str(tmp_path)]
    with held(tmp_path) as mine:
        assert mine
        with held(tmp_path) as again:  # another open of the lock file, as a second session's would be
            assert not again
        t0 = time.monotonic()
        second = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "another warm-up holds" in second.stdout
        assert time.monotonic() - t0 < 60  # it loaded no model
    assert read_status(tmp_path) is None  # and wrote nothing
    with held(tmp_path) as mine:
        assert mine  # released


def test_a_killed_warm_up_frees_the_lock_and_the_next_start_runs_again(tmp_path, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from core.warm_background import held, StatusWriter\n"
                               f"with held({str(tmp_path)!r}) as mine:\n"
                               f"    StatusWriter({str(tmp_path)!r}, every_s=0)(0.1, 'step')\n"
                               "    print(mine, flush=True); time.sleep(120)"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "True"
        assert read_status(tmp_path).alive()
        with held(tmp_path) as mine:
            assert not mine
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    stale = read_status(tmp_path)
    assert stale.state == "running" and not stale.alive()  # what a killed warm-up leaves
    assert warm_background.needed([CHECKPOINTS_DIR / "secnn"], tmp_path, tmp_path)
    with held(tmp_path) as mine:
        assert mine  # the kernel released its lock

    # the next start runs: here it fails at once on a folder that is not a dataset, and says so in the status file
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("EXPLORER_WARM_CACHE", "1")  # the suite switches it off (tests/conftest.py)
    proc = warm_background.start(tmp_path, args=["--checkpoints", CHECKPOINTS_DIR / "secnn",
                                                 "--data", tmp_path / "empty"])
    assert proc.wait(timeout=300) != 0
    status = read_status(tmp_path)
    assert status.state == "failed" and status.pid == proc.pid and status.error
    assert "matches no dataset layout" in (tmp_path / "warm-cache.log").read_text()  # its output, kept


def test_a_finished_warm_up_is_not_needed_until_what_it_warmed_changes(tmp_path):
    data = tmp_path / "data"
    (data / "meta").mkdir(parents=True)
    (data / "meta" / "esc50.csv").write_text("filename,fold,target,category\n")
    folders = [CHECKPOINTS_DIR / "secnn"]
    assert warm_background.needed(folders, data, tmp_path)
    write_status(WarmStatus(state="done", fraction=1.0, stamp=warm_background.stamp(folders, data)), tmp_path)
    assert not warm_background.needed(folders, data, tmp_path)
    (data / "meta" / "esc50.csv").write_text("filename,fold,target,category\nx.wav,1,0,dog\n")
    assert warm_background.needed(folders, data, tmp_path)


def test_the_test_suite_switches_the_warm_up_off():
    assert os.environ["EXPLORER_WARM_CACHE"] == "0"  # tests/conftest.py
    assert not warm_background.enabled()
    assert warm_background.start() is None
