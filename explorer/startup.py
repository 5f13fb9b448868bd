"""Start-up work beside the pages, never at the same time as one: :data:`GATE`.

:mod:`explorer.serve` imports the heavy modules and loads the default models in a thread while the server
already answers. Two threads importing the same modules at once can see one of them half-initialised (in CI,
plotly found pandas without ``pd.Series`` while the start-up thread was importing it), so that work is cut
into short steps, each run alone: a page's run (``app.py``'s ``main``) waits for the step under way to end,
and no step starts while a page runs or waits to run. Pages run together as before. Served by
``streamlit run explorer/app.py`` there are no steps, and a page never waits.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

__all__ = ["Gate", "GATE"]


class Gate:
    """Many page runs at once, or one start-up step alone; page runs go first.

    >>> gate = Gate()
    >>> with gate.page_run(), gate.page_run():  # runs do not wait for each other
    ...     gate.busy()
    (2, False)
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._runs = 0  # page runs under way
        self._waiting = 0  # page runs waiting for a step to end
        self._step = False

    def busy(self) -> tuple[int, bool]:
        """(page runs under way, whether a step is)."""
        with self._cond:
            return self._runs, self._step

    @contextmanager
    def page_run(self) -> Iterator[None]:
        """Hold for one run of a page: waits for the step under way, if any."""
        with self._cond:
            self._waiting += 1
            while self._step:
                self._cond.wait()
            self._waiting -= 1
            self._runs += 1
        try:
            yield
        finally:
            with self._cond:
                self._runs -= 1
                self._cond.notify_all()

    @contextmanager
    def step(self) -> Iterator[None]:
        """Hold for one start-up step: waits until no page runs or waits to run."""
        with self._cond:
            while self._step or self._runs or self._waiting:
                self._cond.wait()
            self._step = True
        try:
            yield
        finally:
            with self._cond:
                self._step = False
                self._cond.notify_all()


GATE = Gate()
