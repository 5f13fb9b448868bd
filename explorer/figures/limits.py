"""Where a clip does not fill the model's input, drawn on a map; and a long recording's window timeline.

Pure figure functions, like the rest of :mod:`explorer.figures`: arrays and numbers in, plotly out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from core.audio.frontend import ClipLimits
from plotly.colors import qualitative

__all__ = ["mark_limits", "shade_padding", "window_timeline", "PADDING_COLOUR"]

PADDING_COLOUR = "rgba(128, 128, 128, 0.55)"


def mark_limits(fig: go.Figure, limits: ClipLimits, *, n_mels: int, x_end_s: float) -> go.Figure:
    """Grey over the padded span and hatching over the bands above the recording's Nyquist frequency.

    Parameters
    ----------
    fig : go.Figure
        A map whose x axis is time in seconds and y axis the mel band index (as :func:`overlay`).
    limits : core.audio.frontend.ClipLimits
    n_mels : int
    x_end_s : float
        Right end of the map's time axis.
    """
    shade_padding(fig, limits.padded_from_s, x_end_s=x_end_s)
    if limits.empty_from_band is not None:
        fig.add_shape(type="rect", x0=0, x1=x_end_s, y0=limits.empty_from_band - 0.5, y1=n_mels - 0.5,
                      fillcolor="rgba(255, 255, 255, 0.35)", line=dict(color="white", width=1, dash="dot"),
                      layer="above")
        fig.add_annotation(x=0, y=n_mels - 1, xanchor="left", yanchor="top", showarrow=False,
                           text=f"empty: above {limits.native_sr / 2:g} Hz", font=dict(color="white", size=11))
    return fig


def shade_padding(fig: go.Figure, padded_from_s: float | None, *, x_end_s: float,
                  panels: Sequence[tuple] = (("x", "y", 0.0, None),)) -> go.Figure:
    """Grey over the padded span of every panel of a map: each panel's time axis (s) from ``padded_from_s`` to
    ``x_end_s``, labelled "padding" at the bottom of the first panel.

    Parameters
    ----------
    padded_from_s : float or None
        Where the padding starts (:class:`core.audio.frontend.ClipLimits`); ``None`` draws nothing.
    panels : sequence of (x axis, y axis, time offset in s, (y0, y1) or None)
        Where each panel's time axis starts, and its extent on its y axis (``None``: the axis' whole height):
        ``("x2", "y2", 0.0, None)`` for a subplot, ``("x", "y", 5.3, (-0.5, 127.5))`` for a cell drawn offset on
        shared axes.
    """
    if padded_from_s is None:
        return fig
    for i, (xref, yref, offset, span) in enumerate(panels):
        y0, y1 = span if span is not None else (0, 1)
        yref = yref if span is not None else f"{yref} domain"
        fig.add_shape(type="rect", xref=xref, yref=yref, x0=offset + padded_from_s, x1=offset + x_end_s,
                      y0=y0, y1=y1, fillcolor=PADDING_COLOUR, line_width=0, layer="above")
        if i == 0:
            # at the bottom: the top-left corner holds the empty bands' label (mark_limits)
            fig.add_annotation(xref=xref, yref=yref, x=offset + padded_from_s, y=y0, xanchor="left",
                               yanchor="bottom", showarrow=False, text="padding", font=dict(color="white", size=11))
    return fig


def window_timeline(starts_s: np.ndarray, ends_s: np.ndarray, proba: np.ndarray, classes: Sequence[str], *,
                    chosen: int | None = None, top: int = 5, title: str | None = None) -> go.Figure:
    """The top classes' probabilities window by window over a long recording (a sound event detection view).

    Parameters
    ----------
    starts_s, ends_s : np.ndarray [shape=(n_windows,)]
    proba : np.ndarray [shape=(n_windows, n_classes)]
    classes : sequence of str
    chosen : int or None
        The window shown on the pages, shaded.
    top : int
        Classes drawn: those with the highest probability in any window.

    Returns
    -------
    go.Figure
        One line per class at the windows' centres; each point's ``customdata`` is its window index.
    """
    centres = (np.asarray(starts_s) + np.asarray(ends_s)) / 2
    order = np.argsort(-proba.max(axis=0))[:top]
    colours = qualitative.D3
    fig = go.Figure()
    for k, c in enumerate(order):
        fig.add_trace(go.Scatter(x=centres, y=proba[:, c], mode="lines+markers", name=classes[c],
                                 customdata=np.arange(len(centres)), line=dict(color=colours[k % len(colours)]),
                                 hovertemplate=f"{classes[c]}: %{{y:.0%}}<br>window %{{customdata}} "
                                               "(centre %{x:.1f} s)<extra></extra>"))
    if chosen is not None:
        fig.add_vrect(x0=float(starts_s[chosen]), x1=float(ends_s[chosen]), fillcolor="rgba(255, 200, 0, 0.25)",
                      line_width=0, annotation_text="shown", annotation_position="top left")
    fig.update_layout(title=title, height=280, margin=dict(l=50, r=20, t=50 if title else 20, b=45),
                      xaxis_title="time in the recording (s), at each window's centre",
                      yaxis_title="probability (0-1)", yaxis_range=[0, 1], legend=dict(orientation="h", y=-0.3))
    return fig
