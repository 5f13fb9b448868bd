"""Attribution page: which time-frequency cells a model's decision rests on (any map method of the registry), and how much
to trust that: its deletion curve beside baselines, its sanity verdict, its top cells and the rest as sound."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import InputError
from core.interpret.registry import map_methods
from core.interpret.scorecard import class_note
from explorer import cached, figures, state, trust, ui

PREDICTED = "predicted class"

st.title("Attribution")
ui.intro(
    "**Grad-CAM** (the default; the method box offers every map method that applies to the model) colours the "
    "cells of the spectrogram that push the model towards a class, as seen from one layer: yellow = strong evidence, transparent = none (the last frames a layer's pooling "
    "never sees stay uncoloured). The **deletion curve** checks the map: it blanks the most highlighted cells first and "
    "reruns the model. If the map is right, the class's probability falls fast: faster than when smooth random "
    "blobs are blanked (dashed) and faster than when simply the loudest cells are blanked (dotted). A lower area "
    "under the curve is better. The **sanity check** replaces the model's weights by noise: a map that does not "
    "change then was showing the sound, not the model."
)

clip = ui.need_clip()
models = ui.need_models()
model_name, folder = ui.pick_model(models, key="attribution_model")
loaded = cached.checkpoint(folder)
cfg = loaded.audio_cfg
offered = ui.method_notes(loaded, "Attribution")
methods = {m.id: m for m in map_methods(loaded)}
if not methods:
    st.info(f"{model_name} has no map method that applies to it.")
    st.stop()
st.markdown(ui.clip_caption(clip))

probs = cached.probabilities(folder, clip.path)
predicted = int(np.argmax(probs))
c0, c1, c2 = st.columns([2, 3, 2])
with c0:
    ids = list(methods)
    spec = methods[st.selectbox("Method", ids, index=ids.index("gradcam") if "gradcam" in ids else 0,
                                format_func=lambda i: methods[i].label, key="attribution_method",
                                help="Every map method that applies to this model (core's method registry).")]
with c1:
    params = ui.method_params(spec, loaded, key=f"attribution_{spec.id}")
with c2:
    options = [PREDICTED] + list(loaded.classes)
    target_name = state.bound(st.selectbox, "Class explained", state.TARGET_CLASS, options=options,
                              default=PREDICTED,
                              format_func=lambda c: f"predicted: {loaded.classes[predicted]} ({probs[predicted]:.0%})"
                              if c == PREDICTED else f"{c} ({probs[loaded.classes.index(c)]:.0%})")
target = predicted if target_name == PREDICTED else loaded.classes.index(target_name)
key = cached.params_key(params)
setting = spec.name(params)
tap_labels = {t.name: t.label for t in loaded.cam_taps()}
where = f" at {tap_labels[params['tap']]}" if "tap" in params else ""
note = class_note(probs, target, loaded.classes)
if note:
    st.info(note)

left, right = st.columns([3, 2], gap="medium")
X = cached.model_input(clip.path, cached.input_key(folder))
stem = f"{ui.safe_stem(setting)}_{ui.safe_stem(model_name)}_{ui.safe_stem(clip.name)}"
try:
    heat = cached.method_map(folder, clip.path, spec.id, key, target)
except InputError as error:
    st.error(str(error))
    st.stop()
with left:
    boxes = ui.clip_boxes(clip)
    zero = cached.map_zero(folder, clip.path, spec.id, key, target) if spec.signed else None
    empty = not np.any(heat > (zero or 0.0))
    title = f"{spec.label} for '{loaded.classes[target]}'{where}" + (
        ": empty map" if empty else " (dashed white: true event)" if boxes else "")
    fig = figures.overlay(X, heat, cfg, title=title, boxes=boxes, zero=zero)
    limits = ui.mark_limits(clip, cfg, fig)
    ui.plot(fig, key="attribution_overlay", stem=stem)
    if empty:
        st.caption(ui.EMPTY_MAP)
    note = cached.method_note(folder, clip.path, spec.id, key, target)
    if note:
        st.warning(note)
    if spec.signed and not empty:
        st.caption(f"{spec.label} is signed: only the cells that push the model towards '{loaded.classes[target]}' "
                   f"are coloured (above {zero:.2f} on the map's 0-1 scale, where its 0 lies), full colour from the 99th "
                   "percentile of those cells; those that push it away are left as clear as those that do nothing. The scores below rank every cell of the map.")
    if not spec.class_specific:
        st.caption(f"{spec.label} is the same for every class: it does not follow the decision.")
    ui.limits_caption(limits, cfg)
    trust.clip_novelty(model_name, folder, clip.path, explanation=True)

with right:
    if "deletion curve" not in offered:
        st.info("No deletion curve for this model: it masks the model's input cell by cell, and this model's "
                "input is not laid out on the map's (n_mels, n_frames) grid.")
    elif (card := ui.requested_scorecard(loaded, folder, clip.path, spec.id, key, target,
                                         key="attribution_score")) is not None:
        fig = figures.curve(card["fractions"], card["probabilities"], x_label="share of cells blanked (0-1)",
                            y_label=f"probability of '{loaded.classes[target]}' (0-1)", name=f"{spec.label} order",
                            baseline=(card["fractions"], card["random_probabilities"]),
                            baseline_name="smooth random blobs (mean)",
                            more_baselines=[(card["fractions"], card["energy_probabilities"], "loudest cells first")],
                            title="Deletion curve", y_range=(0.0, 1.0))
        ui.plot(fig, key="attribution_deletion", stem=f"deletion_{stem}")
        ui.scorecard(card)
        ui.download_table(list(zip(card["fractions"], card["probabilities"], card["random_probabilities"],
                                   card["energy_probabilities"])),
                          ["fraction_blanked", "probability_map_order", "probability_smooth_random_mean",
                           "probability_energy_order"], stem=f"deletion_{stem}", key="attribution_deletion_csv")

st.subheader("Listen to the highlighted region, and to the rest")
st.caption("The map's top cells mask the clip's STFT (each mel cell mapped back to its linear frequency bins) and "
           "both parts are turned back into sound with the clip's own phase, as L-MAC does: the kept part should "
           "keep the class, the rest should lose it. The two parts add up to the clip.")
l1, l2 = st.columns([1, 2])
keep = l1.slider("Share of cells kept (%)", min_value=5, max_value=50, value=20, step=5, key="attribution_keep")
if l1.toggle("Make the sound", value=False, key="attribution_listen",
             help="Takes a second or two the first time for each setting."):
    heard = cached.listened(folder, clip.path, spec.id, key, target, float(keep))
    name = loaded.classes[target]
    with l2:
        for label, audio, p in (("Kept (masked in)", heard["masked_in"], heard["p_in"]),
                                ("Removed (masked out)", heard["masked_out"], heard["p_out"])):
            st.caption(f"{label}: probability of '{name}' {p[target]:.0%} (the whole clip: {heard['p'][target]:.0%}); "
                       f"the model hears '{loaded.classes[int(np.argmax(p))]}'.")
            if np.max(np.abs(audio)) > 0:
                st.audio(audio, sample_rate=cfg.sr)
            else:
                st.warning("Nothing is left to hear at this setting.")
