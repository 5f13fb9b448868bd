"""How much a trained SE-CNN relies on its per-clip channel reweighting.

Two ablations of the squeeze-and-excitation blocks, each evaluated on a test fold:

* **forced to 1**: every excitation set to 1. This removes the per-clip
  reweighting *and* shifts every channel's scale (a network trained with
  weights around 0.3 suddenly sees channels three times as strong), so its
  accuracy drop mixes two effects.
* **mean excitation**: each block's excitation replaced by its mean over the
  training clips, channel by channel. The scale the next layer expects is
  kept; only the per-clip reweighting is lost. Reported per block and for all
  blocks at once.

    python -m core se-ablation --checkpoint checkpoints/secnn --data DIR --fold 5 [--save]

``--save`` keeps the result in the checkpoint's ``checkpoint.json`` (``meta.se_ablation``), where
:func:`saved_ablation` reads it back for the app (the Tour's SE step).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from core.data.datasets import DATA_HELP, DEFAULT_TEST_FOLD, checkpoint_test_fold
from core.errors import InputError

__all__ = ["mean_excitation", "se_ablation", "format_ablation", "save_ablation", "saved_ablation", "configure", "run"]


def mean_excitation(model, features: np.ndarray, *, batch_size: int = 32) -> dict[int, np.ndarray]:
    """Each SE block's excitation averaged over clips.

    Parameters
    ----------
    model : SECNN
    features : np.ndarray [shape=(N, n_mels, n_frames) or (N, 1, n_mels, n_frames)]
        Model inputs, with or without the channel axis
        (:func:`core.training.evaluate.features_for` gives it).

    Returns
    -------
    dict[int, np.ndarray]
        1-based block index to the mean weights, shape (C,).
    """
    from core.models.taps import se_weights

    sums: dict[int, np.ndarray] = {}
    for i in range(0, len(features), batch_size):
        x = torch.as_tensor(features[i:i + batch_size], dtype=torch.float32)
        x = x[:, None] if x.ndim == 3 else x
        for name, w in se_weights(model, x).items():
            k = int(name.removeprefix("block").removesuffix(".se"))
            sums[k] = sums.get(k, 0.0) + w.sum(axis=0)
    return {k: v / len(features) for k, v in sums.items()}


def require_se(loaded) -> list:
    """The model's SE blocks; an :class:`InputError` (before any clip is computed) when it has none."""
    model = loaded.model
    blocks = model.se_blocks() if hasattr(model, "se_blocks") else []
    if not blocks:
        raise InputError(getattr(loaded, "folder", "checkpoint"), f"the model ({getattr(loaded, 'kind', '?')}) has "
                                                                  "no squeeze-and-excitation blocks to ablate")
    return blocks


def se_ablation(loaded, train_features: np.ndarray, test_features: np.ndarray, y_test: np.ndarray) -> dict:
    """Test accuracy intact, with SE forced to 1, and with mean excitation per block and in all blocks.

    Returns
    -------
    dict
        ``intact``, ``forced_to_1``, ``mean_all``: accuracies in [0, 1];
        ``mean_block``: block index to accuracy; ``blocks``: the SE blocks.
    """
    from core.training.evaluate import predict_proba

    model = loaded.model
    blocks = require_se(loaded)

    def accuracy() -> float:
        return float((predict_proba(model, test_features).argmax(axis=1) == y_test).mean())

    means = mean_excitation(model, train_features)
    result = {"blocks": blocks, "intact": accuracy()}
    with model.se_bypassed():
        result["forced_to_1"] = accuracy()
    with model.se_fixed({k: torch.as_tensor(means[k]) for k in blocks}):
        result["mean_all"] = accuracy()
    result["mean_block"] = {}
    for k in blocks:
        with model.se_fixed({k: torch.as_tensor(means[k])}):
            result["mean_block"][k] = accuracy()
    return result


def format_ablation(result: dict) -> str:
    lines = [f"intact                                 {result['intact']:6.1%}",
             f"every excitation forced to 1           {result['forced_to_1']:6.1%}",
             f"mean excitation in every SE block      {result['mean_all']:6.1%}"]
    lines += [f"mean excitation in block {k} only        {acc:6.1%}" for k, acc in result["mean_block"].items()]
    return "\n".join(lines)


def save_ablation(folder, result: dict, *, fold: int, n_clips: int, data: str) -> None:
    """Keep an ablation's result in ``folder/checkpoint.json`` under ``meta.se_ablation`` (the rest unchanged)."""
    import json
    from pathlib import Path

    from core.models.checkpoint import META_FILE, read_checkpoint_json

    doc = read_checkpoint_json(folder)
    doc.setdefault("meta", {})["se_ablation"] = {
        "fold": int(fold), "n_clips": int(n_clips), "data": str(data), "intact": result["intact"],
        "forced_to_1": result["forced_to_1"], "mean_all": result["mean_all"],
        "mean_block": {str(k): acc for k, acc in result["mean_block"].items()}}
    path = Path(folder) / META_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def saved_ablation(meta: dict) -> dict | None:
    """What a checkpoint's card says about its SE blocks, from its ``checkpoint.json`` meta.

    Returns
    -------
    dict or None
        ``intact`` and ``forced_to_1`` accuracies (from ``se-ablation --save``, else from the training
        run's ``evaluation`` and ``evaluation_se_bypassed``), ``mean_all`` and ``mean_block`` (block
        number -> accuracy) where ``se-ablation --save`` stored them (else ``None`` and ``{}``), and the
        ``fold`` and ``n_clips`` they were measured on; ``None`` when the meta holds no such measurement.
    """
    saved = meta.get("se_ablation")
    if saved:
        return {"intact": saved["intact"], "forced_to_1": saved["forced_to_1"], "mean_all": saved.get("mean_all"),
                "mean_block": {int(k): v for k, v in saved.get("mean_block", {}).items()},
                "fold": saved.get("fold"), "n_clips": saved.get("n_clips")}
    intact, bypassed = meta.get("evaluation") or {}, meta.get("evaluation_se_bypassed") or {}
    if "accuracy" not in intact or "accuracy" not in bypassed:
        return None
    return {"intact": intact["accuracy"], "forced_to_1": bypassed["accuracy"], "mean_all": None, "mean_block": {},
            "fold": meta.get("test_fold"), "n_clips": intact.get("n_clips")}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="SE-CNN checkpoint folder")
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--fold", type=int, default=None,
                        help=f"test fold (default: the checkpoint's, else {DEFAULT_TEST_FOLD}); "
                             "the training mean comes from the others")
    parser.add_argument("--save", action="store_true",
                        help="keep the result in the checkpoint's checkpoint.json (meta.se_ablation), "
                             "where the app's Tour reads it")


def run(args: argparse.Namespace) -> int:
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.training.evaluate import _labels, features_for

    loaded = load_checkpoint(args.checkpoint)
    require_se(loaded)
    data = open_dataset(args.data)
    args.fold = checkpoint_test_fold(loaded.meta, args.fold)
    test = data.select(folds=[args.fold])
    train = [r for r in data.records if r.fold != args.fold]
    if not test or not train:
        raise InputError(args.data, f"need clips in fold {args.fold} and in the other folds")
    result = se_ablation(loaded, features_for(loaded, train, progress=True), features_for(loaded, test, progress=True),
                         _labels(loaded, test))
    print(f"SE ablation of {args.checkpoint} on fold {args.fold} ({len(test)} clips; means over {len(train)} clips)")
    print(format_ablation(result))
    if args.save:
        save_ablation(args.checkpoint, result, fold=args.fold, n_clips=len(test), data=args.data)
        print(f"saved in {args.checkpoint}/checkpoint.json (meta.se_ablation)")
    return 0
