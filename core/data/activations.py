"""Dataset-wide extraction: every clip through a model once, each tap reduced per clip, stored in shards.

This is the one place where a whole dataset goes through a model. Embeddings
(:mod:`core.interpret.embed`), decoders (:mod:`core.interpret.nmf`), evaluation
(:mod:`core.training.evaluate`) and the explorer's dataset pages all call
:func:`extract`, so the same work done from the command line or from the app
hits the same cache entry.

A reduction turns one batch of a tap's output into what is stored per clip:

* ``"raw"``: the tap's output as it is;
* ``"time"``: a conv or token tap pooled over frequency, ``(N, K, T')``
  (:func:`time_activations`);
* ``"vector"``: one vector per clip (:func:`pool_tap`);
* or a :class:`Reduction` of your own (its ``name`` goes into the cache key).

Storage (:class:`core.data.cache.ArrayCache`): one entry per tap and reduction,
keyed by the checkpoint's and the dataset's fingerprints and the
preprocessing. Clips are processed in shards of ``shard_size``; each shard is
written (memory-mapped, one batch in memory at a time) to a temporary file
and renamed into place as soon as it is done, so a killed run resumes at the
first missing shard and never leaves a corrupt entry. When every shard is
there, they are joined into one ``.npy`` and returned memory-mapped.

Engines: ``"local"`` (this process) or ``"dask"`` (each shard a task on a Dask
cluster; ``pip install "dask[distributed]"``), same arrays either way.

>>> pool_tap(np.ones((2, 3, 4, 5)), kind="conv").shape
(2, 3)
>>> time_activations(np.ones((2, 3, 4, 5))).shape
(2, 3, 5)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch

from core.data.cache import ArrayCache, checkpoint_fingerprint, dataset_fingerprint, default_cache
from core.errors import InputError
from core.kinds import MAP_TAP_KINDS

__all__ = [
    "SHARD_CLIPS",
    "ENGINES",
    "Reduction",
    "REDUCTIONS",
    "pool_tap",
    "time_activations",
    "extract",
    "use_engine",
    "cache_keys",
]

SHARD_CLIPS = 64  # clips per shard: the unit of resumption and of a Dask task
ENGINES = ("local", "dask")
_ENGINE: ContextVar[tuple[str, str | None]] = ContextVar("engine", default=("local", None))


@contextmanager
def use_engine(engine: str = "local", scheduler: str | None = None) -> Iterator[None]:
    """Run every :func:`extract` inside the block that names no engine on ``engine`` (the CLI's ``--engine``).

    Parameters
    ----------
    engine : {"local", "dask"}
    scheduler : str or None
        For ``"dask"``: a scheduler address; ``None`` starts a local cluster.

    Examples
    --------
    >>> with use_engine("dask", "tcp://10.0.0.5:8786"):
    ...     _ENGINE.get()
    ('dask', 'tcp://10.0.0.5:8786')
    >>> use_engine("local", "tcp://10.0.0.5:8786").__enter__()
    Traceback (most recent call last):
    ...
    core.errors.InputError: --scheduler: only the dask engine takes a scheduler (add --engine dask)
    """
    if engine not in ENGINES:
        raise InputError("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
    if scheduler is not None and engine != "dask":
        raise InputError("--scheduler", "only the dask engine takes a scheduler (add --engine dask)")
    token = _ENGINE.set((engine, scheduler))
    try:
        yield
    finally:
        _ENGINE.reset(token)


# -- reductions ----------------------------------------------------------------------------


def pool_tap(activation: np.ndarray, *, kind: str, token: str = "cls", n_special: int = 1) -> np.ndarray:
    """One vector per clip from a tap's output.

    Pooling, by the tap's kind:
        * ``"conv"`` ``(N, C, F, T)``: mean over frequency and time -> ``(N, C)``;
        * ``"tokens"`` ``(N, S, D)``: the class token (``token="cls"``) or the mean
          of the patch tokens (``token="mean"``) -> ``(N, D)``;
        * ``"attention"`` ``(N, H, S, S)``: the class token's attention to the
          patches, averaged over heads -> ``(N, P)``;
        * ``"se"``, ``"embedding"``, ``"logits"``: flattened per clip (already one vector).

    Parameters
    ----------
    activation : np.ndarray [shape=(N, ...)]
    kind : {"conv", "tokens", "attention", "se", "embedding", "logits"}
        The tap's kind (``Tap.kind``).
    token : {"cls", "mean"}
        For token taps: the class token or the mean of the patch tokens.
    n_special : int >= 0
        Special tokens before the patches.

    Returns
    -------
    np.ndarray [shape=(N, D)], float32

    Examples
    --------
    >>> tokens = np.arange(2 * 3 * 2, dtype=np.float32).reshape(2, 3, 2)
    >>> pool_tap(tokens, kind="tokens", token="mean")
    array([[ 3.,  4.],
           [ 9., 10.]], dtype=float32)
    """
    a = np.asarray(activation, dtype=np.float32)
    if a.ndim < 2:
        raise InputError("activation", f"expected (N, ...), got shape {a.shape}")
    if kind == "conv":
        if a.ndim != 4:
            raise InputError("activation", f"a conv tap is (N, C, F, T), got shape {a.shape}")
        return a.mean(axis=(2, 3))
    if kind == "tokens":
        if a.ndim != 3:
            raise InputError("activation", f"a token tap is (N, S, D), got shape {a.shape}")
        if token == "cls":
            return a[:, 0]
        if token == "mean":
            return a[:, n_special:].mean(axis=1)
        raise InputError("token", f"{token!r} is not 'cls' or 'mean'")
    if kind == "attention":
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            raise InputError("activation", f"an attention tap is (N, H, S, S), got shape {a.shape}")
        return a[:, :, 0, n_special:].mean(axis=1)
    if kind in ("se", "embedding", "logits"):
        return a.reshape(len(a), -1)
    raise InputError("kind", f"{kind!r} is not a tap kind")


def time_activations(
    activation: np.ndarray | torch.Tensor,
    *,
    grid: tuple[int, int] | None = None,
    n_special: int = 1,
) -> np.ndarray:
    """Pool a tap's output over frequency, keeping channels and the tap's own time steps.

    Parameters
    ----------
    activation : array [shape=(N, C, F', T')] or [shape=(N, n_special + P, D)]
        A conv tap or a token tap.
    grid : (int, int) or None
        ``(n_freq_patches, n_time_patches)``, needed for token taps.
    n_special : int >= 0
        Special tokens before the patches (token taps).

    Returns
    -------
    np.ndarray [shape=(N, K, T')], float32
        ``K = C`` for conv taps; ``K = D``, ``T' = n_time_patches`` for tokens.

    Examples
    --------
    >>> tokens = np.zeros((1, 1 + 2 * 3, 4), dtype=np.float32)  # class token, then a 2 x 3 grid
    >>> time_activations(tokens, grid=(2, 3)).shape
    (1, 4, 3)
    """
    from core.interpret.maps import tokens_to_grid

    a = torch.as_tensor(np.array(activation, dtype=np.float32))  # a copy: stored arrays are read-only
    if a.ndim == 3:
        if grid is None:
            raise InputError("grid", "token activations need the patch grid (n_freq, n_time)")
        a = tokens_to_grid(a, grid=grid, n_special=n_special)  # (N, D, n_freq, n_time)
    if a.ndim != 4:
        raise InputError("activation", f"expected (N, C, F, T) or (N, S, D), got shape {tuple(a.shape)}")
    return a.mean(dim=2).numpy()  # (N, K, T')


@dataclass(frozen=True)
class Reduction:
    """What is kept of one batch of a tap's output.

    Attributes
    ----------
    name : str
        Goes into the cache key: two reductions with one name must compute the same thing.
    fn : callable
        ``fn(activation, tap, model) -> np.ndarray`` with ``activation`` a
        float32 ``(B, ...)`` batch and the result ``(B, ...)``. A module-level
        function, so that the Dask engine can send it to a worker.
    kinds : tuple of str or None
        The tap kinds it applies to (``None``: all).
    """

    name: str
    fn: Callable
    kinds: tuple[str, ...] | None = None


def _raw(a: np.ndarray, tap, model) -> np.ndarray:
    return a


def _time(a: np.ndarray, tap, model) -> np.ndarray:
    return time_activations(a, grid=getattr(model, "grid", None), n_special=getattr(model, "n_special", 1))


def _vector(a: np.ndarray, tap, model) -> np.ndarray:
    return pool_tap(a, kind=tap.kind, n_special=getattr(model, "n_special", 1))


REDUCTIONS = {
    "raw": Reduction("raw", _raw),
    "time": Reduction("time", _time, MAP_TAP_KINDS),
    "vector": Reduction("vector", _vector),
}


def _reduction(reduce: str | Reduction) -> Reduction:
    if isinstance(reduce, Reduction):
        return reduce
    if reduce not in REDUCTIONS:
        raise InputError("reduction", f"{reduce!r} is not one of {', '.join(REDUCTIONS)}")
    return REDUCTIONS[reduce]


# -- extraction ----------------------------------------------------------------------------


def cache_keys(loaded, records: Sequence, taps: Sequence[str], *, reduce: str | Reduction = "raw",
               cache: ArrayCache | None = None) -> dict[str, str]:
    """The cache entry of each tap for this checkpoint, these records and this reduction.

    Returns
    -------
    dict[str, str]
        Tap name -> key in :class:`core.data.cache.ArrayCache`.
    """
    cache = default_cache() if cache is None else cache
    base = {"checkpoint": checkpoint_fingerprint(loaded.folder), "dataset": dataset_fingerprint(records),
            "preprocessing": loaded.audio_cfg.to_dict()}
    name = _reduction(reduce).name
    return {tap: cache.key(**base, extra={"what": "activations", "tap": tap, "reduction": name}) for tap in taps}


def _inputs(loaded, records: Sequence) -> torch.Tensor:
    """The model's input for a batch of records, through its own front end (:meth:`Loaded.inputs`)."""
    x = loaded.inputs(records)  # (B, 1, n_mels, n_frames) for our models; the model's own shape otherwise
    device = next(iter(loaded.model.parameters()), torch.empty(0)).device
    return torch.as_tensor(x, dtype=torch.float32, device=device)


def _run_shard(loaded, records: Sequence, taps: Sequence[str], reduction: Reduction, cache: ArrayCache,
               keys: dict[str, str], start: int, stop: int, batch_size: int,
               on_batch: Callable[[int], None] | None = None, first: int = 0) -> None:
    """Extract clips ``start:stop`` and store one shard per tap, one batch in memory at a time.

    ``records[i - first]`` is clip ``i`` (a Dask task gets only its shard's records, ``first=start``).
    """
    from contextlib import ExitStack

    from core.models import find_tap
    from core.models.taps import extract as run_taps

    model = loaded.model
    found = [find_tap(model, name) for name in taps]
    with ExitStack() as stack:
        writers = {t: stack.enter_context(cache.shard_writer(keys[t], start, stop)) for t in taps}
        for offset in range(0, stop - start, batch_size):
            batch = records[start - first + offset:min(start + offset + batch_size, stop) - first]
            outputs = run_taps(model, _inputs(loaded, batch), list(taps))
            for tap in found:
                writers[tap.name](offset, np.asarray(reduction.fn(outputs[tap.name].float().cpu().numpy(), tap, model)))
            if on_batch is not None:
                on_batch(len(batch))


def extract(
    loaded,
    records: Sequence,
    taps: Sequence[str],
    *,
    reduce: str | Reduction = "raw",
    batch_size: int = 16,
    shard_size: int = SHARD_CLIPS,
    cache: ArrayCache | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    progress: bool = False,
    engine: str | None = None,
    scheduler: str | None = None,
) -> dict[str, np.ndarray]:
    """A dataset's tap outputs for one checkpoint, reduced per clip, extracted once, then read from disk.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
        Uses ``.model`` (in eval mode), ``.folder``, ``.audio_cfg`` and ``.features``.
    records : sequence of ClipRecord
    taps : sequence of str
        Tap names. Taps already on disk are read; the others are extracted
        together, in one pass through the model.
    reduce : {"raw", "time", "vector"} or Reduction
        What is stored per clip (see the module docstring). Raw conv taps of a
        whole dataset can take gigabytes on disk: reduce when you can.
    batch_size : int > 0
        Clips per forward pass; peak memory grows with it, not with the dataset.
        Not part of the cache key (values agree across batch sizes to float
        rounding; bit for bit only with the same batch size).
    shard_size : int > 0
        Clips per shard (the unit of resumption and of a Dask task). Not part of the key.
    cache : ArrayCache or None
        ``None`` uses :func:`core.data.cache.default_cache`. Each tap's lookup is
        counted in ``cache.stats``.
    on_progress : callable or None
        ``on_progress(done, total)`` in clips, after each batch (and once at the
        start with the clips already on disk).
    progress : bool
        A tqdm bar in the terminal.
    engine : {"local", "dask"} or None
        ``None``: the one set by :func:`use_engine` (``"local"`` outside it).
        ``"dask"`` runs each shard as a task (:mod:`core.data.distributed`); the
        arrays and cache entries are the same.
    scheduler : str or None
        For ``engine="dask"``: a scheduler address; ``None`` starts a local
        cluster (or uses :func:`use_engine`'s address).

    Returns
    -------
    dict[str, np.ndarray]
        Tap name -> array with N = ``len(records)`` first (memory-mapped,
        read-only), plus ``"labels"`` ``(N,)`` int64.

    Examples
    --------
    >>> import tempfile
    >>> from core.data.cache import ArrayCache
    >>> from core.models.checkpoint import load_checkpoint
    >>> from core.data.datasets import open_dataset
    >>> from core.audio.demo_data import ensure_demo_data
    >>> from core.paths import CHECKPOINTS_DIR
    >>> loaded = load_checkpoint(CHECKPOINTS_DIR / "secnn")
    >>> records = open_dataset(ensure_demo_data()).select(5)[:4]
    >>> cache = ArrayCache(tempfile.mkdtemp())
    >>> acts = extract(loaded, records, ["block3", "embedding"], reduce="vector", cache=cache)
    >>> acts["block3"].shape, acts["embedding"].shape, acts["labels"].tolist()
    ((4, 64), (4, 256), [5, 4, 7, 7])
    >>> again = extract(loaded, records, ["block3"], reduce="vector", cache=cache)  # read from disk
    >>> cache.stats
    CacheStats(hits=1, misses=2)
    """
    from core.models import find_tap

    reduction = _reduction(reduce)
    records = list(records)
    if len(records) == 0:
        raise InputError("records", "no clips selected")
    if batch_size < 1:
        raise InputError("batch_size", f"must be at least 1, got {batch_size}")
    if shard_size < 1:
        raise InputError("shard_size", f"must be at least 1, got {shard_size}")
    if engine is None:
        engine, scheduler = _ENGINE.get()[0], scheduler or _ENGINE.get()[1]
    if engine not in ENGINES:
        raise InputError("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
    taps = list(dict.fromkeys(taps))
    if "labels" in taps:
        raise InputError("taps", "'labels' is reserved for the clips' labels")
    for name in taps:
        tap = find_tap(loaded.model, name)
        if reduction.kinds is not None and tap.kind not in reduction.kinds:
            raise InputError("reduction", f"{reduction.name!r} needs a {' or '.join(reduction.kinds)} tap; "
                                          f"{name!r} is {tap.kind}")

    cache = default_cache() if cache is None else cache
    keys = cache_keys(loaded, records, taps, reduce=reduction, cache=cache)
    out: dict[str, np.ndarray] = {}
    for name in taps:
        stored = cache.load_array(keys[name])
        cache.count(stored is not None)
        if stored is not None:
            out[name] = stored
    missing = [name for name in taps if name not in out]
    with cache.lock(*(keys[name] for name in missing)):  # one writer per entry; a second one waits, then reads
        for name in missing:
            stored = cache.load_array(keys[name])
            if stored is not None:  # written by whoever held the lock before us
                out[name] = stored
        missing = [name for name in taps if name not in out]
        _compute_missing(loaded, records, missing, reduction, cache, keys, out, batch_size=batch_size,
                         shard_size=shard_size, on_progress=on_progress, progress=progress, engine=engine,
                         scheduler=scheduler)
    out = {name: out[name] for name in taps}
    out["labels"] = np.array([r.label for r in records], dtype=np.int64)
    return out


def _compute_missing(loaded, records, missing, reduction, cache, keys, out, *, batch_size, shard_size, on_progress,
                     progress, engine, scheduler) -> None:
    """Extract the ``missing`` taps shard by shard (resuming at shards on disk) and assemble each into ``out``."""
    n = len(records)
    if missing:
        bounds = [(s, min(s + shard_size, n)) for s in range(0, n, shard_size)]
        todo = [b for b in bounds if not all(cache.has_shard(keys[t], *b) for t in missing)]
        report = _Progress(n, n - sum(stop - start for start, stop in todo), on_progress, progress)
        try:
            if engine == "dask":
                from core.data.distributed import run_shards

                run_shards(loaded.folder, records, missing, reduction, cache.root, keys, todo,
                           batch_size=batch_size, scheduler=scheduler, on_shard=report, run_shard=_run_shard)
            else:
                for start, stop in todo:
                    _run_shard(loaded, records, missing, reduction, cache, keys, start, stop, batch_size,
                               on_batch=report)
        finally:
            report.close()
        for name in missing:
            out[name] = cache.assemble(keys[name], bounds)
    elif on_progress is not None:
        on_progress(n, n)


class _Progress:
    """Counts clips done; calls ``on_progress(done, total)`` and moves a tqdm bar."""

    def __init__(self, total: int, done: int, on_progress, progress: bool):
        from tqdm.auto import tqdm

        self.total, self.done, self.on_progress = total, done, on_progress
        self.bar = tqdm(total=total, initial=done, desc="activations", unit="clip", disable=not progress)
        if on_progress is not None:
            on_progress(done, total)

    def __call__(self, n_clips: int) -> None:
        self.done += n_clips
        self.bar.update(n_clips)
        if self.on_progress is not None:
            self.on_progress(self.done, self.total)

    def close(self) -> None:
        self.bar.close()
