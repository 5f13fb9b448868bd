"""Clip page: hear a clip, see it, follow it through the preprocessing, and see what each model predicts."""

from __future__ import annotations

import dataclasses

import numpy as np
import streamlit as st

from core.audio.augment import NOISE_COLOURS
from core.errors import InputError
from core.data.uploads import MAX_UPLOAD_MB, save_upload
from explorer import cached, figures, state, trust, ui
from explorer.figures import limits as figures_limits


def _take(file, *, name: str | None = None) -> None:
    """Check an uploaded or recorded file once; a good one becomes the current clip, a bad one shows why."""
    if file is None:
        return
    if st.session_state.get("_upload_seen") == file.file_id:
        error = st.session_state.get("_upload_error")
        if error:
            st.error(error)
        return
    st.session_state["_upload_seen"] = file.file_id
    st.session_state["_upload_error"] = None
    name = name or file.name
    try:
        path = str(save_upload(name, file.getvalue()))
    except InputError as error:
        st.session_state["_upload_error"] = str(error)
        st.error(str(error))
        return
    state.use_upload(name, path)
    st.rerun()


def upload_box() -> None:
    """The uploader and the recorder; a good file becomes the current clip, a bad one leaves the previous clip."""
    # No `type=` here: Streamlit enforces it by raising an exception (a traceback on the page) for a
    # file sent with another extension; save_upload checks the type and shows a message instead.
    up, rec = st.columns([3, 2])
    uploaded = up.file_uploader(
        "Or upload a clip (wav, flac, ogg or mp3)", key="_uploader", max_upload_size=MAX_UPLOAD_MB,
        help=f"Mono or stereo; up to {MAX_UPLOAD_MB} MB. A recording longer than the model's window is cut into "
             "windows (WAV or FLAC past 60 s). The clip is checked before it replaces the current one.")
    recorded = rec.audio_input("Or record one", key="_recorder",
                               help="Recorded in the browser, then checked like an upload (at most 60 s).")
    _take(uploaded)
    _take(recorded, name=f"recording-{recorded.file_id[:8]}.wav" if recorded is not None else None)


st.title("Clip")
ui.intro(
    "A clip as the models hear it. The **waveform** is the raw sound over time; the **spectrogram** shows "
    "its energy per mel band (low frequencies at the bottom, bright = loud). On the right, each model's five most "
    "likely classes: the green bar is the true class. Under **Look closer**, follow the preprocessing step by step "
    "to the fixed-size picture every model takes as input, hear the clip with training noise, or change the sound "
    "in the counterfactual lab."
)

upload_box()
clip = ui.need_clip()
# The first picked model's preprocessing, from its checkpoint.json: the clip draws before any model (and torch) loads.
found = cached.checkpoint_folders()
picked = [found[name] for name in state.get(state.MODELS) or [] if name in found]
try:
    cfg = cached.audio_cfg(picked[0] if picked else None)
except InputError:
    cfg = cached.audio_cfg(None)  # its load error is shown under Predictions
key = cached.cfg_key(cfg)

try:
    samples, native_sr, is_silent = cached.clip_samples(clip.path, cfg.sr)
except InputError as error:
    st.error(str(error))
    st.stop()

st.markdown(ui.clip_caption(clip))


def window_section(clip) -> None:
    """A recording longer than the model's window: its windows' top classes over time, and the window to look inside."""
    from core.audio.windows import DEFAULT_HOP_S

    folder = ui.window_model()
    loaded_name = next((n for n, f in found.items() if f == folder), folder)
    starts, ends, proba = cached.windows(folder, clip.recording, DEFAULT_HOP_S)
    chosen = starts.tolist().index(clip.window_s[0])
    st.subheader("Windows over the recording")
    st.caption(f"The recording lasts {ends[-1]:.1f} s; {loaded_name} hears {cfg.clip_duration_s:.2f} s at a time. "
               f"Each of its {len(starts)} windows (a hop of {DEFAULT_HOP_S:g} s) is classified on its own: the "
               "lines are the classes most probable in any window. Every page explains the window picked here; "
               "it opens on the most confident one.")
    fig = figures_limits.window_timeline(starts, ends, proba, cached.checkpoint(folder).classes, chosen=chosen)
    ui.plot(fig, key="clip_windows", stem=f"windows_{ui.safe_stem(clip.name)}")

    def on_window() -> None:
        st.session_state[state.WINDOW] = {"recording": clip.recording,
                                          "start_s": float(st.session_state["_w_clip_window"])}

    st.session_state["_w_clip_window"] = float(starts[chosen])
    st.select_slider("Window shown (start, s)", options=[float(s) for s in starts], key="_w_clip_window",
                     on_change=on_window, format_func=lambda s: f"{s:.1f}-{s + cfg.clip_duration_s:.1f} s")


if clip.recording is not None and ui.window_model() is not None:
    window_section(clip)
left, right = st.columns([3, 2], gap="medium")
with left:
    peak = float(np.max(np.abs(samples)))
    channels = "stereo" if samples.shape[0] == 2 else "mono"
    st.caption(f"{samples.shape[1] / cfg.sr:.2f} s, {channels}, recorded at {native_sr} Hz, "
               f"shown at {cfg.sr} Hz; peak {20 * np.log10(max(peak, 1e-12)):.1f} dBFS")
    if is_silent or peak == 0.0:
        st.warning("This clip is silent (peak below -80 dBFS): there is nothing to hear, "
                   "and the models see only the noise floor.")
    else:
        st.audio(samples, sample_rate=cfg.sr)
    ui.plot(figures.waveform(samples, cfg.sr), key="clip_wave", stem=f"waveform_{ui.safe_stem(clip.name)}")
    steps = cached.steps(clip.path, key)
    boxes = ui.clip_boxes(clip)
    spec = figures.spectrogram(steps["db"], cfg, title="Mel spectrogram (dB)" + (
        ": dashed boxes = where the defining event is" if boxes else ""), boxes=boxes)
    limits = ui.mark_limits(clip, cfg)
    if limits.empty_from_band is not None:  # this picture is the clip's own length: no padding to draw on it
        figures_limits.mark_limits(spec, dataclasses.replace(limits, padded_from_s=None), n_mels=cfg.n_mels,
                                   x_end_s=samples.shape[1] / cfg.sr)
    ui.plot(spec, key="clip_spec", stem=f"spectrogram_{ui.safe_stem(clip.name)}")
    limits_text = limits.describe(cfg)
    if limits_text:
        st.caption(limits_text + " The maps of the model's input mark both.")

with right:
    st.subheader("Predictions")
    models = ui.chosen_models()  # loads them (torch), after the clip is drawn
    if not models:
        st.info("Pick a model in the sidebar to see its predictions.")
    cols = st.columns(max(1, len(models)))
    for col, (name, folder) in zip(cols, models):
        with col:
            loaded = cached.checkpoint(folder)
            probs = cached.probabilities(folder, clip.path)
            true = loaded.classes.index(clip.category) if clip.category in loaded.classes else None
            st.plotly_chart(figures.top_k_bars(probs, loaded.classes, k=5, true_label=true, title=name),
                            key=f"pred_{name}")
            top = int(np.argmax(probs))
            verdict = "" if true is None else (" (right)" if top == true else " (wrong)")
            st.caption(f"{name}: predicts **{loaded.classes[top]}** ({probs[top]:.0%}){verdict}")
            trust.clip_novelty(name, folder, clip.path)

# Under "Look closer", one at a time: a new tab draws the clip alone (1 heatmap, not 6).
SECTIONS = ("Preprocessing, step by step", "Augmented", "Counterfactual lab")


def preprocessing_section(steps: dict, cfg, clip) -> None:
    """The four steps from mel power to the model's fixed-size input."""
    st.caption("Step 1: mel power (linear: a few loud cells hide the rest); 2: in dB relative to the clip's peak, "
               "floored 80 dB below; 3: standardised to zero mean and unit variance (a z-score: standard deviations "
               "from the clip's mean); 4: cut or padded to the "
               f"model's {cfg.n_frames} frames ({cfg.clip_duration_s:.2f} s).")
    ui.plot(figures.feature_steps(steps, cfg), key="clip_steps", stem=f"steps_{ui.safe_stem(clip.name)}")


def augmented_section(clip, cfg, key: str, models: list) -> None:
    """The clip with the training noise and shift, to hear, see and predict."""
    st.caption("The noise the models were trained with: coloured noise at a chosen signal-to-noise ratio "
               "(white is flat, pink falls 3 dB per octave, brown 6 dB). Lower SNR = more noise.")
    c1, c2, c3 = st.columns(3)
    colour = c1.selectbox("Noise colour", list(NOISE_COLOURS), key="aug_colour")
    snr_db = c2.slider("SNR (dB)", min_value=-10, max_value=40, value=15, step=1, key="aug_snr")
    shift = c3.slider("Largest time shift (share of the clip)", min_value=0.0, max_value=0.5, value=0.0, step=0.05,
                      key="aug_shift", help="The clip is rolled by a random offset up to this share, either way.")
    augmented = cached.augmented(clip.path, cfg.sr, colour, float(snr_db), float(shift))
    a_left, a_right = st.columns([3, 2], gap="medium")
    with a_left:
        if np.max(np.abs(augmented)) > 0:
            st.audio(augmented, sample_rate=cfg.sr)
        ui.plot(figures.spectrogram(cached.augmented_db(clip.path, key, colour, float(snr_db), float(shift)), cfg,
                                    title=f"With {colour} noise at {snr_db} dB SNR"),
                key="clip_aug", stem=f"augmented_{ui.safe_stem(clip.name)}")
    with a_right:
        cols = st.columns(max(1, len(models)))
        for col, (name, folder) in zip(cols, models):
            with col:
                loaded = cached.checkpoint(folder)
                probs = cached.augmented_probabilities(folder, clip.path, colour, float(snr_db), float(shift))
                true = loaded.classes.index(clip.category) if clip.category in loaded.classes else None
                st.plotly_chart(figures.top_k_bars(probs, loaded.classes, k=5, true_label=true,
                                                   title=f"{name}, augmented"), key=f"aug_pred_{name}")


def lab_section(clip, boxes: list, models: list) -> None:
    """Edit the sound (a region, noise, shift, pitch, speed) and compare the model's answer before and after."""
    st.caption("Change the sound and see whether the model changes its mind: mute a time span, a frequency band or "
               "a box (or keep only it, or turn it down), add noise, shift, pitch-shift or stretch it. Region edits "
               "act on the short-time Fourier transform with hard edges, so a muted span may click at its ends. If "
               "muting the region the explanation points at barely moves the probability, the explanation did not "
               "find what the model uses.")
    if not models:
        st.info("Pick a model in the sidebar to use the lab.")
        return
    from core.review.counterfactual import MODES, Edits, Region, control_region, covering_region
    from explorer import cached_review

    lab_name, lab_folder = ui.pick_model(models, key="lab_model")
    lab = cached.checkpoint(lab_folder)
    lab_cfg = lab.audio_cfg
    duration_s = round(lab_cfg.clip_duration_s, 2)
    nyquist_hz = float(lab_cfg.sr // 2)
    event = covering_region(boxes)  # every box of the event: muting one of several by default says little
    r1, r2, r3 = st.columns([1, 2, 2])
    what = r1.radio("Region", ["none", "time span", "frequency band", "box"], key="lab_region",
                    help="The sliders start on the box holding all of the clip's labelled event where the dataset "
                         "marks one.")
    span = r2.slider("Time (s)", 0.0, duration_s, (round(event.t0_s, 2), round(min(event.t1_s, duration_s), 2))
                     if event else (1.0, 2.0), step=0.05, key="lab_time", disabled=what in ("none", "frequency band"))
    band = r3.slider("Frequency (Hz)", 0.0, nyquist_hz,
                     (float(int(event.f0_hz)), float(min(int(event.f1_hz), nyquist_hz)))
                     if event else (500.0, 2000.0), step=10.0, key="lab_band", disabled=what in ("none", "time span"))
    m1, m2 = st.columns([2, 3])
    mode = m1.radio("Do", MODES, horizontal=True, key="lab_mode",
                    format_func={"mute": "mute it", "keep": "keep only it", "attenuate": "turn it down"}.get,
                    disabled=what == "none")
    attenuate_db = m2.slider("Turn down by (dB)", 0, 60, 20, key="lab_db",
                             disabled=what == "none" or mode != "attenuate")
    with st.expander("Noise, shift, pitch, speed"):
        e1, e2, e3, e4 = st.columns(4)
        noise_on = e1.toggle("Add noise", value=False, key="lab_noise_on")
        snr = e1.slider("SNR (dB)", -10, 40, 10, key="lab_snr", disabled=not noise_on)
        colour = e1.selectbox("Colour", list(NOISE_COLOURS), key="lab_colour", disabled=not noise_on)
        shift_s = e2.slider("Shift (s)", -duration_s / 2, duration_s / 2, 0.0, step=0.05, key="lab_shift")
        pitch = e3.slider("Pitch (semitones)", -12, 12, 0, key="lab_pitch")
        stretch = e4.slider("Speed (x)", 0.5, 2.0, 1.0, step=0.05, key="lab_stretch",
                            help="Faster (> 1) or slower (< 1), then cut or padded to the clip's length.")
    region = None
    if what != "none":
        region = Region(t0_s=span[0] if what in ("time span", "box") else None,
                        t1_s=span[1] if what in ("time span", "box") else None,
                        f0_hz=band[0] if what in ("frequency band", "box") else None,
                        f1_hz=band[1] if what in ("frequency band", "box") else None)
    edits = Edits(region=region, mode=mode, attenuate_db=float(attenuate_db), shift_s=float(shift_s),
                  pitch_semitones=float(pitch), stretch_rate=float(stretch),
                  noise_snr_db=float(snr) if noise_on else None, noise_colour=colour)
    if edits.is_identity:
        st.info("Pick a region or an edit to compare the two versions.")
        return
    try:
        edited = cached_review.counterfactual_path(clip.path, lab_cfg.sr, edits.to_json())
    except InputError as error:
        st.error(str(error))
        return
    before, after = cached.probabilities(lab_folder, clip.path), cached.probabilities(lab_folder, edited)
    focus = lab.classes.index(clip.category) if clip.category in lab.classes else int(np.argmax(before))
    cam_tap = lab.default_cam_tap()
    shown = [region.bounded(duration_s=duration_s, fmax_hz=nyquist_hz)] if region else []
    g1, g2 = st.columns(2)
    g1.metric(f"{lab_name}: probability of '{lab.classes[focus]}'", f"{after[focus]:.1%}",
              **ui.points_delta(100 * (after[focus] - before[focus]), f" (was {before[focus]:.1%})"))
    if region is not None:
        control = control_region(region, duration_s=duration_s, fmax_hz=nyquist_hz)
        control_path = cached_review.counterfactual_path(
            clip.path, lab_cfg.sr, dataclasses.replace(edits, region=control).to_json())
        p_control = cached.probabilities(lab_folder, control_path)[focus]
        where = control.bounded(duration_s=duration_s, fmax_hz=nyquist_hz)
        g2.metric("The same edits on a region of the same size elsewhere (the baseline)", f"{p_control:.1%}",
                  **ui.points_delta(100 * (p_control - before[focus])), delta_color="off",
                  help=f"Region {where.t0_s:.2f}-{where.t1_s:.2f} s, {where.f0_hz:.0f}-{where.f1_hz:.0f} Hz. "
                       "If it moves the probability as much, the region itself is not what matters.")
    for col, (title, path_, probs_) in zip(st.columns(2, gap="medium"),
                                            (("Before", clip.path, before), ("After", edited, after))):
        with col:
            st.markdown(f"**{title}**: predicts **{lab.classes[int(np.argmax(probs_))]}** ({probs_.max():.0%})")
            y_play, _, _ = cached.clip_samples(path_, lab_cfg.sr)
            if np.max(np.abs(y_play)) > 0:
                st.audio(y_play, sample_rate=lab_cfg.sr)
            else:
                st.warning("Nothing is left to hear.")
            X_lab = cached.model_input(path_, cached.input_key(lab_folder))
            if cam_tap is not None:
                heat = cached.gradcam(lab_folder, path_, cam_tap, focus)
                fig = figures.overlay(X_lab, heat, lab_cfg, boxes=shown,
                                      title=f"Grad-CAM for '{lab.classes[focus]}' (dashed: the edited region)")
            else:
                fig = figures.spectrogram(X_lab, lab_cfg, unit="z", boxes=shown, title="Model input")
            st.plotly_chart(fig, key=f"lab_map_{title}")
            st.plotly_chart(figures.top_k_bars(probs_, lab.classes, k=5, true_label=focus if clip.category else None,
                                               title=f"{lab_name}, {title.lower()}"), key=f"lab_top5_{title}")


st.subheader("Look closer")
section = st.segmented_control(
    "Look closer", SECTIONS, key="clip_section", label_visibility="collapsed",
    help="One at a time, so the page stays quick: the preprocessing from sound to model input, the clip with the "
         "noise the models were trained with, or a lab to change the sound and watch the prediction.")
if section is None:
    st.caption("Pick one above: how the sound becomes the model's input, the clip with training noise, or the "
               "counterfactual lab.")
elif section == SECTIONS[0]:
    preprocessing_section(steps, cfg, clip)
elif section == SECTIONS[1]:
    augmented_section(clip, cfg, key, models)
else:
    lab_section(clip, boxes, models)
