"""``python -m core explain-report``: how faithful each explanation method is, beside its baselines, as one table.

For every clip of one fold, each method (:mod:`core.interpret.registry`) makes
a heatmap for the clip's true class. Per method the table gives, each as a
mean over clips with a bootstrap 95 % interval:

* **pointing game**: the map's peak in the clip's event box (clips with a box only);
* **distractor hits**: the peak in a distractor box (a sound of no class)
  rather than the event (clips with a distractor only; datasets without
  distractors show "—");
* **deletion AUC** (lower is better) and **insertion AUC** (higher is better),
  ties in the map's order broken at random (seeded);
* **sanity**: Spearman's rank correlation of the map with the map from the
  model after cascading randomisation (:mod:`core.interpret.sanity`): after
  the top layer only, and after all layers, with the verdict, on a slice of
  the clips.

And the baselines: the energy map (the input itself, a method that ignores
the model), a smooth random map (mean over ``--draws`` draws; the JSON keeps
the spread over draws) and the pointing game's chance level (the share of
cells in the boxes). A method that loses to a baseline is reported as it is.

Examples
--------
``python -m core explain-report --checkpoint checkpoints/secnn --data .cache/demo-v2-seed0 --fold 5 --limit 20``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.checkpoint import load_checkpoint
from core.datasets import DATA_HELP, DEFAULT_TEST_FOLD, checkpoint_test_fold, open_dataset
from core.errors import InputError
from core.evaluate import spread
from core.interpret.baselines import bootstrap_interval, pointing_chance, random_curves, smooth_random_map
from core.interpret.faithfulness import (
    deletion_curve,
    distractor_hit,
    insertion_curve,
    model_predictor,
    pointing_game_hit,
)
from core.interpret.registry import report_runs
from core.interpret.sanity import cascading_randomisation, verdict
from core.paths import REPO_ROOT

__all__ = ["configure", "run", "faithfulness_table", "format_table", "SMOOTH_RANDOM", "CHANCE"]

SMOOTH_RANDOM = "smooth random map"
CHANCE = "chance (box area)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--data", required=True, type=Path, help=DATA_HELP)
    parser.add_argument("--fold", type=int, default=None,
                        help=f"fold to score (default: the checkpoint's test fold, else {DEFAULT_TEST_FOLD})")
    parser.add_argument("--limit", type=int, default=None, help="score at most N clips, evenly through the fold")
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    parser.add_argument("--draws", type=int, default=4, help="smooth random maps per clip (default 4)")
    parser.add_argument("--sanity-clips", type=int, default=8,
                        help="clips the randomisation sanity check runs on (default 8; 0 skips it)")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients steps (default 32)")
    parser.add_argument("--occlusion-window", type=int, default=16, help="occlusion block size (default 16)")
    parser.add_argument("--no-reference", action="store_true",
                        help="leave out Integrated Gradients and occlusion (the slowest methods)")
    parser.add_argument("--fill", default="min", help="value of removed cells: min, mean or a number")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baselines and tie-breaking")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default results/explain-report-<checkpoint>.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _interval(values) -> list[float] | None:
    return None if len(values) == 0 else [round(v, 4) for v in bootstrap_interval(values)]


def faithfulness_table(
    loaded,
    records: Sequence,
    features: np.ndarray,
    *,
    boxes: Callable[[str], list] | None = None,
    distractor_boxes: Callable[[str], list] | None = None,
    n_steps: int = 20,
    draws: int = 8,
    sanity_clips: int = 8,
    ig_steps: int = 32,
    occlusion_window: int = 16,
    reference: bool = True,
    fill: str | float = "min",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Score every method and baseline on the given clips.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
    records : sequence of ClipRecord
        Targets are the records' labels.
    features : np.ndarray [shape=(N, n_mels, n_frames)]
        The model's input for each record.
    boxes, distractor_boxes : callable or None
        ``clip_id -> list of Box`` (``Dataset.boxes``, ``Dataset.distractor_boxes``);
        clips without count for neither the pointing game nor distractor hits.
    n_steps, fill
        Of the deletion and insertion curves.
    draws : int
        Smooth random maps per clip.
    sanity_clips : int
        The sanity check runs on this many clips (evenly through ``records``); 0 skips it.
    ig_steps, occlusion_window, reference
        Integrated Gradients' steps, occlusion's block size, and whether to run
        those costly methods (:func:`core.interpret.registry.report_runs`).
    seed : int
    progress : bool

    Returns
    -------
    dict
        Row name -> ``{"baseline": bool, "pointing_game", "distractor_hits",
        "deletion_auc", "insertion_auc"`` (each ``[mean, low, high]`` or None),
        ``"sanity_top", "sanity_all"`` (mean rank correlations or None),
        ``"sanity_passed"``, ``"sanity_verdict"``, ``"n_clips", "n_boxed",
        "n_distracted", "seconds_per_clip", "per_clip"}`` (the per-clip values).
    """
    if len(records) != len(features) or len(records) == 0:
        raise InputError("records", f"{len(records)} records for {len(features)} feature arrays")
    if draws < 1:
        raise InputError("--draws", f"must be at least 1, got {draws}")
    loaded.model.eval()
    runs = report_runs(loaded, reference=reference, params={"integrated-gradients": {"n_steps": ig_steps},
                                                            "occlusion": {"window": occlusion_window}})
    methods = {run.name: run for run in runs}
    explainers = {run.name: run.bind(loaded) for run in runs}
    predict = model_predictor(loaded.model, batch_size=n_steps + 1)
    names = list(methods) + [SMOOTH_RANDOM, CHANCE]
    per = {name: {"hits": [], "distractor": [], "deletion": [], "insertion": [], "seconds": [],
                  "deletion_spread": []} for name in names}
    sanity_ids = {r.clip_id for r in spread(list(records), max(0, sanity_clips))} if sanity_clips > 0 else set()
    sanity = {name: {"top": [], "all": []} for name in methods}
    for i, (record, x) in enumerate(tqdm(list(zip(records, features)), desc="explain-report", unit="clip",
                                         disable=not progress)):
        clip = _Clip(x=x, target=int(record.label), seed=seed + 1009 * i, cfg=loaded.audio_cfg,
                     events=list(boxes(record.clip_id)) if boxes else [],
                     distractors=list(distractor_boxes(record.clip_id)) if distractor_boxes else [])
        for name, explain in explainers.items():
            _score_map(per[name], clip, explain, loaded.model, predict, n_steps=n_steps, fill=fill)
            if record.clip_id in sanity_ids:
                result = cascading_randomisation(loaded.model, explain, clip.tensor, clip.target, seed=clip.seed)
                sanity[name]["top"].append(result.top)
                sanity[name]["all"].append(result.all_random)
        _score_baselines(per[SMOOTH_RANDOM], per[CHANCE], clip, predict, draws=draws, n_steps=n_steps, fill=fill)
    return {name: _row(name, per[name], sanity.get(name), baseline=name in (SMOOTH_RANDOM, CHANCE) or (
        name in methods and methods[name].spec.baseline), draws=draws) for name in names}


@dataclass
class _Clip:
    """One clip as the table scores it."""

    x: np.ndarray  # (n_mels, n_frames)
    target: int
    seed: int
    cfg: object
    events: list
    distractors: list

    @property
    def tensor(self) -> torch.Tensor:
        return torch.as_tensor(self.x, dtype=torch.float32)[None, None]


def _score_map(s: dict, clip: _Clip, explain: Callable, model, predict, *, n_steps: int, fill) -> None:
    """One method's map of one clip: its time, deletion and insertion AUC, pointing game and distractor hit."""
    started = time.perf_counter()
    heat = explain(model, clip.tensor, clip.target)
    s["seconds"].append(time.perf_counter() - started)
    for key, curve in (("deletion", deletion_curve), ("insertion", insertion_curve)):
        s[key].append(curve(predict, clip.x, heat, target=clip.target, n_steps=n_steps, fill=fill,
                            seed=clip.seed).auc)
    if clip.events:
        s["hits"].append(float(pointing_game_hit(heat, clip.events, cfg=clip.cfg, seed=clip.seed)))
    if clip.distractors:
        s["distractor"].append(float(distractor_hit(heat, clip.distractors, clip.events, cfg=clip.cfg,
                                                    seed=clip.seed)))


def _score_baselines(s: dict, chance: dict, clip: _Clip, predict, *, draws: int, n_steps: int, fill) -> None:
    """Smooth random maps (the mean over ``draws``) and the pointing game's chance level, for one clip."""
    started = time.perf_counter()
    rc = random_curves(predict, clip.x, target=clip.target, draws=draws, n_steps=n_steps, fill=fill, seed=clip.seed)
    s["seconds"].append(time.perf_counter() - started)
    s["deletion"].append(rc.deletion_auc)
    s["insertion"].append(rc.insertion_auc)
    s["deletion_spread"].append(rc.deletion_spread)
    shape = clip.x.shape
    random_maps = [smooth_random_map(shape, seed=clip.seed + k) for k in range(draws)]
    if clip.events:
        s["hits"].append(float(np.mean([pointing_game_hit(h, clip.events, cfg=clip.cfg, seed=clip.seed)
                                        for h in random_maps])))
        chance["hits"].append(pointing_chance(clip.events, shape=shape, cfg=clip.cfg))
    if clip.distractors:
        s["distractor"].append(float(np.mean([distractor_hit(h, clip.distractors, clip.events, cfg=clip.cfg,
                                                             seed=clip.seed) for h in random_maps])))
        chance["distractor"].append(pointing_chance(clip.distractors, shape=shape, cfg=clip.cfg))


def _row(name: str, s: dict, sanity: dict | None, *, baseline: bool, draws: int) -> dict:
    """One row of the table: intervals over clips, counts, the sanity verdict."""
    row = {
        "baseline": baseline,
        "pointing_game": _interval(s["hits"]),
        "distractor_hits": _interval(s["distractor"]),
        "deletion_auc": _interval(s["deletion"]),
        "insertion_auc": _interval(s["insertion"]),
        "n_clips": len(s["deletion"]),
        "n_boxed": len(s["hits"]),
        "n_distracted": len(s["distractor"]),
        "seconds_per_clip": round(float(np.mean(s["seconds"])), 3) if s["seconds"] else None,
        "per_clip": {k: [round(float(v), 4) for v in s[k]] for k in ("hits", "distractor", "deletion", "insertion")},
    }
    if name == SMOOTH_RANDOM:
        row["deletion_spread_over_draws"] = round(float(np.mean(s["deletion_spread"])), 4)
        row["draws"] = draws
    if sanity and sanity["all"]:
        top, all_random = float(np.mean(sanity["top"])), float(np.mean(sanity["all"]))
        passed, words = verdict(all_random)
        row.update(sanity_top=round(top, 4), sanity_all=round(all_random, 4), sanity_passed=passed,
                   sanity_verdict=words, sanity_clips=len(sanity["all"]),
                   sanity_per_clip=[round(v, 4) for v in sanity["all"]])
    else:
        row.update(sanity_top=None, sanity_all=None, sanity_passed=None, sanity_verdict=None)
    return row


def _cell(interval) -> str:
    if interval is None:
        return "—"
    mean, low, high = interval
    return f"{mean:.3f} [{low:.2f}, {high:.2f}]"


def format_table(table: dict[str, dict]) -> str:
    """The table as text: one row per method and baseline, means with [95 % interval]."""
    columns = [("method", "<"), ("pointing game ↑", ">"), ("distractor hits ↓", ">"), ("deletion AUC ↓", ">"),
               ("insertion AUC ↑", ">"), ("sanity ρ top/all", ">"), ("verdict", "<")]
    rows = []
    for name, row in table.items():
        if row.get("sanity_all") is None:
            rho, word = "—", "—"
        else:
            rho = f"{row['sanity_top']:.2f}/{row['sanity_all']:.2f}"
            word = "passes" if row["sanity_passed"] else "FAILS"
        rows.append([name, _cell(row["pointing_game"]), _cell(row["distractor_hits"]), _cell(row["deletion_auc"]),
                     _cell(row["insertion_auc"]), rho, word])
    widths = [max(len(c[0]), *(len(r[k]) for r in rows)) for k, c in enumerate(columns)]
    fmt = lambda cells: "  ".join(f"{cell:{align}{w}}" for cell, (_, align), w in zip(cells, columns, widths))
    lines = [fmt([c[0] for c in columns])] + [fmt(r) for r in rows]
    lines.append("Means over clips with bootstrap 95 % intervals. Sanity ρ: rank correlation of the map with the map "
                 "of the model randomised from the top layer (top) down to all layers (all); it fails at ρ ≥ 0.5.")
    return "\n".join(lines)


def _fill(value: str) -> str | float:
    if value in ("min", "mean"):
        return value
    try:
        return float(value)
    except ValueError:
        raise InputError("--fill", f"{value!r} is not min, mean or a number") from None


def run(args) -> int:
    fill = _fill(args.fill)
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be at least 1, got {args.limit}")
    for name, value in (("--steps", args.steps), ("--draws", args.draws), ("--ig-steps", args.ig_steps),
                        ("--occlusion-window", args.occlusion_window)):
        if value < 1:
            raise InputError(name, f"must be at least 1, got {value}")
    loaded = load_checkpoint(args.checkpoint)
    if loaded.layout != "mel-time":  # before any clip: deletion, insertion and the boxes mask (n_mels, n_frames) cells
        raise InputError(args.checkpoint, f"explain-report masks the model's input cell by cell and scores it on the "
                                          f"boxes: it needs an input laid out (1, n_mels, n_frames), this model's is "
                                          f"{loaded.layout}")
    dataset = open_dataset(args.data)
    args.fold = checkpoint_test_fold(loaded.meta, args.fold)
    records = dataset.select(folds=[args.fold])
    if not records:
        raise InputError(args.data, f"no clips in fold {args.fold}")
    if args.limit is not None:  # evenly through the fold, so every class is in the slice
        records = spread(records, args.limit)
    progress = not args.no_progress
    features = loaded.inputs(records, progress=progress)[:, 0]  # (N, n_mels, n_frames)
    started = time.perf_counter()
    distractors = getattr(dataset, "distractor_boxes", None)  # demo set v2 and later
    table = faithfulness_table(loaded, records, features, boxes=dataset.boxes if dataset.has_boxes else None,
                               distractor_boxes=distractors, n_steps=args.steps, draws=args.draws,
                               sanity_clips=args.sanity_clips, ig_steps=args.ig_steps,
                               occlusion_window=args.occlusion_window, reference=not args.no_reference,
                               fill=fill, seed=args.seed, progress=progress)
    print(format_table(table))
    out = args.out or REPO_ROOT / "results" / f"explain-report-{Path(args.checkpoint).resolve().name}.json"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "checkpoint": str(args.checkpoint), "kind": loaded.kind, "data": str(args.data), "fold": args.fold,
        "n_clips": len(records), "steps": args.steps, "draws": args.draws, "sanity_clips": args.sanity_clips,
        "ig_steps": args.ig_steps, "occlusion_window": args.occlusion_window, "fill": fill, "seed": args.seed,
        "target": "true label", "seconds": round(time.perf_counter() - started, 1), "methods": table,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {out}")
    return 0
