"""Novelty scores for the pages, cached (:mod:`core.interpret.novelty`).

- :func:`novelty`: a checkpoint's saved score (its own ``novelty/``, else one
  the page fitted into the cache), reloaded when the file changes;
- :func:`clip_novelty`: one clip's score and flag;
- :func:`dataset_novelty`: every clip of a fold, from the vectors the dataset
  pages extract anyway (:func:`explorer.cached_dataset.ensure_vectors`);
- :func:`fit`: fit one on a dataset's training folds with a progress bar,
  saved under the cache (never inside the git-tracked ``checkpoints/``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from explorer import cached
from explorer import cached_dataset as cd

__all__ = ["novelty", "clip_novelty", "dataset_novelty", "fit"]


def _stamp(folder: str) -> str:
    """Changes when a novelty file is written or replaced (so a fresh fit is read)."""
    from core.interpret.novelty import NOVELTY_DIR, cache_novelty_dir

    stamps = []
    for where in (Path(folder) / NOVELTY_DIR, cache_novelty_dir(folder) / NOVELTY_DIR):
        stamps += [f"{p}:{p.stat().st_mtime_ns}" for p in sorted(where.glob("*.json"))] if where.is_dir() else []
    return "|".join(stamps)


@st.cache_resource(max_entries=16, show_spinner=False)
def _novelty(folder: str, stamp: str):
    from core.interpret.novelty import find_novelty

    return find_novelty(folder)


def novelty(folder: str):
    """The checkpoint's :class:`core.interpret.novelty.Novelty`, or ``None`` when none is fitted.

    Raises
    ------
    InputError
        A malformed novelty file.
    """
    return _novelty(folder, _stamp(folder))


@st.cache_data(max_entries=128, show_spinner=False)
def _clip_novelty(folder: str, path: str, stamp: str) -> dict | None:
    from core.data.activations import pool_tap

    found = novelty(folder)
    if found is None:
        return None
    from core.models import find_tap

    model = cached.checkpoint(folder).model
    vector = pool_tap(cached.tap_outputs(folder, path, (found.tap,))[found.tap][None],
                      kind=find_tap(model, found.tap).kind, n_special=getattr(model, "n_special", 1))
    score = float(found.score(vector)[0])
    return {"score": score, "threshold": found.threshold, "novel": bool(found.is_novel(score))}


def clip_novelty(folder: str, path: str) -> dict | None:
    """``{"score", "threshold", "novel"}`` for one clip (mix), or ``None`` without a novelty score."""
    return _clip_novelty(folder, path, _stamp(folder))


@st.cache_data(max_entries=16, show_spinner=False)
def _dataset_novelty(folder: str, root: str, fold: int, stamp: str) -> dict | None:
    from core.interpret.novelty import embedding_vectors

    found = novelty(folder)
    if found is None:
        return None
    loaded = cached.checkpoint(folder)
    with cached.model_lock(folder):
        vectors, _ = embedding_vectors(loaded, cd.records(root, fold), tap=found.tap)  # a cache hit
    scores = found.score(vectors)
    return {"scores": scores.astype(np.float32), "novel": found.is_novel(scores), "threshold": found.threshold}


def dataset_novelty(folder: str, root: str, fold: int) -> dict | None:
    """Every clip of a fold: ``scores`` and ``novel`` [shape=(N,)] in :func:`cached_dataset.predictions`' order,
    ``threshold``; ``None`` without a novelty score."""
    cd.ensure_vectors(folder, root, fold)
    return _dataset_novelty(folder, root, fold, _stamp(folder))


def fit(folder: str, root: str) -> str:
    """Fit the checkpoint's novelty score on this dataset's training folds (progress bar); returns a summary.

    Saved under the cache (:func:`core.interpret.novelty.cache_novelty_dir`), where
    :func:`novelty` finds it. Out of fold over the training folds, so the
    threshold is too low when the network trained on these clips.
    """
    from core.interpret.novelty import cache_novelty_dir, fit_for_checkpoint, save_novelty

    loaded = cached.checkpoint(folder)
    data = cached.dataset(root)
    with cd.progress_bar(f"Fitting {Path(folder).name}'s novelty score on {Path(root).name}…") as report, \
            cached.model_lock(folder):
        found = fit_for_checkpoint(loaded, data, progress=lambda f: report(f, f"{f:.0%}"))
    save_novelty(found, cache_novelty_dir(folder))
    return found.describe()
