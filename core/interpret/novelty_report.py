"""``python -m core novelty-report``: how well each novelty score tells made-up sounds from a test fold.

    python -m core novelty-report --checkpoint checkpoints/secnn --data .cache/demo-v2-seed0 --fold 5

In-distribution: the clips of ``--fold`` (never used to fit anything).
Out-of-distribution: the sets of :mod:`core.audio.ood_sets` (tones, music, noise,
chirps, the demo set's distractor sounds alone, and espeak-ng speech where it
is installed), ``--per-kind`` clips each. Scores, each higher for more novel:

* both methods of :mod:`core.interpret.novelty` (k-NN and Mahalanobis on the head's
  input), fitted here as ``fit-novelty`` fits them (the training folds, the
  threshold on ``--held-out`` clips or out of fold);
* maximum softmax probability and the energy score (from the logits, no fit).

For each: AUROC and FPR@95 (the share of out-of-distribution clips accepted
when 95 % of the fold's clips are) per set and over all sets, and, for the two
fitted scores, the share flagged at their threshold. The method saved with
the checkpoint is marked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.errors import InputError

__all__ = ["measure", "format_table", "configure", "run"]


def measure(loaded, data, *, fold: int, held_out=None, kinds=None, per_kind: int = 12, seed: int = 0,
            k: int | None = None, tap: str | None = None, progress: bool = False) -> dict:
    """Every score's separation of ``fold`` from each made-up set (see the module docstring).

    Returns
    -------
    dict
        ``rows``: list of dict (``score``, ``set``, ``auroc``, ``fpr_at_95``,
        ``flagged`` or None), ``flagged_id``: {score: share of the fold
        flagged}, ``n_id``, ``per_kind``, ``kinds``, ``tap``, ``describe``: {method: sentence}.
    """
    from core.interpret import novelty as nv
    from core.audio.ood_sets import MADE_KINDS, ood_clips, speech_available

    if fold not in data.folds:
        raise InputError("--fold", f"{fold} is not a fold of {data.root} (folds: {data.folds})")
    if kinds is None:
        kinds = MADE_KINDS + (("speech",) if speech_available() else ())
    id_records = data.select(fold)
    fitted = {m: nv.fit_for_checkpoint(loaded, data, test_fold=fold, method=m, held_out=held_out, tap=tap,
                                       **({} if k is None else {"k": k}))
              for m in nv.METHODS}
    tap = fitted[nv.DEFAULT_METHOD].tap
    v_id, logits_id = nv.embedding_vectors(loaded, id_records, tap=tap)
    scores_id = {m: n.score(v_id) for m, n in fitted.items()} | nv.baseline_scores(logits_id)
    rows, all_ood = [], {s: [] for s in scores_id}
    from tqdm.auto import tqdm

    for kind in tqdm(kinds, desc="out-of-distribution sets", disable=not progress):
        clips = ood_clips(kind, per_kind, seed=seed, sr=loaded.audio_cfg.sr)
        v, logits = nv.audio_vectors(loaded, clips, loaded.audio_cfg.sr, tap=tap)
        scores = {m: n.score(v) for m, n in fitted.items()} | nv.baseline_scores(logits)
        for name, s in scores.items():
            all_ood[name].append(s)
            rows.append(_row(name, kind, scores_id[name], s, fitted.get(name)))
    for name, parts in all_ood.items():
        rows.append(_row(name, "all", scores_id[name], np.concatenate(parts), fitted.get(name)))
    return {"rows": rows, "n_id": len(id_records), "per_kind": per_kind, "kinds": list(kinds), "tap": tap,
            "fold": fold, "flagged_id": {m: float(np.mean(n.is_novel(scores_id[m]))) for m, n in fitted.items()},
            "describe": {m: n.describe() for m, n in fitted.items()}}


def _row(score: str, kind: str, id_scores, ood_scores, fitted) -> dict:
    from core.interpret.novelty import separation

    sep = separation(id_scores, ood_scores)
    flagged = None if fitted is None else float(np.mean(fitted.is_novel(ood_scores)))
    return {"score": score, "set": kind, "auroc": sep["auroc"], "fpr_at_95": sep["fpr_at_95"], "flagged": flagged,
            "n": int(len(ood_scores))}


NAMES = {"mahalanobis": "Mahalanobis", "knn": "k-NN", "msp": "max softmax", "energy": "energy"}


def format_table(result: dict, *, saved: str | None = None) -> str:
    """The measurement as text: one line per score and set."""
    lines = [f"in-distribution: fold {result['fold']} ({result['n_id']} clips); out-of-distribution: "
             f"{result['per_kind']} clips per set; tap {result['tap']!r}",
             f"{'score':<28} {'set':<12} {'AUROC':>6} {'FPR@95':>7} {'flagged':>8}"]
    for row in result["rows"]:
        name = NAMES.get(row["score"], row["score"]) + (" (saved)" if row["score"] == saved else "")
        flagged = "" if row["flagged"] is None else f"{row['flagged']:.0%}"
        lines.append(f"{name:<28} {row['set']:<12} {row['auroc']:>6.3f} {row['fpr_at_95']:>7.3f} {flagged:>8}")
    for m, share in result["flagged_id"].items():
        lines.append(f"fold {result['fold']} clips flagged by {NAMES[m]}: {share:.1%}")
    return "\n".join(lines)


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder")
    parser.add_argument("--data", required=True, help="the dataset the model was trained on")
    parser.add_argument("--fold", type=int, default=5, help="the test fold: in-distribution clips")
    parser.add_argument("--held-out", default=None, metavar="DIR",
                        help="as fit-novelty's --held-out: new clips of the same classes, for the thresholds")
    parser.add_argument("--per-kind", type=int, default=20, help="clips per out-of-distribution set")
    parser.add_argument("--tap", default=None,
                        help="tap whose vectors the fitted scores read (default: the saved score's, else the head's input)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, metavar="FILE", help="also write the rows as JSON")


def run(args) -> int:
    import torch

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.interpret.novelty import find_novelty

    loaded = load_checkpoint(args.checkpoint)
    data = open_dataset(args.data)
    held_out = open_dataset(args.held_out) if args.held_out else None
    saved = find_novelty(loaded.folder)
    with torch.no_grad():
        result = measure(loaded, data, fold=args.fold, held_out=held_out, per_kind=args.per_kind, seed=args.seed,
                         tap=args.tap or (saved.tap if saved is not None else None), progress=True)
    print(format_table(result, saved=None if saved is None else saved.method))
    if saved is None:
        print(f"no novelty score saved with {args.checkpoint}: python -m core fit-novelty saves one")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0
