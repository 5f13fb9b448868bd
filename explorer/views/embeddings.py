"""Embeddings page: every clip of a fold as a point, placed by what one layer makes of it."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from core.interpret.embed import METHODS
from core.errors import InputError
from explorer import cached, state, trust, ui
from explorer import cached_dataset as cd
from explorer.figures import dataset as fd

CHART_KEY = "embeddings_chart"
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}


def on_point_click(clip_ids: list[str]) -> None:
    """Selection callback: the clicked clip becomes the current clip (runs before the page redraws)."""
    index = fd.point_from_selection(st.session_state.get(CHART_KEY))
    if index is not None and 0 <= index < len(clip_ids):
        state.open_clip(clip_ids[index])


st.title("Embeddings")
ui.intro(
    "Each point is one clip of the dataset, placed by what the chosen layer makes of it: the layer's output is "
    "pooled to one vector per clip, then squeezed to two dimensions by **PCA**, **t-SNE** or **UMAP**. Clips "
    "the layer finds alike land close together, so tight one-colour clusters mean the layer already tells the "
    "classes apart; the two axes have no unit of their own. Hover for the file, its label and the prediction "
    "(crosses are mistakes); **click a point** to make that clip the current one."
)

models = ui.need_models()
model_name, folder = ui.pick_model(models, key="embeddings_model")
root = state.get(state.DATASET_ROOT)
if not root:
    st.info("Pick a dataset in the sidebar.")
    st.stop()
loaded = cached.checkpoint(folder)
coverage = trust.unknown_classes(model_name, loaded.classes, cached.dataset(root).classes)  # before any work
taps = loaded.model.taps()
labels = {t.name: t.label for t in taps}
tap_names = list(labels)
default_tap = next((t.name for t in reversed(loaded.taps("embedding"))), tap_names[-1])

fold_choices, fold_default = cd.fold_options(root, folder)
c1, c2, c3, c4 = st.columns([1, 2, 2, 2])
with c1:
    fold = state.bound(st.selectbox, "Clips", state.FOLD, options=fold_choices, default=fold_default,
                       format_func=cd.fold_label,
                       help=f"Fold {fold_default} is this model's test fold; all folds takes longer the first time.")
with c2:
    tap = state.bound(st.selectbox, "Layer (tap)", state.EMBEDDING_TAP, options=tap_names, default=default_tap,
                      format_func=labels.get, help="Conv maps are averaged over time and frequency; transformer "
                                                   "layers give their class token.")
with c3:
    method = st.radio("Projection", METHODS, horizontal=True, key="embeddings_method", format_func=METHOD_NAMES.get,
                      help="PCA keeps the widest spreads (fast, linear); t-SNE and UMAP keep neighbours together "
                           "(slower the first time, distances between clusters mean little).")
metadata_columns = cached.dataset(root).metadata_columns
colour_names = {"class": "true class", "correct": "right / wrong", **{c: c for c in metadata_columns}}
if coverage.all_unknown:  # right / wrong has no meaning when the model knows none of the classes
    colour_names.pop("correct")
    if st.session_state.get("embeddings_colour") == "correct":
        st.session_state["embeddings_colour"] = "class"
with c4:
    colour_by = st.radio("Colour by", list(colour_names), horizontal=True, key="embeddings_colour",
                         format_func=colour_names.get,
                         help="The dataset's own labels" + (", and its metadata columns (speaker, source, ...): what "
                                                            "else the layer groups clips by" if metadata_columns else "")
                         + (". Right / wrong has no meaning: the model knows none of these classes."
                            if coverage.all_unknown else "."))

try:
    preds = cd.predictions(folder, root, fold)
    points = cd.embedding(folder, root, fold, tap, method)
except InputError as error:
    st.error(str(error))
    st.stop()

clip_ids = preds["clip_ids"]
classes = preds["classes"]
pred_names = [classes[i] for i in preds["y_pred"]]
confidence = preds["proba"][np.arange(len(clip_ids)), preds["y_pred"]]
current = state.get(state.CLIP_ID) if state.get(state.CLIP_ORIGIN) == "dataset" else None
highlight = clip_ids.index(current) if current in clip_ids else None
known = preds["y_true"] >= 0  # clips of classes the model knows
n_right = sum(t == p for t, p in zip(preds["categories"], pred_names))

values = None
if colour_by in metadata_columns:
    by_id = {r.clip_id: r for r in cached.dataset(root).records}
    values = [by_id[cid].metadata.get(colour_by, "") for cid in clip_ids]
fig = fd.embedding_scatter(points, clip_ids=clip_ids, true_names=preds["categories"], pred_names=pred_names,
                           confidence=confidence, colour_by=colour_by, values=values, axis_name=METHOD_NAMES[method],
                           highlight=highlight, scoreable=known,
                           title=f"{model_name}, {labels[tap]}: {len(clip_ids)} clips ({cd.fold_label(fold)}), "
                                 f"{METHOD_NAMES[method]}")
stem = f"embedding_{ui.safe_stem(model_name)}_{tap}_{method}_{cd.fold_label(fold).replace(' ', '')}"
ui.plot(fig, key=CHART_KEY, stem=stem, on_select=partial(on_point_click, clip_ids), selection_mode="points")
ringed = ("The ringed point is the current clip." if highlight is not None else
          "The current clip is not among these clips, so no point is ringed." if current else "")
if coverage.all_unknown:
    st.caption(f"Coloured by the dataset's own labels: how {model_name}'s features group a task it was not "
               f"trained on (no accuracy: it knows none of these classes). {ringed}")
elif coverage.unknown:
    st.caption(f"{n_right} of the {int(known.sum())} clips of classes {model_name} knows predicted right "
               f"({n_right / max(int(known.sum()), 1):.0%}); {int((~known).sum())} clips of other classes are "
               f"circles, never mistakes. {ringed}")
else:
    st.caption(f"{n_right} of {len(clip_ids)} clips predicted right ({n_right / len(clip_ids):.0%}). {ringed}")
trust.dataset_novelty(model_name, folder, root, fold, can_fit=not coverage.unknown)

if highlight is not None:
    i = highlight
    left, right = st.columns([3, 1])
    left.markdown(f"**Current clip:** {clip_ids[i]}, label **{preds['categories'][i]}**, predicted "
                  f"**{pred_names[i]}** ({confidence[i]:.0%})")
    if right.button("Open on the Clip page", key="embeddings_open", icon=":material/open_in_new:"):
        st.switch_page(state.page_file("clip"))

ui.download_table([(cid, true, pred, round(float(conf), 4), float(x), float(y))
                   for cid, true, pred, conf, (x, y) in zip(clip_ids, preds["categories"], pred_names, confidence,
                                                           points)],
                  ["clip_id", "label", "predicted", "confidence", "x", "y"], stem=stem, key="embeddings_csv")
