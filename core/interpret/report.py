"""``python -m core explain-report``: how faithful each explanation method is, beside its baselines.

For every clip of one fold (or a class-stratified slice of it, planted label
flips left out), each method (:mod:`core.interpret.registry`) makes a heatmap
for the class the model **predicts**. Per method, each as a mean over clips
with a bootstrap 95 % interval:

* **pointing game**: the map's peak in the clip's event box (clips with a box only);
* **distractor hits**: the peak in a distractor box (a sound of no class)
  rather than the event (clips with a distractor only; datasets without
  distractors show "—");
* **deletion AUC** (lower is better) and **insertion AUC** (higher is better)
  under each of two fills, neither a method's own baseline
  (:data:`core.interpret.faithfulness.FAIR_FILLS`: the clip blurred as RISE
  does, and the training clips' mean spectrum); ties in the map's order broken
  at random (seeded);
* **paired comparisons**: per-clip differences against the energy map and the
  smooth random map, with bootstrap 95 % intervals; "beats" only where the
  interval excludes zero (:mod:`core.interpret.paired`);
* **sanity**: the randomisation check (:mod:`core.interpret.sanity`) on at
  least 10 class-stratified clips: mean ``|rho|`` with its interval, the signed
  mean, vanished maps counted apart, and "passes", "fails" or "inconclusive";
* **L-MAC's metrics** (:mod:`core.interpret.lmac_metrics`): AI, AD, AG, FF and
  Fid-In of each map's top cells as sound (:mod:`core.interpret.listen`),
  beside L-MAC's published ESC-50 figures for scale;
* **Integrated Gradients' completeness gap** per clip.

And the baselines: the energy map (the input itself, a method that ignores
the model), a smooth random map (mean over ``--draws`` draws) and the
pointing game's chance level (the share of cells in the boxes).

Examples
--------
``python -m core explain-report --checkpoint checkpoints/secnn --data .cache/demo-v2-seed0 --fold 5 --limit 20``
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from core.data.cache import checkpoint_fingerprint
from core.models.checkpoint import load_checkpoint
from core.data.datasets import DATA_HELP, DEFAULT_TEST_FOLD, checkpoint_test_fold, load_mono, open_dataset, read_label_truth
from core.errors import InputError
from core.interpret.baselines import bootstrap_interval, pointing_chance, random_curves, smooth_random_map
from core.interpret.faithfulness import (
    FAIR_FILLS,
    deletion_curve,
    distractor_hit,
    insertion_curve,
    mean_spectrum,
    model_predictor,
    pointing_game_hit,
)
from core.interpret.integrated_gradients import DEFAULT_STEPS, GAP_WARN, completeness_gap, integrated_gradients
from core.interpret.lmac_metrics import LMAC_ESC50, METRICS, lmac_scores
from core.interpret.paired import compare
from core.interpret.registry import ENERGY, report_runs
from core.interpret.sanity import MIN_CLIPS, cascading_randomisation, verdict
from core.paths import REPO_ROOT

__all__ = ["configure", "run", "class_stratified", "report_slice", "faithfulness_table", "format_table",
           "SMOOTH_RANDOM", "CHANCE"]

SMOOTH_RANDOM = "smooth random map"
CHANCE = "chance (box area)"
IG = "integrated gradients"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    parser.add_argument("--data", required=True, type=Path, help=DATA_HELP)
    parser.add_argument("--fold", type=int, default=None,
                        help=f"fold to score (default: the checkpoint's test fold, else {DEFAULT_TEST_FOLD})")
    parser.add_argument("--limit", type=int, default=None,
                        help="score at most N clips, class-stratified (the same number per class, evenly through it)")
    parser.add_argument("--steps", type=int, default=20, help="deletion/insertion steps (default 20)")
    parser.add_argument("--draws", type=int, default=4, help="smooth random maps per clip (default 4)")
    parser.add_argument("--sanity-clips", type=int, default=MIN_CLIPS,
                        help=f"class-stratified clips the randomisation sanity check runs on (default {MIN_CLIPS}; "
                             f"fewer give no verdict; 0 skips it)")
    parser.add_argument("--ig-steps", type=int, default=DEFAULT_STEPS,
                        help=f"Integrated Gradients steps (default {DEFAULT_STEPS})")
    parser.add_argument("--occlusion-window", type=int, default=16, help="occlusion block size (default 16)")
    parser.add_argument("--no-reference", action="store_true",
                        help="leave out Integrated Gradients and occlusion (the slowest methods)")
    parser.add_argument("--top-percent", type=float, default=20.0,
                        help="share of a map's cells kept as sound for L-MAC's metrics (default 20)")
    parser.add_argument("--no-listen", action="store_true", help="skip L-MAC's metrics (the maps as sound)")
    parser.add_argument("--mean-clips", type=int, default=100,
                        help="class-stratified training clips whose mean spectrum is the second fill (default 100)")
    parser.add_argument("--keep-flips", action="store_true",
                        help="keep the clips whose label was flipped on purpose (meta/label_truth.csv)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random baselines and tie-breaking")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default results/explain-report-<checkpoint>.json); each clip's scores are kept "
                             "beside it as they come (<out>.clips.jsonl), so that a cut run started again with the "
                             "same settings resumes")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def class_stratified(records: Sequence, limit: int | None) -> list:
    """At most ``limit`` records, as evenly over the classes as they allow, evenly through each class.

    Parameters
    ----------
    records : sequence of ClipRecord
    limit : int or None
        None keeps every record.

    Returns
    -------
    list of ClipRecord, in the input's order

    Examples
    --------
    >>> from types import SimpleNamespace as R
    >>> recs = [R(clip_id=str(i), label=0 if i < 8 else 1) for i in range(10)]
    >>> [r.clip_id for r in class_stratified(recs, 4)]
    ['0', '7', '8', '9']
    """
    records = list(records)
    if limit is None or limit >= len(records):
        return records
    if limit < 1:
        raise InputError("--limit", f"need >= 1, got {limit}")
    by_class: dict[int, list] = {}
    for r in records:
        by_class.setdefault(int(r.label), []).append(r)
    quota = {c: 0 for c in by_class}
    left = limit
    while left > 0:  # one more per class in turn, skipping classes that have run out
        open_classes = [c for c in sorted(by_class) if quota[c] < len(by_class[c])]
        for c in open_classes[:left]:
            quota[c] += 1
        left -= len(open_classes[:left])
    chosen = set()
    for c, members in by_class.items():
        if quota[c]:
            idx = np.unique(np.linspace(0, len(members) - 1, quota[c]).round().astype(int))
            chosen.update(id(members[i]) for i in idx)
    return [r for r in records if id(r) in chosen]


def report_slice(records: Sequence, limit: int | None, *, flipped: set[str] = frozenset()) -> list:
    """The clips a report scores: planted label flips left out, then :func:`class_stratified`.

    Parameters
    ----------
    records : sequence of ClipRecord
    limit : int or None
    flipped : set of str
        File names of clips whose label was flipped on purpose (``meta/label_truth.csv``).
    """
    kept = [r for r in records if Path(r.clip_id).name not in flipped]
    return class_stratified(kept, limit)


def _interval(values) -> list[float] | None:
    values = [v for v in values if not np.isnan(v)]
    return None if len(values) == 0 else [round(v, 4) for v in bootstrap_interval(values)]


def _new_row(fills: dict) -> dict:
    return {"hits": [], "distractor": [], "seconds": [], "deletion": {f: [] for f in fills},
            "insertion": {f: [] for f in fills}, "lmac": []}


def faithfulness_table(
    loaded,
    records: Sequence,
    features: np.ndarray,
    *,
    audio: Sequence[np.ndarray] | None = None,
    boxes: Callable[[str], list] | None = None,
    distractor_boxes: Callable[[str], list] | None = None,
    fills: dict[str, str | float | np.ndarray] | None = None,
    n_steps: int = 20,
    draws: int = 4,
    sanity_clips: int = MIN_CLIPS,
    ig_steps: int = DEFAULT_STEPS,
    occlusion_window: int = 16,
    reference: bool = True,
    top_percent: float = 20.0,
    seed: int = 0,
    progress: bool = True,
    journal: "Journal | None" = None,
) -> dict:
    """Score every method and baseline on the given clips, for the class the model predicts.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    records : sequence of ClipRecord
    features : np.ndarray [shape=(N, n_mels, n_frames)]
        The model's input for each record.
    audio : sequence of np.ndarray [shape=(n_samples,)] or None
        Each record's mono audio at the model's rate, for L-MAC's metrics
        (:func:`core.interpret.listen.listen`); None skips them.
    boxes, distractor_boxes : callable or None
        ``clip_id -> list of Box``: the event boxes and the distractor boxes;
        clips without count for neither the pointing game nor distractor hits.
    fills : dict or None
        Fill name -> fill (:func:`core.interpret.faithfulness.fill_values`);
        None: ``{"blur": "blur"}`` only (a caller with training clips adds the
        training-mean spectrum, as ``run`` does).
    n_steps : int
        Of the deletion and insertion curves.
    draws : int
        Smooth random maps per clip.
    sanity_clips : int
        The sanity check runs on this many clips, class-stratified; 0 skips it.
    ig_steps, occlusion_window, reference
        Integrated Gradients' steps, occlusion's block size, and whether to run
        those costly methods (:func:`core.interpret.registry.report_runs`).
    top_percent : float
        Share of a map's cells kept as sound for L-MAC's metrics.
    seed : int
    progress : bool
    journal : Journal or None
        Clips already in it are read back, not scored again; each clip scored
        is added to it as soon as it is done.

    Returns
    -------
    dict
        ``"rows"``: row name -> ``{"baseline", "pointing_game", "distractor_hits",
        "deletion_auc": {fill: [mean, low, high]}, "insertion_auc": {fill: ...},
        "sanity": {...} or None, "lmac": {metric: [mean, low, high]} or None,
        "n_clips", "n_boxed", "n_distracted", "seconds_per_clip", "per_clip"}``;
        ``"paired"``: method -> fill -> ``{"deletion_vs_energy", "deletion_vs_random",
        "insertion_vs_energy", "insertion_vs_random"}`` each ``{"word", "difference", "n_clips"}``;
        ``"completeness"``: IG's per-clip gaps, median, share over
        :data:`~core.interpret.integrated_gradients.GAP_WARN` (None without IG);
        ``"fills"``, ``"targets"`` (the predicted class per clip), ``"true_labels"``.
    """
    if len(records) != len(features) or len(records) == 0:
        raise InputError("records", f"{len(records)} records for {len(features)} feature arrays")
    if audio is not None and len(audio) != len(records):
        raise InputError("audio", f"{len(audio)} clips of audio for {len(records)} records")
    if draws < 1:
        raise InputError("--draws", f"must be at least 1, got {draws}")
    fills = dict(fills) if fills else {"blur": "blur"}
    model = loaded.model.eval()
    runs = report_runs(loaded, reference=reference, params={"integrated-gradients": {"n_steps": ig_steps},
                                                            "occlusion": {"window": occlusion_window}})
    methods = {run.name: run for run in runs}
    explainers = {run.name: run.bind(loaded) for run in runs}
    predict = model_predictor(model, batch_size=n_steps + 1)
    names = list(methods) + [SMOOTH_RANDOM, CHANCE]
    per = {name: _new_row(fills) for name in names}
    sanity_ids = {r.clip_id for r in class_stratified(records, sanity_clips)} if sanity_clips > 0 else set()
    sanity = {name: {"top": [], "all": []} for name in methods}
    gaps, targets = [], []
    p_clip = predict(np.asarray(features, dtype=np.float32))
    done = journal.read() if journal is not None else {}
    for i, (record, x) in enumerate(tqdm(list(zip(records, features)), desc="explain-report", unit="clip",
                                         disable=not progress)):
        if record.clip_id in done:
            scored = done[record.clip_id]
        else:
            clip = _Clip(x=x, target=int(np.argmax(p_clip[i])), seed=seed + 1009 * i, cfg=loaded.audio_cfg,
                         events=list(boxes(record.clip_id)) if boxes else [],
                         distractors=list(distractor_boxes(record.clip_id)) if distractor_boxes else [])
            scored = _score_clip(clip, loaded, explainers, methods, predict, fills=fills, n_steps=n_steps,
                                 draws=draws, check=record.clip_id in sanity_ids, ig_steps=ig_steps,
                                 reference=reference, audio=None if audio is None else audio[i],
                                 top_percent=top_percent)
            if journal is not None:
                journal.add(record.clip_id, scored)
        _merge(per, sanity, gaps, targets, scored)
    return {"rows": {name: _summary(name, per[name], sanity.get(name), methods, fills, draws) for name in names},
            "paired": _paired(per, methods, fills), "completeness": _completeness(gaps, ig_steps),
            "fills": list(fills), "targets": targets, "true_labels": [int(r.label) for r in records],
            "top_percent": top_percent if audio is not None else None}


@dataclass
class _Clip:
    """One clip as the table scores it: the model's input, the class explained, its seed and its boxes."""

    x: np.ndarray  # (n_mels, n_frames)
    target: int
    seed: int
    cfg: object
    events: list
    distractors: list

    @property
    def tensor(self) -> torch.Tensor:
        return torch.as_tensor(self.x, dtype=torch.float32)[None, None]


def _score_clip(clip: _Clip, loaded, explainers: dict, methods: dict, predict, *, fills: dict, n_steps: int,
                draws: int, check: bool, ig_steps: int, reference: bool, audio: np.ndarray | None,
                top_percent: float) -> dict:
    """Everything the table takes from one clip, as plain lists (what a journal line holds)."""
    model = loaded.model
    per = {name: _new_row(fills) for name in list(methods) + [SMOOTH_RANDOM, CHANCE]}
    sanity = {name: {"top": [], "all": []} for name in methods} if check else None
    heats = _score_maps(per, clip, explainers, model, predict, fills=fills, n_steps=n_steps, sanity=sanity)
    heats[SMOOTH_RANDOM] = _score_baselines(per, clip, predict, fills=fills, n_steps=n_steps, draws=draws)
    gap = None
    if reference and IG in methods:
        attributions = integrated_gradients(model, clip.tensor, target=clip.target, n_steps=ig_steps)
        gap = float(completeness_gap(model, clip.tensor, attributions, target=clip.target))
    if audio is not None:
        from core.interpret.listen import listen

        for name, heat in heats.items():
            heard = listen(loaded, audio, heat, top_percent=top_percent)
            per[name]["lmac"].append([np.asarray(p, dtype=np.float64).tolist() for p in (heard.p, heard.p_in,
                                                                                           heard.p_out)])
    return {"target": clip.target, "gap": gap, "per": per, "sanity": sanity}


def _merge(per: dict, sanity: dict, gaps: list, targets: list, scored: dict) -> None:
    """Add one clip's scores (fresh from :func:`_score_clip`, or read back from a journal) to the running lists."""
    targets.append(int(scored["target"]))
    if scored["gap"] is not None:
        gaps.append(scored["gap"])
    for name, row in scored["per"].items():
        for field, values in row.items():
            if isinstance(values, dict):
                for fill, v in values.items():
                    per[name][field][fill].extend(v)
            elif field == "lmac":
                per[name]["lmac"].extend(tuple(np.asarray(p) for p in parts) for parts in values)
            else:
                per[name][field].extend(values)
    for name, checks in (scored["sanity"] or {}).items():
        sanity[name]["top"].extend(checks["top"])
        sanity[name]["all"].extend(checks["all"])


class Journal:
    """Each scored clip on its own line of a JSON-lines file, so that a cut run resumes where it stopped.

    The first line is the run's ``key`` (checkpoint, data and every setting);
    a file with another key is set aside (renamed ``*.old``) and started anew.
    A line cut short by a killed process is ignored, and that clip scored again.
    """

    def __init__(self, path: str | Path, key: dict):
        self.path = Path(path)
        self.key = json.loads(json.dumps(key, sort_keys=True, default=str))

    def read(self) -> dict:
        """clip id -> its scores, from a journal of this run; {} for none (or another run's, set aside)."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text().splitlines()
        try:
            same = bool(lines) and json.loads(lines[0]) == {"key": self.key}
        except ValueError:
            same = False
        if not same:
            self.path.replace(self.path.with_name(self.path.name + ".old"))
            return {}
        done = {}
        for line in lines[1:]:
            try:
                entry = json.loads(line)
                done[entry["clip_id"]] = entry["scores"]
            except (ValueError, KeyError, TypeError):  # the last line of a killed run
                continue
        return done

    def add(self, clip_id: str, scores: dict) -> None:
        """Append one clip's scores (and the key first, to a new file); on disk before it returns."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists() or self.path.stat().st_size == 0
        if not new:
            with open(self.path, "rb") as f:
                f.seek(-1, os.SEEK_END)
                cut = f.read(1) != b"\n"  # a killed run's last line
        else:
            cut = False
        with open(self.path, "a") as f:
            if new:
                f.write(json.dumps({"key": self.key}, sort_keys=True) + "\n")
            elif cut:
                f.write("\n")
            f.write(json.dumps({"clip_id": clip_id, "scores": scores}, default=_json) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _curves(s: dict, clip: _Clip, heat: np.ndarray, predict, *, fills: dict, n_steps: int) -> None:
    """Deletion and insertion AUC of one map of one clip, under each fill."""
    for fill_name, fill in fills.items():
        for mode, curve in (("deletion", deletion_curve), ("insertion", insertion_curve)):
            s[mode][fill_name].append(curve(predict, clip.x, heat, target=clip.target, n_steps=n_steps, fill=fill,
                                            seed=clip.seed).auc)


def _pointing(s: dict, clip: _Clip, heats: list) -> None:
    """Pointing game and distractor hits of one clip, the mean over ``heats`` (one map, or random draws)."""
    if clip.events:
        s["hits"].append(float(np.mean([pointing_game_hit(h, clip.events, cfg=clip.cfg, seed=clip.seed)
                                        for h in heats])))
    if clip.distractors:
        s["distractor"].append(float(np.mean([distractor_hit(h, clip.distractors, clip.events, cfg=clip.cfg,
                                                             seed=clip.seed) for h in heats])))


def _score_maps(per: dict, clip: _Clip, explainers: dict, model, predict, *, fills: dict, n_steps: int,
                sanity: dict | None) -> dict:
    """Every method's map of one clip, scored (and sanity-checked when ``sanity`` is given); the maps."""
    heats = {}
    for name, explain in explainers.items():
        started = time.perf_counter()
        heat = heats[name] = explain(model, clip.tensor, clip.target)
        per[name]["seconds"].append(time.perf_counter() - started)
        _curves(per[name], clip, heat, predict, fills=fills, n_steps=n_steps)
        _pointing(per[name], clip, [heat])
        if sanity is not None:
            result = cascading_randomisation(model, explain, clip.tensor, clip.target, seed=clip.seed)
            sanity[name]["top"].append(result.top)
            sanity[name]["all"].append(result.all_random)
    return heats


def _score_baselines(per: dict, clip: _Clip, predict, *, fills: dict, n_steps: int, draws: int) -> np.ndarray:
    """Smooth random maps (the mean over ``draws``) and the boxes' chance level for one clip; the first map."""
    s = per[SMOOTH_RANDOM]
    started = time.perf_counter()
    for fill_name, fill in fills.items():
        rc = random_curves(predict, clip.x, target=clip.target, draws=draws, n_steps=n_steps, fill=fill,
                           seed=clip.seed)
        s["deletion"][fill_name].append(rc.deletion_auc)
        s["insertion"][fill_name].append(rc.insertion_auc)
    s["seconds"].append(time.perf_counter() - started)
    shape = clip.x.shape
    random_maps = [smooth_random_map(shape, seed=clip.seed + k) for k in range(draws)]
    _pointing(s, clip, random_maps)
    if clip.events:
        per[CHANCE]["hits"].append(pointing_chance(clip.events, shape=shape, cfg=clip.cfg))
    if clip.distractors:
        per[CHANCE]["distractor"].append(pointing_chance(clip.distractors, shape=shape, cfg=clip.cfg))
    return random_maps[0]


def _paired(per: dict, methods: dict, fills: dict) -> dict:
    """Each method against the energy map and the smooth random map, clip by clip, under each fill."""
    paired = {}
    for name in methods:
        if name == ENERGY:
            continue
        paired[name] = {fill: {
            f"{mode}_vs_{other}": vars(compare(per[name][mode][fill], per[base][mode][fill],
                                               lower_is_better=mode == "deletion"))
            for mode in ("deletion", "insertion") for other, base in (("energy", ENERGY), ("random", SMOOTH_RANDOM))
        } for fill in fills}
    return paired


def _completeness(gaps: list, steps: int) -> dict | None:
    """Integrated Gradients' completeness gaps over the clips, or None without IG."""
    if not gaps:
        return None
    g = np.asarray(gaps, dtype=np.float64)
    return {"steps": steps, "median": round(float(np.nanmedian(g)), 4), "max": round(float(np.nanmax(g)), 4),
            "over_warn": int(np.sum(g > GAP_WARN)), "warn_at": GAP_WARN, "per_clip": [round(float(v), 4) for v in g]}


def _summary(name: str, s: dict, checks: dict | None, methods: dict, fills: dict, draws: int) -> dict:
    row = {
        "baseline": name in (SMOOTH_RANDOM, CHANCE) or (name in methods and methods[name].spec.baseline),
        "pointing_game": _interval(s["hits"]),
        "distractor_hits": _interval(s["distractor"]),
        "deletion_auc": {f: _interval(s["deletion"][f]) for f in fills} if name != CHANCE else None,
        "insertion_auc": {f: _interval(s["insertion"][f]) for f in fills} if name != CHANCE else None,
        "n_clips": len(next(iter(s["deletion"].values()))) if name != CHANCE else len(s["hits"]),
        "n_boxed": len(s["hits"]),
        "n_distracted": len(s["distractor"]),
        "seconds_per_clip": round(float(np.mean(s["seconds"])), 3) if s["seconds"] else None,
        "per_clip": {"hits": s["hits"], "distractor": s["distractor"],
                     **{f"deletion/{f}": [round(float(v), 4) for v in s["deletion"][f]] for f in fills},
                     **{f"insertion/{f}": [round(float(v), 4) for v in s["insertion"][f]] for f in fills}},
        "sanity": None,
        "lmac": None,
    }
    if name == SMOOTH_RANDOM:
        row["draws"] = draws
    if checks and checks["all"]:
        found = verdict(checks["all"])
        row["sanity"] = {"outcome": found.outcome, "sentence": found.sentence, "n_clips": found.n_clips,
                         "n_vanished": found.n_vanished,
                         "abs_rho": None if found.abs_rho is None else [round(v, 4) for v in found.abs_rho],
                         "signed_rho": None if found.signed_rho is None else round(found.signed_rho, 4),
                         "top_signed_rho": round(float(np.nanmean(checks["top"])), 4)
                         if not np.all(np.isnan(checks["top"])) else None,
                         "per_clip": [None if np.isnan(v) else round(float(v), 4) for v in checks["all"]]}
    if s["lmac"]:
        p, p_in, p_out = (np.stack(parts) for parts in zip(*s["lmac"]))
        scores = lmac_scores(p, p_in, p_out)
        row["lmac"] = {k: _interval(v) for k, v in scores.items()}
    return row


def _cell(interval, digits: int = 3) -> str:
    if interval is None:
        return "—"
    mean, low, high = interval
    return f"{mean:.{digits}f} [{low:.{digits - 1}f}, {high:.{digits - 1}f}]"


def _text_table(header: list[str], rows: list[list[str]], align: str) -> list[str]:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    fmt = lambda cells: "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths))
    return [fmt(header)] + [fmt(r) for r in rows]


def format_table(table: dict) -> str:
    """The report as text: the main table, the paired comparisons, L-MAC's metrics and IG's completeness."""
    rows, fills = table["rows"], table["fills"]
    header = ["method", "pointing game ↑", "distractor hits ↓"]
    for f in fills:
        header += [f"deletion AUC ↓ ({f})", f"insertion AUC ↑ ({f})"]
    header += ["sanity |ρ| (signed)", "verdict"]
    body = []
    for name, row in rows.items():
        cells = [name, _cell(row["pointing_game"]), _cell(row["distractor_hits"])]
        for f in fills:
            cells += [_cell((row["deletion_auc"] or {}).get(f)), _cell((row["insertion_auc"] or {}).get(f))]
        check = row["sanity"]
        if check is None:
            cells += ["—", "—"]
        else:
            rho = "vanished" if check["abs_rho"] is None else \
                f"{_cell(check['abs_rho'], 2)} ({check['signed_rho']:+.2f})"
            if check["n_vanished"] and check["abs_rho"] is not None:
                rho += f", {check['n_vanished']} vanished"
            cells += [rho, check["outcome"]]
        body.append(cells)
    lines = _text_table(header, body, "<" + ">" * (len(header) - 2) + "<")
    n = max(r["n_clips"] for r in rows.values())
    lines.append(f"Means over {n} clips with bootstrap 95 % intervals, each map made for the class the model predicts. "
                 "Fills (what removed cells become): " + ", ".join(fills) + "; neither is a method's own baseline. "
                 "Sanity: |rank correlation| of the map with the map of the model with every layer randomised, over "
                 "the clips checked; passes when the interval lies under 0.5, fails when at or above, else "
                 "inconclusive; a map that vanishes (all cells equal) is counted apart.")
    lines.append("")
    lines.append("Paired differences, method minus baseline, per clip (mean [95 % interval]); 'beats' only where "
                 "the interval excludes zero:")
    header = ["method", "fill", "deletion vs energy", "deletion vs random", "insertion vs energy",
              "insertion vs random"]
    body = []
    for name, by_fill in table["paired"].items():
        for f, c in by_fill.items():
            body.append([name, f] + [_comparison(c[k]) for k in ("deletion_vs_energy", "deletion_vs_random",
                                                                  "insertion_vs_energy", "insertion_vs_random")])
    lines += _text_table(header, body, "<<>>>>")
    if any(r["lmac"] for r in rows.values()):
        lines.append("")
        lines.append(f"L-MAC's metrics of each map's top {table['top_percent']:g} % cells as sound (STFT masked, "
                     f"original phase): AI ↑, AD ↓, AG ↑ in %, FF ↑, Fid-In ↑; mean [95 % interval]:")
        body = [[name] + [_cell(row["lmac"][m], 2 if m in ("FF", "Fid-In") else 1) for m in METRICS]
                for name, row in rows.items() if row["lmac"]]
        body.append(["L-MAC, published (CNN14 on ESC-50)"] + [f"{LMAC_ESC50[m]:g}" for m in METRICS])
        lines += _text_table(["method", *METRICS], body, "<>>>>>")
        lines.append("The published row is another model, other data and a trained soft mask, not a thresholded "
                     "map: it gives the scale, not a bar to clear.")
    if table["completeness"]:
        c = table["completeness"]
        lines.append("")
        lines.append(f"Integrated Gradients at {c['steps']} steps: completeness gap |sum IG - (F(x) - F(x'))| / "
                     f"|F(x) - F(x')| median {c['median']:.1%}, max {c['max']:.1%}; {c['over_warn']} of "
                     f"{len(c['per_clip'])} clips above {c['warn_at']:.0%}.")
    return "\n".join(lines)


def _comparison(c: dict) -> str:
    mean, low, high = c["difference"]
    if np.isnan(mean):
        return "—"
    return f"{c['word']} {mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def run(args) -> int:
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit", f"must be at least 1, got {args.limit}")
    for name, value in (("--steps", args.steps), ("--draws", args.draws), ("--ig-steps", args.ig_steps),
                        ("--occlusion-window", args.occlusion_window)):
        if value < 1:
            raise InputError(name, f"must be at least 1, got {value}")
    if not 0 < args.top_percent <= 100:
        raise InputError("--top-percent", f"must be in (0, 100], got {args.top_percent}")
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
    try:
        flipped = set() if args.keep_flips else set(read_label_truth(args.data))
    except InputError:  # not a demo set: no planted flips to leave out
        flipped = set()
    n_fold = len(records)
    records = report_slice(records, args.limit, flipped=flipped)
    progress = not args.no_progress
    features = loaded.inputs(records, progress=progress)[:, 0]  # (N, n_mels, n_frames)
    if args.mean_clips < 1:
        raise InputError("--mean-clips", f"must be at least 1, got {args.mean_clips}")
    training = class_stratified([r for r in dataset.records if r.fold != args.fold], args.mean_clips)
    blur, training_mean = FAIR_FILLS
    fills: dict = {blur: "blur"}
    if training:  # the mean spectrum of clips of the folds the report does not score
        fills[training_mean] = mean_spectrum(loaded.inputs(training, progress=progress)[:, 0])
    audio = None if args.no_listen else [load_mono(r, loaded.audio_cfg) for r in records]
    out = Path(args.out or REPO_ROOT / "results" / f"explain-report-{Path(args.checkpoint).resolve().name}.json")
    journal = Journal(out.with_name(out.stem + ".clips.jsonl"), key={
        "checkpoint": checkpoint_fingerprint(args.checkpoint), "data": Path(args.data).resolve(),
        "clips": [r.clip_id for r in records], "steps": args.steps, "draws": args.draws,
        "sanity_clips": args.sanity_clips, "ig_steps": args.ig_steps, "occlusion_window": args.occlusion_window,
        "reference": not args.no_reference, "top_percent": None if args.no_listen else args.top_percent,
        "fills": [str(f) for f in fills], "mean_clips": [r.clip_id for r in training],
        "seed": args.seed})
    started = time.perf_counter()
    distractors = getattr(dataset, "distractor_boxes", None)  # demo set v2 and later
    table = faithfulness_table(loaded, records, features, audio=audio,
                               boxes=dataset.boxes if dataset.has_boxes else None, distractor_boxes=distractors,
                               fills=fills, n_steps=args.steps, draws=args.draws, sanity_clips=args.sanity_clips,
                               ig_steps=args.ig_steps, occlusion_window=args.occlusion_window,
                               reference=not args.no_reference, top_percent=args.top_percent, seed=args.seed,
                               progress=progress, journal=journal)
    print(f"{len(records)} of fold {args.fold}'s {n_fold} clips" + (
        f" (class-stratified, --limit {args.limit})" if args.limit else "") + (
        f", {len(flipped & {Path(r.clip_id).name for r in dataset.select(folds=[args.fold])})} planted label flips "
        f"left out" if flipped else ""))
    print(format_table(table))
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "checkpoint": str(args.checkpoint), "kind": loaded.kind, "data": str(args.data), "fold": args.fold,
        "n_clips": len(records), "clip_ids": [r.clip_id for r in records], "flips_left_out": sorted(flipped),
        "steps": args.steps, "draws": args.draws, "sanity_clips": args.sanity_clips, "ig_steps": args.ig_steps,
        "occlusion_window": args.occlusion_window, "seed": args.seed, "target": "predicted class",
        "training_clips_for_mean_spectrum": len(training),
        "seconds": round(time.perf_counter() - started, 1), **table,
    }
    out.write_text(json.dumps(doc, indent=2, default=_json) + "\n")
    print(f"saved {out}")
    return 0


def _json(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")
