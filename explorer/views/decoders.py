"""Decoders page: what each channel of a layer listens for, read back as spectral filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from core.errors import InputError
from explorer import cached, state, ui
from explorer import cached_dataset as cd
from explorer.figures import dataset as fd

FLAVOURS = cd.DECODER_FLAVOURS
CHANNEL_FLAVOURS = FLAVOURS[:3]  # the decoders whose filter k belongs to the layer's channel k
ORACLE = FLAVOURS[3]

st.title("Decoders")
ui.intro(
    "A **decoder** reads a layer back as sound. It learns one spectral filter per channel so that each channel's "
    "activity over time, times its filter, plus a constant background spectrum, adds up to the clip's spectrogram "
    "(X ≈ W H + b). A filter, drawn as a response over frequency (Hz), is what its channel adds to the sound when "
    "it fires. Three flavours: free non-negative filters, and one triangular or one Gaussian filter per channel, "
    "whose centre starts at the band the channel's activity correlates with most. Each is scored on held-out clips "
    "beside the training-mean spectrum (which knows nothing of the clip) and beside classic NMF of the spectrogram, "
    "an oracle: its activations are fitted to each clip it reconstructs, so no decoder is expected to reach it."
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
                      help="Each layer has its own decoders.")
with c2:
    with st.expander("Training on this dataset", expanded=False):
        s1, s2 = st.columns(2)
        fold_choices, fold_default = cd.fold_options(root, folder)
        fold_choices = fold_choices[:-1]  # the dataset's folds, without "all folds"
        test_fold = s1.selectbox("Held-out fold", fold_choices, index=fold_choices.index(fold_default),
                                 key="decoders_test_fold",
                                 help="Used when this page trains decoders itself: errors and discriminative "
                                      "filters are measured on this fold, the fold before it stops training, "
                                      "the decoders learn from the rest.")
        max_steps = int(s2.number_input("Training steps (at most)", min_value=30, max_value=5000, value=800,
                                        step=100, key="decoders_steps",
                                        help="Full-batch steps per decoder; training stops earlier when the "
                                             "held-out error stops improving."))
st.markdown(ui.clip_caption(clip))

try:
    source = cd.decoder_source(folder, root, test_fold, tap, max_steps)
except InputError as error:
    st.error(str(error))
    st.stop()
if source is None:
    from core.interpret.scorecard import starts_on_request

    how_long = ("with a model this large (over 20 M parameters) minutes to an hour on a laptop, since every clip "
                "goes through it" if starts_on_request(loaded.model) else "about a minute on a laptop")
    st.info(f"No decoders for **{labels[tap]}** of {model_name} yet. Training reads every clip of the dataset "
            f"through the model, then fits the three decoders and the NMF oracle: {how_long}, "
            "once; they are kept for next time. (`python -m core fit-decoders` does the same for every layer "
            "and saves them beside the checkpoint.)")
    if st.button("Train the decoders", key="decoders_train", type="primary", icon=":material/model_training:"):
        try:
            cd.train_decoders(folder, root, test_fold, tap, max_steps)
        except InputError as error:
            st.error(str(error))
            st.stop()
        st.rerun()
    st.stop()

try:
    sets = cd.decoders(source, tap)
    rec = cd.reconstructions(folder, source, tap, clip.path)
except InputError as error:
    st.error(str(error))
    st.stop()
report = sets.get("report") or {}
meta = sets[CHANNEL_FLAVOURS[0]]["meta"]
shipped = source == str(folder)
st.caption(f"Decoders {'saved with the checkpoint' if shipped else 'trained on this page'}: fitted on "
           f"{meta.get('n_train', '?')} clips of `{Path(str(meta.get('data', '?'))).name}`, stopped early on fold "
           f"{meta.get('val_fold', '?')}, scored on the {meta.get('n_test', '?')} clips of fold "
           f"{meta.get('test_fold', '?')}.")
scores = report.get("flavours", {})
beaten = [f for f in CHANNEL_FLAVOURS if f in scores and not scores[f]["beats_mean"]]
trusted = [f for f in CHANNEL_FLAVOURS if f not in beaten]
stem = f"decoders_{ui.safe_stem(model_name)}_{tap}"

# -- scores ---------------------------------------------------------------------------------
st.subheader("How much of the sound the layer keeps")
if scores:
    ui.plot(fd.decoder_scores(report), key="decoders_scores", stem=f"{stem}_scores")
    st.caption("Held-out relative error ||X − X̂|| / ||X|| on the decoders' 0-1 scale of each clip's dB range "
               "(0 = perfect), with 95 % bootstrap intervals over clips. Zeros score 1; the training-mean spectrum "
               "uses nothing of the clip; classic NMF is an oracle with its K stated.")
    for f in beaten:
        d = scores[f]["vs_mean"]
        st.warning(f"On {labels[tap]}, the **{fd.FLAVOUR_TITLES[f]}** decoder does not beat the training-mean "
                   f"spectrum on held-out clips (difference {d['value']:+.3f}, 95 % interval "
                   f"[{d['low']:+.3f}, {d['high']:+.3f}]): what the channels add is not told apart from noise, so "
                   "its filters are not interpreted here.")
    if not beaten:
        gains = ", ".join(f"{fd.FLAVOUR_TITLES[f]} {-scores[f]['vs_mean']['value']:.3f}" for f in CHANNEL_FLAVOURS)
        st.markdown(f"Every decoder beats the training-mean spectrum on held-out clips (whole interval below it); "
                    f"error removed beyond it: {gains}.")
else:
    st.info("These decoders carry no held-out scores (report.json is missing): refit them to see them.")
if not trusted:
    st.stop()

# -- filters --------------------------------------------------------------------------------
bases = {f: sets[f]["basis"] for f in trusted + [ORACLE] if f in sets}
K = bases[trusted[0]].shape[1]
st.subheader("Learned filters")
oracle_k = bases[ORACLE].shape[1] if ORACLE in bases else None
st.caption(f"Each row is one filter ({K} for the decoders, one per channel"
           + (f"; {oracle_k} for NMF" if oracle_k else "") + "), scaled to its own peak and sorted by the "
           "frequency of that peak. A channel that listens to one band shows as one bright cell in its row.")
ui.plot(fd.filter_bank(bases, cfg), key="decoders_bank", stem=f"{stem}_filters")

spread = np.asarray(report.get("spread", [np.nan] * K), dtype=float)
selective = np.asarray(report.get("selective", [False] * K), dtype=bool)
activity = rec["activity"][trusted[0]]  # (K, n_frames)
busy = activity.mean(axis=1)
default = int(np.argmax(np.where(selective, busy, -1))) if selective.any() else int(np.argmax(busy))
f1, f2 = st.columns([1, 3])
with f1:
    channel = int(st.number_input(f"Channel (0-{K - 1})", min_value=0, max_value=K - 1, value=default,
                                  key=f"decoders_channel_{tap}",
                                  help="Starts at the frequency-selective channel most active on this clip."))
    if report.get("spread") is not None:
        median = report.get("spread_median")
        st.caption(
            f"Channel {channel}'s filter centres (free filter: its peak) lie **{spread[channel]:.1f} mel bands** "
            f"apart across the three decoders; its free filter is "
            f"{'frequency-selective' if selective[channel] else 'not frequency-selective'} (half its weight within "
            f"8 bands of its peak). Over the {report.get('n_selective', 0)} selective channels of this layer the "
            f"median spread is " + ("n/a." if median is None else f"{median:.1f} bands."))
with f2:
    ui.plot(fd.filter_responses({fd.FLAVOUR_TITLES[f]: bases[f][:, channel] for f in trusted}, cfg,
                                title=f"Channel {channel} of {labels[tap]}"),
            key="decoders_channel_plot", stem=f"{stem}_channel{channel}")

# -- reconstruction -------------------------------------------------------------------------
st.subheader("Reconstruction of this clip")
floor_db, peak_db = rec["floor_db"], rec["peak_db"]
target_db = fd.to_db(rec["target"], floor_db=floor_db, peak_db=peak_db)
recons_db = {f: fd.to_db(np.clip(rec["recon"][f], 0.0, 1.0), floor_db=floor_db, peak_db=peak_db) for f in FLAVOURS}
r1, r2 = st.columns([3, 2], gap="medium")
with r1:
    limits = ui.mark_limits(clip, cfg)
    ui.plot(fd.reconstructions(target_db, recons_db, cfg, errors=rec["errors"], padded_from_s=limits.padded_from_s),
            key="decoders_recon", stem=f"{stem}_{ui.safe_stem(clip.name)}_reconstruction")
    ui.limits_caption(limits, cfg, bands_marked=False)
with r2:
    ui.plot(fd.error_bars({"this clip": rec["errors"]}, title="Reconstruction error, this clip"),
            key="decoders_errors", stem=f"{stem}_errors")
    st.caption("Relative error ||X − X̂|| / ||X|| on this clip (0 = perfect); the held-out scores above say how "
               "the decoders do in general. Reconstructions are clipped to the clip's dB range for drawing.")
    ui.download_table([(fd.FLAVOUR_TITLES[f], rec["errors"][f]) for f in rec["errors"]],
                      ["decoder", "relative_error_this_clip"], stem=f"{stem}_errors", key="decoders_errors_csv")

# -- discriminative filters -----------------------------------------------------------------
st.subheader("Channels that single out a class")
class_names = meta.get("classes") or list(cached.dataset(root).classes)
default_class = clip.category if clip.category in class_names else class_names[0]
chosen = st.selectbox("Class", class_names, index=class_names.index(default_class), key="decoders_class")
c = class_names.index(chosen)
picks = [(int(k), float(t)) for k, t, _ in report.get("discriminative", {}).get(str(c), [])]
st.caption("A channel singles out a class when its mean activation over a held-out clip is higher on that class's "
           "clips than on the others by Welch's t-test (one-sided), with the p-values of every class and channel "
           "corrected together for the false discovery rate (Benjamini-Hochberg, q < 0.05); at most three per "
           "class, largest t first. The decoders share the layer's channels, so they pick the same channels and "
           "differ in the filter each learned for them.")
if not picks:
    st.info(f"No channel of {labels[tap]} singles out '{chosen}' on the held-out clips at q < 0.05.")
else:
    ui.plot(fd.discriminative_filters({f: bases[f] for f in trusted}, {f: picks for f in trusted}, cfg,
                                      title=f"Channels that single out '{chosen}'", score_name="t"),
            key="decoders_discriminative", stem=f"{stem}_{ui.safe_stem(chosen)}_discriminative")
check = report.get("class_bands") or {}
if check.get("chance"):
    parts = ", ".join(f"{fd.FLAVOUR_TITLES[f]} {check[f]['hits']} of {check[f]['picks']}"
                      for f in trusted if f in check and check[f]["picks"])
    st.caption(f"Checked against the dataset's event boxes: over every class, the picked channels whose filter "
               f"centre lies inside that class's event band: {parts or 'none picked'}; a centre placed at random "
               f"would land there {100 * check['chance']:.0f} % of the time.")

# -- listen ---------------------------------------------------------------------------------
st.subheader("Listen to one pattern")
l1, l2, l3 = st.columns([2, 1, 3])
flavour = l1.selectbox("Decoder", list(bases), format_func=fd.FLAVOUR_TITLES.get, key="decoders_listen_flavour")
n_filters = bases[flavour].shape[1]
acts = rec["activity"][flavour]
component = int(l2.number_input(f"Filter (0-{n_filters - 1})", min_value=0, max_value=n_filters - 1,
                                value=min(int(np.argmax(acts.mean(axis=1))), n_filters - 1),
                                key=f"decoders_listen_filter_{flavour}_{tap}"))
mode = l3.radio("As", ["clip", "steady"], horizontal=True, key="decoders_listen_mode",
                format_func={"clip": "its part of this clip", "steady": "a steady spectrum (2 s)"}.get)
if st.toggle("Make the sound", value=False, key="decoders_listen",
             help="Griffin-Lim: a second or two the first time for each choice."):
    audio = cd.pattern_audio(folder, source, tap, clip.path, flavour, component, mode == "steady")
    if np.max(np.abs(audio)) > 0:
        st.audio(audio, sample_rate=cfg.sr)
        st.caption(f"The pattern is scaled to its own peak and spread over {cfg.top_db:.0f} dB, then turned "
                   "into sound (expect some phasey Griffin-Lim artefacts).")
    else:
        st.warning("This filter is silent on this clip: nothing to hear.")
