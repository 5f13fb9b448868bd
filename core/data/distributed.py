"""The Dask engine of :func:`core.data.activations.extract`: each shard of clips is one task on a Dask cluster.

``extract(..., engine="dask")`` calls :func:`run_shards` with the shards still
missing. Each task loads the checkpoint from its folder itself (once per worker
process), runs the same shard function as the local engine
(``core.data.activations._run_shard``, handed in by the caller) on its own slice of the records, and writes its shard into the same
:class:`core.data.cache.ArrayCache` root, renamed into place when whole. The client
then joins the shards as the local engine does, so the result is the same
arrays, cached under the same keys: bit for bit with the same ``batch_size``
and the same number of torch threads per process, else to float rounding (a
local cluster's workers run one thread each; on the 600-clip demo set the
SE-CNN's embeddings then differ from a 2-thread local run by at most 2.4e-6).

The workers must see the same paths as the client: the checkpoint folder, the
audio files and the cache root. On one machine (``scheduler=None``: a
:class:`distributed.LocalCluster` of one single-threaded worker process per
core, up to one per shard) that is always so; on a cluster, put them on a
shared file system and install this project on the workers.

Optional: ``pip install "dask[distributed]"``. When it is used: tens of
thousands of clips, or a cluster of machines. On one laptop the local engine
is about as fast (PyTorch already uses every core), and starts at once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from core.errors import InputError

__all__ = ["run_shards", "local_cluster_size"]

CONNECT_TIMEOUT_S = 10
INSTALL_HINT = "pip install 'dask[distributed]'"


def _distributed():
    """The ``distributed`` module, or an :class:`InputError` saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise InputError("--engine dask", f"needs Dask's distributed scheduler: {INSTALL_HINT}") from None
    return distributed


def local_cluster_size(n_tasks: int) -> int:
    """Worker processes for a local cluster: one per core, no more than there are shards to run."""
    return max(1, min(os.cpu_count() or 1, n_tasks))


_PER_THREAD = threading.local()


def _load(folder: str, stamp: tuple):
    """The checkpoint, once per worker thread (``stamp``: the files' sizes and times, so an edit reloads).

    Per thread, not per process: extraction records a tap with forward hooks
    on the model, so two threads sharing one model would read each other's
    outputs.
    """
    from core.models.checkpoint import load_checkpoint

    held = getattr(_PER_THREAD, "loaded", None)
    if held is None or held[0] != (folder, stamp):
        _PER_THREAD.loaded = held = ((folder, stamp), load_checkpoint(folder))
    return held[1]


def _stamp(folder: str) -> tuple:
    path = Path(folder)
    if not path.is_dir():
        return (folder,)
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(path.iterdir()) if p.is_file())


def _shard_task(run_shard: Callable, folder: str, records: list, taps: list[str], reduction, cache_root: str,
                keys: dict[str, str], start: int, stop: int, batch_size: int, torch_threads: int | None) -> int:
    """One task: clips ``start:stop`` (``records`` holds just those) into the cache; returns how many."""
    import torch

    from core.data.cache import ArrayCache

    if torch_threads is not None:
        torch.set_num_threads(torch_threads)
    loaded = _load(folder, _stamp(folder))
    with torch.no_grad():
        run_shard(loaded, records, taps, reduction, ArrayCache(cache_root), keys, start, stop, batch_size,
                   first=start)
    return stop - start


def _client(scheduler: str | None, n_tasks: int):
    """A client of the scheduler at ``scheduler``, or of a new local cluster (closed with the client)."""
    distributed = _distributed()
    import logging

    if scheduler is None:
        cluster = distributed.LocalCluster(n_workers=local_cluster_size(n_tasks), threads_per_worker=1,
                                           processes=True, dashboard_address=None, silence_logs=logging.ERROR)
        return distributed.Client(cluster, set_as_default=False), cluster
    try:
        return distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False), None
    except (OSError, TimeoutError, ValueError) as error:
        raise InputError(scheduler, f"cannot reach the Dask scheduler ({error.__class__.__name__}: "
                                    f"{str(error).splitlines()[0] if str(error) else 'no answer'})") from None


def run_shards(folder: str | Path, records: Sequence, taps: Sequence[str], reduction, cache_root: str | Path,
               keys: dict[str, str], todo: Sequence[tuple[int, int]], *, batch_size: int,
               scheduler: str | None = None, on_shard: Callable[[int], None] | None = None,
               run_shard: Callable) -> None:
    """Extract the shards ``todo`` as Dask tasks, each writing its shard of every tap into the cache.

    Parameters
    ----------
    folder : str or Path
        The checkpoint folder (``Loaded.folder``); each worker loads it itself.
    records : sequence of ClipRecord
        All the dataset's records; a task is sent only its shard's.
    taps : sequence of str
    reduction : core.data.activations.Reduction
        Its ``fn`` must be a module-level function (it is pickled to the workers).
    cache_root : str or Path
        The :class:`~core.data.cache.ArrayCache` root, the same path on every worker.
    keys : dict[str, str]
        Tap name -> cache key (:func:`core.data.activations.cache_keys`).
    todo : sequence of (int, int)
        ``(start, stop)`` of each shard to extract.
    batch_size : int > 0
    scheduler : str or None
        A scheduler's address (``"tcp://host:8786"``); ``None`` starts a local cluster.
    on_shard : callable or None
        ``on_shard(n_clips)`` as each shard finishes, in the order they finish.
    run_shard : callable
        ``core.data.activations._run_shard`` (passed in, so that this module does not
        import its caller); a module-level function, pickled to the workers by name.

    Raises
    ------
    InputError
        Dask not installed, the scheduler unreachable, or a task's own ``InputError``
        (the other tasks are cancelled; finished shards stay on disk).
    """
    if not todo:
        return
    client, cluster = _client(scheduler, len(todo))
    distributed = _distributed()
    threads = 1 if cluster is not None else None  # our own cluster: one thread per worker process
    try:
        futures = [client.submit(_shard_task, run_shard, str(folder), list(records[start:stop]), list(taps), reduction,
                                 str(cache_root), dict(keys), start, stop, batch_size, threads, pure=False)
                   for start, stop in todo]
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                n_clips = future.result()
                if on_shard is not None:
                    on_shard(n_clips)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
