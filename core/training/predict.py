"""``python -m core predict``: a checkpoint's top-k classes for audio files.

    python -m core predict --checkpoint checkpoints/secnn --top-k 3 dog.wav rain.flac

The first ``n_frames`` of each file (5 s for the shipped models) are
classified, and a file longer than that says how much was not heard. Where the
checkpoint has a novelty score (:mod:`core.interpret.novelty`), each file's line says
``novel`` or ``familiar`` and the score, so a script can ``grep -w novel``: a
novel clip is unlike the training data, and its classes may not apply. With
``--windows`` the model's window slides over the whole recording (a hop of
``--hop-s``, 1 s by default; read in blocks, so an hour-long file is fine) and
one line per window gives its start and end in seconds and its top classes
(:mod:`core.audio.windows`). A file that is not usable audio ends the command with
status 2 and one line naming the file and the problem.

    python -m core predict --checkpoint checkpoints/secnn --windows --top-k 2 field-recording.wav
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.audio.features import fit_duration, load_audio
from core.audio.windows import DEFAULT_HOP_S, Window, iter_windows, recording_info, window_starts
from core.errors import InputError

__all__ = ["predict_files", "window_table", "predict_windows", "configure", "run"]

WINDOW_BATCH = 16  # windows of a long recording through the model at once


def predict_files(loaded, paths, *, top_k: int = 5) -> list[dict]:
    """Top-k classes for each audio file.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
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
        For the first file that cannot be read as audio (see :func:`core.audio.features.load_audio`).
    """
    from core.training.evaluate import predict_proba

    if not isinstance(top_k, int) or top_k < 1:
        raise InputError("--top-k", f"need a positive integer, got {top_k!r}")
    cfg = loaded.audio_cfg
    n_samples = loaded.n_samples
    from core.interpret.novelty import audio_vectors, find_novelty

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
        # a file within one hop of the window is heard whole: its last frame reaches that far
        unheard_s = clip.duration_s - (n_samples + cfg.hop_length) / cfg.sr
        results.append({"file": str(path), "novelty": flag, "unheard_s": round(max(0.0, unheard_s), 3),
                        "top": [{"class": loaded.classes[i], "probability": float(proba[i])} for i in order]})
    return results


def window_table(loaded, path, *, top_k: int = 3, hop_s: float | None = None) -> list[dict]:
    """One row per window of a recording: ``start_s``, ``end_s`` and its ``top`` classes (see :mod:`core.audio.windows`)."""
    windows, proba = predict_windows(loaded, path, hop_s=hop_s or DEFAULT_HOP_S)
    rows = []
    for w, p in zip(windows, proba):
        order = np.argsort(-p)[:min(top_k, len(p))]
        rows.append({"start_s": w.start_s, "end_s": w.end_s,
                     "top": [{"class": loaded.classes[i], "probability": float(p[i])} for i in order]})
    return rows


def _run_windows(loaded, args) -> int:
    tables = {str(path): window_table(loaded, path, top_k=args.top_k, hop_s=args.hop_s) for path in args.files}
    if args.json:
        print(json.dumps(tables, indent=2))
        return 0
    for path, rows in tables.items():
        print(f"{path}: {len(rows)} windows of {loaded.audio_cfg.clip_duration_s:.2f} s")
        for row in rows:
            tops = "  ".join(f"{t['class']} {t['probability']:.3f}" for t in row["top"])
            print(f"  {row['start_s']:8.2f} {row['end_s']:8.2f}  {tops}")
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--top-k", type=int, default=5, help="classes shown per file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--windows", action="store_true",
                        help="slide the model's window over the whole recording: one line per window")
    parser.add_argument("--hop-s", type=float, default=None, help="with --windows: hop between windows (default 1 s)")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def run(args: argparse.Namespace) -> int:
    from core.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(args.checkpoint)
    if args.hop_s is not None and not args.windows:
        raise InputError("--hop-s", "goes with --windows")
    if args.windows:
        return _run_windows(loaded, args)
    results = predict_files(loaded, args.files, top_k=args.top_k)
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for result in results:
        flag = result["novelty"]
        word = "" if flag is None else \
            f"  {'novel' if flag['novel'] else 'familiar'} (novelty {flag['score']:.4g}, threshold {flag['threshold']:.4g})"
        unheard = f"  (only the first {loaded.audio_cfg.clip_duration_s:.2f} s heard; {result['unheard_s']:.1f} s " \
                  "left out: --windows covers it all)" if result["unheard_s"] > 0 else ""
        print(result["file"] + word + unheard)
        for rank, row in enumerate(result["top"], start=1):
            print(f"  {rank}. {row['class']:<24} {row['probability']:.3f}")
    if any(r["novelty"] and r["novelty"]["novel"] for r in results):
        print("novel: unlike the training data, so the classes above may not apply")
    elif all(r["novelty"] is None for r in results):
        print(f"no novelty score saved with {args.checkpoint}: python -m core fit-novelty fits one")
    return 0


def predict_windows(loaded, path: str | Path, *, hop_s: float = DEFAULT_HOP_S, progress: bool = False
                    ) -> tuple[list[Window], np.ndarray]:
    """Class probabilities of every window of a recording.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    path : str or Path
    hop_s : float > 0

    Returns
    -------
    windows : list of Window
    proba : np.ndarray [shape=(n_windows, n_classes)]
    """
    from tqdm.auto import tqdm

    from core.training.evaluate import predict_proba

    windows, rows, batch = [], [], []
    duration_s, _ = recording_info(path)
    cfg = loaded.audio_cfg
    total = len(window_starts(duration_s, cfg.clip_duration_s, hop_s))
    for window, y in tqdm(iter_windows(path, cfg, hop_s=hop_s), total=total, desc="windows", unit="window",
                          disable=not progress):
        windows.append(window)
        batch.append(loaded.input(y, cfg.sr))
        if len(batch) == WINDOW_BATCH:
            rows.append(predict_proba(loaded, np.stack(batch)))
            batch = []
    if batch:
        rows.append(predict_proba(loaded, np.stack(batch)))
    return windows, np.concatenate(rows)
