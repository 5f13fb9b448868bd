"""``python -m core shortcut-report``: does a model use the planted tone, and which map finds it? (a positive control)

On the shortcut set (:mod:`core.audio.shortcut_data`) one class carries a quiet
tone; a model trained there may learn it as a shortcut. Two questions:

1. **Does the model use the tone?** Ablation: the same held-out clips with the
   tone left out (``make-shortcut-data --no-tone``, identical otherwise). If the
   shortcut class's recall falls towards chance without the tone, the model
   relies on it (:func:`ablation`).
2. **Which explanation finds it?** For the shortcut class's held-out clips, each
   method's map for that class (:mod:`core.interpret.registry`) is scored on the
   tone's box (:func:`tone_scores`): the **pointing game** (the map's peak in
   the box) and the **mass** inside it (the share of the map's total in the
   box's cells), each a mean over clips with a bootstrap 95 % interval, beside
   the box's share of the cells (chance for both) and the energy and smooth
   random maps. A method that works points at the tone; one that does not has
   missed what the model really uses.

Planted label flips are left out (``meta/label_truth.csv``).

Examples
--------
``python -m core shortcut-report --checkpoint checkpoints/shortcut --data .cache/shortcut-seed0 --no-tone-data .cache/shortcut-seed0-notone``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.data.datasets import DEFAULT_TEST_FOLD
from core.errors import InputError
from core.interpret.baselines import bootstrap_interval, pointing_chance, smooth_random_map
from core.interpret.faithfulness import box_cells, pointing_game_hit
from core.interpret.registry import report_runs

__all__ = ["configure", "run", "box_mass", "ablation", "tone_scores", "format_report"]

SMOOTH_RANDOM = "smooth random map"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder (trained on the shortcut set)")
    parser.add_argument("--data", required=True, type=Path, help="the shortcut set (make-shortcut-data)")
    parser.add_argument("--no-tone-data", required=True, type=Path,
                        help="the same set without the tone (make-shortcut-data --no-tone)")
    parser.add_argument("--fold", type=int, default=DEFAULT_TEST_FOLD, help=f"held-out fold (default {DEFAULT_TEST_FOLD})")
    parser.add_argument("--ig-steps", type=int, default=32, help="Integrated Gradients steps (default 32)")
    parser.add_argument("--occlusion-window", type=int, default=16, help="occlusion block size (default 16)")
    parser.add_argument("--draws", type=int, default=4, help="smooth random maps per clip (default 4)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default results/shortcut-report-<checkpoint>.json)")
    parser.add_argument("--no-progress", action="store_true")


def box_mass(heatmap: np.ndarray, boxes: Sequence, *, cfg) -> float:
    """Share of a map's total inside the boxes' cells (NaN cells left out; negative values as 0).

    Parameters
    ----------
    heatmap : np.ndarray [shape=(n_mels, n_frames)]
    boxes : sequence of (t0_s, t1_s, f0_hz, f1_hz)
    cfg : AudioConfig

    Returns
    -------
    float in [0, 1]; NaN for a map with no positive mass

    Examples
    --------
    >>> from core.audio.features import AudioConfig
    >>> cfg = AudioConfig(n_mels=4, n_frames=10, sr=8000, n_fft=256, hop_length=128)
    >>> box_mass(np.ones((4, 10)), [(0.0, 0.08, 0.0, 4000.0)], cfg=cfg)  # 6 of 10 frames, every band
    0.6
    """
    heat = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64), nan=0.0), 0.0, None)
    inside = np.zeros(heat.shape, dtype=bool)
    for box in boxes:
        bands, frames = box_cells(box, shape=heat.shape, cfg=cfg)
        inside[bands, frames] = True
    total = heat.sum()
    return float(heat[inside].sum() / total) if total > 0 else float("nan")


def _accuracy(loaded, records, features) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        logits = torch.cat([loaded.model(torch.as_tensor(features[i:i + 32]))
                            for i in range(0, len(features), 32)])
    predicted = logits.argmax(dim=1).numpy()
    return predicted, np.array([int(r.label) for r in records])


def ablation(loaded, records, with_tone: np.ndarray, without_tone: np.ndarray, *, shortcut_label: int) -> dict:
    """Accuracy and the shortcut class's recall, with the tone and without it, each with its bootstrap interval.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    records : sequence of ClipRecord
        Held-out clips, labels true (flips left out).
    with_tone, without_tone : np.ndarray [shape=(N, ...)]
        The model's inputs for the same clips from the two sets.
    shortcut_label : int

    Returns
    -------
    dict
        ``{"with_tone": {...}, "without_tone": {...}, "chance": 1 / n_classes}``, each with
        ``accuracy`` and ``shortcut_recall`` as ``[mean, low, high]`` and
        ``shortcut_predicted_share`` (how often any clip is called the shortcut class).
    """
    out = {"chance": 1.0 / loaded.n_classes}
    for name, X in (("with_tone", with_tone), ("without_tone", without_tone)):
        predicted, truth = _accuracy(loaded, records, X)
        mine = truth == shortcut_label
        out[name] = {
            "accuracy": [round(v, 4) for v in bootstrap_interval((predicted == truth).astype(float))],
            "shortcut_recall": [round(v, 4) for v in bootstrap_interval((predicted[mine] == shortcut_label)
                                                                        .astype(float))],
            "others_accuracy": [round(v, 4) for v in bootstrap_interval((predicted[~mine] == truth[~mine])
                                                                        .astype(float))],
            "shortcut_predicted_share": round(float(np.mean(predicted == shortcut_label)), 4),
        }
    return out


def tone_scores(loaded, features: np.ndarray, tone_boxes: Sequence[Sequence], *, target: int, ig_steps: int = 32,
                occlusion_window: int = 16, draws: int = 4, seed: int = 0, progress: bool = True) -> dict:
    """Each method's pointing game and mass on the tone's box, over the shortcut class's clips.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    features : np.ndarray [shape=(N, n_mels, n_frames)]
        The shortcut class's held-out clips, tone in.
    tone_boxes : sequence of sequences of (t0_s, t1_s, f0_hz, f1_hz)
        Each clip's tone box(es).
    target : int
        The shortcut class: every map is made for it.
    ig_steps, occlusion_window, draws, seed, progress

    Returns
    -------
    dict
        Row name -> ``{"pointing": [mean, low, high], "mass": [...], "per_clip_hits", "per_clip_mass"}``;
        the row ``"chance (box area)"`` gives the box's share of the cells for both.
    """
    if len(features) != len(tone_boxes) or len(features) == 0:
        raise InputError("tone boxes", f"{len(tone_boxes)} box lists for {len(features)} clips")
    model = loaded.model.eval()
    cfg = loaded.audio_cfg
    runs = report_runs(loaded, params={"integrated-gradients": {"n_steps": ig_steps},
                                       "occlusion": {"window": occlusion_window}})
    methods = {run.name: run for run in runs}
    explainers = {run.name: run.bind(loaded) for run in runs}
    names = list(methods) + [SMOOTH_RANDOM]
    hits = {n: [] for n in names}
    mass = {n: [] for n in names}
    chance = []
    shape = tuple(features.shape[1:])
    for i, x in enumerate(tqdm(features, desc="shortcut-report", unit="clip", disable=not progress)):
        boxes = list(tone_boxes[i])
        xt = torch.as_tensor(x, dtype=torch.float32)[None, None]
        maps = {name: explain(model, xt, target) for name, explain in explainers.items()}
        randoms = [smooth_random_map(shape, seed=seed + 1009 * i + k) for k in range(draws)]
        for name, heat in maps.items():
            hits[name].append(float(pointing_game_hit(heat, boxes, cfg=cfg, seed=seed + i)))
            mass[name].append(box_mass(heat, boxes, cfg=cfg))
        hits[SMOOTH_RANDOM].append(float(np.mean([pointing_game_hit(h, boxes, cfg=cfg, seed=seed + i)
                                                  for h in randoms])))
        mass[SMOOTH_RANDOM].append(float(np.mean([box_mass(h, boxes, cfg=cfg) for h in randoms])))
        chance.append(pointing_chance(boxes, shape=shape, cfg=cfg))
    interval = lambda v: [round(x, 4) for x in bootstrap_interval(v)]
    rows = {name: {"pointing": interval(hits[name]), "mass": interval(mass[name]),
                   "per_clip_hits": hits[name], "per_clip_mass": [round(v, 4) for v in mass[name]],
                   "baseline": name == SMOOTH_RANDOM or methods[name].spec.baseline if name in methods else True}
            for name in names}
    rows["chance (box area)"] = {"pointing": interval(chance), "mass": interval(chance), "baseline": True}
    return rows


def _cell(v) -> str:
    return f"{v[0]:.3f} [{v[1]:.2f}, {v[2]:.2f}]"


def format_report(doc: dict) -> str:
    """The ablation and the tone scores as text."""
    a = doc["ablation"]
    lines = [f"held-out clips: {doc['n_clips']} (fold {doc['fold']}, planted flips left out); shortcut class "
             f"'{doc['shortcut_class']}' ({doc['n_shortcut_clips']} clips); chance {a['chance']:.3f}",
             f"{'':<14}{'accuracy':>22}  {'shortcut-class recall':>22}  {'other classes':>22}  called shortcut"]
    for name in ("with_tone", "without_tone"):
        r = a[name]
        lines.append(f"{name.replace('_', ' '):<14}{_cell(r['accuracy']):>22}  {_cell(r['shortcut_recall']):>22}  "
                     f"{_cell(r['others_accuracy']):>22}  {r['shortcut_predicted_share']:.3f}")
    lines.append("")
    lines.append(f"maps for '{doc['shortcut_class']}' on its clips: the tone's box (pointing game: peak inside; "
                 f"mass: share of the map inside), mean [95 % interval]")
    width = max(len(n) for n in doc["tone"])
    lines.append(f"{'method':<{width}}  {'pointing game ↑':>20}  {'mass in box ↑':>20}")
    for name, row in doc["tone"].items():
        lines.append(f"{name:<{width}}  {_cell(row['pointing']):>20}  {_cell(row['mass']):>20}")
    return "\n".join(lines)


def run(args) -> int:
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset, read_label_truth
    from core.interpret.report import report_slice
    from core.paths import REPO_ROOT
    from core.audio.shortcut_data import SHORTCUT_CLASS, read_tone_boxes

    loaded = load_checkpoint(args.checkpoint)
    if SHORTCUT_CLASS not in loaded.classes:
        raise InputError(args.checkpoint, f"has no class {SHORTCUT_CLASS!r}: not trained on a shortcut set")
    tone_boxes = read_tone_boxes(args.data)
    toned, plain = open_dataset(args.data), open_dataset(args.no_tone_data)
    try:
        flipped = set(read_label_truth(args.data))
    except InputError:
        flipped = set()
    records = report_slice(toned.select(folds=[args.fold]), None, flipped=flipped)
    if not records:
        raise InputError(args.data, f"no clips in fold {args.fold}")
    plain_by_id = {r.clip_id: r for r in plain.select(folds=[args.fold])}
    missing = [r.clip_id for r in records if r.clip_id not in plain_by_id]
    if missing:
        raise InputError(args.no_tone_data, f"lacks {len(missing)} of the clips (e.g. {missing[0]}): not the same set "
                                            f"without the tone")
    progress = not args.no_progress
    started = time.perf_counter()
    with_tone = loaded.inputs(records, progress=progress)
    without_tone = loaded.inputs([plain_by_id[r.clip_id] for r in records], progress=progress)
    label = loaded.classes.index(SHORTCUT_CLASS)
    ablated = ablation(loaded, records, with_tone, without_tone, shortcut_label=label)
    mine = [k for k, r in enumerate(records) if int(r.label) == label]
    boxes = [tone_boxes.get(Path(records[k].clip_id).name, []) for k in mine]
    if not all(boxes):
        raise InputError(Path(args.data) / "meta" / "shortcut.csv", "a clip of the shortcut class has no tone box")
    tone = tone_scores(loaded, with_tone[mine][:, 0], boxes, target=label, ig_steps=args.ig_steps,
                       occlusion_window=args.occlusion_window, draws=args.draws, progress=progress)
    doc = {"checkpoint": str(args.checkpoint), "data": str(args.data), "no_tone_data": str(args.no_tone_data),
           "fold": args.fold, "n_clips": len(records), "shortcut_class": SHORTCUT_CLASS,
           "n_shortcut_clips": len(mine), "flips_left_out": sorted(flipped), "ig_steps": args.ig_steps,
           "occlusion_window": args.occlusion_window, "draws": args.draws, "ablation": ablated, "tone": tone,
           "seconds": round(time.perf_counter() - started, 1)}
    print(format_report(doc))
    out = Path(args.out or REPO_ROOT / "results" / f"shortcut-report-{Path(args.checkpoint).resolve().name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {out}")
    return 0
