"""How much of a map falls in a region someone picked: "predict, then reveal" on the Tour page.

A student draws the region where they think the model looked, then sees the map. The
share of the map's relevance inside the region is read beside the region's share of the
spectrogram's cells: the share a map spread evenly over the cells would give it (the
baseline), so a share well above the area means the map agrees with the guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.faithfulness import box_cells

__all__ = ["RegionShare", "region_share"]


@dataclass(frozen=True)
class RegionShare:
    """``share``: the map's relevance inside the region over its total, in [0, 1];
    ``area``: the region's share of the covered cells, in [0, 1] (a uniform map's ``share``)."""

    share: float
    area: float


def region_share(heat: np.ndarray, box, *, cfg: AudioConfig = AudioConfig()) -> RegionShare:
    """Share of a map's relevance inside a time-frequency box, and the box's share of the cells.

    .. math:: \\text{share} = \\sum_{c \\in B} h_c \\Big/ \\sum_c h_c, \\qquad
              \\text{area} = |B| / N

    over the cells ``c`` the map covers (NaN cells, which a layer's pooling never sees, are left out
    of both).

    Parameters
    ----------
    heat : np.ndarray [shape=(n_mels, n_frames)]
        Non-negative relevance, NaN where the method covers no cell.
    box : (t0_s, t1_s, f0_hz, f1_hz) or an object with those attributes
    cfg : AudioConfig
        The map's preprocessing (mel bands and hop), to place the box on its cells.

    Raises
    ------
    InputError
        A map that is not 2-D, has negative values, or sums to zero.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise InputError("map", f"expected (n_mels, n_frames), got shape {heat.shape}")
    covered = np.isfinite(heat)
    if np.any(heat[covered] < 0):
        raise InputError("map", "relevance must be non-negative")
    total = heat[covered].sum()
    if total <= 0:
        raise InputError("map", "the map is empty (all zero): it points nowhere")
    inside = np.zeros(heat.shape, dtype=bool)
    bands, frames = box_cells(box, shape=heat.shape, cfg=cfg)
    inside[bands, frames] = True
    inside &= covered
    return RegionShare(share=float(heat[inside].sum() / total), area=float(inside.sum() / covered.sum()))
