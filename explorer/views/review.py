"""Review page: walk through a model's mistakes and suspected label errors, and keep a verdict on each."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import InputError
from core.kinds import MAP_TAP_KINDS
from core.review.label_issues import trust as label_trust
from core.review.verdicts import QUEUE_ORDERS, VERDICTS, Verdict, default_store_path, review_queue, verdicts_csv
from explorer import cached, figures, state, trust, ui
from explorer import cached_review as cr

NEIGHBOUR_KINDS = MAP_TAP_KINDS + ("embedding",)
DB = "review_db"  # the verdict database's path (session pick)
POS = "review_pos"  # position in the queue
NO_VERDICT = "no verdict yet"
ORDER_LABELS = {"suspicion": "most suspect label first", "confidence": "most confident mistake first",
                "clip": "by clip id"}

st.title("Review")
ui.intro(
    "A queue through the model's **misclassified clips** and its **suspected label errors**, one clip at a time. "
    "Suspects come from confident learning on out-of-fold probabilities (a logistic regression on the model's "
    "embedding, fitted on the other folds; `python -m core label-issues` prints the same ranking). For each clip: "
    "hear it, compare the Grad-CAM of its label with that of the prediction, listen to its nearest training clips, "
    "and write down a **verdict**. Verdicts are saved at once in a database on disk and survive a restart."
)

models = ui.need_models()
model_name, folder = ui.pick_model(models, key="review_model")
root = state.get(state.DATASET_ROOT)
if not root:
    st.info("Pick a dataset in the sidebar.")
    st.stop()
loaded = cached.checkpoint(folder)
cfg = loaded.audio_cfg
data = cached.dataset(root)
if trust.unknown_classes(model_name, loaded.classes, data.classes).unknown:  # said before any work
    st.caption("The queue is made of the model's mistakes and suspect labels, and neither has a meaning for classes "
               "the model does not know. `python -m core label-issues` still ranks this dataset's labels on the "
               "model's embedding; the Embeddings page shows how its features group these classes.")
    st.stop()
current = ui.current_clip()
if current is not None and current.origin == "upload":
    trust.clip_novelty(f"{model_name} (your upload {current.name})", folder, current.path)

# -- the verdict store ---------------------------------------------------------------------
if DB not in st.session_state:
    st.session_state[DB] = str(default_store_path())
with st.expander("Where verdicts are kept", expanded=False):
    st.text_input("Verdict database (SQLite file)", key=DB,
                  help="Created when missing. Pick another file to keep a separate review.")
try:
    store = cr.store(st.session_state[DB])
except InputError as error:
    store = None
    st.error(str(error))
    st.warning("Verdicts are not being saved: pick another database file above. The review still works.")

try:
    issues = cr.label_issues(folder, root)
except InputError as error:
    st.error(str(error))
    st.stop()
dataset_fp, checkpoint_fp = cr.fingerprints(folder, root)
classes = loaded.classes

c1, c2, c3 = st.columns([2, 2, 1])
order = c1.selectbox("Order", QUEUE_ORDERS, format_func=ORDER_LABELS.get, key="review_order")
n_suspects = c2.slider("Top suspects always in the queue", 0, 50, 10, key="review_suspects",
                       help="Besides every clip the model gets wrong and every clip confident learning flags.")
try:
    queue = review_queue(issues, n_suspects=n_suspects, order=order)
except InputError as error:
    st.error(f"{model_name}: {error}")
    st.stop()
n_wrong = int(np.sum(issues.model_proba.argmax(axis=1) != issues.labels))
st.caption(f"{len(queue)} clips in the queue: {n_wrong} misclassified by {model_name}, {int(issues.flagged.sum())} "
           f"flagged by confident learning, plus the top {n_suspects} of the ranking. The ranking is evidence only "
           f"where its top holds more label errors than a random pick would; on a dataset with planted errors, "
           f"`python -m core label-issues` reports both.")
confidence = label_trust(issues)
(st.warning if confidence["weak"] else st.caption)(f"How far to trust the ranking: {confidence['sentence']}")
if not queue:
    st.success("Nothing to review: the model gets every clip right and no label is suspect.")
    st.stop()

if POS not in st.session_state:  # a new session (a reload): start at the first clip without a verdict
    done = set()
    if store is not None:
        try:
            done = {v.clip_id for v in store.all(dataset=dataset_fp, model=model_name, checkpoint=checkpoint_fp)
                    if v.verdict}
        except InputError as error:
            st.error(str(error))
    st.session_state[POS] = next((k for k, i in enumerate(queue) if issues.clip_ids[i] not in done), 0)
pos = min(int(st.session_state.get(POS, 0)), len(queue) - 1)
nav1, nav2, nav3 = c3.columns(3)
if nav1.button("◀", key="review_prev", help="Previous clip", disabled=pos == 0):
    pos -= 1
if nav3.button("▶", key="review_next", help="Next clip", disabled=pos >= len(queue) - 1):
    pos += 1
st.session_state[POS] = pos
nav2.markdown(f"**{pos + 1} / {len(queue)}**")

i = queue[pos]
clip_id = issues.clip_ids[i]
record = data.record(clip_id)
path = str(record.path)
probs = issues.model_proba[i]
label, predicted = int(issues.labels[i]), int(np.argmax(probs))
rank = int(np.flatnonzero(issues.order == i)[0]) + 1
st.subheader(f"{clip_id}: labelled '{classes[label]}', predicted '{classes[predicted]}' ({probs[predicted]:.0%})")
st.caption(f"Suspicion rank {rank} of {len(issues.clip_ids)}; out-of-fold probability of its label "
           f"{issues.quality[i]:.2f}; {'flagged' if issues.flagged[i] else 'not flagged'} by confident learning; "
           f"fold {record.fold}" + ("" if predicted != label else "; the model gets this clip right"))
trust.clip_novelty(model_name, folder, path)

# -- the verdict --------------------------------------------------------------------------
key_args = dict(dataset=dataset_fp, clip_id=clip_id, model=model_name, checkpoint=checkpoint_fp)
saved = None
if store is not None:
    try:
        saved = store.get(**key_args)
    except InputError as error:
        st.error(str(error))
verdict_key, note_key = f"review_verdict_{clip_id}", f"review_note_{clip_id}"
if verdict_key not in st.session_state:
    st.session_state[verdict_key] = saved.verdict if saved and saved.verdict else NO_VERDICT
if note_key not in st.session_state:
    st.session_state[note_key] = saved.note if saved else ""


def save_verdict() -> None:
    """``on_change``: save this clip's verdict and note in one transaction."""
    if store is None:
        return
    value = st.session_state[verdict_key]
    try:
        store.save(Verdict(**key_args, verdict=None if value == NO_VERDICT else value,
                           note=st.session_state[note_key], label=classes[label], predicted=classes[predicted],
                           dataset_root=str(data.root)))
        st.session_state["review_saved"] = clip_id
    except InputError as error:
        st.session_state["review_save_error"] = str(error)


v1, v2 = st.columns([2, 3])
v1.radio("Verdict", [NO_VERDICT, *VERDICTS], key=verdict_key, on_change=save_verdict, horizontal=False)
v2.text_area("Note", key=note_key, on_change=save_verdict, height=120,
             placeholder="What did you hear? Why is the label or the model wrong?")
save_error = st.session_state.pop("review_save_error", None)
if save_error:
    st.error(f"The verdict was not saved: {save_error}")
elif store is not None:
    st.caption(f"Saved in `{store.path}`." if saved or st.session_state.get("review_saved") == clip_id
               else f"Nothing saved for this clip yet (database `{store.path}`).")

# -- the clip ----------------------------------------------------------------------------
left, right = st.columns([3, 2], gap="medium")
with left:
    samples, _, _ = cached.clip_samples(path, cfg.sr)
    st.audio(samples, sample_rate=cfg.sr)
with right:
    st.plotly_chart(figures.top_k_bars(probs, classes, k=5, true_label=label, title=f"{model_name}: top 5"),
                    key="review_top5")

# -- Grad-CAM, label vs prediction --------------------------------------------------------
taps = loaded.cam_taps()
if taps:
    cam_labels = {t.name: t.label for t in taps}
    tap = st.select_slider("Grad-CAM layer", list(cam_labels), value=loaded.default_cam_tap(),
                           format_func=cam_labels.get, key=f"review_tap_{loaded.kind}")
    X = cached.model_input(path, cached.input_key(folder))
    boxes = data.boxes(clip_id)
    cols = st.columns(2)
    for col, (what, target) in zip(cols, (("label", label), ("prediction", predicted))):
        with col:
            heat = cached.gradcam(folder, path, tap, target)
            fig = figures.overlay(X, heat, cfg, boxes=boxes, title=f"Grad-CAM for the {what} "
                                  f"'{classes[target]}' ({probs[target]:.0%})")
            limits = ui.mark_limits(path, cfg, fig)
            ui.plot(fig, key=f"review_cam_{what}", stem=f"review_gradcam_{what}_{ui.safe_stem(clip_id)}")
            if not np.any(heat > 0):
                st.caption(ui.EMPTY_MAP)
    ui.limits_caption(limits, cfg)
    if label == predicted:
        st.caption("The model predicts the label here, so the two maps are the same.")
else:
    tap = None
    st.info(f"{model_name} has no layer Grad-CAM can explain.")

# -- nearest training clips -----------------------------------------------------------------
st.subheader("Nearest training clips")
n_taps = loaded.taps(*NEIGHBOUR_KINDS)
n_labels = {t.name: t.label for t in n_taps}
k1, k2 = st.columns([3, 1])
n_tap = k1.selectbox("Layer", list(n_labels), index=len(n_labels) - 1, format_func=n_labels.get,
                     key=f"review_ntap_{loaded.kind}", help="Clips are compared by their vectors at this layer "
                                                            "(conv maps averaged over time and frequency).")
k = k2.number_input("k", min_value=1, max_value=12, value=4, key="review_k")
st.caption("Distances on standardised vectors, among the folds the model was trained on. If the neighbours carry "
           "the predicted class, the model's answer has company; if they carry the label, the label does.")
near = cr.neighbours(folder, root, n_tap, clip_id, int(k))
for j in near:
    r = data.records[j]
    right_wrong = "right" if int(issues.model_proba[j].argmax()) == int(issues.labels[j]) else "wrong"
    a, b = st.columns([2, 3])
    a.markdown(f"`{r.clip_id}`: **{r.category}** (model {right_wrong})")
    with b:
        s, _, _ = cached.clip_samples(str(r.path), cfg.sr)
        st.audio(s, sample_rate=cfg.sr)

# -- class averages ---------------------------------------------------------------------------
st.subheader("Class averages")
st.caption("The mean model input (log-mel, standardised per clip) of every clip labelled with the class, and of "
           "the clips in this confusion cell (labelled as this one, predicted as this one). Time left to right, "
           "frequency up (Hz).")
pred_all = issues.model_proba.argmax(axis=1)
ids = issues.clip_ids
groups = [(f"labelled '{classes[label]}'", tuple(ids[j] for j in np.flatnonzero(issues.labels == label))),
          (f"labelled '{classes[predicted]}'", tuple(ids[j] for j in np.flatnonzero(issues.labels == predicted))),
          (f"labelled '{classes[label]}', predicted '{classes[predicted]}'",
           tuple(ids[j] for j in np.flatnonzero((issues.labels == label) & (pred_all == predicted))))]
if label == predicted:
    groups = groups[:1]
cols = st.columns(len(groups))
for col, (title, group) in zip(cols, groups):
    with col:
        mean = cr.average_input(folder, root, group)
        if mean is None:
            st.caption(f"No clip is {title}.")
            continue
        st.markdown(f"**{title}**: {len(group)} clip{'' if len(group) == 1 else 's'}")  # wraps; a chart title is cut
        ui.plot(figures.spectrogram(mean, cfg, unit="z", max_cols=144),
                key=f"review_avg_{title}", stem=f"review_average_{ui.safe_stem(title)}")

# -- export ----------------------------------------------------------------------------------
st.subheader("Export the review")
if store is None:
    st.caption("No database: nothing to export.")
else:
    try:
        mine = store.all(dataset=dataset_fp, model=model_name, checkpoint=checkpoint_fp)
    except InputError as error:
        mine = []
        st.error(str(error))
    st.caption(f"{len(mine)} verdict{'' if len(mine) == 1 else 's'} for {model_name} on this dataset.")
    e1, e2 = st.columns(2)
    e1.download_button("Verdicts (CSV)", data=verdicts_csv(mine), file_name="review.csv", mime="text/csv",
                       key="review_csv", on_click="ignore", icon=":material/download:")
    if tap is not None and mine:
        e2.download_button("Report (HTML, figures and audio inside)",
                           data=lambda: cr.report(mine, folder, root, tap, title=f"Error review: {model_name}")
                           .encode("utf-8"),
                           file_name="review.html", mime="text/html", key="review_html", on_click="ignore",
                           icon=":material/download:")
