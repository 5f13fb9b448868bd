"""Small Streamlit pieces every page uses: the current clip and models, intros, downloads, errors.

Pages stay thin: they read widgets, call :mod:`explorer.cached`, draw with
:mod:`explorer.figures` and these helpers.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core.errors import InputError
from core.interpret.registry import applicable
from explorer import cached, figures, state

__all__ = ["intro", "current_clip", "window_model", "mark_limits", "chosen_models", "need_clip", "need_models",
           "pick_model", "download_figure", "download_table", "plot", "clip_caption", "EMPTY_MAP", "scorecard",
           "method_notes", "method_params", "presenter_style", "PRESENTER_FONT_PX"]

PRESENTER_FONT_PX = 20  # the page's base font in the presenter setting (Streamlit's default: 16); sizes are in rem

EMPTY_MAP = ("The map is empty (all zero): no cell pushes the model towards this class at this layer. At a "
             "transformer's last layer this is always so: only the class token reaches the head. Pick an "
             "earlier layer.")


def intro(text: str) -> None:
    """The two or three sentences that open a page: what the figure shows, how to read it."""
    st.markdown(text)


def current_clip() -> state.ClipRef | None:
    """The clip the user picked (dataset clip or upload), or ``None`` when there is none yet.

    A recording longer than the first model's window comes back as the window the user picked
    (:data:`state.WINDOW`; by default the most confident one), saved as a file of its own, so that
    every page explains that window.
    """
    clip = _picked_clip()
    return None if clip is None else _windowed(clip)


def _picked_clip() -> state.ClipRef | None:
    if state.get(state.CLIP_ORIGIN) == "upload" and state.get(state.UPLOAD):
        upload = state.get(state.UPLOAD)
        if Path(upload["path"]).is_file():
            return state.ClipRef(path=upload["path"], name=upload["name"], origin="upload")
    root, clip_id = state.get(state.DATASET_ROOT), state.get(state.CLIP_ID)
    if not root or not clip_id:
        return None
    try:
        data = cached.dataset(root)
        record = data.record(clip_id)
    except InputError:
        return None
    return state.ClipRef(path=str(record.path), name=record.clip_id, origin="dataset", label=record.label,
                         category=record.category, dataset_root=root)


def window_model() -> str | None:
    """The folder of the model whose window cuts long recordings: the first model picked (``None``: none)."""
    found = cached.checkpoint_folders()
    names = [n for n in (state.get(state.MODELS) or []) if n in found]
    return found[names[0]] if names else None


def _windowed(clip: state.ClipRef) -> state.ClipRef:
    """The picked window of a recording longer than the first model's window (the clip itself otherwise)."""
    from core.paths import cache_dir
    from core.audio.windows import DEFAULT_HOP_S, Window, most_confident, write_window

    folder = window_model()
    duration_s = cached.recording_duration_s(clip.path)
    if folder is None or duration_s is None:
        return clip
    try:
        cfg = cached.audio_cfg(folder)
    except InputError:  # a checkpoint that does not load: its message is shown where the model is used
        return clip
    if duration_s <= cfg.clip_duration_s + cfg.hop_length / cfg.sr:
        return clip
    try:
        starts, ends, proba = cached.windows(folder, clip.path, DEFAULT_HOP_S)
    except InputError:
        return clip
    pick = state.get(state.WINDOW)
    if pick and pick.get("recording") == clip.path and pick.get("start_s") in starts.tolist():
        i = starts.tolist().index(pick["start_s"])
    else:
        i = most_confident(proba)
        st.session_state[state.WINDOW] = {"recording": clip.path, "start_s": float(starts[i])}
    window = Window(i, float(starts[i]), float(ends[i]))
    path = write_window(clip.path, window, cache_dir() / "windows")
    return state.ClipRef(path=str(path), name=f"{clip.name} [{window.start_s:.1f}-{window.end_s:.1f} s]",
                         origin=clip.origin, label=clip.label, category=clip.category,
                         dataset_root=clip.dataset_root, recording=clip.path,
                         window_s=(window.start_s, window.end_s))


def mark_limits(clip: state.ClipRef | str, cfg, fig=None):
    """Mark the padded span and the bands above the recording's Nyquist frequency on a map ``fig`` (time in s x
    mel band) of the clip (a :class:`~explorer.state.ClipRef` or its audio file's path) in a model's input.

    Returns
    -------
    core.audio.frontend.ClipLimits
        Its ``describe(cfg)`` is the caption that states the padding share.
    """
    from explorer.figures.limits import mark_limits as mark

    limits = cached.clip_limits(clip if isinstance(clip, str) else clip.path, cfg)
    if fig is not None:
        mark(fig, limits, n_mels=cfg.n_mels, x_end_s=figures.extent_s(cfg))
    return limits


def limits_caption(limits, cfg, *, bands_marked: bool = True) -> None:
    """Under a map marked by :func:`mark_limits`: the padding share and the empty bands, and what weight there means.

    ``bands_marked=False`` for figures that shade only the padding (grids of panels: the channel grid, the
    attention grid, the decoders' reconstructions).
    """
    if not limits.describe(cfg):
        return
    if bands_marked:
        st.caption(limits.describe(cfg) + " Grey: padding; white dotted: the empty bands. A map's weight there is the "
                   "model reading silence, not the sound.")
    else:
        st.caption(limits.describe(cfg) + (" Grey: padding. What the model makes of it is its reading of silence, "
                                           "not of the sound." if limits.padded_from_s is not None else ""))


def clip_boxes(clip: state.ClipRef) -> list:
    """Ground-truth event boxes of a dataset clip (empty for uploads and datasets without boxes)."""
    if clip.dataset_root is None:
        return []
    return cached.dataset(clip.dataset_root).boxes(clip.name)


def points_delta(change: float, suffix: str = "") -> dict:
    """``st.metric``'s delta for a change in percentage points: no arrow when it rounds to zero (not "↓ -0.0").

    >>> points_delta(-0.04)
    {'delta': '±0.0 points', 'delta_arrow': 'off'}
    >>> points_delta(5.66, " (was 40.0%)")
    {'delta': '+5.7 points (was 40.0%)', 'delta_arrow': 'auto'}
    """
    shown = round(float(change), 1)
    if shown == 0:
        return {"delta": f"±0.0 points{suffix}", "delta_arrow": "off"}
    return {"delta": f"{shown:+.1f} points{suffix}", "delta_arrow": "auto"}


def clip_caption(clip: state.ClipRef) -> str:
    """One line naming the clip and its true class."""
    window = "" if clip.window_s is None else \
        f"; the window {clip.window_s[0]:.1f}-{clip.window_s[1]:.1f} s of a longer recording, picked on the Clip page"
    if clip.origin == "upload":
        return f"Clip: **{clip.name}** (uploaded; no ground truth{window})"
    return f"Clip: **{clip.name}**, true class **{clip.category}**" + (
        f" (the recording's label{window})" if window else "")


def chosen_models() -> list[tuple[str, str]]:
    """The sidebar's models that exist and load, as (name, folder).

    A checkpoint that does not load is left out with its message shown.
    """
    found = cached.checkpoint_folders()
    out = []
    for name in state.get(state.MODELS) or []:
        if name not in found:
            continue
        try:
            cached.checkpoint(found[name])
        except InputError as error:
            st.error(str(error))
            continue
        out.append((name, found[name]))
    return out


def need_clip() -> state.ClipRef:
    """The current clip, or stop the page with a message when there is none."""
    clip = current_clip()
    if clip is None:
        st.info("Pick a clip in the sidebar (or upload one on the Clip page).")
        st.stop()
    try:
        cached.clip_samples(clip.path, cached.audio_cfg(None).sr)
    except InputError as error:
        st.error(str(error))
        st.stop()
    return clip


def need_models(page: str | None = None, *, what: str = "a model") -> list[tuple[str, str]]:
    """The chosen models, or stop the page with a message naming what to pick.

    With ``page``, only the models for which some of the page's methods apply
    (:func:`core.interpret.registry.applicable`); the page says why each other chosen model is left out.
    """
    models, left_out = chosen_models(), []
    if page is not None:
        keep = []
        for name, folder in models:
            rows = applicable(cached.checkpoint(folder), page, name_model=False)
            if any(why is None for _, why in rows):
                keep.append((name, folder))
                continue
            by_reason: dict[str, list[str]] = {}
            for method, why in rows:
                by_reason.setdefault(why, []).append(method.label)
            left_out.append(f"**{name}**: " + "; ".join(f"{' and '.join(names)} {'need' if len(names) > 1 else 'needs'}"
                                                       f"{why.removeprefix('needs')}" for why, names in by_reason.items()))
        models = keep
    if not models:
        found = cached.checkpoint_folders()
        if not found:
            st.warning("No checkpoints found. Put a checkpoint folder (model.safetensors + checkpoint.json) "
                       "under `checkpoints/`, or list folders in `$EXPLORER_CHECKPOINTS`.")
        else:
            st.info(f"This page needs {what}: pick one in the sidebar."
                    + (" Not usable here: " + " — ".join(left_out) + "." if left_out else ""))
        st.stop()
    if left_out:
        st.caption("Not shown on this page: " + " — ".join(left_out) + ".")
    return models


def pick_model(models: list[tuple[str, str]], *, key: str) -> tuple[str, str]:
    """One of the chosen models for a page that explains one at a time: (name, folder).

    With a single model there is nothing to pick; with two, a radio named ``key`` picks.
    """
    names = [name for name, _ in models]
    name = names[0] if len(names) == 1 else st.radio("Model", names, horizontal=True, key=key)
    return name, dict(models)[name]


def plot(fig, *, key: str, stem: str, **kwargs):
    """Draw a figure and offer it for download underneath.

    Returns
    -------
    Whatever ``st.plotly_chart`` returns (the selection state when
    ``on_select`` is given).
    """
    event = st.plotly_chart(fig, key=key, **kwargs)
    download_figure(fig, stem=stem, key=f"{key}_dl")
    return event


def download_figure(fig, *, stem: str, key: str) -> None:
    """A small 'save' button: PNG when kaleido is installed, else a standalone HTML file.

    The file is only built when the button is pressed.
    """
    data, file_name, mime = figures.figure_download(fig, stem=stem)
    label = "Save figure (PNG)" if file_name.endswith(".png") else "Save figure (HTML)"
    st.download_button(label, data=data, file_name=file_name, mime=mime, key=key, on_click="ignore",
                       icon=":material/download:", type="tertiary")


def download_table(rows, columns, *, stem: str, key: str) -> None:
    """Offer a table as CSV."""
    st.download_button("Save table (CSV)", data=figures.table_csv(rows, columns), file_name=f"{stem}.csv",
                       mime="text/csv", key=key, on_click="ignore", icon=":material/download:", type="tertiary")


def safe_stem(text: str) -> str:
    """A file-name-safe version of a clip or model name."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:80]


def scorecard(card: dict) -> None:
    """A map's deletion AUC beside its baselines, and its sanity verdict, as metrics and sentences.

    ``card`` is :func:`explorer.cached.scorecard`'s result (core's ``clip_scorecard``).
    """
    st.markdown("**Deletion AUC** (lower is better: the prediction falls sooner as the top cells go)")
    m1, m2, m3 = st.columns(3)
    m1.metric("This map", f"{card['auc']:.3f}", help="Deletion AUC of this map: lower is better.")
    m2.metric("Random blobs", f"{card['random_auc']:.3f}", delta=f"± {card['random_spread']:.3f}",
              delta_color="off", help="Smooth random blobs: the mean over random smooth maps; ± their spread.")
    m3.metric("Loudest cells", f"{card['energy_auc']:.3f}",
              help="Loudest cells first: the spectrogram itself used as the map, no model needed.")
    st.caption(card["summary"])
    if card.get("sanity_verdict"):
        words = f"**Sanity check** ({len(card['sanity_layers'])} layers replaced by noise, top down): " + \
            card["sanity_verdict"] + "."
        (st.success if card["sanity_passed"] else st.warning)(words)


def requested_scorecard(loaded, folder: str, path: str, method_id: str, params: tuple, target: int, *,
                        key: str) -> dict | None:
    """:func:`explorer.cached.scorecard`, at once for a small model; for one over
    :data:`core.interpret.scorecard.ON_REQUEST_PARAMETERS`, behind a button, with a progress bar and the time
    left. ``None`` until it is asked for. Leaving the page stops the work at its next step (Streamlit stops a
    run at its next element update) and keeps nothing half done.
    """
    import time

    from core.interpret.scorecard import starts_on_request

    if not starts_on_request(loaded.model) or cached.scorecard_done(folder, path, method_id, params, target):
        return cached.scorecard(folder, path, method_id, params, target)
    n_params = sum(p.numel() for p in loaded.model.parameters())
    st.caption(f"This model has {n_params / 1e6:.1f} M parameters: the deletion curves and the sanity check run "
               "it about 60 times, minutes on a small machine, so they start on request.")
    if not st.button("Score this map (deletion curves, sanity check)", key=key, icon=":material/play_arrow:"):
        return None
    bar = st.progress(0.0, text="Scoring: computing the map…")
    start = time.monotonic()

    def progress(done: int, total: int) -> None:
        left_s = (time.monotonic() - start) / done * (total - done)
        bar.progress(done / total, text=f"Scoring: step {done} of {total}, about {_duration(left_s)} left")

    card = cached.scorecard(folder, path, method_id, params, target, progress=progress)
    bar.empty()
    return card


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def method_notes(loaded, page: str) -> list[str]:
    """The page's methods that apply to the model (:func:`core.interpret.registry.applicable`); a caption says why
    the others don't."""
    rows = applicable(loaded, page)
    skipped = [f"**{m.label}** {why}" for m, why in rows if why is not None]
    if skipped:
        st.caption("Not offered for this model: " + "; ".join(skipped) + ".")
    return [m.label for m, why in rows if why is None]


def method_params(spec, loaded, *, key: str) -> dict:
    """One widget per parameter of a map method (:class:`core.interpret.registry.Param`); their values.

    A layer is the shared tap pick (:data:`explorer.state.TAP`, a slider over the model's CAM taps); a choice
    is a select box; a number a slider over its range. Widget keys are ``f"{key}_{param.name}"``.
    """
    values = {}
    for p in spec.params:
        if p.tap:
            labels = {t.name: t.label for t in loaded.cam_taps()}
            values[p.name] = state.bound(st.select_slider, p.label, state.TAP, options=list(labels),
                                         default=p.default_for(loaded), format_func=labels.get, help=p.help)
        elif p.options:
            values[p.name] = st.selectbox(p.label, p.options, index=p.options.index(p.default), key=f"{key}_{p.name}",
                                          help=p.help)
        else:
            number = type(p.default)
            values[p.name] = number(st.slider(p.label, min_value=number(p.low), max_value=number(p.high),
                                              value=p.default, step=number(p.step), key=f"{key}_{p.name}",
                                              help=p.help))
    return values


def presenter_style() -> None:
    """The presenter setting: larger fonts (every size in rem follows the root's), the sidebar collapsed, little
    padding, so that one Tour step fills a 1280 x 720 projector."""
    st.set_page_config(initial_sidebar_state="collapsed")
    st.html(f"""<style>
      html {{ font-size: {PRESENTER_FONT_PX}px; }}
      [data-testid="stMainBlockContainer"] {{ padding: 2.6rem 1.5rem 0.5rem 1.5rem; max-width: 100%; }}
      [data-testid="stMain"] h1 {{ font-size: 1.9rem; padding: 0.25rem 0; }}
    </style>""")
