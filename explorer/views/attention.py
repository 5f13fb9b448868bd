"""Attention page: where a transformer's heads look, and where attention flows over all layers."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

from core.errors import InputError
from core.interpret.attention import CLASS_TOKEN, DEFAULT_LAYERS
from core.interpret.registry import method, usable
from core.interpret.scorecard import starts_on_request
from explorer import cached, figures, state, trust, ui

GRID_KEY = "attention_grid_chart"
GRID_HEADS = 4  # heads drawn side by side by default
PICKER_KEY = "attention_picker_chart"
ROLLOUT = method("rollout")
OPENED_KEY = "attention_opened_on"  # (model folder, clip path) the query was last chosen for


def on_patch_click(chart_key: str) -> None:
    """Selection callback: a clicked patch becomes the query (runs before the page redraws)."""
    patch = figures.patch_from_selection(st.session_state.get(chart_key))
    if patch is not None:
        st.session_state[state.QUERY] = patch


def use_class_token() -> None:
    st.session_state[state.QUERY] = CLASS_TOKEN


def attention_over_time(loaded, folder: str, clip, model_name: str) -> None:
    """A model whose attention runs over its own time steps (no patch grid): the query-by-key matrix, one
    query's attention on the spectrogram, and how much of it lands on the event against uniform attention."""
    from core.interpret.sequence_attention import event_share, event_tokens, token_edges
    from explorer.figures import sequence as figures_sequence

    cfg = loaded.audio_cfg
    taps = {t.name: t.label for t in loaded.taps("attention")}
    tap = next(iter(taps))
    if len(taps) > 1:
        tap = st.selectbox("Attention module", list(taps), format_func=taps.get, key="attention_time_tap")
    try:
        weights = cached.time_attention(folder, clip.path, tap)
    except InputError as error:
        st.error(str(error))
        st.stop()
    n_heads, n_tokens = weights.shape[0], weights.shape[-1]
    edges = token_edges(n_tokens, figures.extent_s(cfg))
    st.caption(f"{model_name} attends over {n_tokens} time steps, not spectrogram patches. Each step is read as "
               f"{edges[1]:.3f} s of the clip, equally spaced (an assumption about the model: true when its "
               f"layers pool over the clip's frames). "
               + ("Its attention module averages its heads." if n_heads == 1 else f"{n_heads} heads, averaged here."))
    received = weights.mean(axis=(0, 1))
    query = st.select_slider("Query time step", options=list(range(weights.shape[1])),
                             value=int(np.argmax(received)) if weights.shape[1] == n_tokens else 0,
                             format_func=lambda k: f"{edges[k]:.2f}–{edges[k + 1]:.2f} s", key="attention_time_query",
                             help="Opens on the step that receives most attention, averaged over the queries.")
    events = ui.clip_boxes(clip)
    left, right = st.columns(2)
    with left:
        ui.plot(figures_sequence.attention_matrix(weights, edges, query=query, title="Who attends to whom"),
                key="attention_time_matrix", stem=f"attention_time_{ui.safe_stem(model_name)}_{ui.safe_stem(clip.name)}")
    with right:
        X = cached.model_input(clip.path, cached.input_key(folder))
        heat = figures_sequence.query_heat(weights, edges, query, cfg)
        fig = figures.overlay(X, heat, cfg, boxes=events, title=f"Where the step at {edges[query]:.2f} s looks",
                              unit=f"weight (1 = {figures_sequence.FULL_AT:g}× uniform)")
        limits = ui.mark_limits(clip, cfg, fig)
        ui.plot(fig, key="attention_time_overlay", stem=f"attention_time_query_{ui.safe_stem(clip.name)}")
        ui.limits_caption(limits, cfg)
    if events:
        on_event = event_tokens(edges, [(b.t0_s, b.t1_s) for b in events])
        result = event_share(weights, on_event)
        m1, m2, m3 = st.columns(3)
        m1.metric("Attention on the event", f"{result['share'].mean():.0%}",
                  help="Share of each query's attention that goes to time steps overlapping the clip's event "
                       "boxes, averaged over queries (and heads).")
        m2.metric("Uniform attention (chance)", f"{result['chance']:.0%}", help="The event's share of the time steps.")
        ratio = float(np.nanmean(result["ratio"]))
        m3.metric("Ratio to chance", f"{ratio:.2f}×")
        st.caption("Above 1×, the module attends to the event more than uniform attention would; at or below 1×, "
                   "it does not single the event out (attention is not the decision either way).")
    else:
        st.caption("This clip has no event boxes, so how much attention lands on the event is not measured.")


st.title("Attention")
ui.intro(
    "A transformer cuts the spectrogram into **patches** and lets every patch look at every other one. "
    "In the grid, each cell is one **head** of one **layer**: the cyan box is the query patch and the "
    "orange arcs go to the patches it attends to most (thicker = more attention). The page opens on the "
    "patch the rollout map ranks highest among those covering the clip's event (for a clip without event "
    "boxes, the highest of all); **click a patch on the rollout map** below to make it the query "
    "(hovering a cell of the grid gives each patch's weight). Below, **attention rollout** multiplies "
    "attention through all layers to show which parts of the clip reach the class token that makes the "
    "decision; there too the query is cyan, and a dashed white box marks where the clip's true event is "
    "(demo clips only)."
)

clip = ui.need_clip()
models = ui.need_models("Attention", what="a transformer with attention on a patch grid (an AST)")
model_name, folder = ui.pick_model(models, key="attention_model")
loaded = cached.checkpoint(folder)
if "attention per head" not in usable(loaded, "Attention"):  # attention over its time steps, no patch grid
    ui.method_notes(loaded, "Attention")  # says why there is no grid of heads or rollout
    st.markdown(ui.clip_caption(clip))
    attention_over_time(loaded, folder, clip, model_name)
    st.stop()
cfg = loaded.audio_cfg
key = cached.input_key(folder)
n_layers, n_heads = loaded.model.config.depth, loaded.model.config.heads
boxes = cached.patch_boxes(folder)
n_patches = boxes.shape[0]
st.markdown(ui.clip_caption(clip))
trust.clip_novelty(model_name, folder, clip.path, explanation=True)

samples, _, _ = cached.clip_samples(clip.path, cfg.sr)
stereo = samples.shape[0] == 2
channel = "mix"
if stereo:  # a mono clip has only the one channel: nothing to choose
    c1, c2, c3, c4 = st.columns([2, 3, 1, 1])
    channel = c1.radio("Channel", cached.CHANNELS, horizontal=True, key="attention_channel",
                       format_func={"mix": "mix-down", "left": "left", "right": "right"}.get,
                       help="The model hears the mix-down; left and right are fed to it separately to compare.")
else:
    c2, c3, c4 = st.columns([4, 1, 1])
layers = c2.multiselect("Layers", list(range(1, n_layers + 1)),
                        default=[l for l in DEFAULT_LAYERS if l <= n_layers] or [n_layers], key="attention_layers")
top_k = c3.slider("Top-k", min_value=1, max_value=10, value=5, key="attention_top_k")
groups = {f"{h}-{min(h + GRID_HEADS - 1, n_heads)}": tuple(range(h, min(h + GRID_HEADS, n_heads + 1)))
          for h in range(1, n_heads + 1, GRID_HEADS)}
if len(groups) > 1:  # 8 heads side by side leave each cell ~70 px: its ticks unreadable
    groups["all"] = tuple(range(1, n_heads + 1))
    heads = groups[c4.selectbox("Heads", list(groups), key="attention_heads",
                                help=f"{GRID_HEADS} heads at a time keep each cell wide enough to read.")]
else:
    heads = tuple(range(1, n_heads + 1))

if st.session_state.get(OPENED_KEY) != (folder, clip.path):  # a new clip or model: open on its strongest patch
    if state.url_asked(state.QUERY) is None:  # ... unless a link names the query
        events = tuple((b.t0_s, b.t1_s, b.f0_hz, b.f1_hz) for b in ui.clip_boxes(clip))
        st.session_state[state.QUERY] = cached.default_query(folder, clip.path, events)
    st.session_state[OPENED_KEY] = (folder, clip.path)
query = state.get(state.QUERY)
if query != CLASS_TOKEN and not (isinstance(query, int) and 0 <= query < n_patches):
    query = CLASS_TOKEN
    st.session_state[state.QUERY] = query
    if state.url_asked(state.QUERY) is not None:
        st.warning(f"The link's query={state.url_asked(state.QUERY)} is not a patch of {model_name} "
                   f"(0 to {n_patches - 1}): showing the class token's attention instead.")
state.url_settled(state.QUERY)

X = cached.model_input(clip.path, key, channel)
limits = ui.mark_limits(clip, cfg)
if not layers:
    st.info("Pick at least one layer.")
else:
    layers = tuple(sorted(layers))
    weights = cached.query_weights(folder, clip.path, layers=layers, heads=heads, query=query, channel=channel)
    fig = figures.attention_grid(X, cfg, weights=weights, layers=layers, heads=heads, patch_boxes=boxes,
                                 query=None if query == CLASS_TOKEN else query, top_k=top_k,
                                 padded_from_s=limits.padded_from_s)
    ui.plot(fig, key=GRID_KEY, stem=f"attention_{ui.safe_stem(model_name)}_{ui.safe_stem(clip.name)}")
    ui.limits_caption(limits, cfg, bands_marked=False)

roll_col, control_col = st.columns([3, 2], gap="medium")
with control_col:
    if query == CLASS_TOKEN:
        st.markdown("**Query:** the class token; its top patches are filled, darker = more attention. "
                    "Click a patch on the rollout map to query it instead.\n\n**Rollout**")
    else:
        t0, t1, f0, f1 = boxes[query]
        st.markdown(f"**Query:** patch {query}, {t0:.2f}–{t1:.2f} s, {f0:.0f}–{f1:.0f} Hz. Click another "
                    "patch on the rollout map to query it.")
        st.button("Query the class token instead", on_click=use_class_token, key="attention_cls")
        st.markdown("**Rollout**")
    rollout_params = ui.method_params(ROLLOUT, loaded, key="attention")
    fusion, discard = rollout_params["head_fusion"], rollout_params["discard_ratio"]
    marks = (["solid cyan: the query patch"] if query != CLASS_TOKEN else []) + (
        ["dashed white: the clip's true event"] if ui.clip_boxes(clip) else [])
    st.caption("Bright = much of the class token's information comes from there" + (
        f" ({'; '.join(marks)})" if marks else "") + ". Dropping weak links sharpens the map; max fusion follows "
               "the most focused head.")
with roll_col:
    try:
        heat = cached.rollout(folder, clip.path, head_fusion=fusion, discard_ratio=float(discard), channel=channel)
    except InputError as error:
        st.error(str(error))
        st.stop()
    events = ui.clip_boxes(clip)
    picker = figures.patch_picker(X, cfg, patch_boxes=boxes, query=None if query == CLASS_TOKEN else query,
                                  heat=heat, boxes=events,
                                  title="Attention rollout: what reaches the class token")
    ui.mark_limits(clip, cfg, picker)
    ui.plot(picker, key=PICKER_KEY, stem=f"rollout_{ui.safe_stem(model_name)}_{ui.safe_stem(clip.name)}",
            on_select=partial(on_patch_click, PICKER_KEY), selection_mode="points")


STEREO_ON_REQUEST = "Rollout of the left and right channels (two more passes through this large model)"
if stereo:
    st.subheader("Left, right and mix-down")
    # a large model's two extra passes (seconds each on a laptop) wait for a click, as its scorecards do
    stereo = not starts_on_request(loaded.model) or st.toggle(STEREO_ON_REQUEST, key="attention_stereo_on")
if stereo:
    st.caption("Rollout for each channel fed to the model on its own, with the same fusion and discard. Left and "
               "right keep their loudness difference and share one colour scale, so a sound panned to one side can "
               "light up more in that channel; the mix-down is scaled on its own. Measured on the demo set's fold 5 "
               "(model card): the shipped AST's pair leans to the event's side in 25 of 30 stereo clips, the "
               "channels' loudness alone in 29 of 30, so most of an L/R difference is the input's level.")
    cols = st.columns(3)
    for col, ch in zip(cols, ("left", "right", "mix")):
        with col:
            h = cached.rollout(folder, clip.path, head_fusion=fusion, discard_ratio=float(discard), channel=ch)
            fig = figures.overlay(cached.model_input(clip.path, key, ch), h, cfg, title=ch, height=260)
            ui.mark_limits(clip, cfg, fig)
            st.plotly_chart(fig, key=f"attention_stereo_{ch}")

with st.expander("How faithful is this rollout map? (deletion against baselines, sanity check)", expanded=True):
    target = int(np.argmax(cached.probabilities(folder, clip.path)))
    st.caption(f"Scored for the mix-down and the predicted class, '{loaded.classes[target]}'. Rollout is the same "
               "for every class: it follows attention, not the decision.")
    card = ui.requested_scorecard(loaded, folder, clip.path, ROLLOUT.id, cached.params_key(rollout_params), target,
                                  key="attention_score")
    if card is not None:
        ui.scorecard(card)
