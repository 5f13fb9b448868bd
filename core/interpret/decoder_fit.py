"""Decoders for every tap of a checkpoint, fitted on a dataset and saved beside it, and their report.

``python -m core fit-decoders --checkpoint DIR --data DIR [--taps ...]`` fits the
three decoder flavours of :mod:`core.interpret.nmf` for each conv and token
tap, scores them on held-out clips and saves them in ``DIR/decoders/``
(for the shipped checkpoints, ``checkpoints/<name>/decoders/``). ``python -m
core decoder-report`` (:mod:`core.interpret.decoder_report`) scores saved
decoders again on a dataset. Both print the same table (:func:`format_table`).

Clips: the checkpoint's test fold (``meta["test_fold"]``, else 5) is held out
for scores; the fold before it is the validation fold for early stopping; the
decoders learn from the other folds.

One tap's scores (:func:`score_tap`), per flavour: held-out relative error
``||X - X_hat|| / ||X||`` with a 95 % bootstrap interval over clips; its
difference from the training-mean baseline with a paired interval (the
decoder *beats* the baseline when the whole interval is below 0); and, per
channel, the spread of its filter's centre across the three flavours, summed
up over the channels whose free filter is frequency-selective
(:func:`core.interpret.nmf.selective_channels`). Beside them: the training-mean
spectrum, zeros (relative error 1) and classic NMF with ``min(K, n_mels)``
components as an oracle (its activations are fitted to each held-out clip).
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.data.datasets import DATA_HELP, DEFAULT_TEST_FOLD
from core.errors import InputError
from core.interpret import nmf
from core.kinds import MAP_TAP_KINDS

__all__ = [
    "REPORT_FILE", "decoder_taps", "split_records", "tap_data",
    "fit_tap", "fit_oracle", "score_tap", "class_bands", "class_band_check", "fit_decoders",
    "saved_taps", "load_tap", "read_back", "format_table", "configure", "run",
]

REPORT_FILE = "report.json"
ORACLE_FRAME_STEP = 32  # the oracle's basis is fitted on every 32nd training frame (sklearn's NMF on 2 cores)
ORACLE_TEST_STEP = 4  # and scored on every 4th held-out frame (its activations are fitted frame by frame)
DISCRIMINATIVE_TOP = 3


def decoder_taps(model, names: Sequence[str] | None = None) -> list:
    """The model's conv and token taps (or the named ones, which must be of those kinds), input to output."""
    taps = [t for t in model.taps() if t.kind in MAP_TAP_KINDS]
    if names:
        known = {t.name: t for t in taps}
        missing = [n for n in names if n not in known]
        if missing:
            raise InputError("--taps", f"{', '.join(missing)}: not a conv or token tap; choose from {list(known)}")
        taps = [known[n] for n in names]
    return taps


def split_records(loaded, dataset, *, test_fold: int | None = None, val_fold: int | None = None):
    """Training, validation and held-out clips.

    Returns
    -------
    train, val, test : list of ClipRecord
    """
    test_fold = int(test_fold or loaded.meta.get("test_fold") or DEFAULT_TEST_FOLD)
    val_fold = int(val_fold or (test_fold - 2) % 5 + 1)
    if val_fold == test_fold:
        raise InputError("--val-fold", f"must differ from the test fold ({test_fold})")
    test, val = dataset.select(test_fold), dataset.select(val_fold)
    train = [r for r in dataset.records if r.fold not in (test_fold, val_fold)]
    for name, part in (("training", train), (f"validation (fold {val_fold})", val), (f"test (fold {test_fold})", test)):
        if len(part) < 2:
            raise InputError(dataset.root, f"the {name} clips number {len(part)}; decoders need at least 2")
    return train, val, test


def tap_data(loaded, records: Sequence, taps: Sequence[str], *, cache=None, progress: bool = True):
    """Activations of every tap (through the on-disk cache) and the decoders' target for some clips.

    Returns
    -------
    acts : dict
        Tap -> np.ndarray [shape=(N, K, T')] (``reduction="time"``), plus ``"labels"``.
    X : np.ndarray [shape=(N, n_mels, n_frames)]
        :func:`core.interpret.nmf.nonnegative_target` of the model's input on our axes
        (:meth:`core.models.checkpoint.Loaded.spectrogram`: a registered mel-time model's too).
    """
    from core.data.activations import extract
    from core.data.datasets import load_mono

    cfg = loaded.audio_cfg
    acts = extract(loaded, list(records), list(taps), reduce="time", progress=progress, cache=cache)
    X = np.stack([loaded.spectrogram(load_mono(r, cfg), cfg.sr)
                  for r in tqdm(records, desc="spectrograms", unit="clip", disable=not progress)])
    return acts, nmf.nonnegative_target(X)


def fit_tap(H_train: np.ndarray, X_train: np.ndarray, H_val: np.ndarray, X_val: np.ndarray, *,
            flavours: Sequence[str] = tuple(nmf.FLAVOURS), seed: int = 0, **training) -> dict:
    """Every flavour fitted to one tap, early-stopped on the validation clips.

    Parameters
    ----------
    H_train, H_val : np.ndarray [shape=(N, K, n_frames)]
        From :func:`core.interpret.nmf.activation_matrix`.
    X_train, X_val : np.ndarray [shape=(N, n_mels, n_frames)]
    flavours : sequence of str
    seed : int
    **training
        Passed to :func:`core.interpret.nmf.train_decoder`.

    Returns
    -------
    dict
        Flavour -> ``(Decoder, training record)``.
    """
    train, val = nmf.Moments.of(H_train, X_train), nmf.Moments.of(H_val, X_val)
    out = {}
    for flavour in flavours:
        decoder = nmf.build_decoder(flavour, n_mels=X_train.shape[1], n_components=H_train.shape[1], seed=seed)
        record = nmf.train_decoder(decoder, train, val, **training)
        record["history"] = [[s, round(a, 5), round(b, 5)] for s, a, b in record["history"]]
        out[flavour] = (decoder, record)
    return out


def fit_oracle(X_train: np.ndarray, *, n_components: int, seed: int = 0) -> np.ndarray:
    """Classic NMF's basis ``(n_mels, K)``, fitted on every :data:`ORACLE_FRAME_STEP`-th training frame."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's ConvergenceWarning at max_iter
        return nmf.fit_spectrogram_nmf(X_train[:, :, ::ORACLE_FRAME_STEP], n_components=n_components, seed=seed,
                                       max_iter=100)


def oracle_clip_errors(basis: np.ndarray, X_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip errors of classic NMF with activations fitted to every :data:`ORACLE_TEST_STEP`-th frame of each clip."""
    X_test = X_test[:, :, ::ORACLE_TEST_STEP]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        acts = nmf.spectrogram_nmf_activations(X_test, basis, max_iter=50)
    return nmf.clip_errors(X_test, np.einsum("mk,nkt->nmt", basis, acts))


def _interval(triple) -> dict:
    value, low, high = triple
    return {"value": round(value, 4), "low": round(low, 4), "high": round(high, 4)}


def score_tap(decoders: dict, H_test: np.ndarray, X_test: np.ndarray, labels_test: np.ndarray, *,
              oracle_errors: tuple[np.ndarray, np.ndarray] | None = None, oracle_k: int | None = None,
              seed: int = 0) -> dict:
    """Held-out scores of one tap's decoders beside the baselines and the oracle.

    Parameters
    ----------
    decoders : dict
        Flavour -> Decoder (all fitted on the same training clips: their
        ``train_mean`` is the baseline).
    H_test : np.ndarray [shape=(N, K, n_frames)]
    X_test : np.ndarray [shape=(N, n_mels, n_frames)]
    labels_test : np.ndarray [shape=(N,)]
    oracle_errors : (errors, norms) or None
        From :func:`oracle_clip_errors`.
    oracle_k : int or None
    seed : int

    Returns
    -------
    dict
        ``"flavours"``: flavour -> ``{"relative_error", "vs_mean"}`` (each
        ``{"value", "low", "high"}``) and ``"beats_mean"``; ``"mean"``,
        ``"zeros"``, ``"oracle"`` (with ``"k"``); ``"spread"``: per channel
        (bands), ``"selective"``: per channel (bool), ``"spread_median"`` over
        the selective channels; ``"discriminative"``: class -> ``[(channel, t, q)]``;
        ``"n_test"``.
    """
    first = next(iter(decoders.values()))
    mean_errors, norms = nmf.clip_errors(X_test, first.train_mean.numpy())
    out = {"n_test": int(len(X_test)), "flavours": {},
           "mean": _interval(nmf.error_interval(mean_errors, norms, seed=seed)),
           "zeros": _interval(nmf.error_interval(*nmf.clip_errors(X_test, 0.0), seed=seed))}
    for flavour, decoder in decoders.items():
        errors, _ = nmf.decoder_clip_errors(decoder, H_test, X_test)
        difference = nmf.difference_interval(errors, mean_errors, norms, seed=seed)
        out["flavours"][flavour] = {"relative_error": _interval(nmf.error_interval(errors, norms, seed=seed)),
                                    "vs_mean": _interval(difference), "beats_mean": bool(difference[2] < 0)}
    if oracle_errors is not None:
        out["oracle"] = {**_interval(nmf.error_interval(*oracle_errors, seed=seed)), "k": int(oracle_k or 0)}
    if "nonneg-linear" in decoders and len(decoders) > 1:
        with torch.no_grad():
            selective = nmf.selective_channels(decoders["nonneg-linear"].basis().numpy())
        spread = nmf.centre_spread({f: d.peaks() for f, d in decoders.items()})
        out["spread"] = [round(float(s), 2) for s in spread]
        out["selective"] = [bool(s) for s in selective]
        out["spread_median"] = float(np.median(spread[selective])) if selective.any() else None
        out["n_selective"] = int(selective.sum())
    picks = nmf.discriminative_channels(nmf.clip_activations(H_test), labels_test, top=DISCRIMINATIVE_TOP)
    out["discriminative"] = {str(c): v for c, v in picks.items()}
    return out


def class_bands(dataset, records: Sequence) -> dict[int, tuple[float, float]]:
    """Per class, the median lowest and highest frequency (Hz) of its clips' event boxes (classes with boxes only)."""
    rows: dict[int, list[tuple[float, float]]] = {}
    for r in records:
        for box in dataset.boxes(r.clip_id):
            rows.setdefault(int(r.label), []).append((box.f0_hz, box.f1_hz))
    return {c: (float(np.median([a for a, _ in v])), float(np.median([b for _, b in v]))) for c, v in rows.items()}


def class_band_check(discriminative: dict, centres_hz: dict[str, np.ndarray], bands: dict[int, tuple[float, float]],
                     cfg) -> dict:
    """How often a class's discriminative channels' filters sit inside that class's band, against chance.

    For each flavour: among the (class, channel) picks of classes with a known
    band, the share whose filter centre (free filters: peak) in Hz lies in
    the class's band; chance is the mean share of the mel bands that the
    class bands cover (a centre placed uniformly in mel).

    Returns
    -------
    dict
        ``flavour -> {"hits": int, "picks": int, "rate": float or None}``, and ``"chance"``.
    """
    from core.audio.features import mel_frequencies_hz

    band_hz = mel_frequencies_hz(cfg)
    covered = [np.mean((band_hz >= lo) & (band_hz <= hi)) for lo, hi in bands.values()]
    out = {"chance": round(float(np.mean(covered)), 3) if covered else None}
    for flavour, centres in centres_hz.items():
        hits = picks = 0
        for c, chosen in discriminative.items():
            if int(c) not in bands:
                continue
            lo, hi = bands[int(c)]
            for k, *_ in chosen:
                picks += 1
                hits += int(lo <= centres[int(k)] <= hi)
        out[flavour] = {"hits": hits, "picks": picks, "rate": round(hits / picks, 3) if picks else None}
    return out


def _centres_hz(decoders: dict, cfg) -> dict[str, np.ndarray]:
    return {f: nmf.bands_to_hz(d.peaks(), cfg) for f, d in decoders.items()}


def fit_decoders(loaded, dataset, *, taps: Sequence[str] | None = None, test_fold: int | None = None,
                 val_fold: int | None = None, out: str | Path | None = None, seed: int = 0, cache=None,
                 progress: bool = True, report=None, **training) -> dict:
    """Fit, score and save the decoders of every tap.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    dataset : core.data.datasets.Dataset
    taps : sequence of str or None
        Default: every conv and token tap.
    test_fold, val_fold : int or None
        See :func:`split_records`.
    out : str, Path or None
        Folder that gets ``decoders/`` (default: the checkpoint's folder).
    seed : int
    cache : core.data.cache.ArrayCache or None
    progress : bool
        tqdm bars.
    report : callable or None
        ``report(fraction, text)`` after each step (the app's progress bar).
    **training
        Passed to :func:`core.interpret.nmf.train_decoder`.

    Returns
    -------
    dict
        ``{"taps": {tap: score_tap(...) + {"label", "training", "class_bands"}}, ...}``,
        also written to ``decoders/report.json``.
    """
    started = time.perf_counter()
    cfg = loaded.audio_cfg
    chosen = decoder_taps(loaded.model, taps)
    if not chosen:
        raise InputError(loaded.folder, "the model has no conv or token tap a decoder can read")
    loaded.features(np.zeros(loaded.n_samples, np.float32))  # a model without a mel spectrogram: refused before any clip
    train, val, test = split_records(loaded, dataset, test_fold=test_fold, val_fold=val_fold)
    names = [t.name for t in chosen]
    data = {part: tap_data(loaded, recs, names, cache=cache, progress=progress)
            for part, recs in (("train", train), ("val", val), ("test", test))}
    labels_test = data["test"][0]["labels"]
    bands = class_bands(dataset, train)
    out = Path(out or loaded.folder)
    oracles: dict[int, tuple] = {}
    result = {"checkpoint": str(loaded.folder), "data": str(dataset.root), "test_fold": test[0].fold,
              "val_fold": val[0].fold, "n_train": len(train), "n_val": len(val), "n_test": len(test),
              "classes": list(loaded.classes), "seed": seed, "taps": {}}
    steps = len(chosen)
    bar = tqdm(chosen, desc="fit-decoders", unit="tap", disable=not progress)
    for i, tap in enumerate(bar):
        bar.set_postfix(tap=tap.name)
        tap_started = time.perf_counter()
        H = {part: nmf.activation_matrix(acts[tap.name], n_frames=cfg.n_frames) for part, (acts, _) in data.items()}
        fitted = fit_tap(H["train"], data["train"][1], H["val"], data["val"][1], seed=seed, **training)
        K = H["train"].shape[1]
        k_oracle = min(K, cfg.n_mels)
        if k_oracle not in oracles:
            basis = fit_oracle(data["train"][1], n_components=k_oracle, seed=seed)
            oracles[k_oracle] = (basis, oracle_clip_errors(basis, data["test"][1]))
            nmf.save_nmf_basis(basis, out, name=f"{nmf.ORACLE}-k{k_oracle}",
                               meta={"n_train": len(train), "frame_step": ORACLE_FRAME_STEP, "seed": seed})
        decoders = {f: d for f, (d, _) in fitted.items()}
        scores = score_tap(decoders, H["test"], data["test"][1], labels_test, oracle_errors=oracles[k_oracle][1],
                           oracle_k=k_oracle, seed=seed)
        scores["label"] = tap.label
        scores["class_bands"] = class_band_check(scores["discriminative"], _centres_hz(decoders, cfg), bands, cfg)
        scores["seconds"] = round(time.perf_counter() - tap_started, 1)
        for flavour, (decoder, record) in fitted.items():
            meta = {"tap": tap.name, "label": tap.label, "kind": tap.kind, "oracle": f"{nmf.ORACLE}-k{k_oracle}",
                    "training": record, "scores": scores["flavours"][flavour], "mean": scores["mean"],
                    "n_train": len(train), "n_val": len(val), "n_test": len(test),
                    "test_fold": result["test_fold"], "val_fold": result["val_fold"], "seed": seed,
                    "classes": list(loaded.classes), "data": str(dataset.root)}
            nmf.save_decoder(decoder, out, name=f"{tap.name}-{flavour}", meta=meta)
        result["taps"][tap.name] = {**scores, "training": {f: {k: r[k] for k in ("steps", "best_step", "stopped_early")}
                                                           for f, (_, r) in fitted.items()}}
        if report is not None:
            report((i + 1) / steps, f"{tap.label} done")
    result["seconds"] = round(time.perf_counter() - started, 1)
    path = out / nmf.DECODER_FOLDER / REPORT_FILE
    earlier = _read_report(out)  # taps fitted before (same clips) keep their rows
    if earlier and all(earlier.get(k) == result[k] for k in ("data", "test_fold", "val_fold", "n_train")):
        result["taps"] = {**{t: r for t, r in earlier.get("taps", {}).items() if t not in result["taps"]},
                          **result["taps"]}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)  # never a half-written report
    return result


def _read_report(folder: str | Path) -> dict:
    try:
        return json.loads((Path(folder) / nmf.DECODER_FOLDER / REPORT_FILE).read_text())
    except (OSError, ValueError):
        return {}


def saved_taps(folder: str | Path) -> list[str]:
    """The taps with every flavour saved in ``folder/decoders/``, in the order of ``report.json`` when there is one."""
    base = Path(folder) / nmf.DECODER_FOLDER
    if not base.is_dir():
        return []
    found = {p.name[: -len(f"-{f}.json")] for f in nmf.FLAVOURS for p in base.glob(f"*-{f}.json")}
    complete = [t for t in found if all((base / f"{t}-{f}.safetensors").is_file() for f in nmf.FLAVOURS)]
    order = list(_read_report(folder).get("taps", {}))
    return sorted(complete, key=lambda t: (order.index(t) if t in order else len(order), t))


def load_tap(folder: str | Path, tap: str) -> dict:
    """One tap's saved decoders and the oracle.

    Returns
    -------
    dict
        Flavour -> ``{"decoder": Decoder or None, "basis": np.ndarray [shape=(n_mels, K)], "meta": dict}``
        for the three flavours and :data:`core.interpret.nmf.ORACLE`; and
        ``"report"``: the tap's row of ``report.json`` (:func:`score_tap`), or None.
    """
    out = {}
    for flavour in nmf.FLAVOURS:
        decoder, meta = nmf.load_decoder(folder, name=f"{tap}-{flavour}")
        with torch.no_grad():
            out[flavour] = {"decoder": decoder, "basis": decoder.basis().numpy().copy(), "meta": meta}
    name = out["nonneg-linear"]["meta"].get("oracle")
    if name:
        basis, meta = nmf.load_nmf_basis(folder, name=name)
        out[nmf.ORACLE] = {"decoder": None, "basis": basis, "meta": meta}
    out["report"] = _read_report(folder).get("taps", {}).get(tap)
    return out


def read_back(sets: dict, tap: str, H: np.ndarray, X: np.ndarray) -> dict:
    """One clip read back through each decoder of a set (:func:`load_tap`).

    Parameters
    ----------
    sets : dict
        As :func:`load_tap` gives it.
    H : np.ndarray [shape=(1, K, n_frames)]
        The tap's activity over time (:func:`core.interpret.nmf.activation_matrix`).
    X : np.ndarray [shape=(1, n_mels, n_frames)]
        The clip on the decoders' [0, 1] scale (:func:`core.interpret.nmf.nonnegative_target`).

    Returns
    -------
    dict
        ``"recon"``: flavour -> [shape=(n_mels, n_frames)]; ``"activity"``: flavour -> [shape=(K, n_frames)],
        each filter's (scaled) activation; ``"errors"``: flavour -> relative error ||X - X_hat|| / ||X||.
        The oracle's activations are fitted to this clip.

    Raises
    ------
    InputError
        When a decoder was fitted for another number of channels or bands.
    """
    out = {"recon": {}, "activity": {}, "errors": {}}
    for flavour, item in sets.items():
        if flavour == "report":
            continue
        if item["decoder"] is not None:
            decoder = item["decoder"]
            if decoder.n_components != H.shape[1] or decoder.n_mels != X.shape[1]:
                raise InputError(f"{tap}-{flavour}", f"was fitted for {decoder.n_components} channels and "
                                                     f"{decoder.n_mels} bands, not {H.shape[1]} and {X.shape[1]}")
            with torch.no_grad():
                X_hat = decoder(torch.from_numpy(H))[0].numpy()
                activity = (torch.from_numpy(H[0]) / decoder.h_scale[:, None]).numpy()
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                activity = nmf.spectrogram_nmf_activations(X, item["basis"])[0]
            X_hat = item["basis"] @ activity
        out["recon"][flavour] = X_hat.astype(np.float32)
        out["activity"][flavour] = activity.astype(np.float32)
        out["errors"][flavour] = float(np.linalg.norm(X[0] - X_hat) / max(np.linalg.norm(X[0]), 1e-12))
    return out


# -- the table ---------------------------------------------------------------------------


def _ci(row: dict) -> str:
    return f"{row['value']:.3f} [{row['low']:.3f}, {row['high']:.3f}]"


def format_table(result: dict) -> str:
    """One table: tap x flavour, held-out error with its interval, the baselines, the oracle, centre agreement."""
    head = (f"{'tap':<10} {'flavour':<15} {'held-out rel. error [95% CI]':<29} {'minus mean [95% CI]':<27} "
            f"{'beats mean':<10} {'mean spectrum':<23} {'zeros':<6} {'oracle NMF (K)':<28} {'centre spread':<14}")
    lines = [f"held-out clips: {result.get('n_test', '?')} (fold {result.get('test_fold', '?')}); relative error "
             "||X - X_hat|| / ||X|| (lower is better); centre spread: median over frequency-selective channels of "
             "the max-min of the three flavours' centres, in mel bands", head, "-" * len(head)]
    for tap, row in result["taps"].items():
        oracle = row.get("oracle")
        oracle_text = f"{_ci(oracle)} ({oracle['k']})" if oracle else "-"
        spread = row.get("spread_median")
        spread_text = "-" if spread is None else f"{spread:.1f} ({row.get('n_selective', 0)}/{len(row['spread'])})"
        for j, (flavour, f) in enumerate(row["flavours"].items()):
            first = j == 0
            lines.append(
                f"{tap if first else '':<10} {flavour:<15} {_ci(f['relative_error']):<29} {_ci(f['vs_mean']):<27} "
                f"{'yes' if f['beats_mean'] else 'NO':<10} {_ci(row['mean']) if first else '':<23} "
                f"{row['zeros']['value'] if first else '':<6} {oracle_text if first else '':<28} "
                f"{spread_text if first else '':<14}")
    checks = [(tap, row["class_bands"]) for tap, row in result["taps"].items() if row.get("class_bands", {}).get("chance")]
    if checks:
        lines += ["", "discriminative channels (Welch t, BH-corrected q < 0.05, top 3 per class): share whose filter "
                      "centre lies in the class's event band, against chance"]
        for tap, check in checks:
            parts = [f"{f} {c['hits']}/{c['picks']}" for f, c in check.items() if f != "chance"]
            lines.append(f"{tap:<10} chance {check['chance']:.2f}   " + "   ".join(parts))
    return "\n".join(lines)


# -- the command -------------------------------------------------------------------------


def configure(parser) -> None:
    parser.add_argument("--checkpoint", required=True, help="checkpoint folder; decoders go into its decoders/")
    parser.add_argument("--data", required=True, help=DATA_HELP)
    parser.add_argument("--taps", nargs="+", default=None, help="tap names (default: every conv and token tap)")
    parser.add_argument("--test-fold", type=int, default=None, help="held-out fold (default: the checkpoint's, else 5)")
    parser.add_argument("--val-fold", type=int, default=None, help="early-stopping fold (default: the one before)")
    parser.add_argument("--max-steps", type=int, default=800, help="training steps per decoder, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--no-progress", action="store_true")


def run(args) -> int:
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset

    if args.max_steps < 1:
        raise InputError("--max-steps", f"must be at least 1, got {args.max_steps}")
    if args.threads is not None:
        if args.threads < 1:
            raise InputError("--threads", f"need >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    loaded = load_checkpoint(args.checkpoint)
    dataset = open_dataset(args.data)
    result = fit_decoders(loaded, dataset, taps=args.taps, test_fold=args.test_fold, val_fold=args.val_fold,
                          seed=args.seed, progress=not args.no_progress, max_steps=args.max_steps,
                          warmup=min(150, args.max_steps // 3))
    print(format_table(result))
    folder = Path(loaded.folder) / nmf.DECODER_FOLDER
    size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    print(f"saved {folder} ({size / 1e6:.2f} MB) in {result['seconds']:.0f} s")
    return 0
