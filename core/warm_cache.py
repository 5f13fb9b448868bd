"""``python -m core warm-cache``: the bundled set's work done before the first click.

What each page reads on its first visit of a dataset (the bundled demo set by
default) with the shipped checkpoints, computed into the on-disk cache through
the same core functions the pages call, so the keys agree:

- every tap pooled to one vector per clip, for the checkpoint's test fold
  (Embeddings, Errors, novelty): :func:`core.data.activations.extract`;
- the embedding and logits of every clip, and the label-issue ranking (Review):
  :func:`core.review.label_issues.find_label_issues`;
- the PCA projection of the embedding tap (Embeddings): :func:`core.interpret.embed.cached_embedding`;
- the maps and scorecards the pages open on (:mod:`core.interpret.stored`): the
  first clip's Grad-CAM (Attribution) and rollout (Attention), the Grad-CAMs of
  the Errors page's first misclassified clips and of the Review queue's first
  clip, and that clip's class averages (:func:`core.review.verdicts.average_input`).

One progress bar with the time left. Entries already on disk are read, not
computed, so a second run takes seconds. Every run holds the warm-up's lock and
writes its progress to the status file (:mod:`core.warm_background`); the app
starts it with ``--background`` (no bar; nothing to do when another run holds the
lock or the last one warmed the same checkpoints, dataset and code).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.errors import InputError

__all__ = ["Step", "ERRORS_SHOWN", "REVIEW_SUSPECTS", "plan", "warm", "configure", "run"]

ERRORS_SHOWN = 8  # misclassified clips the Errors page draws at first (its "Clips shown" slider's default)
REVIEW_SUSPECTS = 10  # top suspects the Review queue holds at first (its slider's default)


@dataclass(frozen=True)
class Step:
    """One piece of work: ``label`` for the bar, ``weight`` its share (about one clip's extraction per unit),
    ``fn(report)`` does it; ``report(fraction)`` moves the bar within the step."""

    label: str
    weight: float
    fn: Callable[[Callable[[float], None]], object]


def _test_fold(loaded, data) -> int:
    """The fold the dataset pages open on: the checkpoint's test fold when the dataset has it, else its last."""
    from core.data.datasets import checkpoint_test_fold

    wanted = checkpoint_test_fold(loaded.meta if isinstance(loaded.meta, dict) else {})
    return wanted if wanted in data.folds else data.folds[-1]


def _vectors(loaded, records) -> Callable:
    from core.data.activations import extract

    taps = [t.name for t in loaded.model.taps()]
    return lambda report: extract(loaded, records, taps, reduce="vector",
                                  on_progress=lambda done, total: report(done / max(total, 1)))


def _predicted(loaded, path: str) -> int:
    """The class the model predicts for a clip's mix-down (the Attribution and Attention pages' default class)."""
    from core.interpret.stored import clip_input
    from core.training.evaluate import predict_proba

    return int(np.argmax(predict_proba(loaded, clip_input(loaded, path)[None])[0]))


def _clip_views(loaded, path: str) -> Callable:
    """The first clip's maps and scorecards: Grad-CAM (or the first method) and, where it applies, the rollout; and
    its read-back through the checkpoint's own decoders of the Decoders page's default layer."""
    from core.interpret.decoder_fit import saved_taps
    from core.interpret.registry import map_methods
    from core.interpret.stored import stored_map, stored_reconstructions, stored_scorecard

    def fn(report):
        ids = [m.id for m in map_methods(loaded)]
        target = _predicted(loaded, path)
        first = "gradcam" if "gradcam" in ids else ids[0]
        stored_map(loaded, path, first, {}, target)
        report(0.2)
        stored_scorecard(loaded, path, first, {}, target)
        report(0.6)
        if "rollout" in ids:
            stored_map(loaded, path, "rollout", {}, 0)  # the rollout map is class-free: the page asks for class 0
            stored_scorecard(loaded, path, "rollout", {}, target)
        report(0.9)
        names = [t.name for t in loaded.cam_taps()]
        if names and names[len(names) // 2] in saved_taps(loaded.folder):  # the page opens on the middle layer
            stored_reconstructions(loaded, path, loaded.folder, names[len(names) // 2])
    return fn


def _error_maps(loaded, records) -> Callable:
    """Grad-CAM of the predicted class for the most confident mistakes of the fold, as the Errors page draws them."""
    from core.interpret.stored import stored_map
    from core.training.evaluate import dataset_proba

    def fn(report):
        if "gradcam" not in {m.id for m in _methods(loaded)}:
            return
        proba = dataset_proba(loaded, records)
        index = {c: i for i, c in enumerate(loaded.classes)}
        y_true = np.array([index.get(r.category, -1) for r in records])
        y_pred = proba.argmax(axis=1)
        wrong = np.flatnonzero(y_true != y_pred)
        shown = wrong[np.argsort(-proba[wrong, y_pred[wrong]], kind="stable")][:ERRORS_SHOWN]
        for n, j in enumerate(shown, start=1):
            stored_map(loaded, str(records[j].path), "gradcam", {}, int(y_pred[j]))
            report(n / len(shown))
    return fn


def _methods(loaded):
    from core.interpret.registry import map_methods

    return map_methods(loaded)


def _review(loaded, data) -> Callable:
    """The ranking, then the Review queue's first clip: its two Grad-CAMs and its class averages."""
    from core.interpret.stored import stored_map
    from core.models.checkpoint import checkpoint_audio_config
    from core.review.label_issues import find_label_issues
    from core.review.verdicts import QUEUE_ORDERS, average_input, review_queue

    def fn(report):
        issues = find_label_issues(loaded, data, progress=lambda f: report(0.9 * f))
        queue = review_queue(issues, n_suspects=REVIEW_SUSPECTS, order=QUEUE_ORDERS[0])
        if not queue or issues.model_proba is None:
            return
        i = queue[0]
        label, predicted = int(issues.labels[i]), int(np.argmax(issues.model_proba[i]))
        path = str(data.record(issues.clip_ids[i]).path)
        if "gradcam" in {m.id for m in _methods(loaded)}:
            for target in (label, predicted):
                stored_map(loaded, path, "gradcam", {}, target)
        report(0.95)
        cfg = checkpoint_audio_config(loaded.folder) or loaded.audio_cfg
        predictions = issues.model_proba.argmax(axis=1)
        groups = [issues.labels == label, issues.labels == predicted, (issues.labels == label) & (predictions == predicted)]
        for mask in groups[:1] if label == predicted else groups:
            wanted = {issues.clip_ids[j] for j in np.flatnonzero(mask)}
            average_input([r for r in data.records if r.clip_id in wanted], cfg)
    return fn


def _embedding(loaded, records) -> Callable:
    from core.interpret.embed import cached_embedding

    taps = [t.name for t in loaded.taps("embedding")] or [t.name for t in loaded.model.taps()]
    return lambda report: cached_embedding(loaded, records, taps[-1], method="pca")


def plan(loaded, data) -> list[Step]:
    """The steps for one checkpoint on one dataset, in the order the pages need them."""
    fold = _test_fold(loaded, data)
    fold_records, all_records = data.select(fold), data.select(None)
    name = Path(loaded.folder).name
    first = str(all_records[0].path)  # the sidebar's first clip
    return [
        Step(f"{name}: every layer, fold {fold}", len(fold_records), _vectors(loaded, fold_records)),
        Step(f"{name}: 2-D embedding", 2, _embedding(loaded, fold_records)),
        Step(f"{name}: label issues and the Review queue", len(all_records) // 2 + 20, _review(loaded, data)),
        Step(f"{name}: the first clip's maps and scorecards", 40, _clip_views(loaded, first)),
        Step(f"{name}: the Errors page's Grad-CAMs", 2 * ERRORS_SHOWN, _error_maps(loaded, fold_records)),
    ]


def warm(folders, root, *, progress: bool = True,
         on_progress: Callable[[float, str], None] | None = None) -> dict:
    """Fill the cache for each checkpoint folder on the dataset at ``root``; one tqdm bar over every step.

    ``on_progress(fraction, step)``, when given, is called with the bar (``fraction`` of the weighted work done,
    in [0, 1], and the step's label): :class:`core.warm_background.StatusWriter` writes it to the status file.

    Returns
    -------
    dict
        ``"seconds"``, ``"hits"`` and ``"misses"`` of the default cache (misses: entries computed now).
    """
    from tqdm.auto import tqdm

    from core.data.cache import default_cache
    from core.data.datasets import open_dataset
    from core.models.checkpoint import load_checkpoint

    start = time.perf_counter()
    data = open_dataset(root)
    steps = [step for folder in folders for step in plan(load_checkpoint(folder), data)]
    stats = default_cache().stats
    hits, misses = stats.hits, stats.misses
    total = sum(s.weight for s in steps)
    with tqdm(total=round(total), desc="warm-cache", disable=not progress,
              bar_format="{percentage:3.0f}%|{bar}| {elapsed} so far, about {remaining} left: {desc}") as bar:
        done = 0.0
        for step in steps:
            bar.set_description_str(step.label)

            def report(fraction: float, step=step, base=done) -> None:
                bar.n = round(base + step.weight * min(max(fraction, 0.0), 1.0))
                bar.refresh()
                if on_progress is not None:
                    on_progress(min(bar.n / max(total, 1), 1.0), step.label)

            step.fn(report)
            done += step.weight
            report(1.0)
    return {"seconds": time.perf_counter() - start, "hits": stats.hits - hits, "misses": stats.misses - misses}


def shipped_checkpoints() -> list[Path]:
    """The checkpoints the app opens by default: under ``checkpoints/``, the first of each kind by name."""
    import json

    from core.paths import CHECKPOINTS_DIR

    first: dict[str, Path] = {}
    for path in sorted(CHECKPOINTS_DIR.glob("*/checkpoint.json")):
        first.setdefault(json.loads(path.read_text()).get("kind", "?"), path.parent)
    return sorted(first.values())


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=None, help="dataset folder (default: the bundled demo set)")
    parser.add_argument("--checkpoints", nargs="+", type=Path, default=None, metavar="FOLDER",
                        help="checkpoint folders (default: the first of each kind under checkpoints/, "
                             "the ones the app opens)")
    parser.add_argument("--background", action="store_true",
                        help="as the app starts it: no bar; end at once if a warm-up is running or the last one "
                             "warmed the same checkpoints, dataset and code")


def _warm_holding_the_lock(folders, root, *, background: bool) -> dict | None:
    """:func:`warm` with its progress in the status file; ``None`` (nothing done) in the background when the last
    warm-up finished the same work."""
    from core.warm_background import StatusWriter, read_status, stamp

    wanted, last = stamp(folders, root), read_status()
    if background and last is not None and last.state == "done" and last.stamp == wanted:
        return None
    status = StatusWriter()
    try:
        result = warm(folders, root, progress=not background, on_progress=status)
    except BaseException as error:  # KeyboardInterrupt too: the app then shows that it stopped
        status.finish(error=f"{type(error).__name__}: {error}")
        raise
    status.finish(stamp=wanted)
    return result


def run(args: argparse.Namespace) -> int:
    from core.audio.demo_data import ensure_demo_data
    from core.warm_background import held, lock_path

    folders = args.checkpoints or shipped_checkpoints()
    for folder in folders:
        if not (Path(folder) / "checkpoint.json").is_file():
            raise InputError(folder, "is not a checkpoint folder (no checkpoint.json)")
    root = args.data if args.data is not None else ensure_demo_data()
    if not Path(root).is_dir():
        raise InputError(root, "is not a folder")
    with held() as mine:
        if mine:
            result = _warm_holding_the_lock(folders, root, background=args.background)
    if not mine:
        if args.background:
            print(f"warm-cache: another warm-up holds {lock_path()}; nothing to do")
            return 0
        print(f"warm-cache: waiting for the warm-up already running ({lock_path()}), then reading what it stored")
        with held(wait=True):
            result = _warm_holding_the_lock(folders, root, background=False)
    if result is None:
        print("warm-cache: already done for these checkpoints, dataset and code")
        return 0
    print(f"warm-cache: {result['misses']} entries computed, {result['hits']} read, in {result['seconds']:.1f} s "
          f"({Path(root).name}, {len(folders)} checkpoints)")
    return 0
