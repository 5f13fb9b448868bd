"""Plotly figures for the dataset-wide pages (Embeddings, Decoders, Errors), built from plain arrays.

Pure functions, like :mod:`explorer.figures.maps`: no Streamlit, no models, no
file access. Every axis says its unit: time in s, frequency in Hz (mel bands
drawn by index and labelled with their centre frequency, see
:func:`explorer.figures.hz_ticks`), levels in dB; rates and probabilities
are marked (0-1).

Clickable figures carry an index in each point's ``customdata[0]`` so a page
can read the click back from ``st.plotly_chart(..., on_select=...)``'s state
(:func:`point_from_selection`, :func:`cell_from_selection`).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.audio.features import AudioConfig, mel_frequencies_hz
from core.errors import InputError
from explorer.figures import _common as common
from explorer.figures._common import BLUES, HZ_TICKS, MAGMA, VIRIDIS, hz_ticks
from explorer.figures.limits import shade_padding
from explorer.figures.maps import shrink

__all__ = [
    "FLAVOUR_TITLES",
    "embedding_scatter",
    "WEBGL_POINTS",
    "point_from_selection",
    "filter_bank",
    "filter_responses",
    "reconstructions",
    "error_bars",
    "discriminative_filters",
    "confusion_matrix",
    "cell_from_selection",
    "roc_curves",
    "metric_rows",
    "METRIC_COLUMNS",
    "gradcam_thumbnail",
    "to_db",
]

# D3's ten first: ten clearly different hues (Plotly's own ten pair up blue/violet and green/lime).
_PALETTE = qualitative.D3 + qualitative.Plotly + qualitative.Set3
_RIGHT, _WRONG = "#2ca02c", "#d62728"
WEBGL_POINTS = 1000  # an embedding scatter with more points is drawn with WebGL


FLAVOUR_TITLES = {
    "nonneg-linear": "non-negative linear",
    "mel-triangular": "mel triangular",
    "mel-gaussian": "mel Gaussian",
    "spectrogram-nmf": "classic NMF (oracle)",
}
METRIC_COLUMNS = ("class", "precision", "recall", "f1", "support", "roc_auc")


def _colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _selected_customdata(selection) -> list:
    """``customdata`` of each selected point, last selected last (empty when nothing usable)."""
    if not selection or not hasattr(selection, "get"):
        return []
    sel = selection.get("selection", selection)
    points = sel.get("points", []) if hasattr(sel, "get") else []
    out = []
    for point in points or []:
        data = point.get("customdata") if hasattr(point, "get") else None
        if data is not None:
            out.append(data if isinstance(data, (list, tuple)) else [data])
    return out


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return None


# ---------------------------------------------------------------------------
# embeddings


def embedding_scatter(points: np.ndarray, *, clip_ids: Sequence[str], true_names: Sequence[str],
                      pred_names: Sequence[str], confidence: np.ndarray, colour_by: str = "class",
                      axis_name: str = "component", highlight: int | None = None,
                      title: str | None = None, height: int = 560,
                      values: Sequence[str] | None = None, scoreable: Sequence[bool] | None = None) -> go.Figure:
    """Clips as points of a 2-D embedding, coloured by true class, by right/wrong or by a metadata column.

    Parameters
    ----------
    points : np.ndarray [shape=(N, 2)]
        The projection (:func:`core.interpret.embed.project`); its axes have no unit.
    clip_ids, true_names, pred_names : sequences of str [len=N]
        Shown on hover: file, label and the model's prediction.
    confidence : np.ndarray [shape=(N,)], in [0, 1]
        Probability of the predicted class, shown on hover.
    colour_by : {"class", "correct"} or str
        One colour per true class, or green (right) / red (wrong); any other name is a metadata
        column (speaker, source, ...) whose per-clip ``values`` give one colour per value.
    values : sequence of str [len=N] or None
        The metadata column's value per clip, with a column name as ``colour_by``.
    axis_name : str
        E.g. "PCA", "t-SNE", "UMAP": the axes are "<axis_name> 1 (no unit)".
    highlight : int or None
        Index of the current clip, ringed in black.
    scoreable : sequence of bool [len=N] or None
        Whether the model knows each clip's label (``None``: all); a clip
        whose label it does not know is never drawn as a mistake.

    Returns
    -------
    go.Figure
        Each point's ``customdata[0]`` is its index in ``points``. Past
        ``WEBGL_POINTS`` points the traces are ``Scattergl`` (WebGL), which
        report clicks the same way.
    """
    points = np.asarray(points, dtype=np.float64)
    n = points.shape[0]
    if points.ndim != 2 or points.shape[1] != 2:
        raise InputError("points", f"must be (N, 2), got {points.shape}")
    if not (len(clip_ids) == len(true_names) == len(pred_names) == len(confidence) == n):
        raise InputError("clip_ids, true_names, pred_names, confidence", "need one entry per point")
    if colour_by not in ("class", "correct") and (values is None or len(values) != n):
        raise InputError("colour_by", f"{colour_by!r} is a metadata column: it needs one value per point")
    true_names, pred_names = list(true_names), list(pred_names)
    correct = np.array([t == p for t, p in zip(true_names, pred_names)], dtype=bool)
    if scoreable is not None:
        correct |= ~np.asarray(scoreable, dtype=bool)  # no right or wrong without a class the model knows
    if colour_by not in ("class", "correct"):
        values = [str(v) for v in values]
        names = sorted(set(values))
        groups = [(name or "(empty)", np.flatnonzero([v == name for v in values]), _colour(i))
                  for i, name in enumerate(names)]
    elif colour_by == "class":
        names = list(dict.fromkeys(true_names))
        groups = [(name, np.flatnonzero([t == name for t in true_names]), _colour(i)) for i, name in enumerate(names)]
    else:
        groups = [("right", np.flatnonzero(correct), _RIGHT), ("wrong", np.flatnonzero(~correct), _WRONG)]
    fig = go.Figure()
    scatter = go.Scattergl if n > WEBGL_POINTS else go.Scatter  # WebGL draws thousands of points; SVG bogs down
    for name, idx, colour in groups:
        if len(idx) == 0:
            continue
        # The legend draws a trace's first symbol, so a group's entry is a point-less circle of its own and its
        # right and wrong points are two traces of its legend group (one mixed trace showed x, the mistakes'
        # marker, for a class whose first clip was wrong).
        fig.add_trace(scatter(x=[None], y=[None], mode="markers", name=f"{name} ({len(idx)})", legendgroup=name,
                              hoverinfo="skip", marker=dict(size=9, color=colour, symbol="circle")))
        for symbol, part in (("circle", idx[correct[idx]]), ("x", idx[~correct[idx]])):
            if len(part) == 0:
                continue
            custom = [[int(i), clip_ids[i], true_names[i], pred_names[i], float(confidence[i])] for i in part]
            fig.add_trace(scatter(
                x=points[part, 0], y=points[part, 1], mode="markers", name=f"{name} ({len(idx)})",
                legendgroup=name, showlegend=False, customdata=custom,
                marker=dict(size=9, color=colour, opacity=0.85, symbol=symbol, line=dict(width=0.5, color="white")),
                hovertemplate="%{customdata[1]}<br>label: %{customdata[2]}<br>predicted: %{customdata[3]} "
                              "(%{customdata[4]:.0%})<extra>click to open</extra>",
            ))
    if colour_by == "class" and not correct.all():  # one legend entry says what the crosses are
        fig.add_trace(scatter(x=[None], y=[None], mode="markers", name="x: predicted wrong", hoverinfo="skip",
                              marker=dict(size=9, color="grey", symbol="x")))
    if highlight is not None and 0 <= highlight < n:
        fig.add_trace(scatter(x=[points[highlight, 0]], y=[points[highlight, 1]], mode="markers",
                              name="current clip", hoverinfo="skip",
                              marker=dict(size=18, color="rgba(0,0,0,0)", line=dict(width=2.5, color="black"))))
    fig.update_xaxes(title_text=f"{axis_name} 1 (no unit)", zeroline=False)
    fig.update_yaxes(title_text=f"{axis_name} 2 (no unit)", zeroline=False)
    fig.update_layout(clickmode="event+select", dragmode="pan", legend=dict(itemsizing="constant"))
    return common.layout(fig, title=title, height=height)


def point_from_selection(selection) -> int | None:
    """The index of the last clicked point of :func:`embedding_scatter`, or ``None``.

    Parameters
    ----------
    selection : mapping or None
        The chart's state, ``{"selection": {"points": [{"customdata": [i, ...]}, ...]}}``,
        or its ``"selection"`` part.

    Returns
    -------
    int or None
    """
    for data in reversed(_selected_customdata(selection)):
        index = _as_int(data[0]) if data else None
        if index is not None:
            return index
    return None


# ---------------------------------------------------------------------------
# decoders


def _band_axis(cfg: AudioConfig, *, only_hz: Sequence[float] | None = None) -> dict:
    """A mel-band axis labelled in Hz; ``only_hz`` keeps just those ticks (for narrow panels)."""
    ticks = hz_ticks(cfg)
    pairs = [(v, t) for v, t in zip(ticks["tickvals"], ticks["ticktext"])]
    if only_hz is not None:
        wanted = {f"{f // 1000} kHz" if f >= 1000 else f"{f} Hz" for f in only_hz}
        pairs = [(v, t) for v, t in pairs if t in wanted]
    return dict(tickmode="array", tickvals=[v for v, _ in pairs], ticktext=[t for _, t in pairs],
                title=dict(text="frequency (Hz, mel scale)"))


def _log_hz_axis(ticks_hz: Sequence[int] = HZ_TICKS) -> dict:
    """A log frequency axis with round ticks (50 Hz ... 20 kHz by default)."""
    return dict(type="log", title_text="frequency (Hz)", tickmode="array", tickvals=list(ticks_hz),
                ticktext=[f"{f // 1000}k" if f >= 1000 else str(f) for f in ticks_hz])


def filter_bank(bases: Mapping[str, np.ndarray], cfg: AudioConfig = AudioConfig(), *,
                title: str | None = None, height: int = 340) -> go.Figure:
    """Every learned filter of each decoder as a heatmap: frequency (Hz) across, one filter per row.

    Filters are sorted by the frequency of their peak, so a filter bank that
    tiles the spectrum shows as a diagonal. Each filter is scaled to its own
    peak.

    Parameters
    ----------
    bases : mapping of str to np.ndarray [shape=(n_mels, K)]
        Decoder flavour -> basis ``W`` (non-negative).
    cfg : AudioConfig
        Gives the band frequencies.

    Returns
    -------
    go.Figure
        One panel per flavour, side by side; hover gives the filter index.
    """
    names = list(bases)
    titles = [FLAVOUR_TITLES.get(n, n) for n in names]
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=titles, horizontal_spacing=0.04)
    for col, name in enumerate(names, start=1):
        W = np.asarray(bases[name], dtype=np.float32)
        peak = W.max(axis=0)
        W = W / np.where(peak > 0, peak, 1.0)
        order = np.argsort(np.argmax(W, axis=0), kind="stable")
        fig.add_trace(go.Heatmap(
            z=W[:, order].T, x=np.arange(W.shape[0]), y=np.arange(W.shape[1]), customdata=np.repeat(
                order[:, None], W.shape[0], axis=1), colorscale=MAGMA, zmin=0, zmax=1, showscale=col == len(names),
            colorbar=dict(title=dict(text="response (0-1 of peak)"), thickness=12),
            hovertemplate="filter %{customdata}<br>band %{x}<br>%{z:.2f} of peak<extra></extra>",
        ), row=1, col=col)
        fig.update_xaxes(**_band_axis(cfg, only_hz=(100, 1000, 10000) if len(names) > 2 else None), row=1, col=col)
        # Inner panels: no tick marks either (they would poke into the panel on the left).
        fig.update_yaxes(title_text="filter (sorted by peak frequency)" if col == 1 else None,
                         showticklabels=col == 1, ticks=None if col == 1 else "", showgrid=False,
                         zeroline=False, row=1, col=col)
    return common.layout(fig, title=title, height=height)


def filter_responses(responses: Mapping[str, np.ndarray], cfg: AudioConfig = AudioConfig(), *,
                     title: str | None = None, height: int = 320) -> go.Figure:
    """Frequency responses as lines over Hz (log axis): one line per named filter.

    Parameters
    ----------
    responses : mapping of str to np.ndarray [shape=(n_mels,)]
        Line name -> a filter (a column of a basis ``W``), scaled to its peak here.
    cfg : AudioConfig

    Returns
    -------
    go.Figure
    """
    f_hz = mel_frequencies_hz(cfg)
    fig = go.Figure()
    for i, (name, w) in enumerate(responses.items()):
        w = np.asarray(w, dtype=np.float64)
        peak = w.max()
        fig.add_trace(go.Scatter(x=f_hz, y=w / peak if peak > 0 else w, mode="lines", name=name,
                                 line=dict(color=_colour(i), width=2),
                                 hovertemplate="%{x:.0f} Hz<br>%{y:.2f} of peak<extra>" + name + "</extra>"))
    fig.update_xaxes(**_log_hz_axis())
    fig.update_yaxes(title_text="response (0-1 of peak)", range=[0, 1.05])
    fig.update_layout(legend=dict(orientation="h", y=-0.3))
    return common.layout(fig, title=title, height=height)


def to_db(X01: np.ndarray, *, floor_db: float, peak_db: float) -> np.ndarray:
    """Map the decoders' [0, 1] target scale back to dB: 0 -> ``floor_db``, 1 -> ``peak_db``.

    The target (:func:`core.interpret.nmf.nonnegative_target`) is the clip's
    log-mel min-max scaled, an affine map of its dB spectrogram, so this
    inverts it exactly for the clip itself and puts reconstructions on the
    same scale.

    Returns
    -------
    np.ndarray [shape=X01.shape], float32, in dB
    """
    return (floor_db + np.asarray(X01, dtype=np.float32) * (peak_db - floor_db)).astype(np.float32)


def reconstructions(target_db: np.ndarray, recons_db: Mapping[str, np.ndarray], cfg: AudioConfig = AudioConfig(), *,
                    errors: Mapping[str, float] | None = None, title: str | None = None,
                    max_cols: int = 432, padded_from_s: float | None = None) -> go.Figure:
    """The clip's spectrogram and each decoder's reconstruction, one row each: time (s) x frequency (Hz).

    Each panel is one PNG picture on its axes, coloured on one shared dB scale
    (the clip's range), with one colour bar: nothing here is hovered, and five
    heatmap traces were most of what the Decoders page sent and drew.

    Parameters
    ----------
    target_db : np.ndarray [shape=(n_mels, n_frames)]
        The clip in dB.
    recons_db : mapping of str to np.ndarray [shape=(n_mels, n_frames)]
        Flavour -> reconstruction in dB (see :func:`to_db`).
    errors : mapping of str to float or None
        Flavour -> relative error on this clip, shown in the panel title.
    max_cols : int
        Columns kept for drawing (block-averaged).
    padded_from_s : float or None
        Where the clip's padding starts in the model's input: shaded grey in every panel from there.

    Returns
    -------
    go.Figure
    """
    panels = [("the clip", target_db)] + [(name, X) for name, X in recons_db.items()]
    titles = []
    for name, _ in panels:
        label = FLAVOUR_TITLES.get(name, name)
        if errors and name in errors:
            label += f" (relative error {errors[name]:.2f})"
        titles.append(label)
    n = len(panels)
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, shared_yaxes=True, vertical_spacing=0.35 / n,
                        subplot_titles=titles)
    lo = float(np.min(target_db))
    hi = float(np.max(target_db))
    duration_s = target_db.shape[1] * cfg.hop_length / cfg.sr
    for row, (_, X) in enumerate(panels, start=1):
        Z = shrink(np.asarray(X, dtype=np.float32), max_rows=cfg.n_mels, max_cols=max_cols)
        picture = common.to_rgb(Z, VIRIDIS, vmin=lo, vmax=hi)[::-1]  # row 0 = top = highest band
        axis = "" if row == 1 else str(row)
        fig.add_layout_image(source=common.png_uri(picture), xref=f"x{axis}", yref=f"y{axis}", x=0,
                             y=cfg.n_mels - 0.5, sizex=duration_s, sizey=cfg.n_mels, xanchor="left",
                             yanchor="top", sizing="stretch", layer="below")
        fig.update_yaxes(**_band_axis(cfg), range=[-0.5, cfg.n_mels - 0.5], showgrid=False, zeroline=False,
                         row=row, col=1)
        fig.update_xaxes(range=[0, duration_s], showgrid=False, zeroline=False, row=row, col=1)
    # the shared colour bar: a one-row heatmap of the scale's ends, drawn see-through and never hovered
    fig.add_trace(go.Heatmap(z=[[lo, hi]], x=[0, duration_s], y=[0, 0], colorscale=VIRIDIS, zmin=lo, zmax=hi,
                             opacity=0.0, hoverinfo="skip", showscale=True,
                             colorbar=dict(title=dict(text="dB"), thickness=12)), row=1, col=1)
    fig.update_xaxes(title_text="time (s)", row=n, col=1)
    shade_padding(fig, padded_from_s, x_end_s=duration_s,
                  panels=[(f"x{'' if r == 1 else r}", f"y{'' if r == 1 else r}", 0.0, None) for r in range(1, n + 1)])
    return common.layout(fig, title=title, height=60 + 190 * n)


def error_bars(errors: Mapping[str, Mapping[str, float]], *, title: str | None = None) -> go.Figure:
    """Relative reconstruction error per decoder flavour, one bar group per set of clips.

    Parameters
    ----------
    errors : mapping of str to mapping of str to float
        Series name (e.g. "held-out clips", "this clip") -> flavour -> relative
        error ``||X - W H|| / ||X||`` (0 = perfect).

    Returns
    -------
    go.Figure
    """
    fig = go.Figure()
    top = 0.0
    for i, (series, values) in enumerate(errors.items()):
        names = list(values)
        heights = [float(values[n]) for n in names]
        top = max([top] + [h for h in heights if np.isfinite(h)])
        fig.add_trace(go.Bar(x=[FLAVOUR_TITLES.get(n, n) for n in names], y=heights, name=series,
                             marker_color=_colour(i), text=[f"{h:.2f}" for h in heights], textposition="outside",
                             cliponaxis=False, textfont=dict(size=10),
                             hovertemplate="%{x}: %{y:.3f}<extra>" + series + "</extra>"))
    # Head room above the tallest bar for its value label.
    fig.update_yaxes(title_text="relative error (0 = perfect)", range=[0, 1.18 * top if top > 0 else 1])
    fig.update_xaxes(title_text="decoder")
    # The legend sits above the plot, under the title, in a top margin made for it (not over the bars).
    fig.update_layout(barmode="group", legend=dict(orientation="h", x=0, xanchor="left", y=1.02, yanchor="bottom"))
    common.layout(fig, title=title, height=360)
    return fig.update_layout(margin=dict(t=95), title=dict(y=0.97, yanchor="top"))


def decoder_scores(row: Mapping, *, title: str | None = None) -> go.Figure:
    """Held-out relative error of each decoder beside the baselines and the oracle, with 95 % intervals.

    Parameters
    ----------
    row : mapping
        One tap's scores (:func:`core.interpret.decoder_fit.score_tap`):
        ``"flavours"`` -> flavour -> ``{"relative_error": {"value", "low", "high"}, "beats_mean"}``,
        ``"mean"``, ``"zeros"``, and optionally ``"oracle"`` (with ``"k"``).

    Returns
    -------
    go.Figure
        Horizontal bars, the training-mean spectrum also drawn as a dashed line.
    """
    names, values, lows, highs, colours = [], [], [], [], []

    def add(name, score, colour):
        names.append(name)
        values.append(score["value"])
        lows.append(score["value"] - score["low"])
        highs.append(score["high"] - score["value"])
        colours.append(colour)

    for i, (flavour, f) in enumerate(row["flavours"].items()):
        add(FLAVOUR_TITLES.get(flavour, flavour) + ("" if f["beats_mean"] else " (does not beat the mean)"),
            f["relative_error"], _colour(i))
    add("training-mean spectrum (baseline)", row["mean"], "rgb(150,150,150)")
    add("zeros (baseline)", row["zeros"], "rgb(200,200,200)")
    if row.get("oracle"):
        add(f"classic NMF, K = {row['oracle']['k']} (oracle)", row["oracle"], "rgb(90,90,90)")
    fig = go.Figure(go.Bar(
        y=names, x=values, orientation="h", marker_color=colours,
        error_x=dict(type="data", symmetric=False, array=highs, arrayminus=lows, color="black", thickness=1.2),
        hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    # Each value is written past its interval's upper end (as the bar's own "outside" text it sat under the
    # error bar's whisker).
    fig.add_trace(go.Scatter(y=names, x=[v + h for v, h in zip(values, highs)], mode="text",
                             text=[f"  {v:.3f}" for v in values], textposition="middle right", cliponaxis=False,
                             hoverinfo="skip", showlegend=False))
    fig.add_vline(x=row["mean"]["value"], line_dash="dash", line_color="rgb(120,120,120)")
    fig.update_xaxes(title_text="held-out relative error (0 = perfect; 95 % interval)", range=[0, 1.15])
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(showlegend=False)  # one series; the labels' trace is no legend entry either
    return common.layout(fig, title=title, height=70 + 34 * len(names))


def discriminative_filters(bases: Mapping[str, np.ndarray], picks: Mapping[str, Sequence[tuple[int, float]]],
                           cfg: AudioConfig = AudioConfig(), *, title: str | None = None,
                           height: int = 300, score_name: str = "d'") -> go.Figure:
    """For one class, each decoder's most discriminative filters as frequency responses.

    Parameters
    ----------
    bases : mapping of str to np.ndarray [shape=(n_mels, K)]
    picks : mapping of str to sequence of (int, float)
        Flavour -> ``[(filter, score), ...]`` best first (e.g. Welch's t,
        :func:`core.interpret.nmf.discriminative_channels`).
    score_name : str
        What the score is called in the key.

    Returns
    -------
    go.Figure
        One panel per flavour; x is frequency (Hz, log axis).
    """
    names = [n for n in bases if n in picks]
    f_hz = mel_frequencies_hz(cfg)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=[FLAVOUR_TITLES.get(n, n) for n in names],
                        shared_yaxes=True, horizontal_spacing=0.03)
    n_lines = max((len(picks[n]) for n in names), default=0)
    for col, name in enumerate(names, start=1):
        W = np.asarray(bases[name], dtype=np.float64)
        key = []
        for rank, (k, score) in enumerate(picks[name]):
            w = W[:, int(k)]
            peak = w.max()
            colour = _colour(rank)
            fig.add_trace(go.Scatter(x=f_hz, y=w / peak if peak > 0 else w, mode="lines",
                                     name=f"filter {k} ({score_name} {score:.2f})", showlegend=False,
                                     line=dict(color=colour, width=2),
                                     hovertemplate=f"filter {k}, {score_name} {score:.2f}<br>"
                                                   + "%{x:.0f} Hz<br>%{y:.2f}<extra></extra>"), row=1, col=col)
            key.append(f"<span style='color:{colour}'>━</span> filter {k} ({score_name} {score:.2f})")
        fig.update_xaxes(**_log_hz_axis((100, 1000, 10000)), row=1, col=col)
        # Each panel's key sits under it, so every entry says which decoder it belongs to.
        domain = fig.layout[f"xaxis{'' if col == 1 else col}"].domain
        fig.add_annotation(text="<br>".join(key), x=(domain[0] + domain[1]) / 2, y=0, xref="paper", yref="paper",
                           xanchor="center", yanchor="top", yshift=-54, align="left", showarrow=False,
                           font=dict(size=11))
    fig.update_yaxes(title_text="response (0-1 of peak)", range=[0, 1.05], row=1, col=1)
    bottom = 62 + 16 * n_lines
    common.layout(fig, title=title, height=height + 16 * n_lines)
    # Room above the panel titles for the figure's title, and below the x axes for the keys.
    return fig.update_layout(margin=dict(t=75 if title else 40, b=bottom), title=dict(y=0.98, yanchor="top"))


# ---------------------------------------------------------------------------
# errors


def confusion_matrix(cm: np.ndarray, classes: Sequence[str], *, normalise: bool = False,
                     title: str | None = None, height: int | None = None) -> go.Figure:
    """A confusion matrix as a heatmap (rows: true class, columns: predicted class), cells clickable.

    Parameters
    ----------
    cm : np.ndarray [shape=(n_classes, n_classes)], int
        Counts, ``cm[i, j]`` = clips of class ``i`` predicted as ``j``.
    classes : sequence of str [len=n_classes]
    normalise : bool
        Colour and label each row as shares of the class's clips (0-1).

    Returns
    -------
    go.Figure
        A transparent marker sits on every cell with ``customdata = [true, predicted, count]``.
    """
    cm = np.asarray(cm, dtype=np.int64)
    n = len(classes)
    if cm.shape != (n, n):
        raise InputError("cm", f"must be ({n}, {n}), got {cm.shape}")
    rows = cm.sum(axis=1, keepdims=True)
    shares = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    z = shares if normalise else cm
    names = list(classes)
    ti, pi = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    text = [[(f"{shares[t, p]:.0%}" if normalise else str(cm[t, p])) if cm[t, p] else "" for p in range(n)]
            for t in range(n)]
    zmax = 1 if normalise else max(int(cm.max()), 1)
    # Counts are whole: ticks at integer steps, about five of them.
    ticks = dict(tickformat=".1f") if normalise else dict(tick0=0, dtick=max(1, int(np.ceil(zmax / 5))),
                                                          tickformat="d")
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale=BLUES, zmin=0, zmax=zmax,
        text=text, texttemplate="%{text}", textfont=dict(size=11),
        colorbar=dict(title=dict(text="share of the class (0-1)" if normalise else "clips"), thickness=12,
                      **ticks),
        hoverinfo="skip",
    ))
    # Invisible click targets, one per cell (a click on a heatmap itself is not a selectable point).
    fig.add_trace(go.Scatter(
        x=[names[p] for p in pi.ravel()], y=[names[t] for t in ti.ravel()], mode="markers",
        customdata=np.stack([ti.ravel(), pi.ravel(), cm.ravel()], axis=1).tolist(),
        marker=dict(size=24, symbol="square", color="rgba(0,0,0,0)"), showlegend=False,
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=1)),
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata[2]} clips<extra>click to list them</extra>",
    ))
    # Upright class names (-90 degrees) take one column's width each, so they never overlap; the
    # margin grows to fit the longest (automargin), and the figure with it.
    fig.update_xaxes(title_text="predicted class", tickangle=-90, automargin=True, showgrid=False)
    fig.update_yaxes(title_text="true class", autorange="reversed", automargin=True, showgrid=False)
    fig.update_layout(clickmode="event+select", dragmode=False)
    longest = max((len(c) for c in names), default=0)
    return common.layout(fig, title=title, height=height or 200 + 32 * n + 6 * longest)


def cell_from_selection(selection) -> tuple[int, int] | None:
    """The (true, predicted) cell last clicked in :func:`confusion_matrix`, or ``None``."""
    for data in reversed(_selected_customdata(selection)):
        if len(data) >= 2:
            t, p = _as_int(data[0]), _as_int(data[1])
            if t is not None and p is not None:
                return t, p
    return None


def roc_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray, float | None]], *, title: str | None = None,
               height: int = 420) -> go.Figure:
    """One ROC curve per class (that class against the rest), with the chance diagonal.

    Parameters
    ----------
    curves : mapping of str to (np.ndarray, np.ndarray, float or None)
        Class -> (false positive rates, true positive rates, area under the curve).

    Returns
    -------
    go.Figure
    """
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance", line=dict(dash="dash", color="grey"),
                               hoverinfo="skip"))
    for i, (name, (fpr, tpr, auc)) in enumerate(curves.items()):
        label = f"{name} (AUC {auc:.2f})" if auc is not None else f"{name} (AUC n/a)"
        fig.add_trace(go.Scatter(x=np.asarray(fpr), y=np.asarray(tpr), mode="lines", name=label,
                                 line=dict(color=_colour(i), width=1.8, shape="hv"),
                                 hovertemplate="FPR %{x:.2f}<br>TPR %{y:.2f}<extra>" + name + "</extra>"))
    fig.update_xaxes(title_text="false positive rate (0-1)", range=[-0.01, 1.01])
    fig.update_yaxes(title_text="true positive rate (0-1)", range=[-0.01, 1.01])
    return common.layout(fig, title=title, height=height)


def metric_rows(result: Mapping) -> list[tuple]:
    """Per-class rows of :func:`core.training.evaluate.metrics`' result, in :data:`METRIC_COLUMNS` order.

    Returns
    -------
    list of tuple
        ``(class, precision, recall, f1, support, roc_auc)``; ``roc_auc`` is
        ``None`` where the class has no positives or no negatives.
    """
    return [(row["class"], round(row["precision"], 4), round(row["recall"], 4), round(row["f1"], 4),
             int(row["support"]), None if row["roc_auc"] is None else round(row["roc_auc"], 4))
            for row in result["per_class"]]


def gradcam_thumbnail(S: np.ndarray, heat: np.ndarray, *, max_rows: int = 64, max_cols: int = 160) -> np.ndarray:
    """A small RGB image: the spectrogram in grey with the Grad-CAM map blended over it in red to yellow.

    Low frequencies are at the bottom and time runs left to right, as in the
    other spectrogram figures.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
        Any unit (scaled to its own range).
    heat : np.ndarray [shape=(n_mels, n_frames)], in [0, 1]; NaN marks cells the map does not cover

    Returns
    -------
    np.ndarray [shape=(rows, cols, 3)], uint8
    """
    if np.shape(S) != np.shape(heat) or np.ndim(S) != 2:
        raise InputError("S, heat", f"must be the same 2-D shape, got {np.shape(S)} and {np.shape(heat)}")
    S = shrink(S, max_rows=max_rows, max_cols=max_cols)
    h = np.clip(np.nan_to_num(shrink(heat, max_rows=max_rows, max_cols=max_cols), nan=0.0), 0.0, 1.0)  # NaN: not covered
    lo, hi = float(S.min()), float(S.max())
    grey = (S - lo) / (hi - lo) if hi > lo else np.zeros_like(S)
    base = np.repeat((0.15 + 0.6 * grey)[..., None], 3, axis=2)
    colour = np.stack([np.ones_like(h), 0.2 + 0.7 * h, np.zeros_like(h)], axis=2)  # red -> yellow
    alpha = (0.85 * h)[..., None]
    rgb = (1 - alpha) * base + alpha * colour
    return np.ascontiguousarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)[::-1])
