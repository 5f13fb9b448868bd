"""Errors page: where a model goes wrong on a fold, class by class and clip by clip."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from core.errors import InputError
from explorer import cached, state, trust, ui
from explorer import cached_dataset as cd
from explorer.figures import dataset as fd

CELL = "errors_cell"  # [model name, true class, predicted class] of the last clicked cell
MAX_LISTED = 40


def on_cell_click(model_name: str, chart_key: str) -> None:
    """Selection callback: remember the clicked confusion-matrix cell (runs before the page redraws)."""
    cell = fd.cell_from_selection(st.session_state.get(chart_key))
    if cell is not None:
        st.session_state[CELL] = [model_name, *cell]


def clear_cell() -> None:
    st.session_state[CELL] = None


def open_button(clip_id: str, *, key: str, label: str = "Open") -> None:
    """A button that makes ``clip_id`` the current clip and opens the Clip page."""
    if st.button(label, key=key, icon=":material/open_in_new:", type="tertiary"):
        state.open_clip(clip_id)
        st.switch_page(state.page_file("clip"))


st.title("Errors")
ui.intro(
    "The **confusion matrix** counts the clips of a fold by true class (rows) and predicted class (columns): "
    "the diagonal holds the right answers, every other cell a kind of mistake. **Click a cell** to list the clips "
    "behind it, each one click from the Clip page. Below, per class: **precision** (how often the model is right "
    "when it names the class), **recall** (how many of the class's clips it finds), their balance **F1**, "
    "**ROC curves** (higher and further left is better; the dashed diagonal is guessing) and the misclassified "
    "clips with the Grad-CAM of the wrong answer."
)

models = ui.need_models()
root = state.get(state.DATASET_ROOT)
if not root:
    st.info("Pick a dataset in the sidebar.")
    st.stop()

fold_choices, fold_default = cd.fold_options(root, models[0][1])
c1, c2 = st.columns([1, 3])
with c1:
    fold = state.bound(st.selectbox, "Clips", state.FOLD, options=fold_choices, default=fold_default,
                       format_func=cd.fold_label,
                       help=f"Evaluate on fold {fold_default} (the first model's test fold) or another one. A model trained on a fold "
                            "looks better on it than it is.")
with c2:
    normalise = st.toggle("Shares of each class instead of counts", value=False, key="errors_normalise")

results: dict[str, dict] = {}
folders = dict(models)
dataset_classes = cached.dataset(root).classes
for name, folder in models:
    if trust.unknown_classes(name, cached.checkpoint(folder).classes, dataset_classes).unknown:
        st.caption(f"No errors to count for {name} here. What still means something: the Embeddings page "
                   "(coloured by this dataset's own labels, and the share of clips unlike the training data), and "
                   "listening on the Clip page.")
        continue
    try:
        results[name] = cd.evaluation(folder, root, fold)
    except InputError as error:
        st.error(f"{name}: {error}")
        continue
    trust.dataset_novelty(name, folder, root, fold, can_fit=False)  # how many clips are unlike its training data
if not results:
    st.stop()

# -- multi-label models: average precision instead of a confusion matrix ------------------
multi = {name: res for name, res in results.items() if res.get("multi_label")}
if multi:
    st.caption("A multi-label model gives each class its own (sigmoid) probability, so a clip can have several "
               "classes and a confusion matrix does not apply. Per class: **average precision** (AP: the area "
               "under its precision-recall curve, 1 is perfect) beside its **chance** level (the class's share of "
               "clips, what a random ranking scores); **mAP** is their mean over the classes present.")
    for i, (name, res) in enumerate(multi.items()):
        st.subheader(f"{name}: average precision per class")
        m1, m2, m3 = st.columns(3)
        m1.metric("mAP", "n/a" if res["map"] is None else f"{res['map']:.3f}",
                  delta=None if res["map"] is None else f"{res['map'] - res['chance_map']:+.3f} vs chance")
        m2.metric("mAP by chance", "n/a" if res["chance_map"] is None else f"{res['chance_map']:.3f}")
        m3.metric("Clips", res["n_clips"], help=cd.fold_label(fold))
        rows = [(r["class"], r["support"], r["ap"], r["chance_ap"]) for r in res["per_class"]]
        columns_ap = ["class", "support", "AP", "chance AP"]
        st.dataframe({col: [row[k] for row in rows] for k, col in enumerate(columns_ap)}, hide_index=True,
                     key=f"errors_ap_{i}")
        ui.download_table(rows, columns_ap, stem=f"ap_{ui.safe_stem(name)}", key=f"errors_ap_csv_{i}")
        st.subheader(f"{name}: misses and false alarms per clip (probability ≥ {res['threshold']:.2f} counts "
                     f"as predicted)")
        classes = res["classes"]
        order = np.argsort([-(len(m) + len(f)) for m, f in zip(res["misses"], res["false_alarms"])], kind="stable")
        listed = [j for j in order if res["misses"][j] or res["false_alarms"][j]][:MAX_LISTED]
        if not listed:
            st.success("No misses and no false alarms.")
        for j in listed:
            left, right = st.columns([5, 1])
            missed = ", ".join(f"{classes[c]} ({res['proba'][j, c]:.0%})" for c in res["misses"][j]) or "none"
            alarms = ", ".join(f"{classes[c]} ({res['proba'][j, c]:.0%})" for c in res["false_alarms"][j]) or "none"
            left.markdown(f"`{res['clip_ids'][j]}`: missed {missed}; false alarms {alarms}")
            with right:
                open_button(res["clip_ids"][j], key=f"errors_open_ml_{i}_{j}")
    results = {name: res for name, res in results.items() if name not in multi}
    if not results:
        st.stop()

# -- confusion matrices -------------------------------------------------------------------
columns = st.columns(len(results), gap="medium")
for i, (column, (name, res)) in enumerate(zip(columns, results.items())):
    with column:
        auc = res["roc_auc_macro"]
        m1, m2, m3 = st.columns(3)
        m1.metric("Accuracy", f"{res['accuracy']:.1%}", help=f"{res['n_clips']} clips, {cd.fold_label(fold)}")
        m2.metric("Macro F1", f"{res['macro_f1']:.3f}")
        m3.metric("Macro ROC AUC", "n/a" if auc is None else f"{auc:.3f}")
        chart_key = f"errors_cm_{i}"
        fig = fd.confusion_matrix(np.asarray(res["confusion_matrix"]), res["classes"], normalise=normalise,
                                  title=f"{name}: {res['n_clips']} clips, {cd.fold_label(fold)}")
        ui.plot(fig, key=chart_key, stem=f"confusion_{ui.safe_stem(name)}_{cd.fold_label(fold).replace(' ', '')}",
                on_select=partial(on_cell_click, name, chart_key), selection_mode="points")

cell = st.session_state.get(CELL)
if cell and cell[0] in results:
    name, t, p = cell
    res = results[name]
    classes = res["classes"]
    if 0 <= t < len(classes) and 0 <= p < len(classes):
        y_true, y_pred = np.asarray(res["y_true"]), np.asarray(res["y_pred"])
        idx = np.flatnonzero((y_true == t) & (y_pred == p))
        head, close = st.columns([5, 1])
        head.subheader(f"{name}: '{classes[t]}' clips predicted as '{classes[p]}' ({len(idx)})")
        close.button("Close the list", key="errors_close", on_click=clear_cell, type="tertiary")
        if len(idx) == 0:
            st.caption("No clip in this cell.")
        for j in idx[:MAX_LISTED]:
            clip_id = res["clip_ids"][j]
            left, right = st.columns([5, 1])
            left.markdown(f"`{clip_id}`: {res['proba'][j, p]:.0%} '{classes[p]}', "
                          f"{res['proba'][j, t]:.0%} '{classes[t]}'")
            with right:
                open_button(clip_id, key=f"errors_open_cell_{j}")
        if len(idx) > MAX_LISTED:
            st.caption(f"… and {len(idx) - MAX_LISTED} more.")
else:
    st.caption("Click a cell of a confusion matrix to list the clips behind it.")

# -- per-class table ----------------------------------------------------------------------
st.subheader("Per class: precision, recall, F1")
names = list(results)
first = results[names[0]]
if len(names) == 1:
    rows = fd.metric_rows(first)
    columns_out = list(fd.METRIC_COLUMNS)
else:
    per_model = {n: {r[0]: r for r in fd.metric_rows(results[n])} for n in names}
    classes_all = [r[0] for r in fd.metric_rows(first)]
    columns_out = ["class", "support"] + [f"{m} {n}" for n in names for m in ("precision", "recall", "f1", "roc_auc")]
    rows = []
    for c in classes_all:
        row = [c, per_model[names[0]][c][4]]
        for n in names:
            r = per_model[n].get(c, (c, None, None, None, None, None))
            row += [r[1], r[2], r[3], r[5]]
        rows.append(tuple(row))
st.dataframe({col: [row[k] for row in rows] for k, col in enumerate(columns_out)}, hide_index=True,
             key="errors_table")
ui.download_table(rows, columns_out, stem=f"per_class_{cd.fold_label(fold).replace(' ', '')}_"
                                          + "_".join(ui.safe_stem(n) for n in names), key="errors_table_csv")
st.caption("Precision, recall, F1 and ROC AUC run from 0 to 1 (1 is perfect); support is the number of clips "
           "of the class in the fold. An empty ROC AUC means the fold has no clip of that class.")

# -- ROC curves ---------------------------------------------------------------------------
st.subheader("ROC curves, each class against the rest")
columns = st.columns(len(results), gap="medium")
for i, (column, (name, res)) in enumerate(zip(columns, results.items())):
    with column:
        auc = res["roc_auc_macro"]
        ui.plot(fd.roc_curves(res["roc"], title=f"{name}: macro AUC {'n/a' if auc is None else f'{auc:.3f}'}"),
                key=f"errors_roc_{i}", stem=f"roc_{ui.safe_stem(name)}_{cd.fold_label(fold).replace(' ', '')}")

# -- misclassified clips with Grad-CAM ----------------------------------------------------
st.subheader("Misclassified clips and their Grad-CAM")
st.caption("Each thumbnail is a clip's spectrogram (time 0 to 5 s left to right, frequency from 20 Hz at the "
           "bottom to the top band, mel scale) with the Grad-CAM map of the class explained over it: yellow is "
           "strong evidence, no colour none; its caption reads true class → predicted class (confidence). "
           "Worst mistakes (most confident) first; click a clip's name to open it.")
d1, d2, d3, d4 = st.columns([2, 2, 2, 2])
n_wrong = [int(np.sum(np.asarray(results[n]["y_true"]) != np.asarray(results[n]["y_pred"]))) for n in names]
cam_model = names[0] if len(names) == 1 else d1.radio(
    "Model", names, horizontal=True, key="errors_cam_model", index=next((i for i, w in enumerate(n_wrong) if w), 0),
    format_func=lambda n: f"{n} ({n_wrong[names.index(n)]} wrong)")
cam_folder = folders[cam_model]
loaded = cached.checkpoint(cam_folder)
cam_taps = loaded.cam_taps()
res = results[cam_model]
y_true, y_pred = np.asarray(res["y_true"]), np.asarray(res["y_pred"])
wrong = np.flatnonzero(y_true != y_pred)
if not cam_taps:
    st.info(f"{cam_model} has no layer Grad-CAM can explain.")
elif len(wrong) == 0:
    st.success(f"{cam_model} gets every clip of {cd.fold_label(fold)} right.")
else:
    cam_labels = {t.name: t.label for t in cam_taps}
    tap = d2.selectbox("Layer (tap)", list(cam_labels), index=list(cam_labels).index(loaded.default_cam_tap()),
                       format_func=cam_labels.get, key=f"errors_cam_tap_{loaded.kind}",
                       help="A transformer's last layer always gives an empty map.")
    explain = d3.radio("Class explained", ["predicted", "true"], horizontal=True, key="errors_cam_target",
                       format_func={"predicted": "the wrong answer", "true": "the true class"}.get)
    n_show = d4.slider("Clips shown", min_value=1, max_value=min(24, len(wrong)), value=min(8, len(wrong)),
                       key="errors_cam_n")
    confidence = res["proba"][wrong, y_pred[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:n_show]
    cfg = loaded.audio_cfg
    classes = res["classes"]
    per_row = 4
    n_empty = 0
    for start in range(0, len(order), per_row):
        cols = st.columns(per_row)
        for col, j in zip(cols, order[start:start + per_row]):
            path, clip_id = res["paths"][j], res["clip_ids"][j]
            target = int(y_pred[j] if explain == "predicted" else y_true[j])
            with col:
                try:
                    heat = cached.gradcam(cam_folder, path, tap, target)
                except InputError as error:
                    st.error(str(error))
                    continue
                S = cached.model_input(path, cached.input_key(cam_folder))
                empty = not np.any(heat > 0)
                n_empty += empty
                # The button (named by the clip) goes first, so that buttons and images line up across
                # the row however the captions below them wrap.
                open_button(clip_id, key=f"errors_open_cam_{j}", label=clip_id)
                st.image(fd.gradcam_thumbnail(S, heat), width="stretch",
                         caption=f"{classes[y_true[j]]} → {classes[y_pred[j]]} ({res['proba'][j, y_pred[j]]:.0%})"
                                 + (" (empty map: all zero)" if empty else ""))
    if n_empty:
        st.caption(f"{n_empty} map{'s are' if n_empty > 1 else ' is'} empty (all zero): nothing at "
                   f"{cam_labels[tap]} pushes the model towards the class explained. Try an earlier layer.")
    if len(wrong) > n_show:
        st.caption(f"{n_show} of {len(wrong)} misclassified clips shown.")
