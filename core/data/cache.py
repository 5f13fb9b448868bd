"""An on-disk cache of numpy arrays, keyed by what they were computed from; it stores and fingerprints only.

A key is a hash of four things: the checkpoint (:func:`checkpoint_fingerprint`:
its files' contents), the dataset (:func:`dataset_fingerprint`: the records'
ids, labels, folds, sizes and modification times), the preprocessing config
(``AudioConfig.to_dict()``) and an extra key naming the product (a tap and its
reduction, a projection method and seed, ...). Change any of them and the key
changes; nothing is ever invalidated by hand. What to compute is decided by the
callers (:mod:`core.data.activations`, :mod:`core.interpret.embed`); this module imports none
of them.

Two kinds of entry live under ``core.paths.cache_dir() / "arrays"``:

- ``<key>.npz``: a few small arrays (:meth:`ArrayCache.save`, read with
  ``allow_pickle=False``);
- ``<key>.npy``: one large array, built from shards (``<key>.parts/<start>-<stop>.npy``,
  each written to a temporary file and renamed into place as it is
  computed) and read memory-mapped (:meth:`ArrayCache.load_array`).

Every write is a temporary file renamed into place, so a killed process leaves
either a whole file or none. One writer per entry: :meth:`ArrayCache.lock`
(a file lock, ``<key>.lock``) is held while an entry is computed, so a second
process (the app and a command, or two commands) waits and then reads the first
one's result instead of racing it (:func:`while_waiting` gives the waiter
something to do meanwhile: the app's progress bar). Lookups through :meth:`ArrayCache.get_or_compute`
and :meth:`ArrayCache.count` add to ``cache.stats``, so a test can check that a
second call was served from disk.

>>> import tempfile
>>> cache = ArrayCache(tempfile.mkdtemp())
>>> key = cache.key(checkpoint="c", dataset="d", preprocessing={"sr": 44100}, extra="demo")
>>> cache.get_or_compute(key=key, compute=lambda: {"x": np.arange(3)})["x"]
array([0, 1, 2])
>>> cache.get_or_compute(key=key, compute=lambda: {"x": np.zeros(3)})["x"]
array([0, 1, 2])
>>> cache.stats
CacheStats(hits=1, misses=1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import InputError

__all__ = [
    "CacheStats",
    "ArrayCache",
    "default_cache",
    "checkpoint_fingerprint",
    "dataset_fingerprint",
    "format_size",
    "while_waiting",
]

WAIT_POLL_S = 0.5  # how often a waiter with a callback (:func:`while_waiting`) tries the lock again
_ON_WAIT: ContextVar[Callable[[], None] | None] = ContextVar("_ON_WAIT", default=None)


@contextmanager
def while_waiting(callback: Callable[[], None]) -> Iterator[None]:
    """Within the block (this thread), ``callback()`` is called about every :data:`WAIT_POLL_S` while an entry's
    lock is held by another process or thread (:meth:`ArrayCache.lock`); without it, the waiter just blocks."""
    token = _ON_WAIT.set(callback)
    try:
        yield
    finally:
        _ON_WAIT.reset(token)


def _flock(fd: int) -> None:
    """Take an exclusive lock on ``fd``, calling the :func:`while_waiting` callback, if any, while it is taken."""
    import fcntl
    import time

    on_wait = _ON_WAIT.get()
    if on_wait is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            on_wait()
            time.sleep(WAIT_POLL_S)


@dataclass
class CacheStats:
    """Lookups so far: ``hits`` served from disk, ``misses`` computed and stored."""

    hits: int = 0
    misses: int = 0


def _digest(payload) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def format_size(n_bytes: int) -> str:
    """A byte count for people: ``"12.3 MB"``.

    >>> format_size(0), format_size(1536), format_size(12_345_678)
    ('0 B', '1.5 kB', '12.3 MB')
    """
    size = float(n_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def _atomic_write(path: Path, write: Callable[[object], None], suffix: str) -> Path:
    """Write through ``write(file)`` to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=suffix + ".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


class ArrayCache:
    """Arrays on disk: ``<key>.npz`` for a few small arrays, ``<key>.npy`` (from shards) for a large one.

    Parameters
    ----------
    root : str, Path or None
        Folder of the entries; ``None`` means ``core.paths.cache_dir() / "arrays"``.

    Attributes
    ----------
    root : Path
    stats : CacheStats
    """

    def __init__(self, root: str | Path | None = None):
        if root is None:
            from core.paths import cache_dir

            root = cache_dir() / "arrays"
        self.root = Path(root)
        self.stats = CacheStats()

    def key(self, *, checkpoint: str, dataset: str, preprocessing: dict, extra) -> str:
        """The entry's name: a hash of the four parts (``extra`` may be any JSON-able value)."""
        return _digest({"checkpoint": checkpoint, "dataset": dataset, "preprocessing": preprocessing,
                        "extra": extra})

    def count(self, hit: bool) -> None:
        """Count one lookup of an entry made by a caller that reads the files itself."""
        if hit:
            self.stats.hits += 1
        else:
            self.stats.misses += 1

    # -- small entries: one .npz of named arrays ------------------------------------------

    def path(self, key: str) -> Path:
        return self.root / f"{key}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The stored arrays, or ``None`` when there is no (readable) entry. Counts nothing."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError):  # a truncated or foreign file: recompute
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> Path:
        """Store arrays atomically (written to a temporary file, then renamed)."""
        if not arrays or not all(isinstance(k, str) for k in arrays):
            raise InputError("arrays", "give a non-empty dict of name -> array")
        return _atomic_write(self.path(key), lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()}),
                             ".npz")

    def get_or_compute(
        self,
        *,
        compute: Callable[[], dict[str, np.ndarray]],
        key: str | None = None,
        checkpoint: str | None = None,
        dataset: str | None = None,
        preprocessing: dict | None = None,
        extra=None,
    ) -> dict[str, np.ndarray]:
        """Load the ``.npz`` entry for this key, or compute, store and return it.

        Parameters
        ----------
        compute : callable
            ``() -> dict[str, np.ndarray]``, called only on a miss.
        key : str or None
            The entry; ``None`` builds it with :meth:`key` from the four parts below.
        checkpoint, dataset : str
            Fingerprints (:func:`checkpoint_fingerprint`, :func:`dataset_fingerprint`).
        preprocessing : dict
            ``AudioConfig.to_dict()``.
        extra : JSON-able
            Names the product.

        Returns
        -------
        dict[str, np.ndarray]
        """
        if key is None:
            key = self.key(checkpoint=checkpoint, dataset=dataset, preprocessing=preprocessing, extra=extra)
        arrays = self.load(key)
        if arrays is None:
            with self.lock(key):  # one writer: a second caller waits here, then reads the first one's result
                arrays = self.load(key)
                if arrays is None:
                    self.count(False)
                    arrays = compute()
                    self.save(key, arrays)
                    return arrays
        self.count(True)
        return arrays

    @contextmanager
    def lock(self, *keys: str) -> Iterator[None]:
        """Hold the entries' locks (``<key>.lock``, ``fcntl.flock``) for the block: one writer per entry.

        Another process or thread asking for any of them waits until the
        block ends; it should then look for the entry again before computing.
        Several keys are locked in sorted order, so two callers never wait on
        each other. The lock is released when its holder exits, even killed.
        """
        import fcntl

        self.root.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as stack:
            for key in sorted(set(keys)):
                f = stack.enter_context(open(self.root / f"{key}.lock", "a"))
                _flock(f.fileno())
                stack.callback(fcntl.flock, f.fileno(), fcntl.LOCK_UN)
            yield

    # -- large entries: one .npy, built from shards ---------------------------------------

    def array_path(self, key: str) -> Path:
        return self.root / f"{key}.npy"

    def shard_dir(self, key: str) -> Path:
        return self.root / f"{key}.parts"

    def _shard_path(self, key: str, start: int, stop: int) -> Path:
        return self.shard_dir(key) / f"{start:08d}-{stop:08d}.npy"

    def load_array(self, key: str, *, mmap: bool = True) -> np.ndarray | None:
        """A whole stored array (memory-mapped, read-only), or ``None``. Counts nothing."""
        path = self.array_path(key)
        if not path.is_file():
            return None
        try:
            return np.load(path, mmap_mode="c" if mmap else None, allow_pickle=False)  # copy-on-write: the file stays as stored
        except (OSError, ValueError, EOFError):
            return None

    def has_shard(self, key: str, start: int, stop: int) -> bool:
        return self._shard_path(key, start, stop).is_file()

    @contextmanager
    def shard_writer(self, key: str, start: int, stop: int) -> Iterator[Callable[[int, np.ndarray], None]]:
        """Write rows ``start:stop`` of an array piece by piece; renamed into place when the block ends.

        Yields ``write(offset, rows)``, which puts ``rows`` at ``start + offset``
        in a memory-mapped temporary ``.npy`` (created at the first write, so
        only the rows given are ever in memory). If the block raises, or the
        process dies, no shard appears.
        """
        shard = self._shard_path(key, start, stop)
        shard.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=shard.parent, suffix=".npy.tmp")
        os.close(fd)
        state: dict = {"out": None, "rows": 0}

        def write(offset: int, rows: np.ndarray) -> None:
            rows = np.asarray(rows)
            if state["out"] is None:
                state["out"] = np.lib.format.open_memmap(tmp, mode="w+", dtype=rows.dtype,
                                                         shape=(stop - start, *rows.shape[1:]))
            state["out"][offset:offset + len(rows)] = rows
            state["rows"] += len(rows)

        try:
            yield write
            if state["rows"] != stop - start:
                raise InputError("shard", f"{state['rows']} rows written for clips {start} to {stop}")
            state["out"].flush()
            state["out"] = None
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, shard)
        finally:
            state["out"] = None
            if os.path.exists(tmp):
                os.remove(tmp)

    def assemble(self, key: str, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
        """Join the shards at ``bounds`` into ``<key>.npy`` (memory-mapped, one shard in memory at a time).

        The joined file is written under a temporary name and renamed into
        place; the shards are removed after. Returns the array, memory-mapped.
        """
        path = self.array_path(key)
        try:
            return self._assemble(key, bounds, path)
        except FileNotFoundError:  # another process assembled it and removed the shards first
            done = self.load_array(key)
            if done is None:
                raise
            return done

    def _assemble(self, key: str, bounds: Sequence[tuple[int, int]], path: Path) -> np.ndarray:
        first = np.load(self._shard_path(key, *bounds[0]), mmap_mode="r")
        n = bounds[-1][1]
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".npy.tmp")
        os.close(fd)
        try:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=first.dtype, shape=(n, *first.shape[1:]))
            for start, stop in bounds:
                out[start:stop] = np.load(self._shard_path(key, start, stop), mmap_mode="r")
            out.flush()
            del out
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        shutil.rmtree(self.shard_dir(key), ignore_errors=True)
        return np.load(path, mmap_mode="c")

    # -- the whole cache --------------------------------------------------------------------

    def size_bytes(self) -> int:
        """Bytes on disk under :attr:`root` (entries, shards and leftovers)."""
        if not self.root.is_dir():
            return 0
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    def clear(self) -> int:
        """Remove every entry; returns the bytes freed."""
        freed = self.size_bytes()
        if self.root.is_dir():
            shutil.rmtree(self.root)
        return freed


_DEFAULT: ArrayCache | None = None


def default_cache() -> ArrayCache:
    """The process-wide cache under ``core.paths.cache_dir()`` (one shared ``stats``)."""
    global _DEFAULT
    from core.paths import cache_dir

    if _DEFAULT is None or _DEFAULT.root != cache_dir() / "arrays":  # EXPLORER_CACHE may change (tests)
        _DEFAULT = ArrayCache()
    return _DEFAULT


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def _file_hash(path: Path) -> str:
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _FILE_HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _FILE_HASHES[memo] = h.hexdigest()
    return _FILE_HASHES[memo]


def _files_named_by(folder: Path) -> list[Path]:
    """The files a registered model is made of, outside its folder: its adapter, modules and weights."""
    from core.models.user_models import ENTRY_FILE

    entry_file = folder / ENTRY_FILE
    if not entry_file.is_file():
        return []
    try:
        entry = json.loads(entry_file.read_text())
        paths = [Path(entry["adapter"])] + [Path(r["path"]) for r in entry.get("files", [])]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(entry_file, f"not a registered model's entry ({error})") from None
    for path in paths:
        if not path.is_file():
            raise InputError(path, f"a file of the registered model in {folder} is gone")
    return paths


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A hash of the contents of the files directly in a checkpoint folder, and of the files it names.

    Sub-folders (such as saved ``decoders/``) are left out, so saving a
    decoder beside a checkpoint does not change its fingerprint. A registered
    model's folder (``adapter.json``) names its adapter, the local modules the
    adapter imports and its weights, wherever they are: their bytes are hashed
    too, so a replaced weights file or an edited module gives another key. Each
    file is read once per (path, size, modification time).

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    str
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "not a checkpoint folder")
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        raise InputError(folder, "the checkpoint folder is empty")
    return _digest([(p.name, _file_hash(p)) for p in files] + [(str(p), _file_hash(p)) for p in _files_named_by(folder)])


def dataset_fingerprint(records: Sequence) -> str:
    """A hash of the records in order: id, label, fold, file size and modification time.

    Parameters
    ----------
    records : sequence of ClipRecord

    Returns
    -------
    str
    """
    rows = []
    for r in records:
        stat = Path(r.path).stat()
        rows.append((r.clip_id, int(r.label), int(r.fold), stat.st_size, stat.st_mtime_ns))
    return _digest(rows)
