"""What every heatmap method shares: check a map, put it on the spectrogram's grid, scale it.

A heatmap here is always indexed like the spectrogram the model saw: rows are
mel bands (row 0 = lowest band), columns are frames (column 0 = start of the
clip). Methods compute a map on their own coarser grid (a conv tap's
``(F', T')``, the AST's patch grid) and bring it to ``(n_mels, n_frames)`` with
:func:`resize_patch_map`, which puts each cell at its true centre (a
:class:`PatchGeometry`: an AST patch, or the input block a conv tap's pooling
reduced to one cell), or with :func:`resize_map` where no geometry is known.

Cells of the spectrogram that no coarse cell covers (the last frames a
block's pooling rounds away, the frames past the AST's last patch) are NaN:
the method says nothing about them. :func:`normalise_map` ignores NaN; the
faithfulness scores rank NaN cells last.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import InputError

__all__ = [
    "PatchGeometry",
    "patch_geometry",
    "pooling_geometry",
    "resize_map",
    "resize_patch_map",
    "normalise_map",
    "zero_level",
    "check_heatmap",
    "tokens_to_grid",
]


@dataclass(frozen=True)
class PatchGeometry:
    """Where a transformer's patches sit on its input.

    Patch ``(f, t)`` covers mel bands ``f * stride_f ... f * stride_f + patch_f - 1``
    and frames ``t * stride_t ... t * stride_t + patch_t - 1`` (patches may
    overlap, and may leave the last bands or frames uncovered).
    """

    patch_f: int
    patch_t: int
    stride_f: int
    stride_t: int

    def covered(self, n_cells: tuple[int, int]) -> tuple[int, int]:
        """How many bands and frames an ``(n_freq, n_time)`` grid of these patches covers from the start."""
        n_freq, n_time = n_cells
        return (n_freq - 1) * self.stride_f + self.patch_f, (n_time - 1) * self.stride_t + self.patch_t


def pooling_geometry(factor_f: int, factor_t: int | None = None) -> PatchGeometry:
    """Geometry of a conv tap after pooling by ``factor`` (e.g. ``2**k`` after k 2x2 max-pools).

    Cell ``(f, t)`` of such a tap pools input bands ``f * factor_f ... (f + 1) * factor_f - 1``
    and frames likewise (its receptive field is wider; this is where its centre sits).
    Pooling rounds down, so the last ``n_frames % factor_t`` frames belong to no cell.

    Examples
    --------
    >>> pooling_geometry(32)
    PatchGeometry(patch_f=32, patch_t=32, stride_f=32, stride_t=32)
    """
    factor_t = factor_f if factor_t is None else factor_t
    if min(factor_f, factor_t) < 1:
        raise InputError("pooling factor", f"must be >= 1, got {(factor_f, factor_t)}")
    return PatchGeometry(int(factor_f), int(factor_t), int(factor_f), int(factor_t))


def patch_geometry(model) -> PatchGeometry | None:
    """A transformer's patch geometry from its config (``patch``, ``stride_f``, ``stride_t``), else ``None``."""
    config = getattr(model, "config", None)
    try:
        return PatchGeometry(int(config.patch), int(config.patch), int(config.stride_f), int(config.stride_t))
    except (AttributeError, TypeError):
        return None


def resize_map(maps: torch.Tensor | np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """Resample maps to a spectrogram's grid by bilinear interpolation.

    The map is stretched to cover the whole spectrogram (``align_corners=False``:
    cell centres map to cell centres), so a coarse cell covers the block of mel
    bands and frames it was computed from when the coarse grid tiles the input.

    Parameters
    ----------
    maps : Tensor or np.ndarray [shape=(..., h, w)]
        One map or a stack of maps on a coarse grid.
    shape : (int, int)
        ``(n_mels, n_frames)`` of the target grid.

    Returns
    -------
    Tensor [shape=(..., n_mels, n_frames)], float32
    """
    maps = torch.as_tensor(maps, dtype=torch.float32)
    if maps.ndim < 2:
        raise InputError("map", f"needs at least 2 dimensions (rows, columns), got shape {tuple(maps.shape)}")
    if len(shape) != 2 or min(shape) < 1:
        raise InputError("shape", f"must be (n_mels, n_frames) with both > 0, got {shape}")
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, 1, *maps.shape[-2:])  # (N, 1, h, w)
    if tuple(flat.shape[-2:]) != tuple(shape):
        flat = F.interpolate(flat, size=tuple(shape), mode="bilinear", align_corners=False)
    return flat.reshape(*lead, *shape)


def resize_patch_map(maps: torch.Tensor | np.ndarray, shape: tuple[int, int], *, geometry: PatchGeometry) -> torch.Tensor:
    """Resample patch-grid maps to the spectrogram, each value placed at its patch's centre.

    Unlike :func:`resize_map`, this follows the patches' real positions: patch
    ``(f, t)`` is centred on band ``f * stride_f + (patch_f - 1) / 2`` and frame
    ``t * stride_t + (patch_t - 1) / 2``; cells between centres are linearly
    interpolated, cells beyond the first or last centre but inside a patch take
    the edge value, and cells no patch covers are NaN.

    Parameters
    ----------
    maps : Tensor or np.ndarray [shape=(..., n_freq_patches, n_time_patches)]
    shape : (int, int)
        ``(n_mels, n_frames)``.
    geometry : PatchGeometry

    Returns
    -------
    Tensor [shape=(..., n_mels, n_frames)], float32, NaN where no patch reaches
    """
    maps = np.asarray(torch.as_tensor(maps, dtype=torch.float32).detach().cpu())
    n_freq, n_time = maps.shape[-2:]
    band_centres = np.arange(n_freq) * geometry.stride_f + (geometry.patch_f - 1) / 2
    frame_centres = np.arange(n_time) * geometry.stride_t + (geometry.patch_t - 1) / 2
    rows = np.arange(shape[0], dtype=np.float64)
    cols = np.arange(shape[1], dtype=np.float64)

    def weights(centres: np.ndarray, at: np.ndarray) -> np.ndarray:
        """(len(at), len(centres)) linear-interpolation weights, clamped at the ends."""
        eye = np.eye(len(centres))
        return np.stack([np.interp(at, centres, eye[k]) for k in range(len(centres))], axis=1)

    out = weights(band_centres, rows) @ maps @ weights(frame_centres, cols).T  # (..., n_mels, n_frames)
    n_bands, n_cols = geometry.covered((n_freq, n_time))
    out[..., n_bands:, :] = np.nan  # bands no patch covers
    out[..., :, n_cols:] = np.nan  # frames no patch covers (pooling and patching round down)
    return torch.as_tensor(out, dtype=torch.float32)


def normalise_map(maps: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Min-max scale each map to [0, 1]; a constant map becomes all zeros; NaN cells stay NaN.

    Parameters
    ----------
    maps : Tensor or np.ndarray [shape=(..., h, w)]

    Returns
    -------
    Tensor [shape=maps.shape], float32, each ``(h, w)`` map in [0, 1]
    """
    maps = torch.as_tensor(maps, dtype=torch.float32)
    nan = torch.isnan(maps)
    low = torch.where(nan, torch.inf, maps).amin(dim=(-2, -1), keepdim=True)
    high = torch.where(nan, -torch.inf, maps).amax(dim=(-2, -1), keepdim=True)
    span = high - low
    ok = torch.isfinite(span) & (span > 0)
    safe = torch.where(ok, span, torch.ones_like(span))
    scaled = torch.where(ok, (maps - torch.where(ok, low, torch.zeros_like(low))) / safe, torch.zeros_like(maps))
    return torch.where(nan, torch.nan, scaled)


def zero_level(maps: torch.Tensor | np.ndarray) -> float:
    """Where 0 lands when a signed map is scaled by :func:`normalise_map`: 0 for a map with no negative cell, 1 for
    one with no positive cell, 0 for a constant map (scaled to all zeros). NaN cells are ignored.

    >>> zero_level(np.array([[-1.0, 0.0, 3.0]]))
    0.25
    >>> zero_level(np.array([[2.0, 5.0]])), zero_level(np.array([[-4.0, -1.0]]))
    (0.0, 1.0)
    """
    values = np.asarray(maps, dtype=np.float32)  # as normalise_map scales it
    low, high = float(np.nanmin(values)), float(np.nanmax(values))
    if not (np.isfinite(low) and np.isfinite(high)) or high <= low:
        return 0.0
    return float(np.clip((0.0 - low) / (high - low), 0.0, 1.0))


def check_heatmap(heatmap: np.ndarray, shape: tuple[int, int], *, what: str = "heatmap",
                  allow_nan: bool = False) -> np.ndarray:
    """Refuse a heatmap that is not a finite ``shape`` array; return it as float64.

    With ``allow_nan``, NaN marks cells the method does not cover (infinities
    and an all-NaN map are still refused).

    Parameters
    ----------
    heatmap : array-like [shape=(n_mels, n_frames)]
    shape : (int, int)
        The spectrogram's ``(n_mels, n_frames)``.

    Returns
    -------
    np.ndarray [shape=shape], float64
    """
    heatmap = np.asarray(heatmap, dtype=np.float64)
    if heatmap.shape != tuple(shape):
        raise InputError(what, f"shape {heatmap.shape} does not match the spectrogram's {tuple(shape)}")
    nan = np.isnan(heatmap)
    if np.any(np.isinf(heatmap)) or (np.any(nan) and not allow_nan):
        raise InputError(what, "holds NaN or infinite values")
    if nan.all():
        raise InputError(what, "covers no cell (all NaN)")
    return heatmap


def tokens_to_grid(tokens: torch.Tensor, *, grid: tuple[int, int], n_special: int = 1) -> torch.Tensor:
    """Turn a transformer's token sequence into an image-like patch grid.

    Parameters
    ----------
    tokens : Tensor [shape=(B, n_special + P, D)]
        Special tokens first, then the patches row-major, frequency-major
        (patch ``p`` sits at ``f = p // n_time``, ``t = p % n_time``).
    grid : (int, int)
        ``(n_freq_patches, n_time_patches)``; their product must equal ``P``.
    n_special : int >= 0
        Number of special tokens (class token, distillation token) to drop.

    Returns
    -------
    Tensor [shape=(B, D, n_freq_patches, n_time_patches)]
    """
    if tokens.ndim != 3:
        raise InputError("tokens", f"expected (batch, tokens, dim), got shape {tuple(tokens.shape)}")
    n_freq, n_time = grid
    B, S, D = tokens.shape
    if S - n_special != n_freq * n_time:
        raise InputError(
            "tokens", f"{S} tokens minus {n_special} special do not fill a {n_freq}x{n_time} patch grid"
        )
    patches = tokens[:, n_special:, :]  # (B, P, D)
    return patches.reshape(B, n_freq, n_time, D).permute(0, 3, 1, 2)  # (B, D, n_freq, n_time)
