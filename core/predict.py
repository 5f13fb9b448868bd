"""``python -m core predict``: a checkpoint's top-k classes for audio files.

    python -m core predict --checkpoint checkpoints/secnn --top-k 3 dog.wav rain.flac

The first ``n_frames`` of each file (5 s for the shipped models) are
classified. Where the checkpoint has a novelty score (:mod:`core.novelty`),
each file's line ends with ``novel`` or ``familiar`` and the score, so a script
can ``grep -w novel``: a novel clip is unlike the training data, and its
classes may not apply. A file that is not usable audio ends the command with status 2 and
one line naming the file and the problem.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.audio import fit_duration, load_audio
from core.errors import InputError

__all__ = ["predict_files", "configure", "run"]


def predict_files(loaded, paths, *, top_k: int = 5) -> list[dict]:
    """Top-k classes for each audio file.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
    paths : iterable of str or Path
    top_k : int > 0
        Capped at the number of classes.

    Returns
    -------
    list of dict
        One per file: ``{"file": str, "top": [{"class": str, "probability": float}, ...],
        "novelty": {"score": float, "threshold": float, "novel": bool} or None}``,
        most probable first; ``novelty`` is ``None`` without a saved novelty score.

    Raises
    ------
    InputError
        For the first file that cannot be read as audio (see :func:`core.audio.load_audio`).
    """
    from core.evaluate import predict_proba

    if not isinstance(top_k, int) or top_k < 1:
        raise InputError("--top-k", f"need a positive integer, got {top_k!r}")
    cfg = loaded.audio_cfg
    n_samples = cfg.hop_length * (cfg.n_frames - 1)
    from core.novelty import audio_vectors, find_novelty

    novelty = find_novelty(loaded.folder)
    results = []
    for path in paths:
        clip = load_audio(path, cfg, resample_to=cfg.sr)
        y = fit_duration(clip.mono[:n_samples], n_samples)
        proba = predict_proba(loaded, loaded.input(y, cfg.sr)[None])[0]
        order = np.argsort(-proba)[:min(top_k, len(proba))]
        flag = None
        if novelty is not None:
            score = float(novelty.score(audio_vectors(loaded, y[None], cfg.sr, tap=novelty.tap)[0])[0])
            flag = {"score": score, "threshold": novelty.threshold, "novel": bool(novelty.is_novel(score))}
        results.append({"file": str(path), "novelty": flag,
                        "top": [{"class": loaded.classes[i], "probability": float(proba[i])} for i in order]})
    return results


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    from core.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    results = predict_files(loaded, args.files, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        flag = result["novelty"]
        if flag is None:
            print(result["file"])
        else:
            word = "novel" if flag["novel"] else "familiar"
            print(f"{result['file']}  {word} (novelty {flag['score']:.4g}, threshold {flag['threshold']:.4g})")
        for rank, row in enumerate(result["top"], start=1):
            print(f"  {rank}. {row['class']:<24} {row['probability']:.3f}")
    if any(r["novelty"] and r["novelty"]["novel"] for r in results):
        print("novel: unlike the training data, so the classes above may not apply")
    elif all(r["novelty"] is None for r in results):
        print(f"no novelty score saved with {args.checkpoint}: python -m core fit-novelty fits one")
    return 0
