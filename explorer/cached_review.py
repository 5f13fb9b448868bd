"""The Review page's and the counterfactual lab's work, cached (see :mod:`explorer.cached` for the rules).

- the label-error ranking (:func:`core.review.label_issues.find_label_issues`), its
  vectors extracted once with a progress bar, then read from the on-disk cache;
- the verdict store (:class:`core.review.verdicts.VerdictStore`), opened on every call
  (one SQLite connection per read or write, so any session and thread may use it);
- neighbours, class averages and the HTML report;
- a counterfactual version of a clip (:func:`core.review.counterfactual.apply_edits`),
  written to a WAV file named by a hash of the clip and the edits, so that
  every cached function that takes a clip path (probabilities, Grad-CAM) works
  on it unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from core.errors import InputError
from explorer import cached

__all__ = ["ensure_label_issues", "label_issues", "store", "fingerprints", "neighbours", "average_input",
           "report", "counterfactual_path"]


@st.cache_resource
def _done() -> set:
    return set()


def ensure_label_issues(folder: str, root: str) -> None:
    """Extract the vectors the ranking needs (once; a progress bar while it runs)."""
    from core.review.label_issues import clip_vectors, embedding_tap, logits_tap

    key = (folder, root)
    if key in _done():
        return
    loaded = cached.checkpoint(folder)
    records = cached.dataset(root).records
    bar = st.progress(0.0, text=f"Running {Path(folder).name} over {len(records)} clips (first time only)…")
    try:
        with cached.model_lock(folder):
            clip_vectors(loaded, records, [embedding_tap(loaded.model), logits_tap(loaded.model)],
                         progress=lambda f: bar.progress(min(f, 1.0), text=f"Embedding the clips… {f:.0%}"))
    finally:
        bar.empty()
    _done().add(key)


@st.cache_resource(max_entries=8, show_spinner="Ranking suspected label errors…")
def _label_issues(folder: str, root: str):
    from core.review.label_issues import find_label_issues

    with cached.model_lock(folder):
        return find_label_issues(cached.checkpoint(folder), cached.dataset(root))


def label_issues(folder: str, root: str):
    """:func:`core.review.label_issues.find_label_issues` for a checkpoint and a dataset (shared, read-only)."""
    ensure_label_issues(folder, root)
    return _label_issues(folder, root)


def store(path: str):
    """The verdict store at ``path`` (:class:`core.review.verdicts.VerdictStore`); raises InputError when unusable."""
    from core.review.verdicts import VerdictStore

    return VerdictStore(path)


@st.cache_data(max_entries=16, show_spinner=False)
def fingerprints(folder: str, root: str) -> tuple[str, str]:
    """(dataset fingerprint, checkpoint fingerprint): the verdicts' key besides clip and model name."""
    from core.data.cache import checkpoint_fingerprint

    return cached.dataset(root).fingerprint(), checkpoint_fingerprint(folder)


@st.cache_data(max_entries=32, show_spinner="Finding the nearest clips…")
def neighbours(folder: str, root: str, tap: str, clip_id: str, k: int) -> list[int]:
    """Indices (into the dataset's records) of the ``k`` training-fold clips nearest to ``clip_id`` at ``tap``.

    Training folds: the checkpoint's ``train_folds`` when it records them,
    else every fold but the clip's own.
    """
    from core.review.label_issues import clip_vectors
    from core.review.verdicts import nearest_clips

    loaded = cached.checkpoint(folder)
    records = cached.dataset(root).records
    ids = [r.clip_id for r in records]
    if clip_id not in ids:
        raise InputError(clip_id, "not a clip of this dataset")
    query = ids.index(clip_id)
    with cached.model_lock(folder):
        vectors = clip_vectors(loaded, records, [tap])[tap]
    train_folds = loaded.meta.get("train_folds") if isinstance(loaded.meta, dict) else None
    if train_folds:
        candidates = np.array([i for i, r in enumerate(records) if r.fold in set(train_folds)])
    else:
        candidates = np.array([i for i, r in enumerate(records) if r.fold != records[query].fold])
    return nearest_clips(vectors, query, candidates, k=int(k))


@st.cache_data(max_entries=32, show_spinner="Averaging the clips…")
def average_input(folder: str, root: str, ids: tuple[str, ...]) -> np.ndarray | None:
    """The mean model input of the named clips (:func:`core.review.verdicts.average_input`)."""
    from core.review.verdicts import average_input as mean_of

    data = cached.dataset(root)
    wanted = set(ids)
    return mean_of([r for r in data.records if r.clip_id in wanted], cached.audio_cfg(folder))


def report(verdicts: list, folder: str, root: str, tap: str, *, title: str) -> str:
    """The self-contained HTML review (:func:`core.review.verdicts.report_html`), with each clip's Grad-CAM and audio."""
    from core.review.verdicts import ReportItem, map_png, report_html, wav_bytes

    loaded = cached.checkpoint(folder)
    data = cached.dataset(root)
    cfg = loaded.audio_cfg
    index = {c: i for i, c in enumerate(loaded.classes)}
    by_id = {r.clip_id: r for r in data.records}
    items = []
    for v in verdicts:
        record = by_id.get(v.clip_id)
        if record is None:
            items.append(ReportItem(v, [], None, "the clip is not in the dataset any more"))
            continue
        path = str(record.path)
        X = cached.model_input(path, cached.input_key(folder))
        figs = []
        for what, name in (("label", v.label), ("prediction", v.predicted)):
            if name in index:
                heat = cached.gradcam(folder, path, tap, index[name])
                figs.append((f"Grad-CAM at {tap} for the {what} '{name}' (time left to right, low frequencies at "
                             f"the bottom)", map_png(X, heat)))
        samples, _, _ = cached.clip_samples(path, cfg.sr)
        items.append(ReportItem(v, figs, wav_bytes(samples, cfg.sr)))
    return report_html(items, title=title, intro=f"Dataset {data.root}; model {Path(folder).name}. Figures: the "
                                                 "model's input (grey) with its Grad-CAM map (red to yellow).")


@st.cache_data(max_entries=32, show_spinner="Editing the sound…")
def counterfactual_path(path: str, sr: int, edits_json: str) -> str:
    """The clip's mix-down with the edits applied, saved as a WAV under the cache; returns its path.

    Named by a hash of the source path and the edits, so the same recipe is
    the same file (and the same cache key for everything downstream).
    """
    import soundfile as sf

    from core.review.counterfactual import Edits, apply_edits
    from core.paths import cache_dir

    edits = Edits.from_json(edits_json)
    samples, _, _ = cached.clip_samples(path, sr)
    y = apply_edits(samples.mean(axis=0, dtype=np.float32), sr, edits)
    folder = cache_dir() / "counterfactual"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{hashlib.sha256((path + edits_json).encode()).hexdigest()[:24]}.wav"
    if not out.is_file():
        peak = float(np.max(np.abs(y))) if y.size else 0.0
        tmp = out.with_suffix(".tmp.wav")
        sf.write(tmp, y / peak if peak > 1.0 else y, sr, subtype="FLOAT")
        tmp.replace(out)
    return str(out)
