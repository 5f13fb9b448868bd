"""``python -m core evaluate``: how well a checkpoint classifies one fold of a dataset.

Accuracy, per-class precision, recall and F1, macro ROC AUC (one class against
the rest) and the confusion matrix; printed as a table and saved as JSON.
torch and scikit-learn are imported when used, so that ``python -m core``
starts fast for the other commands.

    python -m core evaluate --checkpoint checkpoints/secnn --data DIR --fold 5 --out results/eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from core.data.datasets import DATA_HELP
from core.errors import InputError

__all__ = ["HEADLINE", "predict_proba", "logits_tap", "dataset_proba", "metrics", "headline", "multilabel_metrics",
           "evaluate", "features_for", "spread", "format_report", "configure", "run"]

HEADLINE = ("accuracy", "macro_f1", "roc_auc_macro")  # what a model card keeps of a second evaluation


def predict_proba(loaded, features, *, batch_size: int = 32) -> np.ndarray:
    """Class probabilities, without gradients: :meth:`Loaded.probabilities` of the logits.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded or nn.Module
        The model is used in its current mode (loaded checkpoints are in eval
        mode). A loaded checkpoint gives a softmax, or a sigmoid per class for
        a multi-label model; a bare module a softmax.
    features : np.ndarray or torch.Tensor [shape=(N, ...)]
        A batch of the model's inputs (:meth:`Loaded.inputs`); for a
        spectrogram model (N, n_mels, n_frames) is taken as (N, 1, n_mels, n_frames).
    batch_size : int > 0

    Returns
    -------
    np.ndarray [shape=(N, n_classes)], float32
    """
    import torch

    model = getattr(loaded, "model", loaded)
    layout = getattr(loaded, "layout", "mel-time")
    x = torch.as_tensor(np.asarray(features, dtype=np.float32) if not isinstance(features, torch.Tensor) else features)
    if layout != "waveform" and x.ndim == 3:
        x = x[:, None]
    if layout == "mel-time" and (x.ndim != 4 or x.shape[1] != 1):
        raise InputError("features", f"need shape (N, n_mels, n_frames), got {tuple(x.shape)}")
    if batch_size < 1:
        raise InputError("batch_size", f"need >= 1, got {batch_size}")
    device = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(x[i:i + batch_size].to(device))
            logits = logits[0] if isinstance(logits, (tuple, list)) else logits
            if hasattr(loaded, "probabilities"):
                out.append(loaded.probabilities(logits))
            else:
                out.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    n_classes = getattr(model, "n_classes", 0)
    return np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)


def logits_tap(model) -> str:
    """The name of the model's (last) logits tap.

    Raises
    ------
    InputError
        When the model lists no logits tap.
    """
    names = [t.name for t in model.taps() if t.kind == "logits"] if hasattr(model, "taps") else []
    if not names:
        raise InputError(type(model).__name__, "the model lists no logits tap")
    return names[-1]


def dataset_proba(loaded, records, *, batch_size: int = 32, cache=None, on_progress=None,
                  progress: bool = False) -> np.ndarray:
    """Class probabilities for dataset records, from the logits stored by :func:`core.data.activations.extract`.

    The logits tap is extracted (``reduce="vector"``) through the on-disk
    cache, so the CLI's ``evaluate`` and the explorer's Errors page share one
    entry: whichever runs first does the work.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    records : sequence of ClipRecord
    batch_size : int > 0
    cache : core.data.cache.ArrayCache or None
    on_progress : callable or None
        ``on_progress(done, total)`` in clips.
    progress : bool
        A tqdm bar.

    Returns
    -------
    np.ndarray [shape=(N, n_classes)], float32: rows sum to 1, or independent sigmoids for a multi-label model
    """
    from core.data.activations import extract

    tap = logits_tap(loaded.model)
    logits = extract(loaded, records, [tap], reduce="vector", batch_size=batch_size, cache=cache,
                     on_progress=on_progress, progress=progress)[tap]
    return loaded.probabilities(np.array(logits, dtype=np.float32))


def metrics(y_true, proba: np.ndarray, classes: list[str]) -> dict:
    """Classification metrics from true labels and predicted probabilities.

    Parameters
    ----------
    y_true : array-like [shape=(N,)], int in [0, n_classes)
    proba : np.ndarray [shape=(N, n_classes)]
    classes : list of str

    Returns
    -------
    dict
        ``n_clips``, ``accuracy``, ``macro_precision``, ``macro_recall``,
        ``macro_f1``, ``roc_auc_macro`` (over classes with both positives and
        negatives; ``None`` when there is none), ``per_class`` (list of dicts:
        class, precision, recall, f1, support, roc_auc), ``confusion_matrix``
        (rows true, columns predicted), ``classes``, ``y_true``, ``y_pred``.
    """
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

    y_true = np.asarray(y_true, dtype=int)
    proba = np.asarray(proba, dtype=np.float64)
    n = len(classes)
    if proba.ndim != 2 or proba.shape != (len(y_true), n):
        raise InputError("proba", f"need shape ({len(y_true)}, {n}), got {proba.shape}")
    if len(y_true) == 0:
        raise InputError("records", "nothing to evaluate: no clips")
    y_pred = proba.argmax(axis=1)
    labels = list(range(n))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0)
    aucs = []
    for c in labels:
        positive = y_true == c
        aucs.append(float(roc_auc_score(positive, proba[:, c])) if 0 < positive.sum() < len(y_true) else None)
    present = [a for a in aucs if a is not None]
    in_data = support > 0
    return {
        "n_clips": int(len(y_true)),
        "accuracy": float(np.mean(y_pred == y_true)),
        "macro_precision": float(precision[in_data].mean()) if in_data.any() else 0.0,
        "macro_recall": float(recall[in_data].mean()) if in_data.any() else 0.0,
        "macro_f1": float(f1[in_data].mean()) if in_data.any() else 0.0,
        "roc_auc_macro": float(np.mean(present)) if present else None,
        "per_class": [{"class": classes[c], "precision": float(precision[c]), "recall": float(recall[c]),
                       "f1": float(f1[c]), "support": int(support[c]), "roc_auc": aucs[c]} for c in labels],
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "classes": list(classes),
        "y_true": y_true.tolist(),
        "y_pred": y_pred.tolist(),
    }


def headline(result: dict) -> dict:
    """The headline figures of a :func:`metrics` result, plus its clip count when it has one.

    >>> headline(metrics([0, 1, 1], np.array([[.9, .1], [.2, .8], [.6, .4]]), ["a", "b"]))
    {'n_clips': 3, 'accuracy': 0.6666666666666666, 'macro_f1': 0.6666666666666666, 'roc_auc_macro': 1.0}
    """
    return {k: result[k] for k in ("n_clips", *HEADLINE) if k in result}


def multilabel_metrics(Y_true, proba, classes, *, threshold: float = 0.5) -> dict:
    """Multi-label evaluation: average precision per class, mAP, each clip's misses and false alarms.

    Parameters
    ----------
    Y_true : np.ndarray [shape=(N, n_classes)], 0 or 1
    proba : np.ndarray [shape=(N, n_classes)]
        Independent (sigmoid) probabilities.
    classes : list of str
    threshold : float in (0, 1)
        A class is predicted when its probability is at least this.

    Returns
    -------
    dict
        ``per_class``: one dict per class with ``class``, ``support`` (clips
        that have it), ``ap`` (:func:`sklearn.metrics.average_precision_score`;
        None without positives) and ``chance_ap`` (its prevalence, the AP of a
        random ranking); ``map`` (mean AP over classes with positives) and
        ``chance_map``; ``misses`` and ``false_alarms``: per clip, the class
        indices it has but were not predicted, and those predicted it has not;
        ``n_clips``, ``threshold``, ``classes``.
    """
    from sklearn.metrics import average_precision_score

    Y_true = np.asarray(Y_true).astype(bool)
    proba = np.asarray(proba, dtype=np.float64)
    if Y_true.shape != proba.shape or Y_true.ndim != 2 or Y_true.shape[1] != len(classes):
        raise InputError("labels", f"truth {Y_true.shape} and probabilities {proba.shape} for {len(classes)} classes")
    per_class = []
    for c, name in enumerate(classes):
        support = int(Y_true[:, c].sum())
        ap = float(average_precision_score(Y_true[:, c], proba[:, c])) if support else None
        per_class.append({"class": name, "support": support, "ap": ap, "chance_ap": support / max(len(Y_true), 1)})
    scored = [r for r in per_class if r["ap"] is not None]
    predicted = proba >= threshold
    return {
        "classes": list(classes), "n_clips": int(len(Y_true)), "threshold": float(threshold), "per_class": per_class,
        "map": float(np.mean([r["ap"] for r in scored])) if scored else None,
        "chance_map": float(np.mean([r["chance_ap"] for r in scored])) if scored else None,
        "misses": [np.flatnonzero(t & ~p).tolist() for t, p in zip(Y_true, predicted)],
        "false_alarms": [np.flatnonzero(p & ~t).tolist() for t, p in zip(Y_true, predicted)],
    }


def features_for(loaded, records, cfg=None, *, progress: bool = False) -> np.ndarray:
    """The model's input for dataset records: :meth:`core.models.checkpoint.Loaded.inputs`.

    Returns
    -------
    np.ndarray [shape=(N, ...)], float32
        (N, 1, n_mels, n_frames) for a spectrogram model.
    """
    if cfg is not None and cfg != loaded.audio_cfg:
        raise InputError("audio config", "the model's input is made with its own preprocessing")
    return loaded.inputs(records, progress=progress)


def _labels(loaded, records) -> np.ndarray:
    index = {name: i for i, name in enumerate(loaded.classes)}
    unknown = sorted({r.category for r in records if r.category not in index})
    if unknown:
        raise InputError("records", f"classes {unknown[:5]} are not among the checkpoint's classes {loaded.classes[:10]}")
    return np.array([index[r.category] for r in records], dtype=int)


def evaluate(loaded, records, cfg=None, *, features: np.ndarray | None = None, batch_size: int = 32,
             progress: bool = False, use_cache: bool = False) -> dict:
    """Evaluate a loaded checkpoint on dataset records.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    records : list of core.data.datasets.ClipRecord
        Labels are matched to the checkpoint's classes by category name.
    cfg : AudioConfig or None
        Preprocessing; ``None`` uses ``loaded.audio_cfg`` (the right choice).
    features : np.ndarray [shape=(N, n_mels, n_frames)] or None
        Precomputed input for ``records``; computed when ``None``.
    batch_size : int > 0
    progress : bool
    use_cache : bool
        Read the logits from the on-disk cache (:func:`dataset_proba`, shared
        with the explorer) instead of running the model. Only for a
        checkpoint as loaded: the cache is keyed by the checkpoint's files, so
        a model changed in memory (SE blocks bypassed, weights edited) must
        not use it.

    Returns
    -------
    dict
        :func:`metrics` plus ``clip_ids``.
    """
    records = list(records)
    if not records:
        raise InputError("records", "nothing to evaluate: no clips")
    y_true = _labels(loaded, records)
    if use_cache and features is None and (cfg is None or cfg == loaded.audio_cfg):
        proba = dataset_proba(loaded, records, batch_size=batch_size, progress=progress)
    else:
        if features is None:
            features = features_for(loaded, records, cfg, progress=progress)
        if len(features) != len(records):
            raise InputError("features", f"{len(features)} feature rows for {len(records)} records")
        proba = predict_proba(loaded, features, batch_size=batch_size)
    result = metrics(y_true, proba, loaded.classes)
    result["clip_ids"] = [r.clip_id for r in records]
    return result


def spread(records: list, limit: int | None) -> list:
    """At most ``limit`` records, evenly spaced through the list (all when ``limit`` is None)."""
    if limit is None or limit >= len(records):
        return list(records)
    if limit < 1:
        raise InputError("--limit", f"need >= 1, got {limit}")
    return [records[i] for i in np.unique(np.linspace(0, len(records) - 1, limit).round().astype(int))]


def format_report(result: dict) -> str:
    """A plain-text table of :func:`metrics`' result."""
    auc = result["roc_auc_macro"]
    lines = [f"clips {result['n_clips']}   accuracy {result['accuracy']:.3f}   macro F1 {result['macro_f1']:.3f}"
             f"   macro ROC AUC {'n/a' if auc is None else f'{auc:.3f}'}", ""]
    width = max(12, *(len(c) for c in result["classes"])) + 2
    lines.append(f"{'class':<{width}}{'precision':>10}{'recall':>8}{'f1':>8}{'support':>9}")
    for row in result["per_class"]:
        lines.append(f"{row['class']:<{width}}{row['precision']:>10.3f}{row['recall']:>8.3f}"
                     f"{row['f1']:>8.3f}{row['support']:>9d}")
    lines += ["", "confusion matrix (rows: true, columns: predicted, in class order above)"]
    for name, row in zip(result["classes"], result["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>5d}" for v in row))
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--data", required=True, type=Path,
                        help=DATA_HELP)
    parser.add_argument("--fold", type=int, default=None,
                        help="fold to evaluate on (default: the checkpoint's test fold, else 5)")
    parser.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    parser.add_argument("--limit", type=int, default=None, help="evaluate at most N clips, evenly spread")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import checkpoint_test_fold, open_dataset

    from core.models.known_classes import class_coverage

    loaded = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    args.fold = checkpoint_test_fold(loaded.meta, args.fold)
    print(f"{args.data}: {dataset.describe()}", file=sys.stderr)
    coverage = class_coverage(loaded.classes, dataset.classes)
    if coverage.unknown:  # said before any work: accuracy has no meaning on classes the model does not know
        raise InputError(args.data, coverage.sentence(Path(args.checkpoint).name) + " Its embedding still groups "
                         "them: python -m core label-issues, or the explorer's Embeddings page.")
    records = dataset.select(args.fold)
    if not records:
        raise InputError("--fold", f"fold {args.fold} of {args.data} holds no clips")
    records = spread(records, args.limit)
    start = time.perf_counter()
    result = evaluate(loaded, records, batch_size=args.batch_size, progress=not args.no_progress, use_cache=True)
    result.update(checkpoint=str(args.checkpoint), data=str(args.data), fold=args.fold,
                  limit=args.limit, time_s=round(time.perf_counter() - start, 2))
    print(f"checkpoint {args.checkpoint} ({loaded.kind})   data {args.data}   fold {args.fold}")
    print(format_report(result))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"saved {args.out}", file=sys.stderr)
    return 0
