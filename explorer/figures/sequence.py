"""Figures for attention over time steps (a model's attention without a patch grid)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.audio.features import AudioConfig
from core.errors import InputError
from explorer.figures import _common as common

__all__ = ["FULL_AT", "attention_matrix", "query_heat"]

FULL_AT = 4.0  # query_heat's full colour: this many times uniform attention


def attention_matrix(weights: np.ndarray, edges: np.ndarray, *, query: int | None = None, title: str | None = None,
                     height: int = 330) -> go.Figure:
    """Queries (rows) by keys (columns), both in seconds, heads averaged; the query's row outlined in cyan.

    Parameters
    ----------
    weights : np.ndarray [shape=(H, T, S)]
    edges : np.ndarray [shape=(S + 1,)]
        Token time edges in seconds (:func:`core.interpret.sequence_attention.token_edges`).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 3 or weights.shape[-1] != len(edges) - 1:
        raise InputError("attention", f"weights {weights.shape} do not match {len(edges) - 1} tokens")
    centres = (edges[:-1] + edges[1:]) / 2
    mean = weights.mean(axis=0)
    fig = go.Figure(go.Heatmap(z=mean, x=centres, y=centres[: mean.shape[0]], colorscale=common.MAGMA, zmin=0,
                               colorbar=dict(title=dict(text="weight", side="right"), thickness=12),
                               hovertemplate="query %{y:.2f} s<br>key %{x:.2f} s<br>weight %{z:.3f}<extra></extra>"))
    if query is not None:
        fig.add_shape(type="rect", x0=edges[0], x1=edges[-1], y0=edges[query], y1=edges[query + 1],
                      line=dict(color="cyan", width=2))
    fig.update_xaxes(title_text="key time (s)")
    fig.update_yaxes(title_text="query time (s)", autorange="reversed")
    return common.layout(fig, title=title, height=height)


def query_heat(weights: np.ndarray, edges: np.ndarray, query: int, cfg: AudioConfig) -> np.ndarray:
    """The query's attention row, heads averaged, spread over the spectrogram's frames: (n_mels, n_frames) in [0, 1].

    Every band of a token's frames gets the token's weight as a multiple of
    uniform attention, divided by :data:`FULL_AT` and clipped: 1 means
    ``FULL_AT`` times uniform or more, so near-uniform attention stays faint
    instead of being stretched to full colour.
    """
    row = np.asarray(weights, dtype=np.float64).mean(axis=0)[query]
    times = np.arange(cfg.n_frames) * cfg.hop_length / cfg.sr
    token = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, len(row) - 1)
    per_frame = np.clip(row[token] * len(row) / FULL_AT, 0.0, 1.0)
    return np.repeat(per_frame[None, :], cfg.n_mels, axis=0)
