"""Clip page: hear a clip, see it, follow it through the preprocessing, and see what each model predicts."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from core.augment import NOISE_COLOURS
from core.datasets import AUDIO_EXTENSIONS
from core.errors import InputError
from core.paths import cache_dir
from explorer import cached, figures, state, ui

MAX_UPLOAD_MB = 50  # also server.maxUploadSize in .streamlit/config.toml


def save_upload(name: str, data: bytes) -> str:
    """Check an upload's type and size, keep a copy named by its hash, and check it loads.

    Returns
    -------
    str
        Path of the saved copy.

    Raises
    ------
    InputError
        Wrong extension, too large, or anything :func:`core.audio.load_audio` refuses.
    """
    suffix = Path(name).suffix.lower()
    if suffix not in AUDIO_EXTENSIONS:
        raise InputError(name, f"not an audio file type the explorer reads ({', '.join(AUDIO_EXTENSIONS)})")
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        raise InputError(name, f"the file is {len(data) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_MB} MB")
    folder = cache_dir() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:20]}{suffix}"
    if not path.is_file():
        path.write_bytes(data)
    try:
        cached.clip_samples(str(path), cached.audio_cfg(None).sr)
    except InputError as error:
        path.unlink(missing_ok=True)
        raise InputError(name, error.problem) from None
    return str(path)


def upload_box() -> None:
    """The uploader; a good file becomes the current clip, a bad one leaves the previous clip in place."""
    # No `type=` here: Streamlit enforces it by raising an exception (a traceback on the page) for a
    # file sent with another extension; save_upload checks the type and shows a message instead.
    uploaded = st.file_uploader(
        "Or upload a clip (wav, flac, ogg or mp3)", key="_uploader", max_upload_size=MAX_UPLOAD_MB,
        help=f"Mono or stereo; up to {MAX_UPLOAD_MB} MB and 60 s. The clip is checked before it replaces "
             "the current one.")
    if uploaded is None:
        return
    if st.session_state.get("_upload_seen") == uploaded.file_id:
        error = st.session_state.get("_upload_error")
        if error:
            st.error(error)
        return
    st.session_state["_upload_seen"] = uploaded.file_id
    st.session_state["_upload_error"] = None
    try:
        path = save_upload(uploaded.name, uploaded.getvalue())
    except InputError as error:
        st.session_state["_upload_error"] = str(error)
        st.error(str(error))
        return
    state.use_upload(uploaded.name, path)
    st.rerun()


st.title("Clip")
ui.intro(
    "A clip as the models hear it. The **waveform** is the raw sound over time; the **spectrogram** shows "
    "its energy per mel band (low frequencies at the bottom, bright = loud), and the four panels below follow "
    "the preprocessing step by step to the fixed-size picture every model takes as input. "
    "On the right, each model's five most likely classes: the green bar is the true class."
)

upload_box()
clip = ui.need_clip()
models = ui.chosen_models()
cfg = cached.audio_cfg(models[0][1]) if models else cached.audio_cfg(None)
key = cached.cfg_key(cfg)

try:
    samples, native_sr, is_silent = cached.clip_samples(clip.path, cfg.sr)
except InputError as error:
    st.error(str(error))
    st.stop()

st.markdown(ui.clip_caption(clip))
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
    ui.plot(figures.spectrogram(steps["db"], cfg, title="Mel spectrogram (dB)" + (
        ": dashed boxes = where the defining event is" if boxes else ""), boxes=boxes),
        key="clip_spec", stem=f"spectrogram_{ui.safe_stem(clip.name)}")

with right:
    st.subheader("Predictions")
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

st.subheader("Preprocessing, step by step")
st.caption("Step 1: mel power (linear: a few loud cells hide the rest); 2: in dB relative to the clip's peak, "
           "floored 80 dB below; 3: standardised to zero mean and unit variance (a z-score: standard deviations from "
           "the clip's mean); 4: cut or padded to the "
           f"model's {cfg.n_frames} frames ({cfg.clip_duration_s:.2f} s).")
ui.plot(figures.feature_steps(steps, cfg), key="clip_steps", stem=f"steps_{ui.safe_stem(clip.name)}")

st.subheader("Augmented")
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
