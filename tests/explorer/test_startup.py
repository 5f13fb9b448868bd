"""The start-up gate (explorer.startup): a start-up step never runs beside a page's run, and pages go first."""

from __future__ import annotations

import threading
import time

from explorer.startup import Gate

WAIT_S = 0.3  # long enough for a thread that could go on to do so


def _in_thread(fn) -> threading.Thread:
    thread = threading.Thread(target=fn, daemon=True)
    thread.start()
    return thread


def test_a_step_waits_for_the_page_runs_under_way():
    gate, log = Gate(), []
    with gate.page_run():
        step = _in_thread(lambda: _held(gate.step(), log, "step"))
        time.sleep(WAIT_S)
        assert log == [] and gate.busy() == (1, False)
        log.append("run ends")
    step.join(5)
    assert log == ["run ends", "step"]


def test_a_page_run_waits_for_the_step_under_way_and_runs_beside_other_runs():
    gate, log = Gate(), []
    with gate.step():
        run = _in_thread(lambda: _held(gate.page_run(), log, "run"))
        time.sleep(WAIT_S)
        assert log == [] and gate.busy() == (0, True)
        log.append("step ends")
    run.join(5)
    assert log == ["step ends", "run"]
    with gate.page_run():  # runs never wait for each other
        other = _in_thread(lambda: _held(gate.page_run(), log, "second run"))
        other.join(5)
    assert log[-1] == "second run"


def test_a_waiting_page_run_goes_before_the_next_step():
    """The start-up thread asks for its next step before one ends; a page already waiting runs first."""
    gate, log = Gate(), []
    run_started, run_may_end = threading.Event(), threading.Event()

    def page():
        with gate.page_run():
            log.append("run")
            run_started.set()
            run_may_end.wait(5)

    with gate.step():
        run = _in_thread(page)
        time.sleep(WAIT_S)  # the page waits for this step ...
        nxt = _in_thread(lambda: _held(gate.step(), log, "next step"))
        time.sleep(WAIT_S)  # ... and so does the next step: both wake when it ends
    assert run_started.wait(5)
    time.sleep(WAIT_S)
    assert log == ["run"], "the next step started beside the page's run"
    run_may_end.set()
    run.join(5)
    nxt.join(5)
    assert log == ["run", "next step"]


def _held(context, log: list, name: str) -> None:
    with context:
        log.append(name)
