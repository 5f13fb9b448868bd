"""``python -m core label-issues``: rank a dataset's clips by how likely their label is wrong.

Method (printed with every result, see :data:`METHOD`):

1. **Out-of-fold probabilities without retraining the deep model.** Each
   clip's vector at the checkpoint's embedding tap (the penultimate layer) is
   extracted once; a logistic regression on standardised vectors is fitted on
   four folds and predicts the fifth, for each of the dataset's folds
   (:func:`out_of_fold_probabilities`, scikit-learn's ``cross_val_predict``
   with the dataset's own folds). No clip's probability comes from a
   classifier that saw its label. The embedding itself was learned by the
   deep model on its training folds, labels included, so a label error there
   may have been memorised: the clips of the checkpoint's held-out fold are
   the cleanest test.
2. **Confident learning** (Northcutt, Jiang and Chuang, 2021, *JAIR* 70) via
   ``cleanlab``: ``find_label_issues`` flags the clips that the estimated joint
   distribution of given and true labels says are mislabelled; all clips are
   then ranked, flagged ones first, by their label quality (the
   out-of-fold probability of the given label, lowest first)
   (:func:`rank_label_issues`).

The same ranking feeds the explorer's Review page. Where the dataset has
``meta/label_truth.csv`` (the demo set's planted label errors), the command
scores the ranking against it (:func:`score_ranking`): precision at 10 and 20
and recall at the number of planted errors, beside a random ranking's
expected values. Nothing else reads that file.

**Which figures are held out** (:func:`score_held_out`). The embedding was
learned by the deep model on its training folds. A planted flip in those
folds can cut both ways: if the model was trained on that very clip with its
wrong label it may have memorised it (the finder misses it); if it was
trained on it with its *true* label (the shipped checkpoints were trained on
a larger draw that plants its own flips elsewhere, so the default set's
flips of folds 1-4 were seen with their true labels), its embedding already
"knows" the truth and the finder looks better than it is. Either way a
figure over clips the checkpoint trained on is **in-sample**. Only the clips
of the checkpoint's test fold (``meta["test_fold"]``) were never trained on;
the command scores the ranking of those clips alone and labels the
whole-set figures in-sample.
"""

from __future__ import annotations

import csv
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.data.datasets import DATA_HELP
from core.errors import InputError

__all__ = ["METHOD", "LabelIssues", "embedding_tap", "clip_vectors", "out_of_fold_probabilities",
           "logits_tap", "rank_label_issues", "find_label_issues", "trust", "read_truth", "score_ranking",
           "score_held_out", "configure", "run"]

METHOD = ("out-of-fold probabilities from a logistic regression on the checkpoint's embedding tap, cross-validated "
          "over the dataset's folds (the deep model is not retrained); confident learning (Northcutt et al. 2021, "
          "cleanlab.filter.find_label_issues, prune_by_noise_rate) flags clips; all clips ranked flagged first, then "
          "by the out-of-fold probability of their given label (lowest first)")
CHUNK = 16


@dataclass
class LabelIssues:
    """A ranking of clips by how likely their label is wrong.

    Attributes
    ----------
    clip_ids : list of str
        In the dataset's order (N).
    labels : np.ndarray [shape=(N,)], int
        The given labels.
    oof_proba : np.ndarray [shape=(N, n_classes)]
        Out-of-fold predicted probabilities.
    quality : np.ndarray [shape=(N,)]
        Out-of-fold probability of the given label (lower = more suspect).
    flagged : np.ndarray [shape=(N,)], bool
        Confident learning's verdict.
    order : np.ndarray [shape=(N,)], int
        Indices of clips, most suspect first.
    tap : str
    classes : list of str
        What ``labels`` and the probabilities' columns index.
    model_proba : np.ndarray [shape=(N, n_classes)] or None
        The checkpoint's own probabilities (its softmax), for its mistakes.
    folds : np.ndarray [shape=(N,)] or None
    method : str
    """

    clip_ids: list[str]
    labels: np.ndarray
    oof_proba: np.ndarray
    quality: np.ndarray
    flagged: np.ndarray
    order: np.ndarray
    tap: str
    classes: list[str] = field(default_factory=list)
    model_proba: np.ndarray | None = None
    folds: np.ndarray | None = None
    method: str = METHOD

    def ranked_ids(self) -> list[str]:
        return [self.clip_ids[i] for i in self.order]


def embedding_tap(model) -> str:
    """The tap whose vectors the out-of-fold classifier reads: the last ``embedding`` tap (the penultimate layer)."""
    names = [t.name for t in model.taps() if t.kind == "embedding"]
    if not names:
        raise InputError(type(model).__name__, "the model lists no embedding tap")
    return names[-1]


def clip_vectors(loaded, records: Sequence, taps: Sequence[str], *,
                 progress: Callable[[float], None] | None = None, cache=None) -> dict[str, np.ndarray]:
    """One vector per clip at each tap (pooled, :func:`core.data.activations.pool_tap`), through the on-disk cache.

    :func:`core.data.activations.extract` with ``reduce="vector"``: one pass for
    all taps, ``progress(fraction)`` after each batch, and the same cache
    entries as the Embeddings and Errors pages and ``evaluate`` (``cache``: an
    :class:`core.data.cache.ArrayCache`, default :func:`core.data.cache.default_cache`).

    Returns
    -------
    dict
        Tap name -> np.ndarray [shape=(len(records), D)], float32.
    """
    from core.data.activations import extract

    def on_progress(done: int, total: int) -> None:
        if progress is not None:
            progress(done / max(total, 1))

    out = extract(loaded, list(records), list(taps), reduce="vector", batch_size=CHUNK, on_progress=on_progress,
                  cache=cache)
    return {t: np.asarray(out[t], dtype=np.float32) for t in taps}


def logits_tap(model) -> str:
    """The model's logits tap."""
    names = [t.name for t in model.taps() if t.kind == "logits"]
    if not names:
        raise InputError(type(model).__name__, "the model lists no logits tap")
    return names[-1]


def out_of_fold_probabilities(vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, *,
                              n_classes: int | None = None, C: float = 1.0, seed: int = 0) -> np.ndarray:
    """Cross-validated class probabilities: each fold predicted by a classifier fitted on the others.

    Parameters
    ----------
    vectors : np.ndarray [shape=(N, D)]
    labels : np.ndarray [shape=(N,)], int in [0, n_classes)
    folds : np.ndarray [shape=(N,)], int
        Each clip's fold; at least two distinct folds.
    n_classes : int or None
        Columns of the result (default: ``labels.max() + 1``).
    C : float > 0
        Inverse L2 strength of the logistic regression.

    Returns
    -------
    np.ndarray [shape=(N, n_classes)], rows sum to 1
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import PredefinedSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(vectors, dtype=np.float64)
    y = np.asarray(labels, dtype=np.int64)
    folds = np.asarray(folds)
    if X.ndim != 2 or len(X) != len(y) or len(y) != len(folds):
        raise InputError("vectors", f"need (N, D) vectors with N labels and folds, got {X.shape}, {y.shape}, "
                                    f"{folds.shape}")
    if len(np.unique(folds)) < 2:
        raise InputError("folds", "need clips in at least two folds for out-of-fold probabilities")
    K = int(n_classes if n_classes is not None else y.max() + 1)
    out = np.zeros((len(y), K))
    split = PredefinedSplit(folds)
    for train, test in split.split():
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=seed))
        present = np.unique(y[train])
        if len(present) == 1:  # a one-class training split: it can only predict that class
            out[np.ix_(test, present)] = 1.0
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ConvergenceWarning on separable embeddings
            clf.fit(X[train], y[train])
        out[np.ix_(test, clf.classes_)] = clf.predict_proba(X[test])
    return out


def rank_label_issues(labels: np.ndarray, oof_proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident learning's flags and a full ranking of the clips, most suspect first.

    Parameters
    ----------
    labels : np.ndarray [shape=(N,)], int
    oof_proba : np.ndarray [shape=(N, n_classes)]
        Out-of-fold probabilities.

    Returns
    -------
    order : np.ndarray [shape=(N,)], int
        Flagged clips first, each group by ascending ``quality`` (ties by index).
    flagged : np.ndarray [shape=(N,)], bool
        ``cleanlab.filter.find_label_issues`` (``filter_by="prune_by_noise_rate"``).
    quality : np.ndarray [shape=(N,)]
        ``oof_proba[i, labels[i]]``: cleanlab's self-confidence label quality.
    """
    try:
        from cleanlab.filter import find_label_issues as cl_find
    except ImportError:
        raise InputError("cleanlab", "is not installed: pip install cleanlab") from None
    y = np.asarray(labels, dtype=np.int64)
    P = np.asarray(oof_proba, dtype=np.float64)
    P = np.clip(P, 1e-9, None)
    P = P / P.sum(axis=1, keepdims=True)
    quality = P[np.arange(len(y)), y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes with few examples
        flagged = np.asarray(cl_find(labels=y, pred_probs=P, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)
    order = np.lexsort((np.arange(len(y)), quality, ~flagged))
    return order, flagged, quality


def find_label_issues(loaded, data, *, tap: str | None = None,
                      progress: Callable[[float], None] | None = None, cache=None) -> LabelIssues:
    """Rank every clip of a dataset by how likely its label is wrong (see the module docstring).

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    data : core.data.datasets.Dataset
        When its classes are the checkpoint's (any order), labels index the
        checkpoint's classes and ``model_proba`` holds the model's answers;
        otherwise (the embedding of a model trained on other classes) labels
        index ``data.classes`` and ``model_proba`` is ``None``.
    tap : str or None
        The tap whose vectors are classified; default :func:`embedding_tap`.
    progress : callable or None
        ``progress(fraction)`` while vectors are extracted.
    cache : core.data.cache.ArrayCache or None
        Where the vectors and the ranking are kept (default :func:`core.data.cache.default_cache`):
        the second call, from this process or another, reads both from disk.

    Returns
    -------
    LabelIssues
    """
    records = list(data.records)
    if not records:
        raise InputError(data.root, "the dataset holds no clips")
    tap = tap or embedding_tap(loaded.model)
    out = clip_vectors(loaded, records, [tap, logits_tap(loaded.model)], progress=progress, cache=cache)
    vectors, logits = out[tap], out[logits_tap(loaded.model)].astype(np.float64)
    model_proba = np.exp(logits - logits.max(axis=1, keepdims=True))
    model_proba /= model_proba.sum(axis=1, keepdims=True)
    if {r.category for r in records} <= set(loaded.classes):
        classes = list(loaded.classes)  # the model's own order, so its probabilities line up
    else:  # another model's embedding: the ranking still works, the model's own answers mean nothing here
        classes, model_proba = list(data.classes), None
    index = {c: i for i, c in enumerate(classes)}
    labels = np.array([index[r.category] for r in records], dtype=np.int64)
    folds = np.array([r.fold for r in records])
    ranked = _ranking(loaded, records, tap, vectors, labels, folds, classes, cache)
    proba, order, flagged, quality = (ranked[k] for k in ("oof_proba", "order", "flagged", "quality"))
    return LabelIssues([r.clip_id for r in records], labels, proba, quality, flagged, order, tap, classes=classes,
                       model_proba=None if model_proba is None else model_proba.astype(np.float32), folds=folds)


def _ranking(loaded, records, tap: str, vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray,
             classes: list[str], cache) -> dict[str, np.ndarray]:
    """:func:`out_of_fold_probabilities` and :func:`rank_label_issues`, stored in the on-disk cache.

    Keyed by the checkpoint, the records (their labels and folds included), the
    preprocessing, the tap and the classes, so the page and the command share it.
    """
    from core.data.cache import checkpoint_fingerprint, dataset_fingerprint, default_cache

    def compute() -> dict[str, np.ndarray]:
        proba = out_of_fold_probabilities(vectors, labels, folds, n_classes=len(classes))
        order, flagged, quality = rank_label_issues(labels, proba)
        return {"oof_proba": proba, "order": order, "flagged": flagged, "quality": quality}

    cache = default_cache() if cache is None else cache
    return cache.get_or_compute(
        checkpoint=checkpoint_fingerprint(loaded.folder), dataset=dataset_fingerprint(records),
        preprocessing=loaded.audio_cfg.to_dict(),
        extra={"what": "label-issues", "tap": tap, "classes": list(classes), "method": METHOD},
        compute=compute,
    )


WEAK_ACCURACY = 0.8  # out-of-fold accuracy below which the ranking is called weak
MANY_FLAGGED = 0.15  # flagged share above which the ranking is called weak (real datasets: a few % wrong labels)


def trust(result: LabelIssues) -> dict:
    """How far to trust a ranking: the share flagged beside the out-of-fold classifier's accuracy.

    Confident learning flags the clips whose given label the out-of-fold
    classifier finds unlikely. When that classifier is weak, most of its
    flags are its own mistakes, not wrong labels: the flagged share then
    tracks its error rate rather than the labels' (a correctly labelled
    dataset under a weak embedding looks badly labelled).

    Returns
    -------
    dict
        ``oof_accuracy``, ``chance`` (the largest class's share), ``flagged_share``,
        ``weak`` (bool: accuracy below :data:`WEAK_ACCURACY` or more than
        :data:`MANY_FLAGGED` flagged) and ``sentence``.

    Examples
    --------
    >>> r = LabelIssues(["a", "b", "c", "d"], np.array([0, 0, 1, 1]), np.array([[.9, .1], [.2, .8], [.1, .9], [.3, .7]]),
    ...                 np.zeros(4), np.array([False, True, False, False]), np.arange(4), "embedding")
    >>> t = trust(r)
    >>> t["oof_accuracy"], t["flagged_share"], t["weak"]
    (0.75, 0.25, True)
    """
    y = np.asarray(result.labels)
    accuracy = float(np.mean(np.argmax(result.oof_proba, axis=1) == y)) if len(y) else float("nan")
    chance = float(np.bincount(y).max() / len(y)) if len(y) else float("nan")
    flagged = float(np.mean(result.flagged)) if len(y) else float("nan")
    weak = bool(accuracy < WEAK_ACCURACY or flagged > MANY_FLAGGED)
    sentence = (f"{flagged:.0%} of clips flagged; the classifier on the embedding is right on {accuracy:.0%} of "
                f"clips out of fold (the largest class alone: {chance:.0%}).")
    if weak:
        sentence += (" Warning: that classifier is too weak for the ranking to mean much: most flags are likely its "
                     "own mistakes, not wrong labels.")
    return {"oof_accuracy": accuracy, "chance": chance, "flagged_share": flagged, "weak": weak, "sentence": sentence}


# ---------------------------------------------------------------------------
# scoring against planted errors


def read_truth(root: str | Path) -> dict[str, int] | None:
    """The planted label errors of a dataset, ``filename -> true target``, or ``None`` without a truth file.

    Only scoring reads this (:func:`core.data.datasets.read_label_truth`).
    """
    from core.data.datasets import read_label_truth

    if not (Path(root) / "meta" / "label_truth.csv").is_file():
        return None
    try:
        return read_label_truth(root)
    except (KeyError, ValueError) as error:
        raise InputError(Path(root) / "meta" / "label_truth.csv", f"cannot read the planted label errors ({error})") from None


def score_ranking(ranked_ids: Sequence[str], wrong_ids: set[str], *, ks: Sequence[int] = (10, 20)) -> dict:
    """Precision at k and recall at the number of planted errors, beside a random ranking's expected values.

    Parameters
    ----------
    ranked_ids : sequence of str
        Every clip, most suspect first.
    wrong_ids : set of str
        The clips whose label is really wrong.
    ks : sequence of int

    Returns
    -------
    dict
        ``n_clips``, ``n_wrong``; ``precision_at`` {k: value}; ``recall_at_n_wrong``;
        ``random_precision`` (= n_wrong / n_clips, at every k) and
        ``random_recall_at_n_wrong`` (= n_wrong / n_clips).

    Examples
    --------
    >>> s = score_ranking(["a", "b", "c", "d"], {"a", "c"}, ks=(2,))
    >>> s["precision_at"][2], s["recall_at_n_wrong"], s["random_precision"]
    (0.5, 0.5, 0.5)
    """
    n = len(ranked_ids)
    wrong = set(wrong_ids) & set(ranked_ids)
    hits = np.array([cid in wrong for cid in ranked_ids], dtype=np.float64)
    m = len(wrong)
    return {
        "n_clips": n,
        "n_wrong": m,
        "precision_at": {int(k): float(hits[:k].mean()) if k else 0.0 for k in ks if k <= n},
        "recall_at_n_wrong": float(hits[:m].sum() / m) if m else float("nan"),
        "random_precision": m / n if n else float("nan"),
        "random_recall_at_n_wrong": m / n if n else float("nan"),
    }


def score_held_out(result: "LabelIssues", wrong_ids: set[str], test_fold: int | None, *,
                   ks: Sequence[int] = (10, 20)) -> dict:
    """The ranking scored on the clips the checkpoint never trained on, and on all clips (in-sample).

    Parameters
    ----------
    result : LabelIssues
    wrong_ids : set of str
        The clips whose label is really wrong.
    test_fold : int or None
        The checkpoint's held-out fold (``Loaded.meta["test_fold"]``); None
        when unknown (then every figure is in-sample).
    ks : sequence of int

    Returns
    -------
    dict
        ``"held_out"``: :func:`score_ranking` of the test fold's clips in their
        order in the full ranking, plus ``"ranks"`` (the planted errors' ranks
        among them, 1 = most suspect) and ``"fold"``; None without a test fold
        or clips in it. ``"in_sample"``: :func:`score_ranking` of every clip.

    Examples
    --------
    >>> r = LabelIssues(["a", "b", "c", "d"], np.zeros(4, int), np.ones((4, 1)), np.zeros(4), np.zeros(4, bool),
    ...                 np.array([3, 0, 1, 2]), "t", folds=np.array([5, 1, 5, 5]))
    >>> s = score_held_out(r, {"c", "d"}, 5, ks=(1,))
    >>> s["held_out"]["ranks"], s["held_out"]["precision_at"][1], s["in_sample"]["n_clips"]
    ([1, 3], 1.0, 4)
    """
    ranked = result.ranked_ids()
    out = {"held_out": None, "in_sample": score_ranking(ranked, wrong_ids, ks=ks)}
    if test_fold is None or result.folds is None:
        return out
    fold_of = dict(zip(result.clip_ids, np.asarray(result.folds).tolist()))
    held = [cid for cid in ranked if fold_of[cid] == test_fold]
    if held:
        score = score_ranking(held, wrong_ids, ks=ks)
        score["ranks"] = [k for k, cid in enumerate(held, start=1) if cid in wrong_ids]
        score["fold"] = int(test_fold)
        out["held_out"] = score
    return out


# ---------------------------------------------------------------------------
# command line


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--tap", default=None, help="tap whose vectors are classified (default: the embedding)")
    parser.add_argument("--top", type=int, default=20, help="how many suspect clips to print")
    parser.add_argument("--out", default=None, help="write the full ranking here as CSV")


def run(args) -> int:
    import torch
    from tqdm.auto import tqdm

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset

    from core.models.known_classes import class_coverage

    loaded = load_checkpoint(args.checkpoint)
    loaded.model.eval()
    data = open_dataset(args.data)
    coverage = class_coverage(loaded.classes, data.classes)
    if coverage.unknown:  # said before the work
        print(f"note: {coverage.sentence(Path(args.checkpoint).name)} Only its embedding is used, with a classifier "
              "fitted on this dataset's own labels.")
    with torch.no_grad(), tqdm(total=len(data.records), desc="embeddings", unit="clip", file=sys.stderr) as bar:
        result = find_label_issues(loaded, data, tap=args.tap,
                                   progress=lambda f: bar.update(round(f * len(data.records)) - bar.n))
    classes = result.classes
    print(f"method: {result.method}")
    print(f"tap: {result.tap}; {len(result.clip_ids)} clips; {int(result.flagged.sum())} flagged by confident "
          f"learning")
    print(f"trust: {trust(result)['sentence']}")
    print(f"{'rank':>4}  {'clip':<28} {'given':<16} {'suggested':<16} {'p(given)':>8}  flagged")
    for rank, i in enumerate(result.order[:args.top], start=1):
        suggested = classes[int(np.argmax(result.oof_proba[i]))]
        print(f"{rank:>4}  {result.clip_ids[i]:<28} {classes[result.labels[i]]:<16} {suggested:<16} "
              f"{result.quality[i]:>8.3f}  {'yes' if result.flagged[i] else 'no'}")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["rank", "clip_id", "given", "suggested", "p_given", "flagged"])
            for rank, i in enumerate(result.order, start=1):
                w.writerow([rank, result.clip_ids[i], classes[result.labels[i]],
                            classes[int(np.argmax(result.oof_proba[i]))], f"{result.quality[i]:.6f}",
                            int(result.flagged[i])])
        print(f"ranking written to {out}")
    truth = read_truth(data.root)
    if truth is None:
        print("no meta/label_truth.csv: nothing to score the ranking against")
        return 0
    wrong = {cid for cid, true in truth.items() if cid in set(result.clip_ids)}
    test_fold = loaded.meta.get("test_fold")
    scores = score_held_out(result, wrong, test_fold)
    held = scores["held_out"]
    if held is not None:
        print(f"held out: fold {held['fold']}, never trained on ({held['n_wrong']} planted errors among "
              f"{held['n_clips']} clips):")
        for k, p in held["precision_at"].items():
            print(f"  precision at {k}: {p:.3f}   (random ranking: {held['random_precision']:.3f})")
        print(f"  recall at {held['n_wrong']}: {held['recall_at_n_wrong']:.3f}   "
              f"(random ranking: {held['random_recall_at_n_wrong']:.3f}); the planted errors rank "
              f"{', '.join(map(str, held['ranks'])) or '-'} of {held['n_clips']}")
    else:
        print("the checkpoint names no test fold: every figure below is in-sample")
    s = scores["in_sample"]
    print(f"in-sample, every clip ({s['n_wrong']} planted errors among {s['n_clips']} clips; the checkpoint trained "
          f"on the folds other than {test_fold}, so these figures are not held out):")
    for k, p in s["precision_at"].items():
        print(f"  precision at {k}: {p:.3f}   (random ranking: {s['random_precision']:.3f})")
    print(f"  recall at {s['n_wrong']}: {s['recall_at_n_wrong']:.3f}   "
          f"(random ranking: {s['random_recall_at_n_wrong']:.3f})")
    flagged_ids = {result.clip_ids[i] for i in np.flatnonzero(result.flagged)}
    if flagged_ids:
        print(f"  flagged: {len(flagged_ids)}, of which planted errors: {len(flagged_ids & wrong)}")
    return 0
