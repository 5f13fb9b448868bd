"""The app and the background warm-up (:mod:`core.warm_background`): started once for two sessions, its status
file read into the sidebar's bar, and never started by the suite's AppTests.

Runs on the small demo set of the shared ``env`` fixture with its tiny SE-CNN and AST; the warm-up itself is
replaced by a counter where a test switches it on.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

from streamlit.testing.v1 import AppTest

from core.warm_background import WarmStatus, log_path, lock_path, status_path, write_status

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 120
EXPLORER_ENV = {"clips_per_class": 2}


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn"]
    return at.run()


def test_the_suites_app_tests_start_no_warm_up(env):
    at = _app()
    assert not at.exception, [e.value for e in at.exception]
    for path in (status_path(), lock_path(), log_path()):
        assert not path.exists(), f"{path}: an AppTest started the warm-up"
    assert not at.sidebar.get("progress")


def test_the_warm_up_starts_once_for_two_sessions(env, monkeypatch, tmp_path):
    from core import warm_background

    started = []
    monkeypatch.setenv("EXPLORER_WARM_CACHE", "1")
    ended = SimpleNamespace(pid=0, poll=lambda: 0)  # a process that has already ended
    monkeypatch.setattr(warm_background, "start", lambda root=None, **kw: started.append(root) or ended)
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))  # a cache folder no other test's server has warmed
    (tmp_path / env["demo"].name).symlink_to(env["demo"])
    first, second = _app(), _app()
    for at in (first, second):
        assert not at.exception, [e.value for e in at.exception]
    first.run()
    assert started == [str(tmp_path)]


def test_the_status_file_is_read_into_the_sidebars_bar(env):
    write_status(WarmStatus(state="running", fraction=0.4, step="tiny-secnn: every layer, fold 1",
                            seconds_left=150.0, pid=os.getpid()))  # this process: alive
    try:
        at = _app()
        assert not at.exception, [e.value for e in at.exception]
        bars = list(at.sidebar.get("progress"))
        assert len(bars) == 1
        assert bars[0].value == 40
        assert bars[0].text == ("Preparing the demo set in the background: tiny-secnn: every layer, fold 1, 40%, "
                                "about 2 min left")

        write_status(WarmStatus(state="running", fraction=0.4, step="x", pid=2 ** 22 + 1))  # no such process
        at.run()
        assert not at.sidebar.get("progress")
        assert any("warm-up of the demo set stopped" in c.value for c in at.sidebar.caption)
    finally:
        status_path().unlink()
