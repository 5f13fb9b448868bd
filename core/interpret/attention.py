"""One head's raw attention for one query: which patches it looks at, as boxes on the spectrogram.

This feeds the arc view: for a layer, a head and a query (a patch or the class
token), the ``k`` patches the query attends to most, each with its weight and
its time x frequency box ``(t0_s, t1_s, f0_hz, f1_hz)``; and the layers x heads
grid of such lists.

Layers and heads are numbered from 1, as the figure labels them ("layer 4,
head 2"); patches are numbered from 0 over the patches only (special tokens
excluded), row-major frequency-major as the model's ``patch_box`` expects.
Weights are the attention probabilities exactly as in the forward pass; the
share a query gives to special tokens is not listed, so weights over patches
may sum to less than 1.

A real-size transformer's attention is large: MIT's AudioSet AST has 1214
tokens, so one clip's matrices over its 12 layers x 12 heads hold 212 M
probabilities (850 MB in float32). :func:`record_attention` keeps instead each
layer's attention *input* (S x D, 3.7 MB a layer there) from one forward pass
on the fused path, and :class:`LayerAttentions` forms a layer's probabilities,
or only some heads and query rows of them, when asked (:func:`shown_weights`).

See Also
--------
core.interpret.rollout : attention combined over heads and layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.errors import InputError

__all__ = [
    "DEFAULT_LAYERS",
    "LayerAttentions",
    "record_attention",
    "shown_weights",
    "CLASS_TOKEN",
    "AttendedPatch",
    "query_token",
    "query_weights",
    "top_patches",
    "attended_patches",
    "attention_grid",
    "strongest_patch",
]

DEFAULT_LAYERS = (1, 4, 8)
CLASS_TOKEN = "cls"

PatchBox = Callable[[int], tuple[float, float, float, float]]


@dataclass(frozen=True)
class AttendedPatch:
    """A patch a query attends to.

    Attributes
    ----------
    patch : int >= 0
        Patch index over patches only.
    weight : float in [0, 1]
        Attention probability from the query to this patch.
    t0_s, t1_s : float
        Time span of the patch, in seconds.
    f0_hz, f1_hz : float
        Frequency span of the patch, in Hz.
    """

    patch: int
    weight: float
    t0_s: float
    t1_s: float
    f0_hz: float
    f1_hz: float

    @property
    def box(self) -> tuple[float, float, float, float]:
        """``(t0_s, t1_s, f0_hz, f1_hz)``."""
        return (self.t0_s, self.t1_s, self.f0_hz, self.f1_hz)


class LayerAttentions(Sequence):
    """Every layer's attention probabilities of a batch, formed from recorded inputs one layer at a time.

    Reads like the tuple ``model(x, output_attentions=True)`` returns (``len``,
    ``[k]`` for layer ``k + 1``, iteration), but holds only each layer's
    attention input; a layer's (B, H, S, S) exists while it is used.

    Parameters
    ----------
    model : nn.Module
        Has ``layer_attention(x, layer, heads=..., rows=...)`` (one-based layer).
    inputs : sequence of Tensor [shape=(B, S, D)]
        Each layer's attention input, as :func:`record_attention` records it.
    """

    def __init__(self, model, inputs: Sequence[torch.Tensor]):
        self.model = model
        self.inputs = list(inputs)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, index: int) -> torch.Tensor:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return self.rows(range(len(self))[index] + 1)

    def rows(self, layer: int, *, heads: slice | list[int] = slice(None),
             rows: slice | list[int] = slice(None)) -> torch.Tensor:
        """Layer ``layer``'s (from 1) probabilities for zero-based ``heads`` and query ``rows``: (B, h, r, S), float32."""
        if not 1 <= layer <= len(self):
            raise InputError("layer", f"{layer} is outside 1..{len(self)} (layers count from 1)")
        with torch.no_grad():
            return self.model.layer_attention(self.inputs[layer - 1].float(), layer, heads=heads, rows=rows)


def record_attention(model, x: torch.Tensor, *, dtype: torch.dtype = torch.float32) -> LayerAttentions:
    """One forward pass on the model's fast path, keeping each layer's attention input.

    Parameters
    ----------
    model : nn.Module
        Has ``attention_input_taps()`` and ``layer_attention`` (our AST, a Hugging Face AST).
    x : Tensor [shape=(B, 1, n_mels, n_frames)]
    dtype : torch.dtype
        How the inputs are kept (``torch.float16`` halves them; the
        probabilities are still formed in float32).

    Returns
    -------
    LayerAttentions
    """
    from core.models.taps import Recording

    taps = model.attention_input_taps()
    rec = Recording(model, taps, keep_graph=False)
    rec.attach()
    try:
        with torch.no_grad():
            model(x)
    finally:
        rec.release()
    return LayerAttentions(model, [rec.outputs[t.name].to(dtype) for t in taps])


def shown_weights(attentions: LayerAttentions, *, layers: Sequence[int], heads: Sequence[int], query: int | str,
                  item: int = 0, n_special: int = 1) -> np.ndarray:
    """Attention from one query to every patch for the grid's layers and heads, forming only those rows.

    Parameters
    ----------
    attentions : LayerAttentions
    layers, heads : sequence of int
        One-based, as the figure labels them.
    query : int or "cls"
        See :func:`query_token`.
    item : int
        Which clip of the batch.
    n_special : int >= 0

    Returns
    -------
    np.ndarray [shape=(len(layers), len(heads), P)], float32
        ``[i, j]`` equals :func:`query_weights` of ``layers[i]``, ``heads[j]``.
    """
    B, S, _ = attentions.inputs[0].shape
    n_heads = getattr(getattr(attentions.model, "config", None), "heads", None)
    for head in heads:
        if n_heads is not None and not 1 <= head <= n_heads:
            raise InputError("head", f"{head} is outside 1..{n_heads} (heads count from 1)")
    if not 0 <= item < B:
        raise InputError("item", f"{item} is outside 0..{B - 1}")
    token = query_token(query, n_patches=S - n_special, n_special=n_special)
    zero_based = [h - 1 for h in heads]
    out = [attentions.rows(layer, heads=zero_based, rows=[token])[item, :, 0, n_special:] for layer in layers]
    return torch.stack(out).numpy().astype(np.float32, copy=False)  # (L, H, P)


def query_token(query: int | str, *, n_patches: int, n_special: int = 1) -> int:
    """Token index (into the full sequence) of a query.

    Parameters
    ----------
    query : int or "cls"
        A patch index in ``[0, n_patches)`` or ``"cls"`` for the class token.
    n_patches : int > 0
    n_special : int >= 0

    Returns
    -------
    int
        ``0`` for the class token, ``n_special + query`` for a patch.
    """
    if isinstance(query, str):
        if query != CLASS_TOKEN:
            raise InputError("query", f"{query!r} is neither a patch index nor {CLASS_TOKEN!r}")
        if n_special < 1:
            raise InputError("query", "the model has no class token")
        return 0
    if isinstance(query, bool) or not isinstance(query, (int, np.integer)):
        raise InputError("query", f"must be a patch index or {CLASS_TOKEN!r}, got {query!r}")
    if not 0 <= query < n_patches:
        raise InputError("query", f"patch {query} is outside 0..{n_patches - 1}")
    return n_special + int(query)


def _layer_attention(attentions: Sequence[torch.Tensor], layer: int) -> torch.Tensor:
    if not 1 <= layer <= len(attentions):
        raise InputError("layer", f"{layer} is outside 1..{len(attentions)} (layers count from 1)")
    attention = attentions[layer - 1]
    if attention.ndim != 4 or attention.shape[-1] != attention.shape[-2]:
        raise InputError("attentions", f"each layer must be (batch, heads, seq, seq), got {tuple(attention.shape)}")
    return attention


def query_weights(
    attentions: Sequence[torch.Tensor],
    *,
    layer: int,
    head: int,
    query: int | str,
    item: int = 0,
    n_special: int = 1,
) -> np.ndarray:
    """One head's attention from a query to every patch.

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
        One per layer, as returned with ``output_attentions=True``.
    layer : int in [1, n_layers]
    head : int in [1, H]
    query : int or "cls"
        See :func:`query_token`.
    item : int
        Which clip of the batch.
    n_special : int >= 0

    Returns
    -------
    np.ndarray [shape=(P,)], float64
        ``weights[p]`` = attention probability from the query to patch ``p``.
    """
    attention = _layer_attention(attentions, layer)
    B, H, S, _ = attention.shape
    if not 1 <= head <= H:
        raise InputError("head", f"{head} is outside 1..{H} (heads count from 1)")
    if not 0 <= item < B:
        raise InputError("item", f"{item} is outside 0..{B - 1}")
    token = query_token(query, n_patches=S - n_special, n_special=n_special)
    row = attention[item, head - 1, token, n_special:]  # (P,)
    return row.detach().to(torch.float64).cpu().numpy()


def top_patches(weights: np.ndarray, *, k: int, patch_box: PatchBox) -> list[AttendedPatch]:
    """The ``k`` largest weights, largest first, with their boxes.

    Parameters
    ----------
    weights : np.ndarray [shape=(P,)]
    k : int > 0
        Clipped to ``P``.
    patch_box : callable
        Patch index -> ``(t0_s, t1_s, f0_hz, f1_hz)``, e.g.
        ``functools.partial(model.patch_box, audio_cfg=cfg)``.

    Returns
    -------
    list of AttendedPatch, length ``min(k, P)``
        Ties keep the lower patch index first.
    """
    if k < 1:
        raise InputError("k", f"must be at least 1, got {k}")
    weights = np.asarray(weights, dtype=np.float64)
    order = np.argsort(-weights, kind="stable")[:k]
    out = []
    for p in order:
        t0_s, t1_s, f0_hz, f1_hz = patch_box(int(p))
        out.append(AttendedPatch(int(p), float(weights[p]), float(t0_s), float(t1_s), float(f0_hz), float(f1_hz)))
    return out


def attended_patches(
    attentions: Sequence[torch.Tensor],
    *,
    layer: int,
    head: int,
    query: int | str,
    patch_box: PatchBox,
    k: int = 5,
    item: int = 0,
    n_special: int = 1,
) -> list[AttendedPatch]:
    """The top-``k`` patches one head attends to from a query, as boxes.

    Parameters
    ----------
    attentions, layer, head, query, item, n_special
        As in :func:`query_weights`.
    patch_box, k
        As in :func:`top_patches`.

    Returns
    -------
    list of AttendedPatch, largest weight first
    """
    weights = query_weights(attentions, layer=layer, head=head, query=query, item=item, n_special=n_special)
    return top_patches(weights, k=k, patch_box=patch_box)


def attention_grid(
    attentions: Sequence[torch.Tensor],
    *,
    query: int | str,
    patch_box: PatchBox,
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    k: int = 5,
    item: int = 0,
    n_special: int = 1,
) -> dict[tuple[int, int], list[AttendedPatch]]:
    """Top-``k`` attended patches for every (layer, head) of the figure's grid.

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
    query : int or "cls"
    patch_box : callable
    layers : sequence of int or None
        One-based layers; ``None`` means those of (1, 4, 8) the model has.
    heads : sequence of int or None
        One-based heads; ``None`` means all.
    k, item, n_special
        As in :func:`attended_patches`.

    Returns
    -------
    dict
        ``(layer, head) -> list[AttendedPatch]``, in layer then head order.
    """
    n_layers = len(attentions)
    if layers is None:
        layers = [layer for layer in DEFAULT_LAYERS if layer <= n_layers]
    if heads is None:
        heads = range(1, _layer_attention(attentions, 1).shape[1] + 1)
    return {
        (layer, head): attended_patches(
            attentions, layer=layer, head=head, query=query, patch_box=patch_box,
            k=k, item=item, n_special=n_special,
        )
        for layer in layers
        for head in heads
    }


def strongest_patch(heat: np.ndarray, *, grid: tuple[int, int], geometry, event_cells: np.ndarray | None = None) -> int:
    """The patch to open the attention grid on: the strongest on the event, else the strongest of all.

    Parameters
    ----------
    heat : np.ndarray [shape=(n_mels, n_frames)]
        A relevance map on the spectrogram (e.g. rollout); NaN cells ignored.
    grid : (int, int)
        ``(n_freq_patches, n_time_patches)``.
    geometry : core.interpret.maps.PatchGeometry
        Where the patches sit.
    event_cells : np.ndarray [shape=(n_mels, n_frames)], bool, or None
        Cells inside the clip's event boxes. The patches that compete are those
        covering the event most: at least half the best patch's share of event
        cells (an event shorter than a patch, such as a click, still has its
        patches). ``None`` or no patch touching the event: all patches compete.

    Returns
    -------
    int
        Patch index (frequency-major) with the highest mean relevance over its cells.

    Examples
    --------
    >>> from core.interpret.maps import PatchGeometry
    >>> heat = np.zeros((4, 6)); heat[2:, 4:] = 1.0
    >>> strongest_patch(heat, grid=(2, 3), geometry=PatchGeometry(2, 2, 2, 2))
    5
    """
    heat = np.asarray(heat, dtype=np.float64)
    n_freq, n_time = grid
    scores = np.full(n_freq * n_time, -np.inf)
    share = np.zeros(n_freq * n_time)
    for p in range(n_freq * n_time):
        f, t = divmod(p, n_time)
        cells = (slice(f * geometry.stride_f, f * geometry.stride_f + geometry.patch_f),
                 slice(t * geometry.stride_t, t * geometry.stride_t + geometry.patch_t))
        block = heat[cells]
        if block.size and not np.isnan(block).all():
            scores[p] = np.nanmean(block)
        if event_cells is not None and block.size:
            share[p] = np.mean(event_cells[cells])
    if share.max() > 0:
        scores = np.where(share >= 0.5 * share.max(), scores, -np.inf)
    return int(np.argmax(scores))
