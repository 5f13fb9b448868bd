"""Plotly figures for the explorer's pages, built from plain arrays.

Pure functions: no Streamlit, no models, no file access, so each can be
tested on its own. Every axis says its unit: time in s, frequency in Hz (mel
bands are drawn by index and labelled with their centre frequency), levels in
dB. Heatmaps follow the spectrogram's convention: rows are mel bands (row 0 =
lowest), columns are frames (column 0 = start of the clip).

Large arrays are shrunk for drawing (:func:`envelope`, :func:`shrink`): a
browser cannot show more points than it has pixels, and every rerun sends the
figure again.
"""

from __future__ import annotations

import csv
import io
from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.audio.features import AudioConfig
from core.errors import InputError
from explorer.figures import _common as common
from explorer.figures._common import HZ_TICKS, MAGMA, hz_ticks, hz_to_band
from explorer.figures.limits import shade_padding

__all__ = [
    "HZ_TICKS",
    "hz_ticks",
    "hz_to_band",
    "envelope",
    "shrink",
    "waveform",
    "spectrogram",
    "extent_s",
    "feature_steps",
    "overlay",
    "OVERLAY_ROWS",
    "OVERLAY_COLS",
    "top_k_bars",
    "channel_grid",
    "se_weights",
    "strongest_channels",
    "curve",
    "attention_grid",
    "patch_picker",
    "patch_from_selection",
    "arc_path",
    "grid_offsets",
    "figure_download",
    "table_csv",
    "CHANNEL_ORDERS",
]

CHANNEL_ORDERS = ("mean", "max", "variance")

# ---------------------------------------------------------------------------
# axes helpers


def envelope(y: np.ndarray, *, n_buckets: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max envelope of a waveform, for drawing it with few points.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    n_buckets : int > 0

    Returns
    -------
    index : np.ndarray [shape=(m,)]
        Sample index of each bucket's start.
    low, high : np.ndarray [shape=(m,)]
        Smallest and largest sample of each bucket; ``m <= n_buckets``.
    """
    n = y.shape[-1]
    size = max(1, int(np.ceil(n / n_buckets)))
    m = int(np.ceil(n / size))
    padded = np.pad(y, (0, m * size - n), mode="edge").reshape(m, size)
    return np.arange(m) * size, padded.min(axis=1), padded.max(axis=1)


def shrink(X: np.ndarray, *, max_rows: int = 128, max_cols: int = 432) -> np.ndarray:
    """Block-average a 2-D array down to at most ``max_rows`` x ``max_cols``.

    Parameters
    ----------
    X : np.ndarray [shape=(rows, cols)]

    Returns
    -------
    np.ndarray [shape=(ceil(rows / a), ceil(cols / b))], float32, where ``a``
    and ``b`` are the smallest integer factors that fit the limits.
    """
    X = np.asarray(X, dtype=np.float32)
    a = max(1, int(np.ceil(X.shape[0] / max_rows)))
    b = max(1, int(np.ceil(X.shape[1] / max_cols)))
    if a == 1 and b == 1:
        return X
    rows, cols = int(np.ceil(X.shape[0] / a)), int(np.ceil(X.shape[1] / b))
    padded = np.pad(X, ((0, rows * a - X.shape[0]), (0, cols * b - X.shape[1])), mode="edge")
    return padded.reshape(rows, a, cols, b).mean(axis=(1, 3))


_GRID_ROW_GAP = 0.22  # gap between rows of panels on a shared band axis, as a share of n_mels


def _time_centres(n_cols: int, duration_s: float) -> np.ndarray:
    return (np.arange(n_cols) + 0.5) * duration_s / n_cols


def _band_centres(n_rows: int, n_mels: int) -> np.ndarray:
    return (np.arange(n_rows) + 0.5) * n_mels / n_rows - 0.5


def _domain(low: float, high: float) -> list[float]:
    """An axis domain inside [0, 1] (float sums can step a hair outside)."""
    return [min(max(round(low, 9), 0.0), 1.0), min(max(round(high, 9), 0.0), 1.0)]


def _axis_suffix(k: int) -> str:
    return "" if k == 1 else str(k)


# ---------------------------------------------------------------------------
# clip


def waveform(samples: np.ndarray, sr: int, *, title: str | None = "Waveform",
             n_buckets: int = 2000) -> go.Figure:
    """The waveform against time, one row per channel (L and R for stereo).

    Parameters
    ----------
    samples : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
    sr : int > 0, in Hz

    Returns
    -------
    go.Figure
        Drawn as a min/max envelope of at most ``n_buckets`` points per channel.
    """
    samples = np.atleast_2d(samples)
    names = ["left", "right"] if samples.shape[0] == 2 else ["mono"]
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=names if len(names) > 1 else None)
    for row, (name, y) in enumerate(zip(names, samples), start=1):
        index, low, high = envelope(y, n_buckets=n_buckets)
        t = index / sr
        # One closed polygon (top edge forward, bottom edge back) per channel.
        fig.add_trace(go.Scatter(x=np.concatenate([t, t[::-1]]), y=np.concatenate([high, low[::-1]]),
                                 fill="toself", mode="lines", line=dict(width=0.6, color="#1f77b4"),
                                 name=name, hoverinfo="skip", showlegend=False), row=row, col=1)
        fig.update_yaxes(title_text="amplitude (full scale)", row=row, col=1)
    fig.update_xaxes(title_text="time (s)", row=len(names), col=1)
    return common.layout(fig, title=title, height=170 + 110 * len(names))


def spectrogram(S: np.ndarray, cfg: AudioConfig = AudioConfig(), *, title: str | None = None,
                unit: str = "dB", boxes: Sequence = (), colorscale: str = "Viridis",
                duration_s: float | None = None, height: int = 320, max_cols: int = 432) -> go.Figure:
    """A mel spectrogram: time (s) across, mel bands up, labelled in Hz.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
    cfg : AudioConfig
        Gives the band frequencies and the frame times.
    unit : str
        Colour bar title, e.g. "dB", "power", "z-score".
    boxes : sequence of objects with ``t0_s, t1_s, f0_hz, f1_hz``
        Ground-truth event boxes, drawn as white outlines.
    duration_s : float or None
        Time covered by the columns; ``None`` derives it from ``cfg``.
    max_cols : int > 0
        Columns sent to the browser at most (block-averaged down): a narrow
        panel needs fewer than the clip's 431 frames.

    Returns
    -------
    go.Figure
    """
    fig = go.Figure()
    _add_spectrogram(fig, S, cfg, unit=unit, colorscale=colorscale, duration_s=duration_s, max_cols=max_cols)
    for box in boxes:
        _add_box(fig, box.t0_s, box.t1_s, box.f0_hz, box.f1_hz, cfg, color="white", dash="dash")
    fig.update_xaxes(title_text="time (s)")
    fig.update_yaxes(**hz_ticks(cfg))
    return common.layout(fig, title=title, height=height)


def _add_spectrogram(fig, S, cfg, *, unit, colorscale, duration_s=None, row=None, col=None,
                     showscale=True, opacity=1.0, max_cols: int = 432):
    duration_s = duration_s if duration_s is not None else _columns_s(S.shape[1], cfg)
    S = shrink(S, max_rows=cfg.n_mels, max_cols=max_cols)
    fig.add_trace(go.Heatmap(
        z=S, x=_time_centres(S.shape[1], duration_s), y=_band_centres(S.shape[0], cfg.n_mels),
        colorscale=colorscale, showscale=showscale, opacity=opacity,
        colorbar=dict(title=dict(text=unit), thickness=12) if showscale else None,
        hovertemplate="%{x:.2f} s<br>band %{y:.0f}<br>%{z:.2f} " + unit + "<extra></extra>",
    ), row=row, col=col)


def extent_s(cfg: AudioConfig) -> float:
    """The time axis of a drawn spectrogram, in s: ``n_frames`` columns of one hop each (a frame's column spans
    its hop, so this is one hop more than :attr:`core.audio.features.AudioConfig.clip_duration_s`)."""
    return _columns_s(cfg.n_frames, cfg)


def _columns_s(n_cols: int, cfg: AudioConfig) -> float:
    """Time covered by ``n_cols`` frames, in s."""
    return n_cols * cfg.hop_length / cfg.sr


def _add_box(fig, t0_s, t1_s, f0_hz, f1_hz, cfg, *, color, dash="solid", width=2.0, xref="x", yref="y"):
    y0, y1 = hz_to_band(np.array([f0_hz, f1_hz]), cfg)
    fig.add_shape(type="rect", x0=t0_s, x1=t1_s, y0=float(y0), y1=float(y1), xref=xref, yref=yref,
                  line=dict(color=color, width=width, dash=dash))


def feature_steps(steps: dict[str, np.ndarray], cfg: AudioConfig = AudioConfig()) -> go.Figure:
    """The preprocessing steps side by side: mel power, dB, standardised, fixed length.

    Parameters
    ----------
    steps : dict
        :func:`core.audio.features.feature_steps` output: ``"mel"``, ``"db"``,
        ``"standardised"``, ``"fixed"``, each (n_mels, t).

    Returns
    -------
    go.Figure
        Four panels; the first three span the clip's own length, the last the
        model's fixed ``n_frames``.
    """
    panels = [("mel", "1. mel power<br>(linear, no unit)", "power"), ("db", "2. dB<br>(top 80 dB)", "dB"),
              ("standardised", "3. standardised<br>(z-score: standard deviations)", "z-score"),
              ("fixed", "4. padded / trimmed<br>(z-score)", "z-score")]
    spacing = 0.09  # room right of each panel for its colour bar (the unit is in the panel's title)
    fig = make_subplots(rows=1, cols=4, subplot_titles=[p[1] for p in panels], horizontal_spacing=spacing)
    for col, (key, _, unit) in enumerate(panels, start=1):
        S = steps[key]
        S = shrink(S, max_rows=cfg.n_mels, max_cols=216)
        duration_s = steps[key].shape[1] * cfg.hop_length / cfg.sr
        right = fig.layout[f"xaxis{'' if col == 1 else col}"].domain[1]
        fig.add_trace(go.Heatmap(
            z=S, x=_time_centres(S.shape[1], duration_s), y=_band_centres(S.shape[0], cfg.n_mels),
            colorscale="Viridis", showscale=True,
            colorbar=dict(x=right + 0.005, xanchor="left", thickness=8, len=1.0, tickfont=dict(size=9)),
            hovertemplate="%{x:.2f} s<br>band %{y:.0f}<br>%{z:.3g} " + unit + "<extra></extra>",
        ), row=1, col=col)
        fig.update_xaxes(title_text="time (s)", row=1, col=col)
        fig.update_yaxes(**(hz_ticks(cfg) if col == 1 else dict(tickmode="array", tickvals=hz_ticks(cfg)["tickvals"],
                                                                 ticktext=[""] * len(hz_ticks(cfg)["tickvals"]))),
                         row=1, col=col)
    common.layout(fig, title=None, height=320)
    return fig.update_layout(margin=dict(t=55))


# The heat an overlay sends and hovers, at most: maps come from patches or conv blocks far coarser than this, and
# a quarter of the spectrogram's cells is a quarter of the bytes the browser parses and paints on every draw.
OVERLAY_ROWS, OVERLAY_COLS = 64, 216


def overlay(S: np.ndarray, heat: np.ndarray, cfg: AudioConfig = AudioConfig(), *, title: str | None = None,
            unit: str = "relevance (0-1)", boxes: Sequence = (), opacity: float = 0.75,
            height: int = 320, zero: float | None = None) -> go.Figure:
    """A heatmap over a spectrogram: grey spectrogram below, transparent-to-red heat above.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
        The spectrogram (any unit; drawn in grey).
    heat : np.ndarray [shape=(n_mels, n_frames)], in [0, 1]
        Relevance on the same grid; the colour scale runs from 0
        (transparent) to 1, so an all-zero map leaves the spectrogram bare.
        Drawn (and hovered) block-averaged to at most ``OVERLAY_ROWS`` x
        ``OVERLAY_COLS`` cells, about the plot's own pixels.
    boxes : sequence of objects with ``t0_s, t1_s, f0_hz, f1_hz``
        Ground-truth event boxes, drawn as white dashed outlines.
    zero : float in [0, 1] or None
        A signed method's map: where its 0 lies on ``heat``'s scale
        (:meth:`core.interpret.registry.MethodSpec.explain_signed`). The colour
        starts there, so cells against the class stay as clear as cells with
        nothing (scaled from its minimum, a signed map's 0 is mid-scale and
        would tint the whole clip), and it saturates at the 99th percentile of
        the cells above 0: Integrated Gradients puts most of its weight in a
        few cells (on a demo clip the top 0.1 % above 0 lie 300 times above
        the median one), which would otherwise leave the rest too faint to see.

    Returns
    -------
    go.Figure
    """
    fig = go.Figure()
    duration_s = _columns_s(heat.shape[1], cfg)
    _add_background(fig, S, cfg, duration_s=_columns_s(S.shape[1], cfg))
    H = shrink(heat, max_rows=OVERLAY_ROWS, max_cols=OVERLAY_COLS)
    fig.add_trace(go.Heatmap(
        z=H, x=_time_centres(H.shape[1], duration_s), y=_band_centres(H.shape[0], cfg.n_mels),
        colorscale=[[0.0, "rgba(255,40,0,0)"], [0.35, "rgba(255,80,0,0.25)"], [1.0, "rgba(255,230,0,0.95)"]],
        # Pinned at 0 (or the signed map's 0), so that an all-zero map stays transparent (autorange would centre
        # it, tinting everything).
        zmin=0.0 if zero is None else min(float(zero), 0.999),
        zmax=max(1.0, float(H.max())) if zero is None else _signed_top(H, zero),
        opacity=opacity, colorbar=dict(title=dict(text=unit), thickness=12),
        hovertemplate="%{x:.2f} s<br>band %{y:.0f}<br>%{z:.3f}<extra></extra>",
    ))
    for box in boxes:  # white dashed, as on the Clip page (cyan is the attention query)
        _add_box(fig, box.t0_s, box.t1_s, box.f0_hz, box.f1_hz, cfg, color="white", dash="dash")
    # no grid lines: they would cross the spectrogram, which is drawn below them
    fig.update_xaxes(title_text="time (s)", range=[0, duration_s], showgrid=False, zeroline=False)
    fig.update_yaxes(**hz_ticks(cfg), range=[-0.5, cfg.n_mels - 0.5], showgrid=False, zeroline=False)
    return common.layout(fig, title=title, height=height)


def _signed_top(H: np.ndarray, zero: float, *, percentile: float = 99.0) -> float:
    """Where a signed map's colour saturates: the ``percentile`` of its cells above ``zero`` (1.0 if none is)."""
    above = H[np.isfinite(H) & (H > zero)]
    return float(np.percentile(above, percentile)) if above.size else 1.0


def _add_background(fig: go.Figure, S: np.ndarray, cfg: AudioConfig, *, duration_s: float,
                    max_cols: int = 432) -> None:
    """The spectrogram in grey (dark = quiet) as a layout image under the data: no trace, no hover, one PNG."""
    grey = _quantise(shrink(S, max_rows=cfg.n_mels, max_cols=max_cols))[::-1]  # row 0 = top = highest band
    fig.add_layout_image(source=common.png_uri(grey), xref="x", yref="y", x=0, y=cfg.n_mels - 0.5,
                         sizex=duration_s, sizey=cfg.n_mels, xanchor="left", yanchor="top", sizing="stretch",
                         layer="below")


def top_k_bars(probs: np.ndarray, classes: Sequence[str], *, k: int = 5, title: str | None = None,
               true_label: int | None = None) -> go.Figure:
    """The ``k`` most probable classes as horizontal bars, best on top.

    Parameters
    ----------
    probs : np.ndarray [shape=(n_classes,)], in [0, 1]
    classes : sequence of str [len=n_classes]
    true_label : int or None
        Index of the true class; its bar is green, the others blue.

    Returns
    -------
    go.Figure
    """
    probs = np.asarray(probs, dtype=np.float64)
    k = int(min(k, probs.shape[0]))
    order = np.argsort(-probs, kind="stable")[:k][::-1]  # plotly draws bottom-up
    colors = ["#2ca02c" if true_label is not None and i == true_label else "#1f77b4" for i in order]
    fig = go.Figure(go.Bar(x=probs[order], y=[classes[i] for i in order], orientation="h",
                           marker_color=colors, text=[f"{probs[i]:.1%}" for i in order],
                           textposition="auto", hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="probability (0-1)", range=[0, 1])
    return common.layout(fig, title=title, height=90 + 28 * k)


# ---------------------------------------------------------------------------
# layers


def strongest_channels(maps: np.ndarray, *, n: int, order: str = "mean") -> np.ndarray:
    """Indices of the ``n`` strongest channels of a feature map, strongest first.

    Parameters
    ----------
    maps : np.ndarray [shape=(C, F, T)]
    n : int > 0
    order : {"mean", "max", "variance"}
        Mean activation, largest activation, or variance over the map.

    Returns
    -------
    np.ndarray [shape=(min(n, C),)], int
    """
    if order not in CHANNEL_ORDERS:
        raise InputError("order", f"must be one of {CHANNEL_ORDERS}, got {order!r}")
    flat = maps.reshape(maps.shape[0], -1)
    score = {"mean": flat.mean, "max": flat.max, "variance": flat.var}[order](axis=1)
    return np.argsort(-score, kind="stable")[: int(n)]


def channel_grid(maps: np.ndarray, channels: Sequence[int], cfg: AudioConfig = AudioConfig(), *,
                 n_cols: int = 4, title: str | None = None, unit: str = "activation",
                 padded_from_s: float | None = None) -> go.Figure:
    """Feature maps of chosen channels in a grid, each on the clip's time (s) x frequency (Hz) axes.

    The panels share one x axis per column and a single y axis on which each
    row sits ``n_mels`` bands plus a gap above the next: ``n_cols + 1`` axes
    instead of two per panel (why: README, Performance, the Layers row).

    Parameters
    ----------
    maps : np.ndarray [shape=(C, F, T)]
        A conv tap's output for one clip; ``F`` rows span the mel axis and
        ``T`` columns span the clip.
    channels : sequence of int
        Which channels to draw, in order.
    n_cols : int > 0
    padded_from_s : float or None
        Where the clip's padding starts in the model's input: shaded grey in every column from there.

    Returns
    -------
    go.Figure
        One panel per channel, titled with its index; shared colour range.
    """
    channels = [int(c) for c in channels]
    n_rows = max(1, int(np.ceil(len(channels) / n_cols)))
    selected = maps[channels] if channels else maps[:0]
    zmin, zmax = (float(selected.min()), float(selected.max())) if selected.size else (0.0, 1.0)
    duration_s = extent_s(cfg)
    ticks = hz_ticks(cfg)
    hspace = 0.025
    width = (1.0 - hspace * (n_cols - 1)) / n_cols
    pitch = cfg.n_mels * (1 + _GRID_ROW_GAP)  # one row of panels on the shared y axis, gap included

    def row_offset(row: int) -> float:  # the top row highest
        return (n_rows - 1 - row) * pitch

    layout: dict = {"plot_bgcolor": "white", "annotations": []}
    for col in range(n_cols):
        x0 = col * (width + hspace)
        layout[f"xaxis{_axis_suffix(col + 1)}"] = dict(domain=_domain(x0, x0 + width), anchor="y", showgrid=False,
                                                      title=dict(text="time (s)"),
                                                      **({"matches": "x"} if col else {}))
    tickvals = [v + row_offset(r) for r in range(n_rows) for v in ticks["tickvals"][::2]]
    layout["yaxis"] = dict(domain=[0.0, 1.0], anchor="x", showgrid=False, zeroline=False, tickmode="array",
                           tickvals=tickvals, ticktext=ticks["ticktext"][::2] * n_rows,
                           range=[-0.5, row_offset(0) + cfg.n_mels - 0.5], title=dict(text="frequency (Hz, mel scale)"))
    data = []
    for i, c in enumerate(channels):
        row, col = divmod(i, n_cols)
        Z = shrink(maps[c], max_rows=64, max_cols=128)
        trace = dict(
            type="heatmap", z=Z, x=_time_centres(Z.shape[1], duration_s),
            y=_band_centres(Z.shape[0], cfg.n_mels) + row_offset(row),
            xaxis=f"x{_axis_suffix(col + 1)}", yaxis="y", zmin=zmin, zmax=zmax, colorscale=MAGMA, showscale=i == 0,
            hovertemplate=f"channel {c}<br>" + "%{x:.2f} s<br>%{z:.3g}<extra></extra>")
        if i == 0:
            trace["colorbar"] = dict(title=dict(text=unit), thickness=10)
        data.append(trace)
        layout["annotations"].append(dict(text=f"channel {c}", x=col * (width + hspace) + width / 2, xref="paper",
                                          y=row_offset(row) + cfg.n_mels - 0.5, yref="y", xanchor="center",
                                          yanchor="bottom", showarrow=False, font=dict(size=11)))
    fig = common.figure(data, layout)
    shade_padding(fig, padded_from_s, x_end_s=duration_s,  # the panels drawn, each on its own rows
                  panels=[(f"x{_axis_suffix(i % n_cols + 1)}", "y", 0.0,
                           (row_offset(i // n_cols) - 0.5, row_offset(i // n_cols) + cfg.n_mels - 0.5))
                          for i in range(len(channels))])
    return common.layout(fig, title=title, height=70 + 150 * n_rows)


def se_weights(weights: np.ndarray, *, n_marked: int = 5, title: str | None = None) -> go.Figure:
    """Squeeze-and-excitation channel weights of one clip as bars.

    Parameters
    ----------
    weights : np.ndarray [shape=(C,)], in [0, 1]
    n_marked : int >= 0
        How many of the most boosted (highest, red) and most suppressed
        (lowest, blue) channels to mark and label.

    Returns
    -------
    go.Figure
    """
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-weights, kind="stable")
    n_marked = min(n_marked, weights.shape[0] // 2)
    boosted, suppressed = order[:n_marked], order[weights.shape[0] - n_marked:] if n_marked else order[:0]
    colors = np.full(weights.shape[0], "#bbbbbb", dtype=object)
    colors[boosted] = "#d62728"
    colors[suppressed] = "#1f77b4"
    fig = go.Figure(go.Bar(x=np.arange(weights.shape[0]), y=weights, marker_color=list(colors),
                           hovertemplate="channel %{x}<br>weight %{y:.3f}<extra></extra>", showlegend=False))
    for c in boosted:
        fig.add_annotation(x=int(c), y=float(weights[c]), text=f"{c}", showarrow=False, yshift=9,
                           font=dict(color="#d62728", size=10))
    for c in suppressed:
        fig.add_annotation(x=int(c), y=float(weights[c]), text=f"{c}", showarrow=False, yshift=9,
                           font=dict(color="#1f77b4", size=10))
    # Legend entries for the two colours.
    fig.add_trace(go.Bar(x=[None], y=[None], marker_color="#d62728", name=f"{n_marked} most boosted"))
    fig.add_trace(go.Bar(x=[None], y=[None], marker_color="#1f77b4", name=f"{n_marked} most suppressed"))
    fig.update_xaxes(title_text="channel")
    fig.update_yaxes(title_text="excitation weight (0-1)", range=[0, 1.08])
    fig.update_layout(legend=dict(orientation="h", y=1.12, x=1, xanchor="right"), bargap=0.1)
    return common.layout(fig, title=title, height=300)


# ---------------------------------------------------------------------------
# attribution


def curve(x: np.ndarray, y: np.ndarray, *, x_label: str, y_label: str, title: str | None = None,
          name: str = "heatmap", baseline: tuple[np.ndarray, np.ndarray] | None = None,
          baseline_name: str = "random", y_range: tuple[float, float] | None = None,
          more_baselines: Sequence[tuple[np.ndarray, np.ndarray, str]] = ()) -> go.Figure:
    """A line chart, optionally with a dashed baseline (deletion and insertion curves).

    Parameters
    ----------
    x, y : np.ndarray [shape=(n,)]
    x_label, y_label : str
        Axis titles, with their units.
    baseline : (np.ndarray, np.ndarray) or None
        Drawn dashed grey.
    more_baselines : sequence of (x, y, name)
        Further baselines, drawn dotted.
    y_range : (float, float) or None
        Fixed y range (e.g. (0, 1) for probabilities); ``None`` fits the data.

    Returns
    -------
    go.Figure
    """
    fig = go.Figure(go.Scatter(x=x, y=y, mode="lines+markers", name=name, marker=dict(size=4)))
    if baseline is not None:
        fig.add_trace(go.Scatter(x=baseline[0], y=baseline[1], mode="lines", name=baseline_name,
                                 line=dict(dash="dash", color="grey")))
    for bx, by, bname in more_baselines:
        fig.add_trace(go.Scatter(x=bx, y=by, mode="lines", name=bname, line=dict(dash="dot", color="#8c564b")))
    fig.update_xaxes(title_text=x_label)
    fig.update_yaxes(title_text=y_label, range=list(y_range) if y_range is not None else None)
    fig.update_layout(legend=dict(orientation="h", y=1.1, x=1, xanchor="right"))
    return common.layout(fig, title=title, height=320)


# ---------------------------------------------------------------------------
# attention


def arc_path(x0: float, y0: float, x1: float, y1: float, *, bend: float = 0.25,
             x_span: float = 1.0, y_span: float = 1.0) -> str:
    """SVG path of a quadratic curve from (x0, y0) to (x1, y1), bulging to the left of its direction.

    Parameters
    ----------
    bend : float
        Control point offset, as a fraction of the distance between the ends.
    x_span, y_span : float > 0
        Axis ranges the figure shows; the bulge is computed in these units so
        that arcs look alike on axes of different scales (seconds vs bands).

    Returns
    -------
    str
        ``"M x0,y0 Q cx,cy x1,y1"`` for a plotly ``path`` shape.
    """
    cx, cy = _arc_control(x0, y0, x1, y1, bend=bend, x_span=x_span, y_span=y_span)
    return f"M {x0:.4f},{y0:.4f} Q {cx:.4f},{cy:.4f} {x1:.4f},{y1:.4f}"


def _arc_control(x0, y0, x1, y1, *, bend: float, x_span: float, y_span: float) -> tuple[float, float]:
    mx, my = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    dx, dy = (x1 - x0) / x_span, (y1 - y0) / y_span  # in axis fractions
    return mx - bend * dy * x_span, my + bend * dx * y_span


def _patch_centres(patch_boxes: np.ndarray, cfg: AudioConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(time centre s, band centre, band low, band high) of each patch box (t0_s, t1_s, f0_hz, f1_hz)."""
    b = np.asarray(patch_boxes, dtype=np.float64)
    y0, y1 = hz_to_band(b[:, 2], cfg), hz_to_band(b[:, 3], cfg)
    return (b[:, 0] + b[:, 1]) / 2.0, (y0 + y1) / 2.0, y0, y1


def attention_grid(S: np.ndarray, cfg: AudioConfig, *, weights: np.ndarray, layers: Sequence[int],
                   heads: Sequence[int], patch_boxes: np.ndarray, query: int | None, top_k: int = 5,
                   title: str | None = None, padded_from_s: float | None = None) -> go.Figure:
    """Layers x heads grid: the spectrogram in each cell, the query patch boxed, arcs to its top-k patches.

    One pair of axes, each cell offset from the last, over one picture of the
    spectrogram tiled into every cell; arcs and boxes as a few line traces
    (strengths binned into ``_ARC_LEVELS`` widths); one invisible heatmap
    carries the hover (why: README, Performance). The query is picked on
    :func:`patch_picker`.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
        The spectrogram the model saw.
    weights : np.ndarray [shape=(len(layers), len(heads), P)]
        Attention from the query to each patch (class token excluded), per
        drawn layer and head.
    layers, heads : sequence of int
        1-based layer and head numbers (titles only).
    patch_boxes : np.ndarray [shape=(P, 4)]
        ``(t0_s, t1_s, f0_hz, f1_hz)`` of each patch.
    query : int or None
        Patch index of the query; ``None`` for the class token, which has no
        place on the spectrogram: its top-k patches are filled instead of linked.
    top_k : int > 0
        Arcs per cell; width and opacity grow with the weight.
    padded_from_s : float or None
        Where the clip's padding starts in the model's input: shaded grey in every cell from there.

    Returns
    -------
    go.Figure
        Cell ``(r, c)`` is offset by :func:`grid_offsets`; the hover layer's
        ``customdata`` is (patch, layer, head, weight) per patch.
    """
    weights = np.asarray(weights, dtype=np.float64)
    n_rows, n_cols = len(layers), len(heads)
    if weights.shape[:2] != (n_rows, n_cols):
        raise InputError("weights", f"shape {weights.shape}; expected ({n_rows}, {n_cols}, P)")
    duration_s = extent_s(cfg)
    tile = _quantise(shrink(S, max_rows=64, max_cols=108))
    dx, dy = grid_offsets(cfg, tile.shape)
    tx, ty, y0, y1 = _patch_centres(patch_boxes, cfg)
    data = _arc_traces(weights, np.asarray(patch_boxes, dtype=np.float64), (tx, ty, y0, y1), query=query,
                       top_k=top_k, dx=dx, dy=dy, x_span=duration_s, y_span=cfg.n_mels)
    data.append(_hover_layer(tx, ty, weights, layers, heads, dx=dx, dy=dy))
    fig = common.figure(data, _attention_grid_layout(tile, cfg, layers, heads, dx=dx, dy=dy))
    shade_padding(fig, padded_from_s, x_end_s=duration_s,  # the top row first: "padding" is written there
                  panels=[("x", "y", c * dx, (r * dy - 0.5, r * dy + cfg.n_mels - 0.5))
                          for r in reversed(range(n_rows)) for c in range(n_cols)])
    common.layout(fig, title=title, height=80 + 125 * n_rows)
    return fig.update_layout(margin=dict(l=48, r=30, t=60 if title else 30, b=50))


def _arc_traces(weights: np.ndarray, boxes: np.ndarray, centres: tuple, *, query: int | None, top_k: int,
                dx: float, dy: float, x_span: float, y_span: float) -> list[dict]:
    """The grid's line traces: per strength level the top-k patches' boxes and the arcs to them, and the query's
    cyan boxes. ``centres`` is :func:`_patch_centres`' (x, y, bottom, top) of each patch."""
    tx, ty, y0, y1 = centres
    n_rows, n_cols = weights.shape[:2]
    wmax = float(weights.max()) if weights.size else 1.0
    arcs = [dict(x=[], y=[]) for _ in range(_ARC_LEVELS)]  # by strength level
    tops = [dict(x=[], y=[]) for _ in range(_ARC_LEVELS)]
    cyan = dict(x=[], y=[])
    for r in range(n_rows):
        for c in range(n_cols):
            ox, oy = c * dx, (n_rows - 1 - r) * dy  # row 0 (the first layer) on top
            w = weights[r, c]
            if query is not None:
                _add_rect(cyan, boxes[query, 0] + ox, boxes[query, 1] + ox, y0[query] + oy, y1[query] + oy)
            for p in np.argsort(-w, kind="stable")[:top_k]:
                level = int(round((w[p] / wmax if wmax > 0 else 0.0) * (_ARC_LEVELS - 1)))
                if query is not None:
                    bx, by = _arc_points(tx[query], ty[query], tx[p], ty[p], x_span=x_span, y_span=y_span)
                    arcs[level]["x"] += list(np.round(bx + ox, _DECIMALS)) + [None]
                    arcs[level]["y"] += list(np.round(by + oy, _DECIMALS)) + [None]
                _add_rect(tops[level], boxes[p, 0] + ox, boxes[p, 1] + ox, y0[p] + oy, y1[p] + oy)
    data = []
    for level in range(_ARC_LEVELS):
        strength = level / (_ARC_LEVELS - 1)
        if tops[level]["x"]:
            fill = f"rgba(255,140,0,{0.15 + 0.6 * strength:.2f})" if query is None else None
            data.append(dict(type="scatter", mode="lines", **tops[level], line=dict(color="orange", width=0.8),
                             fill="toself" if fill else "none", fillcolor=fill, hoverinfo="skip", showlegend=False))
        if arcs[level]["x"]:
            data.append(dict(type="scatter", mode="lines", **arcs[level], hoverinfo="skip", showlegend=False,
                             line=dict(color=f"rgba(255,{int(200 - 150 * strength)},0,{0.35 + 0.65 * strength:.2f})",
                                       width=0.5 + 4.5 * strength)))
    if cyan["x"]:
        data.append(dict(type="scatter", mode="lines", **cyan, line=dict(color="cyan", width=1.5), hoverinfo="skip",
                         showlegend=False))
    return data


def _attention_grid_layout(tile: np.ndarray, cfg: AudioConfig, layers: Sequence[int], heads: Sequence[int], *,
                           dx: float, dy: float) -> dict:
    """The grid's axes (seconds and Hz ticks repeated per cell), its tiled picture and its titles."""
    n_rows, n_cols = len(layers), len(heads)
    duration_s = extent_s(cfg)
    hz = hz_ticks(cfg)
    col_s = [t for t in (0, 1, 2, 3, 4, 5, 10, 20, 30) if t < duration_s * 0.95][::2]
    width, height = n_cols * dx - (dx - duration_s), n_rows * dy - (dy - cfg.n_mels)
    return dict(
        xaxis=dict(range=[0, width], showgrid=False, zeroline=False, ticks="", tickfont=dict(size=10),
                   tickmode="array", tickvals=[c * dx + t for c in range(n_cols) for t in col_s],
                   ticktext=[f"{t:g}" for _ in range(n_cols) for t in col_s]),
        yaxis=dict(range=[-0.5, height - 0.5], showgrid=False, zeroline=False, ticks="", tickfont=dict(size=10),
                   tickmode="array", tickvals=[r * dy + v for r in range(n_rows) for v in hz["tickvals"][1::2]],
                   ticktext=[t for _ in range(n_rows) for t in hz["ticktext"][1::2]]),  # off the cells' edges
        images=[dict(source=common.png_uri(_tiled(tile, n_rows, n_cols, dx=dx, dy=dy, cfg=cfg)), xref="x", yref="y",
                     x=0, y=height - 0.5, sizex=width, sizey=height, xanchor="left", yanchor="top",
                     sizing="stretch", layer="below")],
        annotations=[dict(text=f"head {h}", x=c * dx + duration_s / 2, xref="x", y=1.0, yref="paper",
                          xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=12))
                     for c, h in enumerate(heads)]
        + [dict(text=f"layer {l}", x=1.0, xref="paper", y=(n_rows - 1 - r) * dy + cfg.n_mels / 2 - 0.5, yref="y",
                xanchor="left", yanchor="middle", textangle=90, showarrow=False, xshift=4, font=dict(size=12))
           for r, l in enumerate(layers)]
        + [dict(text="each cell: time (s) across, frequency (Hz, mel scale) up; cyan = query, orange = its top "
                     "patches (darker = more attention); pick the query on the rollout map",
                xref="paper", yref="paper", x=0.5, y=0, yshift=-28, showarrow=False, yanchor="top",
                font=dict(size=11))],
        dragmode=False, hovermode="closest",
    )


_ARC_LEVELS = 6  # arc widths and colours: attention strengths binned into this many steps
_DECIMALS = 4  # line coordinates sent to the browser: under a tenth of a pixel in seconds or bands
_CLEAR = [[0.0, "rgba(0,0,0,0)"], [1.0, "rgba(0,0,0,0)"]]


def _hover_layer(tx: np.ndarray, ty: np.ndarray, weights: np.ndarray, layers: Sequence[int], heads: Sequence[int], *,
                 dx: float, dy: float) -> dict:
    """One transparent heatmap over every cell of :func:`attention_grid`, for hovering its patches.

    Each cell is the patch grid (a column per distinct time centre, a row per
    band centre), offset like the cell; an empty column and row between cells
    keep one cell's hover from reaching into the next.
    """
    n_rows, n_cols = weights.shape[:2]
    ux, uy = np.unique(tx), np.unique(ty)
    col, row = np.searchsorted(ux, tx), np.searchsorted(uy, ty)
    nx, ny = len(ux) + 1, len(uy) + 1  # each cell's patches plus one gap
    z = np.full((n_rows * ny - 1, n_cols * nx - 1), np.nan, dtype=np.float32)
    custom = np.zeros(z.shape + (3,), dtype=np.int16)  # patch, layer, head: 6 bytes a cell, not 32 as float64
    for r in range(n_rows):
        y0 = (n_rows - 1 - r) * ny  # row 0 (the first layer) on top
        for c in range(n_cols):
            z[y0 + row, c * nx + col] = weights[r, c]
            custom[y0 + row, c * nx + col] = np.column_stack([np.arange(len(tx)), np.full(len(tx), layers[r]),
                                                              np.full(len(tx), heads[c])])
    gap_x, gap_y = (ux[-1] + dx + ux[0]) / 2, (uy[-1] + dy + uy[0]) / 2  # midway to the next cell's first patch
    x = np.concatenate([np.append(ux + c * dx, gap_x + c * dx) for c in range(n_cols)])[:-1]
    y = np.concatenate([np.append(uy + r * dy, gap_y + r * dy) for r in range(n_rows)])[:-1]
    return dict(type="heatmap", z=z, x=x, y=y, customdata=custom, colorscale=_CLEAR, showscale=False,
                hoverongaps=False, zmin=0.0, zmax=1.0,
                hovertemplate="layer %{customdata[1]}, head %{customdata[2]}<br>patch %{customdata[0]}"
                              "<br>weight %{z:.4f}<extra></extra>")


def grid_offsets(cfg: AudioConfig, tile_shape: tuple[int, int] = (64, 108)) -> tuple[float, float]:
    """How far apart :func:`attention_grid`'s cells sit: (time offset in s, band offset), gaps included.

    The gaps are whole pixels of the tiled picture (6 across, 8 up), so the
    picture's cells land exactly on the cells' axes.
    """
    rows, cols = tile_shape
    duration_s = extent_s(cfg)
    return duration_s * (cols + 6) / cols, cfg.n_mels * (rows + 8) / rows


def _tiled(tile: np.ndarray, n_rows: int, n_cols: int, *, dx: float, dy: float, cfg: AudioConfig) -> np.ndarray:
    """The grey tile (row 0 = lowest band) copied into every cell of the grid, gaps transparent: RGBA, top row first."""
    h, w = tile.shape
    gap_x = int(round(w * (dx / extent_s(cfg) - 1)))
    gap_y = int(round(h * (dy / cfg.n_mels - 1)))
    picture = np.zeros((n_rows * (h + gap_y) - gap_y, n_cols * (w + gap_x) - gap_x, 4), dtype=np.uint8)
    rgba = np.concatenate([np.repeat(tile[::-1, :, None], 3, axis=2), np.full((h, w, 1), 255, np.uint8)], axis=2)
    for r in range(n_rows):
        for c in range(n_cols):
            top, left = r * (h + gap_y), c * (w + gap_x)
            picture[top:top + h, left:left + w] = rgba
    return picture


def _add_rect(trace: dict, x0: float, x1: float, y0: float, y1: float) -> None:
    x0, x1, y0, y1 = (round(float(v), _DECIMALS) for v in (x0, x1, y0, y1))
    trace["x"] += [x0, x1, x1, x0, x0, None]
    trace["y"] += [y0, y0, y1, y1, y0, None]


def _arc_points(x0: float, y0: float, x1: float, y1: float, *, x_span: float, y_span: float,
                n: int = 13) -> tuple[np.ndarray, np.ndarray]:
    """Points along :func:`arc_path`'s quadratic curve (the same control point), for a line trace."""
    cx, cy = _arc_control(x0, y0, x1, y1, bend=0.25, x_span=x_span, y_span=y_span)
    t = np.linspace(0.0, 1.0, n)[:, None]
    pts = (1 - t) ** 2 * np.array([x0, y0]) + 2 * (1 - t) * t * np.array([cx, cy]) + t ** 2 * np.array([x1, y1])
    return pts[:, 0], pts[:, 1]


def _quantise(X: np.ndarray) -> np.ndarray:
    """Scale to 0..255 uint8 (sent to the browser as 1 byte per cell)."""
    lo, hi = float(X.min()), float(X.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    return np.round((X - lo) * scale).astype(np.uint8)


def patch_picker(S: np.ndarray, cfg: AudioConfig, *, patch_boxes: np.ndarray, query: int | None,
                 title: str | None = None, heat: np.ndarray | None = None,
                 unit: str = "relevance (0-1)", boxes: Sequence = ()) -> go.Figure:
    """The spectrogram (optionally under a heatmap) with clickable patch centres and the query boxed.

    Parameters
    ----------
    S : np.ndarray [shape=(n_mels, n_frames)]
    patch_boxes : np.ndarray [shape=(P, 4)]
        ``(t0_s, t1_s, f0_hz, f1_hz)`` of each patch.
    query : int or None
    heat : np.ndarray [shape=(n_mels, n_frames)] or None
        Drawn over the spectrogram like :func:`overlay`.
    boxes : sequence of objects with ``t0_s, t1_s, f0_hz, f1_hz``
        Ground-truth event boxes, white dashed (the query is solid cyan).

    Returns
    -------
    go.Figure
    """
    fig = overlay(S, heat, cfg, title=title, unit=unit, boxes=boxes) if heat is not None else spectrogram(
        S, cfg, title=title, unit="z-score", colorscale="Greys_r", boxes=boxes)
    tx, ty, y0, y1 = _patch_centres(patch_boxes, cfg)
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="markers", customdata=np.arange(len(tx)), showlegend=False,
                             # all but invisible (a grid of dots hid the map), yet drawn, so a click finds them
                             marker=dict(size=10, color="rgba(255,255,255,0.01)", line=dict(width=0)),
                             hovertemplate="patch %{customdata}<br>%{x:.2f} s<extra>click to query</extra>"))
    if query is not None:
        b = np.asarray(patch_boxes, dtype=np.float64)[query]
        fig.add_shape(type="rect", x0=b[0], x1=b[1], y0=float(y0[query]), y1=float(y1[query]),
                      line=dict(color="cyan", width=2.5))
    fig.update_layout(clickmode="event+select", dragmode=False)
    return fig


def patch_from_selection(selection) -> int | None:
    """The patch index a click selected, from ``st.plotly_chart(..., on_select=...)``'s state.

    Parameters
    ----------
    selection : mapping or None
        The chart's state, ``{"selection": {"points": [{"customdata": ...}, ...]}}``,
        or its ``"selection"`` part.

    Returns
    -------
    int or None
        The last selected point's ``customdata`` (the patch index), or
        ``None`` when nothing with a patch index was selected.
    """
    if not selection:
        return None
    sel = selection.get("selection", selection) if hasattr(selection, "get") else None
    points = (sel or {}).get("points", []) if hasattr(sel or {}, "get") else []
    for point in reversed(list(points)):
        data = point.get("customdata") if hasattr(point, "get") else None
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if isinstance(data, (int, float, np.integer, np.floating)) and not isinstance(data, bool):
            return int(data)
    return None


# ---------------------------------------------------------------------------
# downloads


def _has_kaleido() -> bool:
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False
    return True


def figure_download(fig: go.Figure, *, stem: str) -> tuple[Callable[[], bytes], str, str]:
    """How to save a figure: PNG when a static exporter (kaleido) is installed, HTML otherwise.

    Parameters
    ----------
    fig : go.Figure
    stem : str
        File name without extension.

    Returns
    -------
    data : callable
        Builds the file's bytes when called (so nothing is rendered until the
        user asks for it).
    file_name : str
    mime : str
    """
    if _has_kaleido():
        def png() -> bytes:
            try:
                return fig.to_image(format="png", scale=2)
            except Exception:  # kaleido present but no browser to drive: fall back to HTML content
                return fig.to_html(include_plotlyjs=True, full_html=True).encode()

        return png, f"{stem}.png", "image/png"
    return (lambda: fig.to_html(include_plotlyjs=True, full_html=True).encode()), f"{stem}.html", "text/html"


def table_csv(rows: Sequence[Sequence], columns: Sequence[str]) -> bytes:
    """A table as CSV bytes (header first).

    Parameters
    ----------
    rows : sequence of sequences, each ``len(columns)`` long
    columns : sequence of str

    Returns
    -------
    bytes, UTF-8
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue().encode()
