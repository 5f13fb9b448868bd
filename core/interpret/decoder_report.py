"""``python -m core decoder-report``: a checkpoint's saved decoders scored again on a dataset's held-out clips.

The decoders are those :mod:`core.interpret.decoder_fit` saved in
``<checkpoint>/decoders/``; the clips are the dataset's test fold (the one the
decoders were scored on when fitted, unless ``--test-fold`` says otherwise).
The table is :func:`core.interpret.decoder_fit.format_table`: the same
scores (:func:`core.interpret.decoder_fit.score_tap`) as at fitting time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from core.data.datasets import DATA_HELP
from core.errors import InputError
from core.interpret import decoder_fit, nmf

__all__ = ["evaluate_saved", "configure", "run"]


def evaluate_saved(loaded, dataset, *, taps: Sequence[str] | None = None, test_fold: int | None = None,
                   seed: int = 0, cache=None, progress: bool = True) -> dict:
    """Score the saved decoders of a checkpoint on a dataset's held-out clips.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    dataset : core.data.datasets.Dataset
    taps : sequence of str or None
        Default: every tap with saved decoders.
    test_fold : int or None
        Default: the fold the decoders were scored on when fitted.
    seed : int
        Of the bootstrap.
    cache : core.data.cache.ArrayCache or None
    progress : bool

    Returns
    -------
    dict
        As :func:`core.interpret.decoder_fit.fit_decoders` (without training records).
    """
    started = time.perf_counter()
    saved = decoder_fit.saved_taps(loaded.folder)
    if not saved:
        raise InputError(Path(loaded.folder) / nmf.DECODER_FOLDER,
                         "no saved decoders; run python -m core fit-decoders first")
    chosen = list(taps or saved)
    missing = [t for t in chosen if t not in saved]
    if missing:
        raise InputError("--taps", f"no saved decoders for {', '.join(missing)}; saved: {', '.join(saved)}")
    sets = {tap: decoder_fit.load_tap(loaded.folder, tap) for tap in chosen}
    meta = sets[chosen[0]]["nonneg-linear"]["meta"]
    test_fold = int(test_fold or meta.get("test_fold") or decoder_fit.DEFAULT_TEST_FOLD)
    test = dataset.select(test_fold)
    if len(test) < 2:
        raise InputError(dataset.root, f"fold {test_fold} holds {len(test)} clips; the report needs at least 2")
    acts, X_test = decoder_fit.tap_data(loaded, test, chosen, cache=cache, progress=progress)
    cfg = loaded.audio_cfg
    bands = decoder_fit.class_bands(dataset, [r for r in dataset.records if r.fold != test_fold])
    oracles: dict[str, tuple] = {}
    result = {"checkpoint": str(loaded.folder), "data": str(dataset.root), "test_fold": test_fold,
              "n_test": len(test), "classes": list(loaded.classes), "seed": seed, "taps": {}}
    for tap in chosen:
        decoders = {f: sets[tap][f]["decoder"] for f in nmf.FLAVOURS}
        for flavour, decoder in decoders.items():
            if decoder.n_mels != cfg.n_mels:
                raise InputError(f"{tap}-{flavour}", f"{decoder.n_mels} mel bands; the checkpoint has {cfg.n_mels}")
        H = nmf.activation_matrix(acts[tap], n_frames=cfg.n_frames)
        oracle = sets[tap].get(nmf.ORACLE)
        name = sets[tap]["nonneg-linear"]["meta"].get("oracle")
        if oracle is not None and name not in oracles:
            oracles[name] = decoder_fit.oracle_clip_errors(oracle["basis"], X_test)
        scores = decoder_fit.score_tap(decoders, H, X_test, acts["labels"], seed=seed,
                                       oracle_errors=oracles.get(name),
                                       oracle_k=None if oracle is None else oracle["basis"].shape[1])
        scores["label"] = sets[tap]["nonneg-linear"]["meta"].get("label", tap)
        scores["class_bands"] = decoder_fit.class_band_check(
            scores["discriminative"], {f: nmf.bands_to_hz(d.peaks(), cfg) for f, d in decoders.items()}, bands, cfg)
        result["taps"][tap] = scores
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder with decoders/ (from fit-decoders)")
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--taps", nargs="+", default=None, help="tap names (default: every tap with decoders)")
    parser.add_argument("--test-fold", type=int, default=None, help="held-out fold (default: the decoders' own)")
    parser.add_argument("--out", default=None, help="also write the scores as JSON here")
    parser.add_argument("--seed", type=int, default=0, help="of the bootstrap")
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset

    loaded = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    result = evaluate_saved(loaded, dataset, taps=args.taps, test_fold=args.test_fold, seed=args.seed,
                            progress=not args.no_progress)
    print(decoder_fit.format_table(result))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"saved {out}")
    return 0
