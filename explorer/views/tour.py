"""Tour page: one clip through one model, in ten short steps, each one idea, one figure and a few sentences.

Every figure is the one an expert page draws for the same picks (the same :mod:`explorer.cached`
call and :mod:`explorer.figures` function), and each step opens that page with its picks. Back and
Next (or the arrow keys) walk the steps; the step is a pick, so a link opens it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import streamlit as st

from core.errors import InputError
from core.interpret.registry import map_methods
from explorer import cached, figures, state, ui

# The Layers page's defaults (its "Channels shown" slider and "Strongest by" radio), so a step's grid is its grid.
N_CHANNELS, CHANNEL_ORDER = 12, "mean"
PRESENTER_HEIGHT = 270  # px: a step's figures in the presenter setting, so that a step fits 1280 x 720
PRESENTER_TALL = 370  # px: the same for a step without widgets above its figure
FIGURE_HEIGHT = {False: 320, True: PRESENTER_HEIGHT}
SHORTCUT = "shortcut"  # the checkpoint folder of the model trained with a planted shortcut (checkpoints/shortcut)
METHODS = ("Grad-CAM", "Integrated Gradients")


@dataclass(frozen=True)
class Tour:
    """What every step reads: the clip, the tour's model and the presenter setting."""

    clip: state.ClipRef
    name: str
    folder: str
    loaded: object
    presenter: bool
    step: int

    @property
    def cfg(self):
        return self.loaded.audio_cfg


def show(tour: Tour, fig, *, key: str, stem: str, tall: bool = False, **kwargs):
    """Draw an expert page's figure; in the presenter setting with larger text, fitted to the screen and without
    its save button (the data is untouched). ``tall``: the step has no widgets, so its figure may take more room."""
    if not tour.presenter:
        return ui.plot(fig, key=key, stem=stem, **kwargs)
    height = PRESENTER_TALL if tall else PRESENTER_HEIGHT
    fig.update_layout(font={"size": 16}, height=min(fig.layout.height or height, height))
    return st.plotly_chart(fig, key=key, **kwargs)


@dataclass(frozen=True)
class Link:
    """Where a step's figure lives: an expert page (its name and title) and the picks that open it there."""

    page: str
    title: str
    picks: dict = field(default_factory=dict)


def open_in(link: Link, *, key: str) -> None:
    """The step's "Open this in <page>" button: it sets the page's picks, then opens it."""
    def go() -> None:
        for name, value in link.picks.items():
            st.session_state[name] = value

    if st.button(f"Open this in {link.title}", key=key, icon=":material/open_in_new:", type="tertiary", on_click=go):
        st.switch_page(state.page_file(link.page))


def not_here(text: str) -> None:
    st.info(f"**This step does not apply here.** {text}")


def _taps(tour: Tour, *kinds: str) -> list:
    return [t for t in tour.loaded.model.taps() if t.kind in kinds]


# ---------------------------------------------------------------------------------------------------------------
# the steps


def step_sound(tour: Tour) -> Link | None:
    samples, native_sr, _ = cached.clip_samples(tour.clip.path, tour.cfg.sr)
    seconds = samples.shape[1] / tour.cfg.sr
    st.markdown(f"A sound is a list of numbers: how the air pressure moves, measured {tour.cfg.sr:,} times a "
                f"second. This clip is {seconds:.2f} s long, {samples.shape[1]:,} numbers"
                f"{' per ear (stereo)' if samples.shape[0] == 2 else ''}. **Play it**, then look: loud moments "
                "are tall, but the waveform does not tell which pitches are sounding.")
    if np.max(np.abs(samples)) > 0:
        st.audio(samples, sample_rate=tour.cfg.sr)
    show(tour, figures.waveform(samples, tour.cfg.sr), key="tour_wave", stem="tour_waveform")
    return Link("clip", "the Clip page")


def step_stft(tour: Tour) -> Link | None:
    cfg = tour.cfg
    steps = cached.steps(tour.clip.path, cached.cfg_key(cfg))
    samples, _, _ = cached.clip_samples(tour.clip.path, cfg.sr)
    window_s, hop_s = cfg.n_fft / cfg.sr, cfg.hop_length / cfg.sr
    st.markdown(f"To see pitches, a window of {cfg.n_fft} samples ({window_s * 1000:.0f} ms) slides along the sound, "
                f"{cfg.hop_length} samples ({hop_s * 1000:.1f} ms) at a time. At each position a Fourier transform "
                "measures how much energy each frequency has: one column of the spectrogram. **Move the window** "
                "and watch its column.")
    duration = samples.shape[1] / cfg.sr
    at = st.slider("Window position (s)", 0.0, max(0.0, round(duration - window_s, 2)), min(1.0, duration / 4),
                   step=0.01, key="tour_window")
    left, right = st.columns([2, 3], gap="medium")
    with left:
        wave = figures.waveform(samples, cfg.sr, title="The window on the sound")
        wave.add_vrect(x0=at, x1=at + window_s, fillcolor="orange", opacity=0.35, line_width=0)
        show(tour, wave, key="tour_stft_wave", stem="tour_window")
    with right:
        spec = figures.spectrogram(steps["db"], cfg, title="Its column of the spectrogram (dB)",
                                   height=FIGURE_HEIGHT[tour.presenter])
        spec.add_vline(x=at + window_s / 2, line_color="orange", line_width=3)
        show(tour, spec, key="tour_stft_spec", stem="tour_spectrogram")
    return Link("clip", "the Clip page")


def step_mel(tour: Tour) -> Link | None:
    cfg = tour.cfg
    steps = cached.steps(tour.clip.path, cached.cfg_key(cfg))
    st.markdown(f"The model does not get every frequency: {cfg.n_mels} **mel filters**, narrow at low pitches and "
                "wide at high ones (as our ears are), add up the energy in bands (1). A **log** (dB) makes quiet and "
                "loud parts visible together (2). Standardised (3) and cut or padded to "
                f"{cfg.n_frames} frames (4), this picture is the model's input.")
    show(tour, figures.feature_steps(steps, cfg), key="tour_steps", stem="tour_preprocessing", tall=True)
    return Link("clip", "the Clip page", {"clip_section": "Preprocessing, step by step"})


def _grid(tour: Tour, tap, *, key: str) -> np.ndarray:
    value = cached.feature_maps(tour.folder, tour.clip.path, tap.name)
    chosen = figures.strongest_channels(value, n=N_CHANNELS, order=CHANNEL_ORDER)
    show(tour, figures.channel_grid(value, chosen, tour.cfg, n_cols=4,
                                    title=f"{len(chosen)} strongest of {value.shape[0]} channels by {CHANNEL_ORDER} "
                                          f"({value.shape[1]} x {value.shape[2]} cells)"),
         key=key, stem=f"tour_{tap.name}", tall=True)
    return value


def _layers_picks(tour: Tour, tap: str) -> dict:
    return {state.TAP: tap, "layers_model": tour.name, "layers_compare": "nothing", "_layers_n": N_CHANNELS,
            "_layers_order": CHANNEL_ORDER}


def step_first_block(tour: Tour) -> Link | None:
    convs = _taps(tour, "conv")
    if not convs:
        not_here(f"{tour.name} has no convolution layers: a transformer cuts the spectrogram into patches instead "
                 "(step 8).")
        return
    first = convs[0]
    st.markdown(f"The first layer, **{first.label}**, slides small filters (3 x 3 cells) over the input. Each filter "
                "makes one **feature map**: bright where the input looks like the filter (an edge in time, a band, "
                "a click). These are the channels that respond most to this clip.")
    _grid(tour, first, key="tour_first_block")
    return Link("layers", "the Layers page", _layers_picks(tour, first.name))


def step_se(tour: Tour) -> Link | None:
    from core.interpret.se_ablation import saved_ablation

    ses = _taps(tour, "se")
    if not ses:
        not_here(f"{tour.name} has no squeeze-and-excitation blocks.")
        return
    card = saved_ablation(tour.loaded.meta or {})
    blocks = card["mean_block"] if card else {}
    # the block whose per-clip reweighting matters most (by the card), else the middle one
    worst = min(blocks, key=blocks.get) if blocks else None
    tap = next((t for t in ses if t.name == f"block{worst}.se"), ses[len(ses) // 2])
    weights = cached.feature_maps(tour.folder, tour.clip.path, tap.name)
    st.markdown(f"After a block, **squeeze-and-excitation** looks at the whole clip and gives each channel a weight "
                f"between 0 and 1: it turns up the channels this clip needs and down the others. Here, "
                f"**{tap.label}** (mean weight {weights.mean():.2f}; red: most boosted, blue: most suppressed).")
    n_marked = min(5, weights.shape[0] // 2)
    show(tour, figures.se_weights(weights, n_marked=n_marked, title=f"SE channel weights, {tap.label}"),
         key="tour_se", stem=f"tour_{tap.name}", tall=True)
    if card is None:
        st.caption("This checkpoint's card holds no SE ablation (`python -m core se-ablation ... --save`).")
    else:
        where = f"fold {card['fold']}, {card['n_clips']} clips" if card.get("fold") else "its test clips"
        words = (f"**Does it matter?** Measured on {where} (the model card): {card['intact']:.1%} accuracy intact, "
                 f"{card['forced_to_1']:.1%} with every weight forced to 1")
        if card["mean_all"] is not None:
            words += (f", {card['mean_all']:.1%} with each block's weights fixed at their training mean (the scale "
                      "kept, only the per-clip choice lost)")
        if blocks:
            words += "; the mean in one block only: " + ", ".join(f"block {k} {v:.1%}" for k, v in blocks.items())
        st.caption(words + ".")
    return Link("layers", "the Layers page", _layers_picks(tour, tap.name))


def step_deeper(tour: Tour) -> Link | None:
    maps = tour.loaded.cam_taps()
    if not maps:
        not_here(f"{tour.name} has no layer drawn as a time x frequency map.")
        return
    last = maps[-1]
    pooled = [t for t in _taps(tour, "embedding")]
    sizes = cached.tap_outputs(tour.folder, tour.clip.path, tuple(t.name for t in pooled)) if pooled else {}
    value = cached.feature_maps(tour.folder, tour.clip.path, last.name)
    chain = " → ".join(f"{t.label}: {sizes[t.name].size} numbers" for t in pooled)
    st.markdown(f"Deeper layers combine the first ones' patterns into larger, rarer ones, on a coarser grid: "
                f"**{last.label}** has {value.shape[0]} channels of {value.shape[1]} x {value.shape[2]} cells. "
                f"Then pooling forgets *where*, keeping *how much*: {chain or 'one vector'}, the clip's embedding.")
    _grid(tour, last, key="tour_deeper")
    return Link("layers", "the Layers page", _layers_picks(tour, last.name))


def step_prediction(tour: Tour) -> Link | None:
    loaded, clip = tour.loaded, tour.clip
    probs = cached.probabilities(tour.folder, clip.path)
    logits = _taps(tour, "logits")
    z = cached.tap_outputs(tour.folder, clip.path, (logits[0].name,))[logits[0].name] if logits else None
    top = int(np.argmax(probs))
    if loaded.multi_label:
        how = "A **sigmoid** turns each class's score (its logit) into a probability on its own: they need not sum to 1."
    else:
        how = ("The last layer gives one score per class, a **logit**; **softmax** turns them into probabilities "
               "that sum to 1: p = exp(z) / Σ exp(z), so a lead of 2 in logits is about 7 times the probability.")
    true = loaded.classes.index(clip.category) if clip.category in loaded.classes else None
    verdict = "" if true is None else (" That is right." if top == true else f" The label says **{clip.category}**.")
    st.markdown(f"{how} {tour.name} predicts **{loaded.classes[top]}** ({probs[top]:.0%}).{verdict}")
    show(tour, figures.top_k_bars(probs, loaded.classes, k=5, true_label=true, title=tour.name),
         key="tour_prediction", stem="tour_prediction", tall=True)
    if z is not None:
        best = np.argsort(-z)[:3]
        st.caption("Logits → probabilities: " + "; ".join(f"{loaded.classes[k]} {z[k]:+.2f} → {probs[k]:.1%}"
                                                          for k in best) + ".")
    return Link("clip", "the Clip page")


def _patch_model(tour: Tour) -> tuple[str, str] | None:
    """The tour's model if it attends over a patch grid, else the first chosen model that does."""
    from core.interpret.registry import usable

    for name, folder in [(tour.name, tour.folder)] + ui.chosen_models():
        if "attention per head" in usable(cached.checkpoint(folder), "Attention"):
            return name, folder
    return None


def step_attention(tour: Tour) -> Link | None:
    found = _patch_model(tour)
    if found is None:
        not_here(f"{tour.name} is not a transformer over spectrogram patches. Pick an AST in the sidebar (beside "
                 "it, as a second model) to take this step.")
        return
    name, folder = found
    loaded = cached.checkpoint(folder)
    cfg, model_cfg = loaded.audio_cfg, loaded.model.config
    boxes = cached.patch_boxes(folder)
    events = ui.clip_boxes(tour.clip)
    query = cached.default_query(folder, tour.clip.path, tuple((b.t0_s, b.t1_s, b.f0_hz, b.f1_hz) for b in events))
    X = cached.model_input(tour.clip.path, cached.input_key(folder))
    n_f, n_t = loaded.model.grid
    st.markdown((f"With **{name}** (a transformer; {tour.name} has no attention). " if name != tour.name else "")
                + f"A transformer cuts the input into {n_f} x {n_t} **patches**; each attends to every other. Left: "
                f"one head's attention from the cyan patch (arcs to its top 5). Right: **rollout**, attention "
                f"multiplied through all {model_cfg.depth} layers: what reaches the class token.")
    c1, c2 = st.columns(2)
    layer = c1.select_slider("Layer", list(range(1, model_cfg.depth + 1)), value=model_cfg.depth // 2,
                             key="tour_att_layer")
    head = c2.select_slider("Head", list(range(1, model_cfg.heads + 1)), value=1, key="tour_att_head")
    weights = cached.query_weights(folder, tour.clip.path, layers=(layer,), heads=(head,), query=query)
    heat = cached.rollout(folder, tour.clip.path)
    left, right = st.columns(2, gap="medium")
    with left:
        show(tour, figures.attention_grid(X, cfg, weights=weights, layers=(layer,), heads=(head,), patch_boxes=boxes,
                                          query=query, top_k=5), key="tour_att_grid", stem="tour_attention")
    with right:
        show(tour, figures.patch_picker(X, cfg, patch_boxes=boxes, query=query, heat=heat, boxes=events,
                                        title="Attention rollout: what reaches the class token"),
             key="tour_rollout", stem="tour_rollout")
    if not tour.presenter:  # (said aloud, on a projector)
        st.caption("Rollout follows attention, not the decision; on the shipped AST it fails the sanity check (the "
                   "model card): read it as where information flows, not as why the model decided.")
    return Link("attention", "the Attention page", {state.QUERY: query, "attention_model": name,
                                                      "attention_opened_on": (folder, tour.clip.path)})


def _guess_box(tour: Tour):
    from core.review.counterfactual import Region

    cfg = tour.cfg
    duration, nyquist = round(cfg.clip_duration_s, 2), float(cfg.sr // 2)
    c1, c2, c3 = st.columns([5, 5, 2], vertical_alignment="bottom")
    t = c1.slider("Your guess: time (s)", 0.0, duration, (1.0, 2.5), step=0.05, key="tour_guess_time")
    f = c2.slider("Your guess: frequency (Hz)", 0.0, nyquist, (300.0, 3000.0), step=50.0, key="tour_guess_band")
    return Region(t0_s=t[0], t1_s=t[1], f0_hz=f[0], f1_hz=f[1]), c3


def step_where(tour: Tour) -> Link | None:
    from core.interpret.guess import region_share

    loaded, clip, cfg = tour.loaded, tour.clip, tour.cfg
    offered = {m.id for m in map_methods(loaded)}
    if "gradcam" not in offered:
        not_here(f"{tour.name} has no layer Grad-CAM can explain.")
        return
    tap = loaded.default_cam_tap()
    probs = cached.probabilities(tour.folder, clip.path)
    target = int(np.argmax(probs))
    X = cached.model_input(clip.path, cached.input_key(tour.folder))
    revealed_key = ("tour_revealed", tour.folder, clip.path)
    st.markdown(f"{tour.name} says **{loaded.classes[target]}**. Where in the picture is the evidence? **Guess first**: "
                "set the box where you think the model looked, then reveal what two explanation methods say.")
    guess, corner = _guess_box(tour)
    if not st.session_state.get(str(revealed_key)):
        if corner.button("Reveal", key="tour_reveal", type="primary", icon=":material/visibility:"):
            st.session_state[str(revealed_key)] = True
            st.rerun()
        show(tour, figures.spectrogram(X, cfg, unit="z", boxes=[guess], title="Your guess (dashed box)",
                                       height=FIGURE_HEIGHT[tour.presenter]), key="tour_guess", stem="tour_guess")
        return
    heat = cached.gradcam(tour.folder, clip.path, tap, target)
    has_ig = "integrated-gradients" in offered
    left, right = st.columns(2, gap="medium")
    with left:
        show(tour, figures.overlay(X, heat, cfg, boxes=[guess], title=f"Grad-CAM at {tap}, your guess dashed",
                                   height=FIGURE_HEIGHT[tour.presenter]), key="tour_cam", stem="tour_gradcam")
    if has_ig:
        ig = cached.method_map(tour.folder, clip.path, "integrated-gradients", (), target)
        zero = cached.map_zero(tour.folder, clip.path, "integrated-gradients", (), target)
        with right:
            show(tour, figures.overlay(X, ig, cfg, boxes=[guess], title="Integrated Gradients (cells for the class)",
                                       height=FIGURE_HEIGHT[tour.presenter], zero=zero), key="tour_ig", stem="tour_ig")
        ig = np.clip(ig - zero, 0.0, None)  # signed: its weight for the class is what lies above its 0
    shares = []
    for label, m in (("Grad-CAM", heat),) + ((("Integrated Gradients", ig),) if has_ig else ()):
        try:
            r = region_share(m, guess, cfg=cfg)
        except InputError:
            continue
        shares.append(f"{label} puts {r.share:.0%} of its weight in your box")
    if shares:
        st.markdown("; ".join(shares) + f". The box covers {r.area:.0%} of the picture: a map spread evenly would put "
                    f"{r.area:.0%} there.")
    method = state.bound(st.radio, "Doubt it: score", state.METHOD, options=list(METHODS if has_ig else METHODS[:1]),
                         default=METHODS[0], horizontal=True)
    method_id, params = ("gradcam", {"tap": tap}) if method == METHODS[0] else ("integrated-gradients", {})
    # a toggle, not an expander: an expander's body runs (and scores: seconds to minutes) even while it is closed
    if st.toggle(f"Can we trust {method}? Deletion against baselines and the sanity check", key="tour_doubt"):
        st.caption("Two maps can disagree; neither is the truth. The sanity check replaces the weights by noise: a map "
                   "that barely changes was showing the sound, not what the model learned.")
        ui.scorecard(cached.scorecard(tour.folder, clip.path, method_id, cached.params_key(params), target))
    return Link("attribution", "the Attribution page", {state.TAP: tap, state.TARGET_CLASS: "predicted class",
                                                          "attribution_model": tour.name})


def step_shortcut(tour: Tour) -> Link | None:
    found = cached.checkpoint_folders()
    if SHORTCUT not in found:
        st.info("**Not available yet**: no `checkpoints/shortcut` model here. When it ships, this step shows a model "
                "that learned a planted shortcut (a tone that comes with a class) and the explanation that finds it.")
        return
    folder = found[SHORTCUT]
    try:
        loaded = cached.checkpoint(folder)
    except InputError as error:
        st.error(str(error))
        return
    tap = loaded.default_cam_tap()
    if tap is None:
        not_here("The shortcut model has no layer Grad-CAM can explain.")
        return
    probs = cached.probabilities(folder, tour.clip.path)
    target = int(np.argmax(probs))
    heat = cached.gradcam(folder, tour.clip.path, tap, target)
    X = cached.model_input(tour.clip.path, cached.input_key(folder))
    note = (loaded.meta or {}).get("shortcut") or "a shortcut planted in its training data"
    st.markdown(f"This model was trained with {note}. It can score well for the wrong reason. Its Grad-CAM for its "
                f"prediction (**{loaded.classes[target]}**, {probs[target]:.0%}) shows what it uses: a map on the "
                "shortcut, not the event, is the explanation catching it.")
    show(tour, figures.overlay(X, heat, loaded.audio_cfg, boxes=ui.clip_boxes(tour.clip),
                               title=f"Shortcut model: Grad-CAM at {tap}", height=FIGURE_HEIGHT[tour.presenter]),
         key="tour_shortcut", stem="tour_shortcut", tall=True)
    return Link("attribution", "the Attribution page", {state.TAP: tap, state.TARGET_CLASS: "predicted class",
                                                          state.MODELS: [tour.name, SHORTCUT] if tour.name != SHORTCUT else [SHORTCUT],
                                                          "attribution_model": SHORTCUT})


STEPS: tuple[tuple[str, Callable[[Tour], Link | None]], ...] = (
    ("The sound and its waveform", step_sound),
    ("From samples to a spectrogram", step_stft),
    ("Mel bands and a log: the model's input", step_mel),
    ("The first convolution block", step_first_block),
    ("Squeeze-and-excitation", step_se),
    ("Deeper blocks, pooled to an embedding", step_deeper),
    ("Logits and softmax: the prediction", step_prediction),
    ("A transformer: patches, attention, rollout", step_attention),
    ("Where did the model look?", step_where),
    ("A model that cheats: the shortcut", step_shortcut),
)


def go(delta: int) -> None:
    st.session_state[state.TOUR_STEP] = min(max(state.get(state.TOUR_STEP) + delta, 1), len(STEPS))


def nav(step: int, link: Link | None, *, presenter: bool) -> None:
    """Back, the step's "Open this in" button (and in the presenter setting the step picker), Next; the arrow
    keys are Back and Next."""
    back, mid, nxt = st.columns([1, 4, 1], vertical_alignment="center")
    back.button("Back", key="tour_back", on_click=go, args=(-1,), disabled=step == 1, icon=":material/arrow_back:",
                shortcut="Left", width="stretch")
    nxt.button("Next", key="tour_next", on_click=go, args=(1,), disabled=step == len(STEPS),
               icon=":material/arrow_forward:", shortcut="Right", type="primary", width="stretch")
    with mid:
        if presenter:
            left, right = st.columns([1, 1], vertical_alignment="center")
            with left:
                step_picker()
            if link is not None:
                with right:
                    open_in(link, key=f"tour_open_{step}")
            return
        if link is not None:
            open_in(link, key=f"tour_open_{step}")
        st.caption(f"Step {step} of {len(STEPS)}; the arrow keys ← → walk the steps too.")


def step_picker() -> int:
    """The step as a slider over the steps' titles (the pick a link's ``step`` sets)."""
    return state.bound(st.select_slider, "Step", state.TOUR_STEP, options=list(range(1, len(STEPS) + 1)), default=1,
                       format_func=lambda k: f"{k}. {STEPS[k - 1][0]}", label_visibility="collapsed")


presenter = bool(state.get(state.PRESENTER))
if not presenter:
    st.title("Tour")
clip = ui.need_clip()
models = ui.need_models()
# In the presenter setting the step's title is the screen's heading, and the step picker moves down to Next.
top, pick_model = st.columns([4, 1], vertical_alignment="bottom")
with top:
    step = state.get(state.TOUR_STEP) if presenter else step_picker()
    if not isinstance(step, int) or not 1 <= step <= len(STEPS):
        step = step_picker()  # says what is wrong with a link's step, and shows the first
with pick_model:
    model_name, folder = ui.pick_model(models, key="tour_model")
tour = Tour(clip=clip, name=model_name, folder=folder, loaded=cached.checkpoint(folder), presenter=presenter,
            step=step)
title, draw = STEPS[step - 1]
if presenter:
    top.title(f"{step}. {title}")
else:
    st.subheader(f"{step}. {title}")
    st.caption(ui.clip_caption(clip).replace("**", "") + f"; model {model_name}.")
link = None
try:
    link = draw(tour)
except InputError as error:
    st.error(str(error))
nav(step, link, presenter=presenter)
