"""What every figure of the explorer shares: fonts, margins, colour scales, Hz ticks, layout helpers.

Colour scales are explicit lists with ``rgb()`` stops, not names: the grid
figures are built without plotly's validation (which resolves names), and
Streamlit's chart theme replaces the hex codes ``#000001``..``#0000xx`` with
theme colours (Magma starts at ``#000004``, which turned zero activations pink).
"""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb, sequential

from core.audio.features import AudioConfig, mel_frequencies_hz

__all__ = ["FONT", "TITLE_FONT", "MARGIN", "HZ_TICKS", "MAGMA", "VIRIDIS", "GREYS", "BLUES", "colour_scale",
           "hz_to_band", "hz_ticks", "layout", "figure", "png_uri", "to_rgb"]

FONT = dict(size=11)
TITLE_FONT = dict(size=14)
MARGIN = dict(l=60, r=10, t=40, b=45)
HZ_TICKS = (50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000)


def colour_scale(colours: Sequence[str]) -> list:
    """An explicit plotly colour scale with ``rgb()`` stops from a list of hex colours."""
    return [[i / (len(colours) - 1), "rgb(%d,%d,%d)" % hex_to_rgb(c)] for i, c in enumerate(colours)]


MAGMA = colour_scale(sequential.Magma)
VIRIDIS = colour_scale(sequential.Viridis)
GREYS = [[0.0, "rgb(0,0,0)"], [1.0, "rgb(255,255,255)"]]  # black (low) to white (high)
BLUES = [[0.0, "rgb(247,251,255)"], [0.5, "rgb(107,174,214)"], [1.0, "rgb(8,48,107)"]]


def hz_to_band(f_hz: np.ndarray | float, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Fractional mel-band index of a frequency, for drawing on a band axis.

    Parameters
    ----------
    f_hz : float or np.ndarray, in Hz
    cfg : AudioConfig

    Returns
    -------
    np.ndarray [shape=np.shape(f_hz)]
        0 is the centre of the lowest band, ``n_mels - 1`` of the highest; edges
        beyond the outer centres extend to -0.5 and ``n_mels - 0.5``.
    """
    centres = mel_frequencies_hz(cfg)
    bands = np.arange(cfg.n_mels, dtype=np.float64)
    edges_hz = np.concatenate([[cfg.fmin_hz], centres, [cfg.fmax]])
    edges_band = np.concatenate([[-0.5], bands, [cfg.n_mels - 0.5]])
    return np.interp(np.asarray(f_hz, dtype=np.float64), edges_hz, edges_band)


def hz_ticks(cfg: AudioConfig = AudioConfig()) -> dict:
    """Plotly axis settings that label a mel-band axis with frequencies.

    Returns
    -------
    dict
        ``tickvals`` (band positions), ``ticktext`` ("500 Hz", "2 kHz", ...)
        and the title "frequency (Hz, mel scale)".
    """
    ticks, bands = [], []
    for f in HZ_TICKS:  # keep ticks at least 6% of the axis apart (the low ones crowd on a mel axis)
        band = float(hz_to_band(float(f), cfg))
        if cfg.fmin_hz <= f <= cfg.fmax and (not bands or band - bands[-1] >= 0.06 * cfg.n_mels):
            ticks.append(f)
            bands.append(band)
    return dict(
        tickmode="array",
        tickvals=bands,
        ticktext=[f"{f // 1000} kHz" if f >= 1000 else f"{f} Hz" for f in ticks],
        title=dict(text="frequency (Hz, mel scale)"),
    )


def layout(fig: go.Figure, *, title: str | None, height: int) -> go.Figure:
    """The shared title, height, margins and font."""
    fig.update_layout(title=dict(text=title, font=TITLE_FONT) if title else None,
                      height=height, margin=MARGIN, font=FONT)
    return fig


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, skipping plotly's per-property validation.

    Validation costs ~5 ms per shape or trace; the grid figures have hundreds and
    are rebuilt on every rerun. Their dicts use only explicit values (colour
    scales as lists, not names); the tests validate them once with ``go.Figure(fig.to_dict())``.
    """
    return go.Figure(dict(data=data, layout=layout), _validate=False)


def to_rgb(X: np.ndarray, scale: list, *, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Colour a 2-D array with a colour scale, as plotly would: an RGB image.

    Parameters
    ----------
    X : np.ndarray [shape=(rows, cols)]
    scale : list of [position, "rgb(r,g,b)"]
        One of this module's scales.
    vmin, vmax : float or None
        The values at the scale's ends (default: the array's min and max).

    Returns
    -------
    np.ndarray [shape=(rows, cols, 3)], uint8
        Row 0 first, as in ``X`` (NaN cells black).
    """
    X = np.asarray(X, dtype=np.float64)
    finite = X[np.isfinite(X)]
    lo = float(finite.min()) if vmin is None and finite.size else (vmin or 0.0)
    hi = float(finite.max()) if vmax is None and finite.size else (vmax if vmax is not None else 1.0)
    t = np.clip((X - lo) / (hi - lo), 0.0, 1.0) if hi > lo else np.zeros_like(X)
    stops = np.array([s for s, _ in scale])
    colours = np.array([[float(v) for v in c[c.index("(") + 1:-1].split(",")[:3]] for _, c in scale])
    rgb = np.stack([np.interp(t, stops, colours[:, k]) for k in range(3)], axis=-1)
    rgb[~np.isfinite(X)] = 0.0
    return np.round(rgb).astype(np.uint8)


def png_uri(image: np.ndarray) -> str:
    """A PNG data URI of a uint8 image, for a plotly layout image (sent once, compressed).

    Parameters
    ----------
    image : np.ndarray [shape=(rows, cols) or (rows, cols, 3 or 4)], uint8
        Row 0 is the top of the picture.

    Returns
    -------
    str
        ``"data:image/png;base64,..."``.
    """
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=False, compress_level=6)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
