"""``warm-cache`` in the background: started by the app, one per cache folder, its progress in a status file.

The app starts ``python -m core warm-cache --background`` (:func:`start`) once per
server process and serves at once; the warm-up runs detached, so a page opened
before it is done waits on the entry it needs (the on-disk cache's per-entry
lock, :meth:`core.data.cache.ArrayCache.lock`) instead of computing it twice.

Under ``core.paths.cache_dir()``:

- ``warm-cache.lock``: held (``fcntl.flock``) by the running warm-up for its whole
  life, so a second tab, a restart or a run by hand does not start a second one;
  the kernel releases it when the process ends, killed or not, so a warm-up that
  died is started again by the next app start.
- ``warm-cache.json``: its progress (:class:`WarmStatus`), rewritten atomically
  (a temporary file renamed into place) at most twice a second; ``"done"`` with
  the :func:`stamp` of what it warmed, so the next start does nothing until a
  checkpoint, the dataset or ``core``'s code changes.
- ``warm-cache.log``: the background run's output.

``EXPLORER_WARM_CACHE=0`` keeps the app from starting it (the test suite sets it).

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> write_status(WarmStatus(state="running", fraction=0.25, step="secnn: every layer", seconds_left=90.0), root)
>>> read_status(root).progress_text()
'Preparing the demo set in the background: secnn: every layer, 25%, about 2 min left'
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ENV_SWITCH", "WarmStatus", "enabled", "status_path", "lock_path", "log_path", "read_status",
           "write_status", "StatusWriter", "held", "stamp", "needed", "start"]

ENV_SWITCH = "EXPLORER_WARM_CACHE"  # "0": the app starts no background warm-up
STATES = ("running", "done", "failed")


@dataclass(frozen=True)
class WarmStatus:
    """What the status file holds.

    ``state`` is one of :data:`STATES`; ``fraction`` in [0, 1]; ``step`` the step's
    label; ``seconds_left`` the estimate (``None`` until there is one); ``pid``
    the warm-up's process; ``stamp`` what a finished run warmed (:func:`stamp`).
    """

    state: str
    fraction: float = 0.0
    step: str = ""
    seconds_left: float | None = None
    pid: int = 0
    stamp: str = ""
    error: str = ""

    def alive(self) -> bool:
        """Is the process that wrote a ``"running"`` status still there? (A killed one leaves ``"running"``.)"""
        if self.state != "running" or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # someone else's process: there
            return True
        return True

    def progress_text(self) -> str:
        """One line for a progress bar: the step, the share done and the time left."""
        left = "" if self.seconds_left is None else f", about {_minutes(self.seconds_left)} left"
        return f"Preparing the demo set in the background: {self.step}, {self.fraction:.0%}{left}"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def enabled() -> bool:
    """May the app start the warm-up? Not when ``$EXPLORER_WARM_CACHE`` is ``0`` (the test suite, a bench)."""
    return os.environ.get(ENV_SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


def _root(root: str | Path | None) -> Path:
    from core.paths import cache_dir

    return cache_dir() if root is None else Path(root)


def status_path(root: str | Path | None = None) -> Path:
    return _root(root) / "warm-cache.json"


def lock_path(root: str | Path | None = None) -> Path:
    return _root(root) / "warm-cache.lock"


def log_path(root: str | Path | None = None) -> Path:
    return _root(root) / "warm-cache.log"


def read_status(root: str | Path | None = None) -> WarmStatus | None:
    """The status file, or ``None`` when there is none (or it cannot be read: a reader never fails the app)."""
    try:
        fields = json.loads(status_path(root).read_text())
        return WarmStatus(**{k: fields[k] for k in WarmStatus.__dataclass_fields__ if k in fields})
    except (OSError, ValueError, TypeError, KeyError):
        return None


def write_status(status: WarmStatus, root: str | Path | None = None) -> None:
    """Rewrite the status file atomically: a reader sees the old file or the new one, never half of one."""
    path = status_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".warm-cache.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(status), f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class StatusWriter:
    """``writer(fraction, step)`` during a warm-up: the status file, with the time left, at most every ``every_s``.

    The time left is the elapsed time scaled by what is left (the steps' weights
    stand for work), shown once 2 % is done.
    """

    def __init__(self, root: str | Path | None = None, *, every_s: float = 0.5):
        self.root, self.every_s = root, every_s
        self.start, self.last = time.monotonic(), -float("inf")

    def __call__(self, fraction: float, step: str) -> None:
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        left = (now - self.start) * (1 - fraction) / fraction if fraction >= 0.02 else None
        write_status(WarmStatus(state="running", fraction=fraction, step=step, seconds_left=left, pid=os.getpid()),
                     self.root)

    def finish(self, *, stamp: str = "", error: str = "") -> None:
        write_status(WarmStatus(state="failed" if error else "done", fraction=0.0 if error else 1.0,
                                pid=os.getpid(), stamp=stamp, error=error), self.root)


@contextlib.contextmanager
def held(root: str | Path | None = None, *, wait: bool = False) -> Iterator[bool]:
    """Hold the warm-up's lock for the block; yields ``False`` (holding nothing) when another process has it and
    ``wait`` is false."""
    import fcntl

    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            got = True
        except BlockingIOError:
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def stamp(folders: Sequence[str | Path], root: str | Path) -> str:
    """What a warm-up warmed, cheaply: the checkpoints' files, the dataset's label files and ``core``'s code, by
    path, size and modification time (a change to any of them makes a new stamp)."""
    from core.paths import REPO_ROOT

    files = [f for folder in folders for f in sorted(Path(folder).iterdir()) if f.is_file()]
    files += sorted(Path(root).glob("*.csv")) + sorted(Path(root).glob("meta/*.csv"))
    files += sorted((REPO_ROOT / "core").rglob("*.py"))
    listing = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(json.dumps([str(Path(root).resolve()), listing]).encode()).hexdigest()[:32]


def needed(folders: Sequence[str | Path], dataset_root: str | Path, root: str | Path | None = None) -> bool:
    """Is there work for a warm-up? Not when the last one finished these checkpoints, dataset and code."""
    last = read_status(root)
    return last is None or last.state != "done" or last.stamp != stamp(folders, dataset_root)


def start(root: str | Path | None = None, *, args: Sequence[str] = ()) -> subprocess.Popen | None:
    """Start ``python -m core warm-cache --background [args]`` detached (its own session, output to
    ``warm-cache.log``); ``args``: its options (default: the shipped checkpoints on the bundled set).

    Returns the process, or ``None`` when :func:`enabled` says no. The child
    takes the lock itself and ends at once when another warm-up holds it or the
    last one finished the same work, so calling this again is cheap and safe.
    """
    if not enabled():
        return None
    from core.paths import REPO_ROOT

    log = log_path(root)
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ) if root is None else dict(os.environ, EXPLORER_CACHE=str(root))
    with open(log, "a") as out:
        return subprocess.Popen([sys.executable, "-m", "core", "warm-cache", "--background", *map(str, args)], cwd=REPO_ROOT, env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
