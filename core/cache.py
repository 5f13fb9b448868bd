"""An on-disk cache of numpy arrays, keyed by what they were computed from.

A key is a hash of four things: the checkpoint (:func:`checkpoint_fingerprint`:
its files' contents), the dataset (:func:`dataset_fingerprint`: the records'
ids, labels, folds, sizes and modification times), the preprocessing config
(``AudioConfig.to_dict()``) and an extra key naming the product (taps, a
reduction, a projection method and seed, a decoder flavour...). Change any of
them and the key changes; nothing is ever invalidated by hand.

Each entry is one ``.npz`` file (``np.savez``, read with ``allow_pickle=False``)
under ``core.paths.cache_dir() / "arrays"``. Every lookup counts a hit or a
miss in ``cache.stats``, so a test can check that a second call was served
from disk.

>>> cache = ArrayCache()  # doctest: +SKIP
>>> acts = cached_activations(loaded, records, ["block3"], loaded.audio_cfg, cache=cache)  # doctest: +SKIP
>>> cache.stats  # doctest: +SKIP
CacheStats(hits=0, misses=1)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.audio import AudioConfig, log_mel
from core.errors import InputError

__all__ = [
    "CacheStats",
    "ArrayCache",
    "default_cache",
    "checkpoint_fingerprint",
    "dataset_fingerprint",
    "REDUCTIONS",
    "cached_activations",
]

REDUCTIONS = ("raw", "time", "vector")


@dataclass
class CacheStats:
    """Lookups so far: ``hits`` served from disk, ``misses`` computed and stored."""

    hits: int = 0
    misses: int = 0


def _digest(payload) -> str:
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ArrayCache:
    """Arrays on disk, one ``.npz`` per key.

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
        except (OSError, ValueError):  # a truncated or foreign file: recompute
            return None

    def save(self, key: str, arrays: dict[str, np.ndarray]) -> Path:
        """Store arrays atomically (written to a temporary file, then renamed)."""
        if not arrays or not all(isinstance(k, str) for k in arrays):
            raise InputError("arrays", "give a non-empty dict of name -> array")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
            os.replace(tmp, self.path(key))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return self.path(key)

    def get_or_compute(
        self,
        *,
        checkpoint: str,
        dataset: str,
        preprocessing: dict,
        extra,
        compute: Callable[[], dict[str, np.ndarray]],
    ) -> dict[str, np.ndarray]:
        """Load the entry for this key, or compute, store and return it.

        Parameters
        ----------
        checkpoint, dataset : str
            Fingerprints (:func:`checkpoint_fingerprint`, :func:`dataset_fingerprint`).
        preprocessing : dict
            ``AudioConfig.to_dict()``.
        extra : JSON-able
            Names the product.
        compute : callable
            ``() -> dict[str, np.ndarray]``, called only on a miss.

        Returns
        -------
        dict[str, np.ndarray]
        """
        key = self.key(checkpoint=checkpoint, dataset=dataset, preprocessing=preprocessing, extra=extra)
        arrays = self.load(key)
        if arrays is not None:
            self.stats.hits += 1
            return arrays
        self.stats.misses += 1
        arrays = compute()
        self.save(key, arrays)
        return arrays


_DEFAULT: ArrayCache | None = None


def default_cache() -> ArrayCache:
    """The process-wide cache under ``core.paths.cache_dir()`` (one shared ``stats``)."""
    global _DEFAULT
    if _DEFAULT is None:
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


def checkpoint_fingerprint(folder: str | Path) -> str:
    """A hash of the contents of the files directly in a checkpoint folder.

    Sub-folders (such as saved ``decoders/``) are left out, so saving a
    decoder beside a checkpoint does not change its fingerprint. Each file is
    read once per (path, size, modification time).

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
    return _digest([(p.name, _file_hash(p)) for p in files])


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


def _reduce(value: torch.Tensor, tap, model, reduction: str) -> np.ndarray:
    a = value.float().cpu().numpy()
    if reduction == "raw":
        return a
    n_special = getattr(model, "n_special", 1)
    if reduction == "time":
        from core.interpret.nmf import time_activations

        if tap.kind not in ("conv", "tokens"):
            raise InputError("reduction", f"'time' needs a conv or token tap; {tap.name!r} is {tap.kind}")
        return time_activations(a, grid=getattr(model, "grid", None), n_special=n_special)
    from core.embed import pool_tap

    return pool_tap(a, kind=tap.kind, n_special=n_special)


def cached_activations(
    loaded,
    records: Sequence,
    tap_names: Sequence[str],
    cfg: AudioConfig,
    *,
    batch_size: int = 16,
    progress: bool = True,
    reduction: str = "raw",
    cache: ArrayCache | None = None,
) -> dict[str, np.ndarray]:
    """A dataset's tap outputs for one checkpoint, extracted once in batches, then read from disk.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
        Uses ``.model`` (in eval mode), ``.folder`` and ``.input`` (the model's own front end).
    records : sequence of ClipRecord
    tap_names : sequence of str
    cfg : AudioConfig
        Loading: ``load_mono(record, cfg)``, then ``loaded.input`` (log-mel for our models).
    batch_size : int > 0
    progress : bool
        tqdm bar over batches.
    reduction : {"raw", "time", "vector"}
        Stored per clip: the tap's full output; ``"time"``, a conv or token tap
        pooled over frequency, ``(N, K, T')`` (see
        :func:`core.interpret.nmf.time_activations`); ``"vector"``, one vector
        per clip (see :func:`core.embed.pool_tap`). Raw conv taps of a whole
        dataset can take gigabytes: reduce when you can.
    cache : ArrayCache or None
        ``None`` uses :func:`default_cache`.

    Returns
    -------
    dict[str, np.ndarray]
        Tap name -> array with N = ``len(records)`` first, plus ``"labels"``
        ``(N,)`` int64.
    """
    from core.datasets import load_mono
    from core.models import find_tap
    from core.taps import extract

    if reduction not in REDUCTIONS:
        raise InputError("reduction", f"{reduction!r} is not one of {', '.join(REDUCTIONS)}")
    if len(records) == 0:
        raise InputError("records", "no clips selected")
    if batch_size < 1:
        raise InputError("batch_size", f"must be at least 1, got {batch_size}")
    if "labels" in tap_names:
        raise InputError("taps", "'labels' is reserved for the clips' labels")
    model = loaded.model
    taps = [find_tap(model, name) for name in tap_names]
    if hasattr(loaded, "input"):
        def features(y):  # the model's own front end (Loaded.input), batch axis added below
            return loaded.input(y, cfg.sr)
    else:
        def features(y):
            return log_mel(y, cfg)[None]
    device = next(iter(model.parameters()), torch.empty(0)).device

    def compute() -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {tap.name: [] for tap in taps}
        starts = range(0, len(records), batch_size)
        for start in tqdm(starts, desc="activations", unit="batch", disable=not progress):
            batch = records[start : start + batch_size]
            x = np.stack([features(load_mono(r, cfg)) for r in batch])  # (b, 1, n_mels, n_frames) or the model's
            x = torch.as_tensor(x, dtype=torch.float32, device=device)
            outputs = extract(model, x, [tap.name for tap in taps])
            for tap in taps:
                parts[tap.name].append(_reduce(outputs[tap.name], tap, model, reduction))
        arrays = {name: np.concatenate(chunks) for name, chunks in parts.items()}
        arrays["labels"] = np.array([r.label for r in records], dtype=np.int64)
        return arrays

    cache = default_cache() if cache is None else cache
    return cache.get_or_compute(
        checkpoint=checkpoint_fingerprint(loaded.folder),
        dataset=dataset_fingerprint(records),
        preprocessing=cfg.to_dict(),
        extra={"what": "activations", "taps": list(tap_names), "reduction": reduction},
        compute=compute,
    )
