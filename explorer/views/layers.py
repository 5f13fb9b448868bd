"""Layers page: what each layer of a model makes of a clip."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import InputError
from core.kinds import MAP_TAP_KINDS
from explorer import cached, figures, state, ui

VIEW_KINDS = MAP_TAP_KINDS + ("se",)

st.title("Layers")
ui.intro(
    "Each layer turns the spectrogram into many **feature maps**, one per channel, on the same time x "
    "frequency axes but coarser as you go deeper. Bright cells are where a channel responds; the grid shows "
    "the strongest channels for this clip. At a **squeeze-and-excitation (SE)** step the network rescales its "
    "channels per clip: red bars are the channels it boosts most for this clip, blue the ones it suppresses."
)

clip = ui.need_clip()
models = ui.need_models()
model_name, folder = ui.pick_model(models, key="layers_model")
loaded = cached.checkpoint(folder)
cfg = loaded.audio_cfg
taps = [t for t in loaded.model.taps() if t.kind in VIEW_KINDS]
labels = {t.name: t.label for t in taps}
kinds = {t.name: t.kind for t in taps}
tap_names = list(labels)
ui.method_notes(loaded, "Layers")
if not tap_names:
    st.info(f"{model_name} has no layer this page can draw.")
    st.stop()

maps_taps = [n for n in tap_names if kinds[n] != "se"]
default_tap = maps_taps[len(maps_taps) // 2] if maps_taps else tap_names[0]
tap = state.bound(st.select_slider, "Layer (tap)", state.TAP, options=tap_names,
                  default=default_tap, format_func=labels.get,
                  help="From the input (left) to the output (right).")

c1, c2, c3 = st.columns([1, 1.3, 1.7])
compare = c3.radio("Side by side", ["nothing", "another layer", "another clip"], horizontal=True,
                   key="layers_compare")

panels: list[tuple[str, str, state.ClipRef]] = [(tap, labels[tap], clip)]
if compare == "another layer":
    others = [n for n in tap_names if n != tap] or tap_names
    second = st.select_slider("Second layer", options=others, value=others[-1], format_func=labels.get,
                              key="layers_second_tap")
    panels.append((second, labels[second], clip))
elif compare == "another clip":
    if clip.dataset_root is None and state.get(state.DATASET_ROOT) is None:
        st.info("Another clip needs a dataset: pick one in the sidebar.")
    else:
        data = cached.dataset(state.get(state.DATASET_ROOT))
        ids = [r.clip_id for r in data.records if r.clip_id != clip.name]
        by_id = {r.clip_id: r for r in data.records}
        other_id = st.selectbox("Second clip", ids, key="layers_second_clip",
                                format_func=lambda cid: f"{cid} ({by_id[cid].category})")
        r = by_id[other_id]
        panels.append((tap, labels[tap], state.ClipRef(path=str(r.path), name=r.clip_id, origin="dataset",
                                                        label=r.label, category=r.category,
                                                        dataset_root=str(data.root))))

# The channel controls only act on feature maps: hidden while every panel is an SE tap. Their last values
# are kept aside, since Streamlit forgets a widget's value on a run that does not draw it.
n_channels, order = st.session_state.get("_layers_n", 12), st.session_state.get("_layers_order", "mean")
if any(kinds[name] != "se" for name, _, _ in panels):
    n_channels = c1.slider("Channels shown", min_value=4, max_value=32, value=n_channels, step=4, key="layers_n")
    order = c2.radio("Strongest by", figures.CHANNEL_ORDERS, horizontal=True, key="layers_order",
                     index=figures.CHANNEL_ORDERS.index(order),
                     help="How channels are ranked for this clip: mean activation, largest (max) activation, "
                          "or how much the map varies.")
    st.session_state["_layers_n"], st.session_state["_layers_order"] = n_channels, order

columns = st.columns(len(panels), gap="medium")
for i, (column, (tap_name, label, panel_clip)) in enumerate(zip(columns, panels)):
    with column:
        st.markdown(f"**{label}**: {ui.clip_caption(panel_clip).removeprefix('Clip: ')}")
        try:
            value = cached.feature_maps(folder, panel_clip.path, tap_name)
        except InputError as error:
            st.error(str(error))
            continue
        stem = f"{ui.safe_stem(model_name)}_{tap_name}_{ui.safe_stem(panel_clip.name)}"
        if kinds[tap_name] == "se":
            n_marked = min(5, value.shape[0] // 2)
            ui.plot(figures.se_weights(value, n_marked=n_marked, title=f"SE channel weights, {label}"),
                    key=f"layers_se_{i}", stem=f"se_{stem}")
            order_idx = np.argsort(-value, kind="stable")
            st.caption(f"Most boosted: {', '.join(map(str, order_idx[:n_marked]))}; most suppressed: "
                       f"{', '.join(map(str, order_idx[::-1][:n_marked]))}. Mean weight {value.mean():.2f}.")
            ui.download_table([(c, float(w)) for c, w in enumerate(value)], ["channel", "weight"],
                              stem=f"se_{stem}", key=f"layers_se_csv_{i}")
        else:
            chosen = figures.strongest_channels(value, n=n_channels, order=order)
            n_cols = 4 if len(panels) == 1 else 3
            limits = ui.mark_limits(panel_clip, cfg)
            ui.plot(figures.channel_grid(value, chosen, cfg, n_cols=n_cols, padded_from_s=limits.padded_from_s,
                                         title=f"{len(chosen)} strongest of {value.shape[0]} channels by {order} "
                                               f"({value.shape[1]} x {value.shape[2]} cells)"),
                    key=f"layers_grid_{i}", stem=f"maps_{stem}")
            ui.limits_caption(limits, cfg, bands_marked=False)
