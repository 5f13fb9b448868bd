"""``python -m core explain-report``: how faithful each explanation method is, as one table.

For every clip of one fold, each method makes a heatmap for the clip's true
class; the table gives per method the pointing-game hit rate (clips with a
ground-truth box only), and the mean deletion AUC (lower is better) and
insertion AUC (higher is better). Methods:

* AST (``"ast"``, ``"hf-ast"``): rollout (mean fusion; and max fusion with 0.9
  of the weakest links discarded), Grad-CAM on the token grid of the
  second-to-last layer (the last layer's patch tokens get no gradient: only
  its class token reaches the head), the last layer's raw attention from the
  class token (mean over heads), random;
* SE-CNN: Grad-CAM at each conv tap, random.

A method that loses to random is reported as it is.

Examples
--------
``python -m core explain-report --checkpoint checkpoints/secnn --data data/demo --fold 5 --limit 40``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.errors import InputError
from core.interpret.faithfulness import (
    deletion_curve,
    insertion_curve,
    model_predictor,
    pointing_game_hit,
    random_heatmap,
)
from core.interpret.gradcam import GradCAM
from core.interpret.maps import normalise_map, patch_geometry, resize_map, resize_patch_map
from core.interpret.rollout import rollout_map

__all__ = ["configure", "run", "heatmap_methods", "faithfulness_table", "format_table"]

Method = Callable[[torch.Tensor, int], np.ndarray]
TRANSFORMER_KINDS = ("ast", "hf-ast")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder (ESC-50 layout or class folders)")
    parser.add_argument("--fold", type=int, default=5, help="fold to score (default 5)")
    parser.add_argument("--limit", type=int, default=None, help="score at most N clips of the fold")
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    parser.add_argument("--fill", default="min", help="value of removed cells: min, mean or a number")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baseline")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default results/explain-report-<checkpoint>.json)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _last_attention_map(model, shape) -> Method:
    grid, n_special, geometry = model.grid, getattr(model, "n_special", 1), patch_geometry(model)

    def explain(x: torch.Tensor, target: int) -> np.ndarray:
        with torch.no_grad():
            _, attentions = model(x, output_attentions=True)
        row = attentions[-1][:, :, 0, n_special:].mean(dim=1).reshape(-1, *grid)  # (1, nF, nT)
        resized = resize_map(row, shape) if geometry is None else resize_patch_map(row, shape, geometry=geometry)
        return normalise_map(resized).numpy()[0]

    return explain


def _rollout_method(model, shape, *, head_fusion: str, discard_ratio: float) -> Method:
    grid, n_special, geometry = model.grid, getattr(model, "n_special", 1), patch_geometry(model)

    def explain(x: torch.Tensor, target: int) -> np.ndarray:
        with torch.no_grad():
            _, attentions = model(x, output_attentions=True)
        return rollout_map(attentions, grid=grid, shape=shape, head_fusion=head_fusion,
                           discard_ratio=discard_ratio, n_special=n_special, geometry=geometry)[0]

    return explain


def _gradcam_method(model, tap: str) -> Method:
    cam = GradCAM(model, [tap])

    def explain(x: torch.Tensor, target: int) -> np.ndarray:
        return cam.maps(x, target=target)[tap][0]

    return explain


def heatmap_methods(model, shape: tuple[int, int], *, seed: int = 0) -> dict[str, Method]:
    """The methods the report compares for this model.

    Parameters
    ----------
    model : nn.Module
        A project model in eval mode (``kind`` "secnn", "ast" or "hf-ast").
    shape : (int, int)
        ``(n_mels, n_frames)`` of its input.
    seed : int
        Seed of the random baseline (each call draws a new map from one generator).

    Returns
    -------
    dict
        Method name -> ``explain(x, target) -> np.ndarray (n_mels, n_frames)``
        with ``x`` a tensor ``(1, 1, n_mels, n_frames)``.
    """
    methods: dict[str, Method] = {}
    token_taps = [t.name for t in model.taps() if t.kind == "tokens"]
    conv_taps = [t.name for t in model.taps() if t.kind == "conv"]
    if getattr(model, "kind", "") in TRANSFORMER_KINDS:
        methods["rollout (mean)"] = _rollout_method(model, shape, head_fusion="mean", discard_ratio=0.0)
        methods["rollout (max, discard 0.9)"] = _rollout_method(model, shape, head_fusion="max", discard_ratio=0.9)
        tap = token_taps[-2] if len(token_taps) > 1 else token_taps[-1]
        methods[f"grad-cam {tap}"] = _gradcam_method(model, tap)
        methods["attention (last layer)"] = _last_attention_map(model, shape)
    else:
        for tap in conv_taps:
            methods[f"grad-cam {tap}"] = _gradcam_method(model, tap)
    rng = np.random.default_rng(seed)
    methods["random"] = lambda x, target: random_heatmap(shape, seed=int(rng.integers(2**31)))
    return methods


def faithfulness_table(
    loaded,
    records: Sequence,
    features: np.ndarray,
    *,
    boxes: Callable[[str], list] | None = None,
    n_steps: int = 20,
    fill: str | float = "min",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, dict]:
    """Score every method on the given clips.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
    records : sequence of ClipRecord
        Targets are the records' labels.
    features : np.ndarray [shape=(N, n_mels, n_frames)]
        The model's input for each record.
    boxes : callable or None
        ``clip_id -> list of Box``; clips without boxes do not count for the pointing game.
    n_steps, fill
        Of the deletion and insertion curves.
    seed : int
        Of the random baseline.
    progress : bool

    Returns
    -------
    dict
        Method -> ``{"pointing_game": float or None, "deletion_auc": float,
        "insertion_auc": float, "n_clips": int, "n_boxed": int}``.
    """
    if len(records) != len(features) or len(records) == 0:
        raise InputError("records", f"{len(records)} records for {len(features)} feature arrays")
    model = loaded.model.eval()
    shape = tuple(features.shape[1:])
    methods = heatmap_methods(model, shape, seed=seed)
    predict = model_predictor(model, batch_size=n_steps + 1)
    scores = {name: {"hits": [], "deletion": [], "insertion": []} for name in methods}
    for record, x in tqdm(list(zip(records, features)), desc="explain-report", unit="clip", disable=not progress):
        x_t = torch.as_tensor(x, dtype=torch.float32)[None, None]  # (1, 1, n_mels, n_frames)
        clip_boxes = boxes(record.clip_id) if boxes is not None else []
        for name, explain in methods.items():
            heat = explain(x_t, int(record.label))
            s = scores[name]
            s["deletion"].append(deletion_curve(predict, x, heat, target=record.label, n_steps=n_steps, fill=fill).auc)
            s["insertion"].append(insertion_curve(predict, x, heat, target=record.label, n_steps=n_steps, fill=fill).auc)
            if clip_boxes:
                s["hits"].append(pointing_game_hit(heat, clip_boxes, cfg=loaded.audio_cfg))
    return {
        name: {
            "pointing_game": float(np.mean(s["hits"])) if s["hits"] else None,
            "deletion_auc": float(np.mean(s["deletion"])),
            "insertion_auc": float(np.mean(s["insertion"])),
            "n_clips": len(s["deletion"]),
            "n_boxed": len(s["hits"]),
        }
        for name, s in scores.items()
    }


def format_table(table: dict[str, dict]) -> str:
    """The table as text: method, pointing-game hit rate, deletion AUC (lower better), insertion AUC (higher better)."""
    width = max(len("method"), *(len(name) for name in table))
    lines = [f"{'method':<{width}}  {'pointing game':>13}  {'deletion AUC ↓':>14}  {'insertion AUC ↑':>15}"]
    for name, row in table.items():
        hit = "—" if row["pointing_game"] is None else f"{row['pointing_game']:.3f}"
        lines.append(f"{name:<{width}}  {hit:>13}  {row['deletion_auc']:>14.3f}  {row['insertion_auc']:>15.3f}")
    return "\n".join(lines)


def _fill(value: str) -> str | float:
    if value in ("min", "mean"):
        return value
    try:
        return float(value)
    except ValueError:
        raise InputError("--fill", f"{value!r} is not min, mean or a number") from None


def run(args) -> int:
    from core.checkpoint import load_checkpoint
    from core.datasets import open_dataset
    from core.evaluate import spread
    from core.paths import REPO_ROOT

    fill = _fill(args.fill)
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be at least 1, got {args.limit}")
    loaded = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    records = dataset.select(folds=[args.fold])
    if not records:
        raise InputError(args.data, f"no clips in fold {args.fold}")
    if args.limit is not None:  # evenly through the fold, so every class is in the slice
        records = spread(records, args.limit)
    progress = not args.no_progress
    features = loaded.inputs(records, progress=progress)[:, 0]  # (N, n_mels, n_frames)
    started = time.perf_counter()
    table = faithfulness_table(loaded, records, features, boxes=dataset.boxes, n_steps=args.steps,
                               fill=fill, seed=args.seed, progress=progress)
    print(format_table(table))
    out = args.out or REPO_ROOT / "results" / f"explain-report-{Path(args.checkpoint).resolve().name}.json"
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "checkpoint": str(args.checkpoint), "kind": loaded.kind, "data": str(args.data), "fold": args.fold,
        "n_clips": len(records), "steps": args.steps, "fill": fill, "seed": args.seed,
        "target": "true label", "seconds": round(time.perf_counter() - started, 1), "methods": table,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {out}")
    return 0
