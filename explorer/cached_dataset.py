"""Dataset-wide work for the Embeddings, Decoders and Errors pages, done once and cached.

Two layers of cache, as in :mod:`explorer.cached`:

- **on disk**, under ``core.paths.cache_dir()``, so the work survives a
  restart: tap activations (:func:`core.cache.cached_activations`, one entry
  per chunk of :data:`CHUNK` clips so that a progress bar can follow the
  first extraction), 2-D projections (:class:`core.cache.ArrayCache`) and
  trained decoders (``cache_dir()/decoders/<key>/decoders/<tap>-<flavour>``,
  written by :func:`core.interpret.nmf.save_decoder`; never inside the
  git-tracked ``checkpoints/``);
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
import torch

from core.errors import InputError
from explorer import cached

__all__ = [
    "ALL_FOLDS", "FOLDS", "CHUNK", "NMF_MAX_COMPONENTS", "NMF_FRAME_STEP", "DECODER_FLAVOURS",
    "fold_label", "records", "ensure_vectors", "predictions", "embedding", "evaluation",
    "decoder_taps", "train_records", "test_records", "decoders_trained", "train_decoders", "decoders",
    "reconstructions", "pattern_audio", "progress_bar",
]

ALL_FOLDS = 0  # the fold pick meaning "every clip of the dataset"
FOLDS = (1, 2, 3, 4, 5, ALL_FOLDS)
CHUNK = 16  # clips per on-disk activation entry (and per progress step)
NMF_MAX_COMPONENTS = 32  # the classic NMF baseline's components, at most (sklearn's NMF is slow on 2 cores)
NMF_FRAME_STEP = 8  # the baseline is fitted on every 8th frame of the training clips
MAX_TEST_CLIPS = 80  # held-out clips scored per decoder, at most (evenly spread)
DECODER_TOP = 3  # discriminative filters kept per class
DECODER_FLAVOURS = ("nonneg-linear", "mel-triangular", "mel-gaussian", "spectrogram-nmf")
DECODER_TAP_KINDS = ("conv", "tokens")


def fold_label(fold: int) -> str:
    """What the fold pick reads: "fold 5" or "all folds"."""
    return "all folds" if fold == ALL_FOLDS else f"fold {fold}"


def records(root: str, fold: int) -> list:
    """The dataset's clips in one fold (1 to 5), or all of them for :data:`ALL_FOLDS`.

    Raises
    ------
    InputError
        When the fold holds no clip.
    """
    data = cached.dataset(root)
    if fold != ALL_FOLDS and fold not in range(1, 6):
        raise InputError("fold", f"{fold!r} is not 1 to 5 (or all folds)")
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
    """Tap outputs of many clips, through the on-disk cache, one chunk of :data:`CHUNK` clips at a time.

    Returns
    -------
    dict
        Tap name -> np.ndarray with ``len(recs)`` rows (see
        :func:`core.cache.cached_activations` for each reduction), plus
        ``"labels"`` (the dataset's labels).
    """
    from core.cache import cached_activations

    loaded = cached.checkpoint(folder)
    chunks = [recs[i:i + CHUNK] for i in range(0, len(recs), CHUNK)]
    parts = []
    for i, chunk in enumerate(chunks):
        with cached.model_lock(folder):
            parts.append(cached_activations(loaded, chunk, list(taps), loaded.audio_cfg, batch_size=CHUNK,
                                            progress=False, reduction=reduction))
        if report is not None:
            done = min((i + 1) * CHUNK, len(recs))
            report(start + span * (i + 1) / len(chunks), f"{done} of {len(recs)} clips")
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


# ---------------------------------------------------------------------------
# every tap pooled to one vector per clip (embeddings, predictions, evaluation)


def _all_taps(folder: str) -> tuple[str, ...]:
    return tuple(t.name for t in cached.checkpoint(folder).model.taps())


def _logits_tap(folder: str) -> str:
    names = [t.name for t in cached.checkpoint(folder).model.taps() if t.kind == "logits"]
    if not names:
        raise InputError(Path(folder).name, "the model lists no logits tap")
    return names[-1]


def ensure_vectors(folder: str, root: str, fold: int) -> None:
    """Extract every tap of the model, pooled to one vector per clip, for a fold (once; progress bar).

    One pass through the model gives every tap's embedding and the logits, so
    changing the tap or opening the Errors page later costs nothing. Pooling:
    :func:`core.embed.pool_tap` (class token for token taps).

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


@st.cache_data(max_entries=8, show_spinner=False)
def _vectors(folder: str, root: str, fold: int) -> dict[str, np.ndarray]:
    return _extract(folder, records(root, fold), _all_taps(folder), "vector")


@st.cache_data(max_entries=16, show_spinner=False)
def _predictions(folder: str, root: str, fold: int) -> dict:
    loaded = cached.checkpoint(folder)
    recs = records(root, fold)
    logits = torch.from_numpy(_vectors(folder, root, fold)[_logits_tap(folder)]).float()
    proba = loaded.probabilities(logits)  # softmax, or a sigmoid per class for a multi-label model
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
    from core.cache import checkpoint_fingerprint, dataset_fingerprint, default_cache
    from core.embed import METHODS, project

    if method not in METHODS:
        raise InputError("method", f"{method!r} is not one of {', '.join(METHODS)}")
    loaded = cached.checkpoint(folder)
    recs = records(root, fold)
    vectors = _vectors(folder, root, fold)
    if tap not in vectors:
        raise InputError("tap", f"{tap!r} is not a tap of {Path(folder).name}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap/numba chatter about threads and seeds
        return default_cache().get_or_compute(
            checkpoint=checkpoint_fingerprint(loaded.folder), dataset=dataset_fingerprint(recs),
            preprocessing=loaded.audio_cfg.to_dict(),
            extra={"what": "embedding", "tap": tap, "method": method, "seed": seed, "source": "explorer"},
            compute=lambda: {"points": project(vectors[tap], method=method, seed=seed)},
        )["points"]


def embedding(folder: str, root: str, fold: int, tap: str, method: str = "pca", *, seed: int = 0) -> np.ndarray:
    """A fold's clips at one tap, projected to 2-D (:func:`core.embed.project`), cached on disk.

    Returns
    -------
    np.ndarray [shape=(N, 2)], float32, in the order of :func:`predictions`
    """
    ensure_vectors(folder, root, fold)
    return _embedding(folder, root, fold, tap, method, seed)


@st.cache_data(max_entries=16, show_spinner=False)
def _evaluation(folder: str, root: str, fold: int) -> dict:
    from sklearn.metrics import roc_curve

    from core.evaluate import metrics

    p = _predictions(folder, root, fold)
    if p["multi_label"]:
        from core.evaluate import multilabel_metrics

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
    """How well a checkpoint classifies a fold (:func:`core.evaluate.metrics`) plus ROC curves.

    Returns
    -------
    dict
        :func:`core.evaluate.metrics`' result plus ``clip_ids``, ``paths``,
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
    return [t for t in cached.checkpoint(folder).model.taps() if t.kind in DECODER_TAP_KINDS]


def train_records(root: str, test_fold: int, n_train: int) -> list:
    """At most ``n_train`` clips from the folds other than ``test_fold``, evenly spread."""
    from core.evaluate import spread

    data = cached.dataset(root)
    rest = [r for r in data.records if r.fold != test_fold]
    if not rest:
        raise InputError("training clips", f"every clip of {data.root} is in fold {test_fold}")
    return spread(rest, max(int(n_train), 1))


def test_records(root: str, test_fold: int) -> list:
    """At most :data:`MAX_TEST_CLIPS` clips of ``test_fold``, evenly spread (the held-out set)."""
    from core.evaluate import spread

    return spread(records(root, test_fold), MAX_TEST_CLIPS)


@st.cache_data(max_entries=32, show_spinner=False)
def _decoder_dir(folder: str, root: str, test_fold: int, n_train: int, epochs: int, seed: int) -> str:
    """The folder of one decoder set: a hash of the checkpoint, the clips and the training settings."""
    from core.cache import checkpoint_fingerprint, dataset_fingerprint
    from core.paths import cache_dir

    loaded = cached.checkpoint(folder)
    payload = json.dumps({
        "checkpoint": checkpoint_fingerprint(loaded.folder),
        "train": dataset_fingerprint(train_records(root, test_fold, n_train)),
        "test": dataset_fingerprint(test_records(root, test_fold)),
        "preprocessing": loaded.audio_cfg.to_dict(), "epochs": epochs, "seed": seed,
        "nmf": [NMF_MAX_COMPONENTS, NMF_FRAME_STEP],
    }, sort_keys=True)
    return str(cache_dir() / "decoders" / hashlib.sha256(payload.encode()).hexdigest()[:24])


def _names(tap: str) -> dict[str, str]:
    return {flavour: f"{tap}-{flavour}" for flavour in DECODER_FLAVOURS}


def decoders_trained(folder: str, root: str, test_fold: int, tap: str, *, n_train: int, epochs: int,
                     seed: int = 0) -> bool:
    """Whether every decoder of this set is on disk (a few file checks)."""
    from core.interpret.nmf import DECODER_FOLDER

    base = Path(_decoder_dir(folder, root, test_fold, n_train, epochs, seed)) / DECODER_FOLDER
    return all((base / f"{name}.json").is_file() and (base / f"{name}.safetensors").is_file()
               for name in _names(tap).values())


def _features(recs: list, cfg, report, start: float, span: float) -> np.ndarray:
    from core.datasets import load_features

    X = np.empty((len(recs), cfg.n_mels, cfg.n_frames), dtype=np.float32)
    for i in range(0, len(recs), CHUNK):
        X[i:i + CHUNK] = load_features(recs[i:i + CHUNK], cfg, progress=False)
        report(start + span * min(i + CHUNK, len(recs)) / len(recs), f"spectrograms: {min(i + CHUNK, len(recs))} "
                                                                    f"of {len(recs)} clips")
    return X


def train_decoders(folder: str, root: str, test_fold: int, tap: str, *, n_train: int, epochs: int,
                   seed: int = 0) -> None:
    """Train the three decoder flavours and the NMF baseline for one tap, with a progress bar, and save them.

    Training clips: :func:`train_records`; errors and discriminative filters
    are measured on :func:`test_records`. The classic NMF baseline has
    ``min(K, NMF_MAX_COMPONENTS)`` components, fitted on every
    ``NMF_FRAME_STEP``-th frame. Saved with
    :func:`core.interpret.nmf.save_decoder` / ``save_nmf_basis`` in the
    on-disk cache, with each one's held-out errors, discriminative filters
    and training losses in its json.

    Raises
    ------
    InputError
        A tap a decoder cannot read, too few clips, unreadable audio.
    """
    from core.interpret import nmf

    loaded = cached.checkpoint(folder)
    cfg, model = loaded.audio_cfg, loaded.model
    if tap not in {t.name for t in decoder_taps(folder)}:
        raise InputError("tap", f"{tap!r} is not a conv or token tap of {Path(folder).name}")
    train, test = train_records(root, test_fold, n_train), test_records(root, test_fold)
    if len(train) < 2 or len(test) < 2:
        raise InputError("clips", f"need at least 2 training and 2 held-out clips, got {len(train)} and {len(test)}")
    classes = list(cached.dataset(root).classes)
    out = Path(_decoder_dir(folder, root, test_fold, n_train, epochs, seed))
    names = _names(tap)
    grid, n_special = getattr(model, "grid", None), getattr(model, "n_special", 1)

    def matrices(recs, start, span, report):
        acts = _extract(folder, recs, (tap,), "time", report, start=start, span=span * 0.5)
        H = nmf.activation_matrix(acts[tap], n_frames=cfg.n_frames)  # (N, K, n_frames)
        X = nmf.nonnegative_target(_features(recs, cfg, report, start + span * 0.5, span * 0.5))
        return H, X, acts["labels"]

    with progress_bar(f"Training decoders for {tap} ({len(train)} clips, {epochs} epochs)…") as report:
        H_train, X_train, _ = matrices(train, 0.0, 0.45, report)
        H_test, X_test, labels_test = matrices(test, 0.45, 0.2, report)
        K = H_train.shape[1]
        common = {"tap": tap, "kind": getattr(model, "kind", ""), "epochs": epochs, "seed": seed,
                  "n_train": len(train), "n_test": len(test), "test_fold": test_fold, "classes": classes,
                  "grid": list(grid) if grid is not None else None, "n_special": n_special}
        for i, flavour in enumerate(nmf.FLAVOURS):
            report(0.65 + 0.08 * i, f"training the {flavour} decoder")
            decoder = nmf.build_decoder(flavour, n_mels=cfg.n_mels, n_components=K, seed=seed)
            losses = nmf.train_decoder(decoder, H_train, X_train, epochs=epochs, seed=seed, progress=False)
            errors = nmf.reconstruction_error(decoder, H_test, X_test)
            picks = nmf.discriminative_components(nmf.clip_activations(H_test), labels_test, top=DECODER_TOP)
            nmf.save_decoder(decoder, out, name=names[flavour], meta={
                **common, **errors, "train_losses": losses,
                "discriminative": {str(c): v for c, v in picks.items()}})
        report(0.9, "fitting the classic NMF baseline")
        k_nmf = min(K, cfg.n_mels, NMF_MAX_COMPONENTS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at max_iter
            basis = nmf.fit_spectrogram_nmf(X_train[:, :, ::NMF_FRAME_STEP], n_components=k_nmf, seed=seed)
            acts = nmf.spectrogram_nmf_activations(X_test, basis)
        X_hat = np.einsum("mk,nkt->nmt", basis, acts)
        errors = {"mse": float(np.mean((X_test - X_hat) ** 2)),
                  "relative_error": float(np.linalg.norm(X_test - X_hat) / max(np.linalg.norm(X_test), 1e-12))}
        picks = nmf.discriminative_components(nmf.clip_activations(acts), labels_test, top=DECODER_TOP)
        nmf.save_nmf_basis(basis, out, name=names["spectrogram-nmf"], meta={
            **common, **errors, "frame_step": NMF_FRAME_STEP,
            "discriminative": {str(c): v for c, v in picks.items()}})
        report(1.0, "done")


@st.cache_resource(max_entries=8, show_spinner="Loading the decoders…")
def decoders(folder: str, root: str, test_fold: int, tap: str, n_train: int, epochs: int, seed: int = 0) -> dict:
    """A trained decoder set (shared, read-only: never modify it).

    Returns
    -------
    dict
        Flavour (:data:`DECODER_FLAVOURS`) -> ``{"basis": np.ndarray [shape=(n_mels, K)],
        "meta": dict, "decoder": Decoder or None}`` (``None`` for the NMF baseline);
        ``meta["discriminative"]`` is ``{class index: [(filter, d'), ...]}``.

    Raises
    ------
    InputError
        When the set is not on disk (see :func:`decoders_trained`).
    """
    from core.interpret import nmf

    out = _decoder_dir(folder, root, test_fold, n_train, epochs, seed)
    sets = {}
    for flavour, name in _names(tap).items():
        if flavour == "spectrogram-nmf":
            basis, meta = nmf.load_nmf_basis(out, name=name)
            decoder = None
        else:
            decoder, meta = nmf.load_decoder(out, name=name)
            with torch.no_grad():
                basis = decoder.basis().numpy().copy()
        meta = dict(meta)
        meta["discriminative"] = {int(c): [(int(k), float(s)) for k, s in v]
                                  for c, v in meta.get("discriminative", {}).items()}
        sets[flavour] = {"basis": basis, "meta": meta, "decoder": decoder}
    return sets


@st.cache_data(max_entries=32, show_spinner="Reconstructing the clip…")
def reconstructions(folder: str, root: str, test_fold: int, tap: str, n_train: int, epochs: int, path: str,
                    seed: int = 0) -> dict:
    """One clip read back through each decoder of a set.

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
    from core.interpret import nmf

    sets = decoders(folder, root, test_fold, tap, n_train, epochs, seed)
    loaded = cached.checkpoint(folder)
    cfg, model = loaded.audio_cfg, loaded.model
    key = cached.cfg_key(cfg)
    value = cached.tap_outputs(folder, path, (tap,))[tap]  # (C, F, T) or (S, D)
    H = nmf.activation_matrix(nmf.time_activations(value[None], grid=getattr(model, "grid", None),
                                                   n_special=getattr(model, "n_special", 1)),
                              n_frames=cfg.n_frames)  # (1, K, n_frames)
    X = nmf.nonnegative_target(cached.model_input(path, cached.input_key(folder))[None])  # (1, n_mels, n_frames)
    S_db = cached.spectrogram_db(path, key)
    out = {"target": X[0], "floor_db": float(S_db.min()), "peak_db": float(S_db.max()), "recon": {},
           "activity": {}, "errors": {}}
    for flavour, item in sets.items():
        if item["decoder"] is not None:
            decoder = item["decoder"]
            with torch.no_grad():
                X_hat = decoder(torch.from_numpy(H))[0].numpy()
                activity = (torch.from_numpy(H[0]) / decoder.h_scale[:, None]).numpy()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                activity = nmf.spectrogram_nmf_activations(X, item["basis"])[0]
            X_hat = item["basis"] @ activity
        out["recon"][flavour] = X_hat.astype(np.float32)
        out["activity"][flavour] = activity.astype(np.float32)
        out["errors"][flavour] = float(np.linalg.norm(X[0] - X_hat) / max(np.linalg.norm(X[0]), 1e-12))
    return out


@st.cache_data(max_entries=16, show_spinner="Turning the pattern into sound…")
def pattern_audio(folder: str, root: str, test_fold: int, tap: str, n_train: int, epochs: int, path: str,
                  flavour: str, component: int, steady: bool, seed: int = 0,
                  steady_s: float = 2.0) -> np.ndarray:
    """One decoder filter as sound.

    ``steady=False``: the filter's contribution to this clip's reconstruction
    (its spectrum times its activation over time); ``steady=True``: the
    filter as a constant spectrum for ``steady_s`` seconds. The pattern is
    scaled to its own peak and mapped linearly onto ``cfg.top_db`` dB
    (peak = 0 dB), then :func:`core.audio.mel_db_to_audio` (Griffin-Lim).

    Returns
    -------
    np.ndarray [shape=(n_samples,)], float32, at the checkpoint's rate; all
    zeros when the pattern is silent.
    """
    from core.audio import mel_db_to_audio

    sets = decoders(folder, root, test_fold, tap, n_train, epochs, seed)
    cfg = cached.checkpoint(folder).audio_cfg
    W = sets[flavour]["basis"]
    if not 0 <= component < W.shape[1]:
        raise InputError("filter", f"{component} is not between 0 and {W.shape[1] - 1}")
    w = W[:, component].astype(np.float64)
    if steady:
        n_frames = max(2, int(round(steady_s * cfg.sr / cfg.hop_length)))
        pattern = np.repeat(w[:, None], n_frames, axis=1)
    else:
        activity = reconstructions(folder, root, test_fold, tap, n_train, epochs, path, seed)["activity"][flavour]
        pattern = np.outer(w, activity[component])
    peak = float(pattern.max())
    if peak <= 0:
        return np.zeros(cfg.hop_length * (pattern.shape[1] - 1), dtype=np.float32)
    return mel_db_to_audio(-cfg.top_db * (1.0 - pattern / peak), cfg)
