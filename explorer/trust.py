"""How far to trust what a page shows: notes the pages draw beside predictions and datasets.

- :func:`unknown_classes`: a dataset whose classes the model does not know,
  said in one sentence before anything is computed;
- :func:`clip_novelty`: is this clip unlike the model's training data?
- :func:`dataset_novelty`: the share of a fold's clips that are, with a button
  that fits a novelty score where the model has none.

Each computes nothing itself (:mod:`core.models.known_classes`,
:mod:`explorer.cached_novelty`).
"""

from __future__ import annotations

import streamlit as st

from core.errors import InputError
from core.models.known_classes import Coverage, class_coverage
from core.interpret.novelty import CAPTION
from explorer import cached_novelty as cn

__all__ = ["unknown_classes", "clip_novelty", "dataset_novelty", "NOVEL_PREDICTION"]

NOVEL_PREDICTION = "this clip is unlike the training data: its classes may not apply"


def unknown_classes(model_name: str, model_classes, dataset_classes) -> Coverage:
    """Warn, in one sentence, when the dataset holds classes the model does not know; returns the coverage."""
    coverage = class_coverage(model_classes, dataset_classes)
    if coverage.unknown:
        st.warning(coverage.sentence(model_name), icon=":material/help:")
    return coverage


def clip_novelty(model_name: str, folder: str, path: str, *, explanation: bool = False) -> dict | None:
    """A warning when the clip is novel for the model, else a caption with its score; returns the flag.

    ``explanation=True`` words the warning for a map (:data:`core.interpret.novelty.CAPTION`).
    """
    try:
        flag = cn.clip_novelty(folder, path)
    except InputError as error:
        st.error(str(error))
        return None
    if flag is None:
        st.caption(f"{model_name}: no novelty score fitted, so nothing says whether this clip is like its training "
                   "data (`python -m core fit-novelty`, or the button on the Embeddings page).")
        return None
    if flag["novel"]:
        st.warning(f"{model_name}: {CAPTION if explanation else NOVEL_PREDICTION} (novelty {flag['score']:.3g}, "
                   f"threshold {flag['threshold']:.3g}: 5 % of ordinary clips score above it).",
                   icon=":material/warning:")
    else:
        st.caption(f"{model_name}: like the training data (novelty {flag['score']:.3g}, threshold "
                   f"{flag['threshold']:.3g}; about 5 % of clips like the training data score above it).")
    return flag


def dataset_novelty(model_name: str, folder: str, root: str, fold: int, *, can_fit: bool) -> dict | None:
    """The share of the fold's clips flagged novel; without a novelty score, a fit button (``can_fit``)."""
    from explorer import cached_dataset as cd

    try:
        result = cn.dataset_novelty(folder, root, fold)
    except InputError as error:
        st.error(str(error))
        return None
    if result is None:
        st.caption(f"{model_name} has no novelty score: nothing says which clips are unlike its training data.")
        if can_fit and st.button("Fit a novelty score on this dataset's training folds", key=f"fit_novelty_{folder}",
                                 help="Embeddings of every fold but the test fold; the threshold is the 95th "
                                      "percentile of each training fold scored against the others. Saved in the "
                                      "cache, found again next time."):
            try:
                st.success(cn.fit(folder, root))
            except InputError as error:
                st.error(str(error))
                return None
            st.rerun()
        return None
    n, k = len(result["novel"]), int(result["novel"].sum())
    text = (f"{k} of {n} clips ({k / n:.0%}, {cd.fold_label(fold)}) are unlike {model_name}'s training data "
            f"(novelty above {result['threshold']:.3g}); about 5 % is expected of clips like it.")
    (st.warning if k / n > 0.25 else st.caption)(text)
    return result
