"""Novelty: is a clip unlike the clips a model was trained on?

A classifier names one of its classes for any input, confidently or not, so
its top probability cannot say when a clip belongs to none of them. This
module scores a clip by how far its embedding (the input of the model's head,
:func:`novelty_tap`) lies from the training clips' embeddings, in one of two
ways (``"mahalanobis"`` is the default: it separates better on both shipped
models, see ``checkpoints/README.md``):

* ``"knn"`` (Sun, Ming, Zhu and Li 2022, "Out-of-distribution detection with
  deep nearest neighbors"): embeddings scaled to unit length, the score is the
  Euclidean distance to the ``k``-th nearest training embedding,
  ``s(x) = || z(x)/|z(x)| - z_(k)/|z_(k)| ||``;
* ``"mahalanobis"`` (Lee, Lee, Lee and Shin 2018): one mean per class and one
  shared covariance (Ledoit-Wolf shrinkage), the score is the smallest squared
  Mahalanobis distance to a class mean,
  ``s(x) = min_c (z - mu_c)^T Sigma^-1 (z - mu_c)``.

Higher is more novel. The threshold is the 95th percentile of the score on
held-out in-distribution clips, so about 5 % of ordinary clips are flagged:
new clips of the same classes the network never trained on where there are
some (its validation split when ``train`` fits it; a demo set of another seed
for the shipped models), else out of fold over the training folds.

Two baselines from the logits, for comparison (:func:`baseline_scores`):
maximum softmax probability (Hendrycks and Gimpel 2017; the score is
``-max softmax``) and the energy score (Liu, Wang, Owens and Li 2020;
``-logsumexp(logits)``).

A fitted :class:`Novelty` is saved beside a checkpoint as
``novelty/novelty.safetensors`` (the k-NN bank in float16, class means and
precision in float32) and ``novelty/novelty.json``
(method, threshold and how it was fitted); :func:`find_novelty` looks there,
then in the cache (fits the explorer made for models whose folder it does not
write into).

>>> bank = np.eye(3, dtype=np.float32)
>>> knn_distance(bank, np.array([[1.0, 0, 0], [1.0, 1.0, 0]]), k=1).round(3)
array([0.   , 0.765])
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.errors import InputError

__all__ = ["METHODS", "QUANTILE", "DEFAULT_K", "NOVELTY_DIR", "CAPTION", "Novelty", "knn_distance",
           "mahalanobis_distance", "fit_novelty", "out_of_fold_scores", "save_novelty", "load_novelty",
           "DEFAULT_METHOD", "novelty_tap", "find_novelty", "cache_novelty_dir", "baseline_scores", "separation", "embedding_vectors", "audio_vectors",
           "fit_for_checkpoint", "fit_after_training", "configure", "run"]

METHODS = ("knn", "mahalanobis")
QUANTILE = 0.95  # of held-out in-distribution scores: about 5 % of ordinary clips are flagged
DEFAULT_K = 5
DEFAULT_METHOD = "mahalanobis"  # better than knn on both shipped models (checkpoints/README.md)
NOVELTY_DIR = "novelty"
_ARRAYS = "novelty.safetensors"
_JSON = "novelty.json"
FORMAT = "audio-explorer-novelty"
CAPTION = "this clip is unlike the training data: the map explains a class that may not apply"


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def knn_distance(bank: np.ndarray, queries: np.ndarray, *, k: int = DEFAULT_K) -> np.ndarray:
    """Distance from each query to its ``k``-th nearest bank vector, both scaled to unit length.

    Parameters
    ----------
    bank : np.ndarray [shape=(M, D)]
        The training clips' embeddings.
    queries : np.ndarray [shape=(N, D)]
    k : int in [1, M]

    Returns
    -------
    np.ndarray [shape=(N,)], in [0, 2]
    """
    bank, queries = _unit(bank), _unit(queries)
    if bank.ndim != 2 or queries.ndim != 2 or bank.shape[1] != queries.shape[1]:
        raise InputError("embeddings", f"need (M, D) and (N, D) with one D, got {bank.shape} and {queries.shape}")
    if not 1 <= k <= len(bank):
        raise InputError("k", f"need 1 <= k <= {len(bank)} training clips, got {k}")
    d2 = np.clip(2.0 - 2.0 * queries @ bank.T, 0.0, None)  # |a - b|^2 = 2 - 2 a.b for unit vectors
    return np.sqrt(np.partition(d2, k - 1, axis=1)[:, k - 1])


def mahalanobis_distance(means: np.ndarray, precision: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Smallest squared Mahalanobis distance to a class mean, with one shared precision matrix.

    Parameters
    ----------
    means : np.ndarray [shape=(C, D)]
    precision : np.ndarray [shape=(D, D)]
        The inverse of the shared covariance.
    queries : np.ndarray [shape=(N, D)]

    Returns
    -------
    np.ndarray [shape=(N,)], >= 0

    Examples
    --------
    >>> mahalanobis_distance(np.array([[0.0, 0.0], [4.0, 0.0]]), np.eye(2), np.array([[3.0, 1.0]]))
    array([2.])
    """
    diff = np.asarray(queries, np.float64)[:, None, :] - np.asarray(means, np.float64)[None]  # (N, C, D)
    d2 = np.einsum("ncd,de,nce->nc", diff, np.asarray(precision, np.float64), diff)
    return d2.min(axis=1)


@dataclass
class Novelty:
    """A fitted novelty score: what it keeps of the training embeddings, and its threshold.

    Attributes
    ----------
    method : {"knn", "mahalanobis"}
    arrays : dict of str -> np.ndarray
        ``"bank"`` [shape=(M, D)] (unit rows) for ``"knn"``; ``"means"``
        [shape=(C, D)] and ``"precision"`` [shape=(D, D)] for ``"mahalanobis"``.
    threshold : float
        A clip whose score exceeds it is flagged novel.
    k : int
        Neighbours (``"knn"``).
    tap : str
        The tap whose pooled vectors are scored.
    info : dict
        How it was fitted (clips, folds, quantile, held-out flag rate), saved in the JSON.
    """

    method: str
    arrays: dict[str, np.ndarray]
    threshold: float
    k: int = DEFAULT_K
    tap: str = "embedding"
    info: dict = field(default_factory=dict)

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Novelty of each vector, np.ndarray [shape=(N,)]; higher is more novel."""
        vectors = np.asarray(vectors, dtype=np.float64)
        if vectors.ndim == 1:
            vectors = vectors[None]
        dim = (self.arrays["bank"] if self.method == "knn" else self.arrays["means"]).shape[1]
        if vectors.ndim != 2 or vectors.shape[1] != dim:
            raise InputError(self.tap, f"novelty was fitted on {dim}-d vectors, got shape {vectors.shape}")
        if self.method == "knn":
            return knn_distance(self.arrays["bank"], vectors, k=self.k)
        return mahalanobis_distance(self.arrays["means"], self.arrays["precision"], vectors)

    def is_novel(self, scores: np.ndarray) -> np.ndarray:
        """``scores > threshold``, np.ndarray [shape=(N,)] of bool."""
        return np.asarray(scores) > self.threshold

    def describe(self) -> str:
        """How the score is computed and its threshold set, in one sentence."""
        what = (f"distance to the {self.k}-th nearest training clip's normalised embedding (Sun et al. 2022)"
                if self.method == "knn" else
                "squared Mahalanobis distance to the nearest class mean of the training embeddings (Lee et al. 2018)")
        return (f"novelty = {what} at tap {self.tap!r}; flagged above {self.threshold:.4g}, the "
                f"{self.info.get('quantile', QUANTILE):.0%} point of {self.info.get('n_held_out', '?')} held-out "
                f"in-distribution clips ({self.info.get('held_out', 'out of fold')})")


def _fit_arrays(vectors: np.ndarray, labels: np.ndarray, method: str) -> dict[str, np.ndarray]:
    if method == "knn":
        return {"bank": _unit(vectors).astype(np.float32)}
    from sklearn.covariance import LedoitWolf

    classes = np.unique(labels)
    means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])
    centred = vectors - means[np.searchsorted(classes, labels)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        precision = LedoitWolf().fit(centred).precision_
    return {"means": means.astype(np.float32), "precision": precision.astype(np.float32)}


def _check_method(method: str, k: int) -> None:
    if method not in METHODS:
        raise InputError("--method", f"{method!r} is not one of {', '.join(METHODS)}")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError("--k", f"need a positive integer, got {k!r}")


def out_of_fold_scores(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, *, method: str = DEFAULT_METHOD,
                       k: int = DEFAULT_K) -> np.ndarray:
    """Each clip's novelty against a score fitted on the other folds only.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
    labels : np.ndarray [shape=(N,)], int
    folds : np.ndarray [shape=(N,)]
        At least two distinct folds.
    method : {"knn", "mahalanobis"}
    k : int > 0

    Returns
    -------
    np.ndarray [shape=(N,)]
    """
    _check_method(method, k)
    vectors, labels, folds = np.asarray(vectors, np.float64), np.asarray(labels), np.asarray(folds)
    if len(np.unique(folds)) < 2:
        raise InputError("folds", "need clips in at least two folds to score held-out clips")
    out = np.empty(len(vectors))
    for f in np.unique(folds):
        held = folds == f
        fitted = Novelty(method, _fit_arrays(vectors[~held], labels[~held], method), np.inf, k=min(k, int((~held).sum())))
        out[held] = fitted.score(vectors[held])
    return out


def fit_novelty(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, *, method: str = DEFAULT_METHOD,
                k: int = DEFAULT_K, quantile: float = QUANTILE, tap: str = "embedding",
                held_out: np.ndarray | None = None, held_out_name: str = "", info: dict | None = None) -> Novelty:
    """Fit a novelty score on training clips' embeddings; threshold from held-out in-distribution clips.

    The held-out clips are ``held_out`` when given (clips of the same
    classes the network never trained on: its validation split, or new clips),
    else each training fold scored against the others (:func:`out_of_fold_scores`).
    A network's embeddings of its own training clips lie closer together than
    those of new clips, so the out-of-fold threshold is too low for a model
    trained on these very clips: expect more than 5 % of new clips flagged.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
        The training clips' embeddings (never the test fold's).
    labels : np.ndarray [shape=(N,)], int
    folds : np.ndarray [shape=(N,)]
        The clips' folds (for the out-of-fold threshold; unused with ``held_out``).
    method : {"knn", "mahalanobis"}
    k : int > 0
    quantile : float in (0, 1)
    tap : str
    held_out : np.ndarray [shape=(M, D)] or None
        Held-out in-distribution clips' embeddings; the threshold is the
        ``quantile`` point of their scores.
    held_out_name : str
        What they are, for ``info``.
    info : dict or None
        Added to ``Novelty.info`` (the data, the checkpoint).

    Returns
    -------
    Novelty
        Fitted on all ``N`` clips.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(size=(60, 4)) + [5, 0, 0, 0]
    >>> nov = fit_novelty(z, np.zeros(60, int), np.arange(60) % 3)
    >>> bool(nov.is_novel(nov.score([[-5.0, 0, 0, 0]]))[0]), nov.info["quantile"]
    (True, 0.95)
    """
    _check_method(method, k)
    if not 0.0 < quantile < 1.0:
        raise InputError("quantile", f"need a value in (0, 1), got {quantile}")
    vectors = np.asarray(vectors, np.float64)
    if vectors.ndim != 2 or len(vectors) != len(labels) or len(labels) != len(folds):
        raise InputError("vectors", f"need (N, D) vectors with N labels and folds, got {vectors.shape}, "
                                    f"{np.shape(labels)}, {np.shape(folds)}")
    k = min(int(k), len(vectors))
    fitted = Novelty(method, _fit_arrays(vectors, np.asarray(labels), method), np.inf, k=k, tap=tap)
    if held_out is None:
        scores = out_of_fold_scores(vectors, labels, folds, method=method, k=k)
        how = "out of fold: each training fold scored against the others (clips the network may have trained on)"
    else:
        scores = fitted.score(held_out)
        how = held_out_name or "held-out clips"
    fitted.threshold = float(np.quantile(scores, quantile))
    fitted.info = {"quantile": quantile, "n_clips": int(len(vectors)), "n_held_out": int(len(scores)),
                   "folds": sorted(int(f) for f in np.unique(folds)), "held_out": how,
                   "held_out_flagged": float(np.mean(scores > fitted.threshold)), **(info or {})}
    return fitted


# ---------------------------------------------------------------------------
# saved beside a checkpoint


def save_novelty(novelty: Novelty, folder: str | Path) -> Path:
    """Write ``folder/novelty/novelty.safetensors`` and ``novelty.json``; returns that folder.

    Each file is written to a temporary name and renamed into place.
    """
    from safetensors.numpy import save_file

    out = Path(folder) / NOVELTY_DIR
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (_ARRAYS + ".tmp")
    # the k-NN bank (unit vectors) in float16; a precision matrix can exceed float16's range: float32
    save_file({k: np.ascontiguousarray(v, dtype=np.float16 if k == "bank" else np.float32)
               for k, v in novelty.arrays.items()}, str(tmp))
    tmp.replace(out / _ARRAYS)
    doc = {"format": FORMAT, "method": novelty.method, "k": int(novelty.k), "tap": novelty.tap,
           "threshold": float(novelty.threshold), "fitted": novelty.info, "describe": novelty.describe()}
    tmp = out / (_JSON + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    tmp.replace(out / _JSON)
    return out


def load_novelty(folder: str | Path) -> Novelty | None:
    """The novelty score saved in ``folder/novelty/``, or ``None`` when there is none.

    Raises
    ------
    InputError
        A malformed JSON or safetensors file (never unpickled).
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    where = Path(folder) / NOVELTY_DIR
    if not (where / _JSON).is_file() or not (where / _ARRAYS).is_file():
        return None
    try:
        doc = json.loads((where / _JSON).read_text())
        method, threshold = doc["method"], float(doc["threshold"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise InputError(where / _JSON, f"malformed novelty file ({error})") from None
    try:
        arrays = {k: v.astype(np.float32) for k, v in load_file(str(where / _ARRAYS)).items()}
    except (SafetensorError, OSError, ValueError) as error:
        raise InputError(where / _ARRAYS, f"not a safetensors file ({str(error)[:120]})") from None
    needed = ("bank",) if method == "knn" else ("means", "precision")
    if method not in METHODS or any(n not in arrays for n in needed):
        raise InputError(where / _ARRAYS, f"method {method!r} needs arrays {needed}, found {sorted(arrays)}")
    return Novelty(method, arrays, threshold, k=int(doc.get("k", DEFAULT_K)), tap=str(doc.get("tap", "embedding")),
                   info=dict(doc.get("fitted", {})))


def cache_novelty_dir(folder: str | Path) -> Path:
    """Where a fit is kept for a model whose own folder is not written into: the cache, by the checkpoint's hash."""
    from core.data.cache import checkpoint_fingerprint
    from core.paths import cache_dir

    return cache_dir() / "novelty" / checkpoint_fingerprint(folder)[:24]


def find_novelty(folder: str | Path) -> Novelty | None:
    """A checkpoint's novelty score: its own ``novelty/`` first, then one the explorer fitted into the cache."""
    found = load_novelty(folder)
    if found is None and Path(folder).is_dir():
        found = load_novelty(cache_novelty_dir(folder))
    return found


# ---------------------------------------------------------------------------
# from a model


def embedding_vectors(loaded, records: Sequence, *, tap: str | None = None,
                      progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The embedding and the logits of each record, through the on-disk cache (shared with label-issues).

    Returns
    -------
    vectors : np.ndarray [shape=(N, D)], float32
    logits : np.ndarray [shape=(N, n_classes)], float32
    """
    from core.review.label_issues import clip_vectors, logits_tap

    tap = tap or novelty_tap(loaded.model)
    logit_tap = logits_tap(loaded.model)
    out = clip_vectors(loaded, records, [tap, logit_tap], progress=progress)
    return out[tap], out[logit_tap]


def audio_vectors(loaded, clips: np.ndarray, sr: int, *, tap: str | None = None,
                  batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The embedding and the logits of mono waveforms, through the model's own front end.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    clips : np.ndarray [shape=(N, n_samples)]
        Mono, at ``sr``; fitted to the model's clip length (:meth:`Loaded.input`).
    sr : int

    Returns
    -------
    vectors : np.ndarray [shape=(N, D)], float32
    logits : np.ndarray [shape=(N, n_classes)], float32
    """
    import torch

    from core.data.activations import pool_tap
    from core.audio.features import fit_duration
    from core.review.label_issues import logits_tap
    from core.models.taps import extract

    from core.models import find_tap

    tap = tap or novelty_tap(loaded.model)
    kind = find_tap(loaded.model, tap).kind
    logit_tap = logits_tap(loaded.model)
    n = loaded.n_samples
    vectors, logits = [], []
    for i in range(0, len(clips), batch_size):
        x = np.stack([loaded.input(fit_duration(np.asarray(y, np.float32), n * sr // loaded.audio_cfg.sr), sr)
                      for y in clips[i:i + batch_size]])
        out = extract(loaded.model, torch.as_tensor(x), [tap, logit_tap])
        vectors.append(pool_tap(out[tap].float().numpy(), kind=kind, n_special=getattr(loaded.model, "n_special", 1)))
        logits.append(pool_tap(out[logit_tap].float().numpy(), kind="logits"))
    return np.concatenate(vectors), np.concatenate(logits)


def novelty_tap(model) -> str:
    """The tap whose pooled vectors are scored: the head's input, the model's first ``embedding`` tap.

    The SE-CNN's ``pooled`` (the global average of its last block, before its
    two-layer head), the AST's class token, an adapter's input of its last ``Linear``.
    """
    names = [t.name for t in model.taps() if t.kind == "embedding"]
    if not names:
        raise InputError(type(model).__name__, "the model lists no embedding tap")
    return names[0]


def fit_for_checkpoint(loaded, data, *, test_fold: int | None = None, method: str = DEFAULT_METHOD,
                       k: int = DEFAULT_K, held_out=None, tap: str | None = None,
                       progress: Callable[[float], None] | None = None) -> Novelty:
    """Fit a checkpoint's novelty score on a dataset's training folds (every fold but ``test_fold``).

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    data : core.data.datasets.Dataset
    test_fold : int or None
        Left out of the fit (default: the checkpoint's ``meta["test_fold"]``
        when the dataset has that fold, else the dataset's last fold).
    method, k
        See :func:`fit_novelty`.
    held_out : core.data.datasets.Dataset or None
        New clips of the same classes that the network never trained on (for
        the shipped models, a demo set of another seed): the threshold is set
        on them. ``None``: out of fold over the training folds.
    tap : str or None
        The tap whose pooled vectors are scored (default: :func:`novelty_tap`,
        the head's input); any tap :func:`core.data.activations.pool_tap` pools.
    progress : callable or None
        ``progress(fraction)`` while embeddings are extracted.

    Returns
    -------
    Novelty
    """
    from core.models import find_tap

    folds = data.folds
    if test_fold is None:
        meta_fold = (loaded.meta or {}).get("test_fold")
        test_fold = meta_fold if meta_fold in folds else folds[-1]
    records = [r for r in data.records if r.fold != test_fold]
    if len({r.fold for r in records}) < 2:
        raise InputError(data.root, f"need at least two training folds besides test fold {test_fold} to set a "
                                    f"threshold on held-out clips; folds found: {folds}")
    tap = find_tap(loaded.model, tap).name if tap else novelty_tap(loaded.model)
    n_all = len(records) + (len(held_out.records) if held_out is not None else 0)

    def part(offset: int, n: int):
        return None if progress is None else (lambda f: progress((offset + f * n) / n_all))

    vectors, _ = embedding_vectors(loaded, records, tap=tap, progress=part(0, len(records)))
    extra = None
    if held_out is not None:
        extra, _ = embedding_vectors(loaded, held_out.records, tap=tap,
                                     progress=part(len(records), len(held_out.records)))
    labels = np.array([r.label for r in records])
    info = {"data": _data_name(data.root), "test_fold_left_out": int(test_fold),
            "checkpoint": Path(loaded.folder).name}
    name = "" if held_out is None else \
        f"{len(held_out.records)} clips of {_data_name(held_out.root)}, not trained on"
    return fit_novelty(vectors, labels, np.array([r.fold for r in records]), method=method, k=k, tap=tap,
                       held_out=extra, held_out_name=name, info=info)


def fit_after_training(folder: str | Path, model, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, *,
                       method: str = DEFAULT_METHOD, batch_size: int = 32, data: str = "") -> Novelty:
    """What ``train`` calls at its end: fit on the training clips, threshold on the validation clips, save.

    The validation clips are of the same classes and were never trained on,
    so they are the held-out in-distribution clips the threshold needs.

    Parameters
    ----------
    folder : str or Path
        The checkpoint just saved; ``novelty/`` is written into it.
    model : nn.Module
        The trained network (its taps), on the CPU, any mode (eval is used).
    x_train : np.ndarray [shape=(N, ...)]
        The model's inputs without the channel axis (``(N, n_mels, n_frames)``)
        or with it.
    y_train : np.ndarray [shape=(N,)], int
    x_val : np.ndarray [shape=(M, ...)]

    Returns
    -------
    Novelty
    """
    import torch

    from core.data.activations import pool_tap
    from core.models.taps import extract

    tap = novelty_tap(model)
    model.eval()

    def vectors(x: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(x), batch_size):
            batch = torch.as_tensor(np.asarray(x[i:i + batch_size], dtype=np.float32))
            batch = batch[:, None] if batch.ndim == 3 else batch
            out.append(pool_tap(extract(model, batch, [tap])[tap].float().numpy(), kind="embedding",
                                n_special=getattr(model, "n_special", 1)))
        return np.concatenate(out)

    novelty = fit_novelty(vectors(x_train), np.asarray(y_train), np.zeros(len(y_train), int), method=method,
                          tap=tap, held_out=vectors(x_val),
                          held_out_name=f"{len(x_val)} validation clips (never trained on)",
                          info={"data": _data_name(Path(data)) if data else "", "checkpoint": Path(folder).name})
    save_novelty(novelty, folder)
    return novelty


def _data_name(root: Path) -> str:
    from core.paths import REPO_ROOT

    root = Path(root)
    try:
        return str(root.absolute().relative_to(REPO_ROOT))
    except ValueError:
        return root.name


# ---------------------------------------------------------------------------
# baselines and measurement


def baseline_scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """The logit-based novelty baselines, each higher for more novel clips.

    Returns
    -------
    dict
        ``"msp"``: minus the maximum softmax probability (Hendrycks and Gimpel
        2017); ``"energy"``: minus ``logsumexp`` of the logits (Liu et al. 2020,
        temperature 1). Each np.ndarray [shape=(N,)].

    Examples
    --------
    >>> s = baseline_scores(np.array([[0.0, 0.0], [10.0, 0.0]]))
    >>> s["msp"].round(3), s["energy"].round(3)
    (array([-0.5, -1. ]), array([ -0.693, -10.   ]))
    """
    from scipy.special import logsumexp, softmax

    z = np.asarray(logits, dtype=np.float64)
    return {"msp": -softmax(z, axis=1).max(axis=1), "energy": -logsumexp(z, axis=1)}


def separation(id_scores: np.ndarray, ood_scores: np.ndarray, *, tpr: float = 0.95) -> dict:
    """How well a score tells out-of-distribution clips (positives) from in-distribution ones.

    Parameters
    ----------
    id_scores, ood_scores : np.ndarray [shape=(N,)], [shape=(M,)]
        Higher is more novel.
    tpr : float
        In-distribution clips accepted at the operating point.

    Returns
    -------
    dict
        ``auroc``; ``fpr_at_95``: the share of out-of-distribution clips
        accepted as in-distribution when 95 % of in-distribution clips are
        (Liu et al. 2020's FPR95); ``n_id``, ``n_ood``.

    Examples
    --------
    >>> r = separation(np.arange(100.0), np.arange(50.0, 150.0))
    >>> round(r["auroc"], 3), r["fpr_at_95"]
    (0.875, 0.45)
    """
    from sklearn.metrics import roc_auc_score

    a, b = np.asarray(id_scores, np.float64), np.asarray(ood_scores, np.float64)
    cut = np.quantile(a, tpr)
    auroc = roc_auc_score(np.r_[np.zeros(len(a)), np.ones(len(b))], np.r_[a, b])
    return {"auroc": float(auroc), "fpr_at_95": float(np.mean(b <= cut)), "n_id": len(a), "n_ood": len(b)}


# ---------------------------------------------------------------------------
# command line


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder, registered model or hub id")
    parser.add_argument("--data", required=True, help="the dataset the model was trained on")
    parser.add_argument("--test-fold", type=int, default=None,
                        help="fold left out of the fit (default: the checkpoint's test fold, else the last)")
    parser.add_argument("--method", choices=METHODS, default=DEFAULT_METHOD)
    parser.add_argument("--held-out", default=None, metavar="DIR",
                        help="new clips of the same classes the network never trained on (e.g. a demo set of "
                             "another seed): the threshold is set on them; default: out of fold over the training "
                             "folds, too low for clips the network trained on")
    parser.add_argument("--k", type=int, default=DEFAULT_K, help="neighbours for --method knn")
    parser.add_argument("--tap", default=None, help="tap whose pooled vectors are scored (default: the head's input)")
    parser.add_argument("--out", default=None,
                        help="folder to save novelty/ in (default: the checkpoint folder when writable, else the cache)")


def run(args) -> int:
    import os
    import sys

    import torch
    from tqdm.auto import tqdm

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset

    loaded = load_checkpoint(args.checkpoint)
    data = open_dataset(args.data)
    from core.models.known_classes import class_coverage

    coverage = class_coverage(loaded.classes, data.classes)
    if coverage.unknown:
        raise InputError(args.data, coverage.sentence(Path(loaded.folder).name) +
                         " Fit novelty on the data the model was trained on.")
    with torch.no_grad(), tqdm(total=100, desc="embeddings", unit="%", file=sys.stderr) as bar:
        novelty = fit_for_checkpoint(loaded, data, test_fold=args.test_fold, method=args.method, k=args.k,
                                     held_out=open_dataset(args.held_out) if args.held_out else None, tap=args.tap,
                                     progress=lambda f: bar.update(round(100 * f) - bar.n))
    folder = Path(loaded.folder)
    from core.models.hf_ast import in_hub_cache

    out = Path(args.out) if args.out else (folder if os.access(folder, os.W_OK) and not in_hub_cache(folder)
                                           else cache_novelty_dir(folder))
    where = save_novelty(novelty, out)
    size = sum(p.stat().st_size for p in where.iterdir())
    print(novelty.describe())
    print(f"held-out clips flagged: {novelty.info['held_out_flagged']:.1%}; saved {where} ({size / 1e3:.0f} kB)")
    return 0
