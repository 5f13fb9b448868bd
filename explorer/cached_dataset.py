"""Dataset-wide work for the Embeddings, Decoders and Errors pages, done once and cached.

Two layers of cache, as in :mod:`explorer.cached`:

- **on disk**, under ``core.paths.cache_dir()``, so the work survives a
  restart: tap activations (:func:`core.data.activations.extract`, the same
  entries the command line reads and writes), 2-D projections
  (:func:`core.interpret.embed.cached_embedding`) and decoders the page trained
  (``cache_dir()/decoders/<key>/decoders/<tap>-<flavour>``, written by
  :func:`core.interpret.decoder_fit.fit_decoders`; never inside the
  git-tracked ``checkpoints/``, whose ``decoders/`` are read first);
- **in memory** (``st.cache_data`` / ``st.cache_resource``), keyed on plain
  strings and numbers: a checkpoint *folder*, a dataset *root*, a *fold*
  (1 to 5, or :data:`ALL_FOLDS`), a tap *name*, a clip *path*.

Public functions that may do long work first (:func:`ensure_vectors`,
:func:`train_decoders`) draw an ``st.progress`` bar while they do it and are
called from the page, never from inside a cached function (a cached function
replays the elements it drew). Everything else is a cache lookup on a rerun.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import streamlit as st

from core.data.datasets import checkpoint_test_fold
from core.errors import InputError
from explorer import cached

__all__ = [
    "ALL_FOLDS", "CHUNK", "DECODER_FLAVOURS",
    "fold_label", "fold_options", "records", "ensure_vectors", "predictions", "embedding", "evaluation",
    "decoder_taps", "decoder_source", "train_decoders", "decoders",
    "reconstructions", "pattern_audio", "progress_bar",
]

ALL_FOLDS = 0  # the fold pick meaning "every clip of the dataset"
CHUNK = 16  # clips per progress step
DECODER_FLAVOURS = ("nonneg-linear", "mel-triangular", "mel-gaussian", "spectrogram-nmf")


def fold_label(fold: int) -> str:
    """What the fold pick reads: "fold 5" or "all folds"."""
    return "all folds" if fold == ALL_FOLDS else f"fold {fold}"


def fold_options(root: str, folder: str | None = None) -> tuple[list[int], int]:
    """The fold pick's options for a dataset (its own folds, then :data:`ALL_FOLDS`) and its default.

    The default is the checkpoint's own test fold (``folder``'s ``test_fold``, see
    :func:`core.data.datasets.checkpoint_test_fold`) when the dataset has it, else its last fold.
    """
    folds = cached.dataset(root).folds
    meta = {}
    if folder is not None:
        try:
            meta = cached.checkpoint(folder).meta
        except InputError:
            meta = {}
    wanted = checkpoint_test_fold(meta)
    return folds + [ALL_FOLDS], wanted if wanted in folds else folds[-1]


def records(root: str, fold: int) -> list:
    """The dataset's clips in one of its folds, or all of them for :data:`ALL_FOLDS`.

    Raises
    ------
    InputError
        When the fold holds no clip.
    """
    data = cached.dataset(root)
    if fold != ALL_FOLDS and fold not in data.folds:
        raise InputError("fold", f"{fold!r} is not one of this dataset's folds {data.folds} (or all folds)")
    chosen = data.select(None if fold == ALL_FOLDS else int(fold))
    if not chosen:
        raise InputError(fold_label(fold), f"holds no clips in {data.root}")
    return chosen


# ---------------------------------------------------------------------------
# progress and the work already done


@contextmanager
def progress_bar(text: str) -> Iterator[Callable[[float, str], None]]:
    """An ``st.progress`` bar for the duration of a block; yields ``report(fraction, detail)``.

    The bar is removed when the block ends (also when it raises).
    """
    bar = st.progress(0.0, text=text)

    def report(fraction: float, detail: str = "") -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"{text} {detail}".strip())

    try:
        yield report
    finally:
        bar.empty()


@st.cache_resource
def _done() -> set:
    """Keys of long work finished in this process (its results are on disk), shared by every session."""
    return set()


def _extract(folder: str, recs: list, taps: tuple[str, ...], reduction: str,
             report: Callable[[float, str], None] | None = None, *, start: float = 0.0,
             span: float = 1.0) -> dict[str, np.ndarray]:
    """:func:`core.data.activations.extract` under the model's lock, its progress drawn on ``report``'s bar.

    Returns
    -------
    dict
        Tap name -> np.ndarray with ``len(recs)`` rows, plus ``"labels"``.
    """
    from core.data.activations import extract

    def on_progress(done: int, total: int) -> None:
        if report is not None:
            report(start + span * done / max(total, 1), f"{done} of {total} clips")

    loaded = cached.checkpoint(folder)
    with cached.model_lock(folder):
        return extract(loaded, recs, list(taps), reduce=reduction, on_progress=on_progress)


# ---------------------------------------------------------------------------
# every tap pooled to one vector per clip (embeddings, predictions, evaluation)


def _all_taps(folder: str) -> tuple[str, ...]:
    return tuple(t.name for t in cached.checkpoint(folder).model.taps())


def ensure_vectors(folder: str, root: str, fold: int) -> None:
    """Extract every tap of the model, pooled to one vector per clip, for a fold (once; progress bar).

    One pass through the model gives every tap's embedding and the logits, so
    changing the tap or opening the Errors page later costs nothing. Pooling:
    :func:`core.data.activations.pool_tap` (class token for token taps).

    Raises
    ------
    InputError
        A fold without clips, unreadable audio, a checkpoint that does not load.
    """
    key = ("vectors", folder, root, fold)
    if key in _done():
        return
    recs = records(root, fold)
    with progress_bar(f"Running {Path(folder).name} over {len(recs)} clips ({fold_label(fold)}; first time only)…") \
            as report:
        _extract(folder, recs, _all_taps(folder), "vector", report)
    _done().add(key)


@st.cache_data(max_entries=16, show_spinner=False)
def _predictions(folder: str, root: str, fold: int) -> dict:
    from core.training.evaluate import dataset_proba

    loaded = cached.checkpoint(folder)
    recs = records(root, fold)
    with cached.model_lock(folder):
        proba = dataset_proba(loaded, recs)  # stored logits (a cache hit); softmax or per-class sigmoid
    index = {name: i for i, name in enumerate(loaded.classes)}
    y_true = np.array([index.get(r.category, -1) for r in recs], dtype=np.int64)
    Y_true = np.zeros((len(recs), len(loaded.classes)), dtype=np.int8)  # every class of each clip (multi-label)
    for n, r in enumerate(recs):
        for name in r.label_set:
            if name in index:
                Y_true[n, index[name]] = 1
    return {
        "multi_label": bool(loaded.multi_label),
        "Y_true": Y_true,
        "clip_ids": [r.clip_id for r in recs],
        "paths": [str(r.path) for r in recs],
        "categories": [r.category for r in recs],
        "classes": list(loaded.classes),
        "proba": proba.astype(np.float32),
        "y_true": y_true,
        "y_pred": proba.argmax(axis=1).astype(np.int64),
    }


def predictions(folder: str, root: str, fold: int) -> dict:
    """The model's predictions for every clip of a fold (from the extracted logits).

    Returns
    -------
    dict
        ``clip_ids``, ``paths``, ``categories`` (true class names), lists of
        N; ``classes`` (the checkpoint's); ``proba`` np.ndarray
        [shape=(N, n_classes)]; ``y_true`` [shape=(N,)] (index into
        ``classes``, -1 where the clip's class is not one the model knows);
        ``y_pred`` [shape=(N,)].
    """
    ensure_vectors(folder, root, fold)
    return _predictions(folder, root, fold)


@st.cache_data(max_entries=32, show_spinner="Projecting to 2-D (first time only)…")
def _embedding(folder: str, root: str, fold: int, tap: str, method: str, seed: int) -> np.ndarray:
    from core.interpret.embed import cached_embedding

    loaded = cached.checkpoint(folder)
    if tap not in _all_taps(folder):
        raise InputError("tap", f"{tap!r} is not a tap of {Path(folder).name}")
    with warnings.catch_warnings(), cached.model_lock(folder):
        warnings.simplefilter("ignore")  # umap/numba chatter about threads and seeds
        return cached_embedding(loaded, records(root, fold), tap, method=method, seed=seed)["points"]


def embedding(folder: str, root: str, fold: int, tap: str, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """A fold's clips at one tap, projected to 2-D (:func:`core.interpret.embed.project`), cached on disk.

    Returns
    -------
    np.ndarray [shape=(N, 2)], float32, in the order of :func:`predictions`
    """
    ensure_vectors(folder, root, fold)
    from core.interpret.embed import numba_cache_dir, umap_compiled

    if method != "umap" or umap_compiled():
        return _embedding(folder, root, fold, tap, method, seed)
    with st.status("Compiling UMAP's numerical code: a one-time compile on this machine (about 30 s)…",
                   expanded=True) as status:
        st.caption(f"numba keeps what it compiles in `{numba_cache_dir()}`; later UMAP runs, in this app or "
                   "from the command line, start at once.")
        points = _embedding(folder, root, fold, tap, method, seed)
        status.update(label="UMAP compiled (once on this machine)", state="complete", expanded=False)
    return points


@st.cache_data(max_entries=16, show_spinner=False)
def _evaluation(folder: str, root: str, fold: int) -> dict:
    from sklearn.metrics import roc_curve

    from core.training.evaluate import metrics

    p = _predictions(folder, root, fold)
    if p["multi_label"]:
        from core.training.evaluate import multilabel_metrics

        result = multilabel_metrics(p["Y_true"], p["proba"], p["classes"])
        result.update(multi_label=True, clip_ids=p["clip_ids"], paths=p["paths"], proba=p["proba"])
        return result
    unknown = sorted({c for c, y in zip(p["categories"], p["y_true"]) if y < 0})
    if unknown:
        raise InputError(Path(folder).name, f"does not know the classes {unknown[:5]} of this dataset; "
                                            "pick a dataset with the checkpoint's classes")
    result = metrics(p["y_true"], p["proba"], p["classes"])
    result["clip_ids"] = p["clip_ids"]
    result["paths"] = p["paths"]
    result["proba"] = p["proba"]
    roc = {}
    for c, name in enumerate(p["classes"]):
        positive = p["y_true"] == c
        if 0 < positive.sum() < len(positive):
            fpr, tpr, _ = roc_curve(positive, p["proba"][:, c])
            roc[name] = (fpr.astype(np.float32), tpr.astype(np.float32), result["per_class"][c]["roc_auc"])
    result["roc"] = roc
    return result


def evaluation(folder: str, root: str, fold: int) -> dict:
    """How well a checkpoint classifies a fold (:func:`core.training.evaluate.metrics`) plus ROC curves.

    Returns
    -------
    dict
        :func:`core.training.evaluate.metrics`' result plus ``clip_ids``, ``paths``,
        ``proba`` [shape=(N, n_classes)] and ``roc``: class -> (false positive
        rates, true positive rates, AUC), for each class with positives and
        negatives in the fold.

    Raises
    ------
    InputError
        When the dataset holds classes the checkpoint does not know.
    """
    ensure_vectors(folder, root, fold)
    return _evaluation(folder, root, fold)


# ---------------------------------------------------------------------------
# decoders


def decoder_taps(folder: str) -> list:
    """The taps a decoder can read (conv and token taps), input to output."""
    return cached.checkpoint(folder).cam_taps()


def _page_decoder_dir(folder: str, root: str, test_fold: int, max_steps: int) -> Path:
    """Where the page keeps decoders it trained: a hash of the checkpoint, the clips and the held-out fold."""
    from core.data.cache import checkpoint_fingerprint, dataset_fingerprint
    from core.paths import cache_dir

    loaded = cached.checkpoint(folder)
    payload = json.dumps({
        "checkpoint": checkpoint_fingerprint(loaded.folder),
        "clips": dataset_fingerprint(cached.dataset(root).records),
        "preprocessing": loaded.audio_cfg.to_dict(), "test_fold": test_fold, "max_steps": max_steps, "version": 2,
    }, sort_keys=True)
    return cache_dir() / "decoders" / hashlib.sha256(payload.encode()).hexdigest()[:24]


def decoder_source(folder: str, root: str, test_fold: int, tap: str, max_steps: int = 800) -> str | None:
    """The folder whose ``decoders/`` holds every flavour for ``tap``, or None.

    First the checkpoint's own ``decoders/`` (shipped, or saved by ``python -m
    core fit-decoders``), then those the page trained for this dataset and
    held-out fold (:func:`train_decoders`).
    """
    from core.interpret.decoder_fit import saved_taps

    for candidate in (Path(folder), _page_decoder_dir(folder, root, test_fold, max_steps)):
        if tap in saved_taps(candidate):
            return str(candidate)
    return None


def train_decoders(folder: str, root: str, test_fold: int, tap: str, max_steps: int = 800) -> str:
    """Fit the three decoder flavours for one tap on this dataset, with a progress bar, and save them in the cache.

    The same fitting as ``python -m core fit-decoders``
    (:func:`core.interpret.decoder_fit.fit_decoders`): the held-out fold is
    ``test_fold``, the fold before it stops training early, the rest train.

    Returns
    -------
    str
        The folder (see :func:`decoder_source`).

    Raises
    ------
    InputError
        A tap a decoder cannot read, too few clips, unreadable audio.
    """
    from core.interpret.decoder_fit import fit_decoders

    out = _page_decoder_dir(folder, root, test_fold, max_steps)
    with progress_bar(f"Fitting decoders for {tap}…") as report:
        report(0.05, "reading the clips through the model")
        fit_decoders(cached.checkpoint(folder), cached.dataset(root), taps=[tap], test_fold=test_fold, out=out,
                     progress=False, report=report, max_steps=max_steps, warmup=min(150, max_steps // 3))
    return str(out)


@st.cache_resource(max_entries=8, show_spinner="Loading the decoders…")
def decoders(source: str, tap: str) -> dict:
    """A saved decoder set (shared, read-only: never modify it).

    Returns
    -------
    dict
        As :func:`core.interpret.decoder_fit.load_tap`: flavour -> ``{"basis":
        np.ndarray [shape=(n_mels, K)], "meta": dict, "decoder": Decoder or
        None}`` (``None`` for the NMF oracle), plus ``"report"``: the tap's
        scores (:func:`core.interpret.decoder_fit.score_tap`) or None.
    """
    from core.interpret.decoder_fit import load_tap

    return load_tap(source, tap)


@st.cache_data(max_entries=32, show_spinner="Reconstructing the clip…")
def reconstructions(folder: str, source: str, tap: str, path: str) -> dict:
    """One clip read back through each decoder of a set: :func:`core.interpret.stored.stored_reconstructions`
    (on disk, so what ``python -m core warm-cache`` stored is read back).

    Returns
    -------
    dict
        ``"target"``: np.ndarray [shape=(n_mels, n_frames)], the clip on the
        decoders' [0, 1] scale; ``"floor_db"``, ``"peak_db"``: the clip's dB
        range (0 on the scale is ``floor_db``, 1 is ``peak_db``);
        ``"recon"``: flavour -> [shape=(n_mels, n_frames)] on the same scale;
        ``"activity"``: flavour -> [shape=(K, n_frames)], each filter's
        (scaled) activation over time; ``"errors"``: flavour -> relative error
        on this clip.
    """
    from core.interpret.stored import stored_reconstructions

    with cached.model_lock(folder):
        return stored_reconstructions(cached.checkpoint(folder), path, source, tap)


@st.cache_data(max_entries=16, show_spinner="Turning the pattern into sound…")
def pattern_audio(folder: str, source: str, tap: str, path: str, flavour: str, component: int, steady: bool,
                  steady_s: float = 2.0) -> np.ndarray:
    """One decoder filter as sound.

    ``steady=False``: the filter's contribution to this clip's reconstruction
    (its spectrum times its activation over time); ``steady=True``: the
    filter as a constant spectrum for ``steady_s`` seconds. The pattern is
    scaled to its own peak and mapped linearly onto ``cfg.top_db`` dB
    (peak = 0 dB), then :func:`core.audio.features.mel_db_to_audio` (Griffin-Lim).

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32, at the checkpoint's rate; all
    zeros when the pattern is silent.
    """
    from core.audio.features import mel_db_to_audio

    sets = decoders(source, tap)
    cfg = cached.checkpoint(folder).audio_cfg
    W = sets[flavour]["basis"]
    if not 0 <= component < W.shape[1]:
        raise InputError("filter", f"{component} is not between 0 and {W.shape[1] - 1}")
    w = W[:, component].astype(np.float64)
    if steady:
        n_frames = max(2, int(round(steady_s * cfg.sr / cfg.hop_length)))
        pattern = np.repeat(w[:, None], n_frames, axis=1)
    else:
        activity = reconstructions(folder, source, tap, path)["activity"][flavour]
        pattern = np.outer(w, activity[component])
    peak = float(pattern.max())
    if peak <= 0:
        return np.zeros(cfg.hop_length * (pattern.shape[1] - 1), dtype=np.float32)
    return mel_db_to_audio(-cfg.top_db * (1.0 - pattern / peak), cfg)
