"""Decoders page: what each channel of a layer listens for, read back as spectral filters."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.errors import InputError
from explorer import cached, state, ui
from explorer import cached_dataset as cd
from explorer import figures_dataset as fd

FLAVOURS = cd.DECODER_FLAVOURS
CHANNEL_FLAVOURS = FLAVOURS[:3]  # the decoders whose filter k belongs to the layer's channel k

st.title("Decoders")
ui.intro(
    "A **decoder** reads a layer back as sound. It learns one spectral filter per channel so that each channel's "
    "activity over time, times its filter, adds up to the clip's spectrogram (X ≈ W H). A filter, drawn as a "
    "response over frequency (Hz), is what its channel listens for; the reconstruction shows how much of the clip "
    "the layer still holds. Three flavours are compared: free non-negative filters, triangular and Gaussian "
    "mel-like filters, and classic NMF of the spectrogram itself as the baseline (its filters are not tied to "
    "the model's channels)."
)

clip = ui.need_clip()
models = ui.need_models()
model_name, folder = ui.pick_model(models, key="decoders_model")
root = state.get(state.DATASET_ROOT)
if not root:
    st.info("Pick a dataset in the sidebar: the decoders are trained on its clips.")
    st.stop()
loaded = cached.checkpoint(folder)
cfg = loaded.audio_cfg
taps = cd.decoder_taps(folder)
if "NMF-style decoders" not in ui.method_notes(loaded, "Decoders"):
    st.stop()
if not taps:
    st.info(f"{model_name} has no conv or transformer layer a decoder can read.")
    st.stop()
labels = {t.name: t.label for t in taps}
tap_names = list(labels)

c1, c2 = st.columns([2, 3])
with c1:
    tap = state.bound(st.selectbox, "Layer (tap)", state.TAP, options=tap_names,
                      default=tap_names[len(tap_names) // 2], format_func=labels.get,
                      help="Each layer gets its own decoders, trained once.")
with c2:
    with st.expander("Training settings", expanded=False):
        s1, s2, s3 = st.columns(3)
        test_fold = s1.selectbox("Held-out fold", [1, 2, 3, 4, 5], index=4, key="decoders_test_fold",
                                 help="Errors and discriminative filters are measured on this fold; the "
                                      "decoders learn from the others.")
        n_available = max(1, sum(1 for r in cached.dataset(root).records if r.fold != test_fold))
        n_train = int(s2.number_input("Training clips (at most)", min_value=2, max_value=max(2, n_available),
                                      value=min(160, max(2, n_available)), step=8, key="decoders_n_train"))
        epochs = int(s3.number_input("Epochs", min_value=1, max_value=200, value=20, key="decoders_epochs"))
st.markdown(ui.clip_caption(clip))

try:
    trained = cd.decoders_trained(folder, root, test_fold, tap, n_train=n_train, epochs=epochs)
except InputError as error:
    st.error(str(error))
    st.stop()
if not trained:
    st.info(f"No decoders for **{labels[tap]}** of {model_name} yet (with these settings). Training reads "
            f"{n_train} clips through the model, then fits the three decoders and the NMF baseline: about a "
            "minute on a laptop, once; they are kept for next time.")
    if st.button("Train the decoders", key="decoders_train", type="primary", icon=":material/model_training:"):
        try:
            cd.train_decoders(folder, root, test_fold, tap, n_train=n_train, epochs=epochs)
        except InputError as error:
            st.error(str(error))
            st.stop()
        st.rerun()
    st.stop()

try:
    sets = cd.decoders(folder, root, test_fold, tap, n_train, epochs)
    rec = cd.reconstructions(folder, root, test_fold, tap, n_train, epochs, clip.path)
except InputError as error:
    st.error(str(error))
    st.stop()
bases = {flavour: sets[flavour]["basis"] for flavour in FLAVOURS}
K = bases[CHANNEL_FLAVOURS[0]].shape[1]
stem = f"decoders_{ui.safe_stem(model_name)}_{tap}"

# -- filters --------------------------------------------------------------------------------
st.subheader("Learned filters")
st.caption(f"Each row is one filter ({K} for the decoders, one per channel; "
           f"{bases['spectrogram-nmf'].shape[1]} for NMF), scaled to its own peak and sorted by the frequency of "
           "that peak. A mel filter bank shows as a clean diagonal; free filters may listen to several bands at once.")
ui.plot(fd.filter_bank(bases, cfg), key="decoders_bank", stem=f"{stem}_filters")

activity = rec["activity"][CHANNEL_FLAVOURS[0]]  # (K, n_frames)
busiest = int(np.argmax(activity.mean(axis=1)))
f1, f2 = st.columns([1, 3])
with f1:
    channel = int(st.number_input(f"Channel (0-{K - 1})", min_value=0, max_value=K - 1, value=busiest,
                                  key=f"decoders_channel_{tap}",
                                  help="Starts at the channel most active on this clip."))
    st.caption("The same channel's filter as each decoder learned it: where they agree, the channel's "
               "frequency range is clear.")
with f2:
    ui.plot(fd.filter_responses({fd.FLAVOUR_TITLES[f]: bases[f][:, channel] for f in CHANNEL_FLAVOURS}, cfg,
                                title=f"Channel {channel} of {labels[tap]}"),
            key="decoders_channel_plot", stem=f"{stem}_channel{channel}")

# -- reconstruction -------------------------------------------------------------------------
st.subheader("Reconstruction of this clip")
floor_db, peak_db = rec["floor_db"], rec["peak_db"]
target_db = fd.to_db(rec["target"], floor_db=floor_db, peak_db=peak_db)
recons_db = {f: fd.to_db(np.clip(rec["recon"][f], 0.0, 1.0), floor_db=floor_db, peak_db=peak_db) for f in FLAVOURS}
r1, r2 = st.columns([3, 2], gap="medium")
with r1:
    ui.plot(fd.reconstructions(target_db, recons_db, cfg, errors=rec["errors"]), key="decoders_recon",
            stem=f"{stem}_{ui.safe_stem(clip.name)}_reconstruction")
with r2:
    held_out = {f: sets[f]["meta"].get("relative_error", float("nan")) for f in FLAVOURS}
    meta = sets[CHANNEL_FLAVOURS[0]]["meta"]
    ui.plot(fd.error_bars({f"held-out clips ({meta.get('n_test', '?')}, fold {test_fold})": held_out,
                           "this clip": rec["errors"]}, title="Reconstruction error"),
            key="decoders_errors", stem=f"{stem}_errors")
    st.caption("Relative error ||X − X̂|| / ||X|| on the decoders' 0-1 scale of the clip's dB range (0 = perfect). "
               "A layer that keeps the sound's detail reconstructs well; deep layers keep what matters for the "
               "class and drop the rest. Reconstructions are clipped to the clip's dB range for drawing.")
    ui.download_table([(fd.FLAVOUR_TITLES[f], held_out[f], rec["errors"][f]) for f in FLAVOURS],
                      ["decoder", "relative_error_held_out", "relative_error_this_clip"], stem=f"{stem}_errors",
                      key="decoders_errors_csv")

# -- discriminative filters -----------------------------------------------------------------
st.subheader("Filters that single out a class")
class_names = meta.get("classes") or list(cached.dataset(root).classes)
default_class = clip.category if clip.category in class_names else class_names[0]
chosen = st.selectbox("Class", class_names, index=class_names.index(default_class), key="decoders_class")
c = class_names.index(chosen)
picks = {f: sets[f]["meta"]["discriminative"].get(c, []) for f in FLAVOURS}
if not any(picks.values()):
    st.info(f"The held-out fold has no clip of '{chosen}' (or only clips of it), so no filter can be scored.")
else:
    ui.plot(fd.discriminative_filters(bases, picks, cfg, title=f"Most '{chosen}'-specific filters"),
            key="decoders_discriminative", stem=f"{stem}_{ui.safe_stem(chosen)}_discriminative")
    st.caption("For each decoder (one panel each, its filters listed under it), the filters whose activity is "
               "most clearly higher on this class's held-out clips than on "
               "the others, ranked by d' (difference of means over the pooled standard deviation; above 1 is a "
               "clear difference). The three decoders share the layer's channels, so they rank the same channels; they "
               "differ in the filter each learned for them. NMF's components are its own.")

# -- listen ---------------------------------------------------------------------------------
st.subheader("Listen to one pattern")
l1, l2, l3 = st.columns([2, 1, 3])
flavour = l1.selectbox("Decoder", FLAVOURS, format_func=fd.FLAVOUR_TITLES.get, key="decoders_listen_flavour")
n_filters = bases[flavour].shape[1]
acts = rec["activity"][flavour]
component = int(l2.number_input(f"Filter (0-{n_filters - 1})", min_value=0, max_value=n_filters - 1,
                                value=min(int(np.argmax(acts.mean(axis=1))), n_filters - 1),
                                key=f"decoders_listen_filter_{flavour}_{tap}"))
mode = l3.radio("As", ["clip", "steady"], horizontal=True, key="decoders_listen_mode",
                format_func={"clip": "its part of this clip", "steady": "a steady spectrum (2 s)"}.get)
if st.toggle("Make the sound", value=False, key="decoders_listen",
             help="Griffin-Lim: a second or two the first time for each choice."):
    audio = cd.pattern_audio(folder, root, test_fold, tap, n_train, epochs, clip.path, flavour, component,
                             mode == "steady")
    if np.max(np.abs(audio)) > 0:
        st.audio(audio, sample_rate=cfg.sr)
        st.caption(f"The pattern is scaled to its own peak and spread over {cfg.top_db:.0f} dB, then turned "
                   "into sound (expect some phasey Griffin-Lim artefacts).")
    else:
        st.warning("This filter is silent on this clip: nothing to hear.")
