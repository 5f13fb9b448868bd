"""Attention rollout (Abnar & Zuidema, 2020): how much each patch flows into the class token.

Per layer, the heads' attention matrices are fused into one (mean, max or
min), the weakest links are optionally discarded, the identity is added for the
residual path and rows are renormalised to sum to 1; the layers are then
multiplied through, first layer rightmost::

    A_l   = normalise_rows((fuse(attn_l) + I) / 2)
    joint = A_L @ ... @ A_2 @ A_1

The class token's row of ``joint``, over the patches, is the relevance map
(with two special tokens, class and distillation, as in Hugging Face's AST,
the mean of their two rows: its classifier averages both tokens). It is
reshaped to the patch grid, ``(n_freq_patches, n_time_patches)`` (not assumed
square), and placed on the spectrogram's ``(n_mels, n_frames)`` at the
patches' centres (:func:`core.interpret.maps.resize_patch_map`).

:func:`model_rollout` is the one function the report, the app and the tests
call for a model's rollout map; :func:`stereo_rollout` gives left, right and
mix-down maps with one normalisation shared by left and right, so that a
sound panned to one side stays brighter on that side.

This follows ``vit_rollout.py`` from jacobgil/vit-explain, fixing its rough
edges: an unknown fusion raises :class:`~core.errors.InputError`; rows are
renormalised with ``keepdim`` (its issue #16); discarding works per item of a
batch and never drops a link *to* a special token (vit-explain meant to keep
the class token but only protected the single entry ``[0, 0]``); and the grid
is the model's, not a square.

See Also
--------
core.interpret.attention : one head's raw attention for one query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from core.errors import InputError
from core.kinds import HEAD_FUSIONS
from core.interpret.maps import PatchGeometry, normalise_map, patch_geometry, resize_map, resize_patch_map

__all__ = [
    "HEAD_FUSIONS",
    "fuse_heads",
    "discard_weakest",
    "rollout",
    "rollout_rows",
    "class_token_relevance",
    "rollout_map",
    "model_rollout",
    "waveform_rollout",
    "stereo_rollout",
]



def fuse_heads(attention: torch.Tensor, *, head_fusion: str = "mean") -> torch.Tensor:
    """Fuse one layer's heads into one attention matrix.

    Parameters
    ----------
    attention : Tensor [shape=(B, H, S, S)]
        Attention probabilities; row ``i`` is where token ``i`` looks.
    head_fusion : {"mean", "max", "min"}

    Returns
    -------
    Tensor [shape=(B, S, S)]
    """
    if head_fusion not in HEAD_FUSIONS:
        raise InputError("head_fusion", f"{head_fusion!r} is not one of {', '.join(HEAD_FUSIONS)}")
    if head_fusion == "mean":
        return attention.mean(dim=1)
    if head_fusion == "max":
        return attention.amax(dim=1)
    return attention.amin(dim=1)


def discard_weakest(fused: torch.Tensor, *, discard_ratio: float, n_special: int = 1) -> torch.Tensor:
    """Set the weakest links of each item to zero, keeping every link to a special token.

    The candidates are all entries ``[i, j]`` with ``j >= n_special`` (links
    *to* a patch); of these, the ``floor(discard_ratio * n_candidates)``
    smallest per item are zeroed (ties broken by position, stable).

    Parameters
    ----------
    fused : Tensor [shape=(B, S, S)]
    discard_ratio : float in [0, 1)
    n_special : int >= 0

    Returns
    -------
    Tensor [shape=(B, S, S)], a new tensor
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise InputError("discard_ratio", f"must be in [0, 1), got {discard_ratio}")
    B, S, _ = fused.shape
    candidates = fused[:, :, n_special:].reshape(B, -1)  # (B, S * P), links to patches
    n_discard = int(discard_ratio * candidates.shape[1])
    if n_discard == 0:
        return fused.clone()
    weakest = torch.argsort(candidates, dim=1, stable=True)[:, :n_discard]  # (B, n_discard)
    kept = candidates.scatter(1, weakest, 0.0)
    out = fused.clone()
    out[:, :, n_special:] = kept.reshape(B, S, S - n_special)
    return out


def rollout(
    attentions: Sequence[torch.Tensor],
    *,
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    n_special: int = 1,
) -> torch.Tensor:
    """Joint attention through all layers.

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
        One per layer, first layer first, as a model returns with
        ``output_attentions=True``.
    head_fusion : {"mean", "max", "min"}
    discard_ratio : float in [0, 1)
        Share of the weakest links (to patches) zeroed in each layer before
        the identity is added; 0 keeps all.
    n_special : int >= 0
        Number of special tokens before the patches.

    Returns
    -------
    Tensor [shape=(B, S, S)], float64
        ``joint[b, i, j]``: how much token ``j`` of the input flows into token
        ``i`` of the last layer. Rows sum to 1.

    Examples
    --------
    >>> from core.models.checkpoint import load_checkpoint
    >>> from core.paths import CHECKPOINTS_DIR
    >>> model = load_checkpoint(CHECKPOINTS_DIR / "ast").model
    >>> logits, attentions = model(torch.zeros(1, 1, 128, 431), output_attentions=True)
    >>> len(attentions), attentions[0].shape  # per layer: (B, heads, S, S); S = class token + 216 patches
    (8, torch.Size([1, 8, 217, 217]))
    >>> joint = rollout(attentions, head_fusion="max", discard_ratio=0.9)
    >>> joint.shape, bool(torch.allclose(joint.sum(-1), torch.ones(1, 217, dtype=joint.dtype)))
    (torch.Size([1, 217, 217]), True)
    """
    B, S = _check(attentions, head_fusion=head_fusion, discard_ratio=discard_ratio)
    eye = torch.eye(S, dtype=torch.float64)
    joint = eye.expand(B, S, S).clone()
    for layer, attention in enumerate(attentions, start=1):
        joint = _layer_flow(attention, layer, B, S, head_fusion=head_fusion, discard_ratio=discard_ratio,
                            n_special=n_special) @ joint
    return joint


def rollout_rows(
    attentions: Sequence[torch.Tensor],
    *,
    rows: Sequence[int],
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    n_special: int = 1,
) -> torch.Tensor:
    """Some rows of :func:`rollout`'s joint matrix, multiplied from the last layer down.

    ``joint[:, rows] = E @ A_L @ ... @ A_1`` with ``E`` the identity's ``rows``:
    vector-matrix products instead of S x S matrix products, and each layer's
    attention used once, last layer first (so a :class:`core.interpret.attention.LayerAttentions`
    forms one layer at a time).

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
    rows : sequence of int
        Token indices, e.g. ``range(n_special)`` for the special tokens.
    head_fusion, discard_ratio, n_special
        As in :func:`rollout`.

    Returns
    -------
    Tensor [shape=(B, len(rows), S)], float64
        Equal to ``rollout(...)[:, rows]``.
    """
    B, S = _check(attentions, head_fusion=head_fusion, discard_ratio=discard_ratio)
    out = torch.eye(S, dtype=torch.float64)[list(rows)].expand(B, -1, -1)  # (B, R, S)
    for layer in range(len(attentions), 0, -1):
        out = out @ _layer_flow(attentions[layer - 1], layer, B, S, head_fusion=head_fusion,
                                discard_ratio=discard_ratio, n_special=n_special)
    return out


def _check(attentions, *, head_fusion: str, discard_ratio: float) -> tuple[int, int]:
    """Refuse a bad fusion, ratio or first layer; ``(B, S)`` of the first layer."""
    if head_fusion not in HEAD_FUSIONS:
        raise InputError("head_fusion", f"{head_fusion!r} is not one of {', '.join(HEAD_FUSIONS)}")
    if not 0.0 <= discard_ratio < 1.0:
        raise InputError("discard_ratio", f"must be in [0, 1), got {discard_ratio}")
    if len(attentions) == 0:
        raise InputError("attentions", "no layers given")
    first = attentions[0]
    if first.ndim != 4 or first.shape[-1] != first.shape[-2]:
        raise InputError("attentions", f"each layer must be (batch, heads, seq, seq), got {tuple(first.shape)}")
    return first.shape[0], first.shape[-1]


def _layer_flow(attention: torch.Tensor, layer: int, B: int, S: int, *, head_fusion: str, discard_ratio: float,
                n_special: int) -> torch.Tensor:
    """One layer's ``A_l = normalise_rows((fuse(attn_l) + I) / 2)``, weakest links discarded first: (B, S, S), float64."""
    if attention.ndim != 4 or attention.shape[0] != B or attention.shape[-2:] != (S, S):
        raise InputError(f"attentions[{layer - 1}]", f"shape {tuple(attention.shape)} differs from layer 1")
    with torch.no_grad():
        fused = fuse_heads(attention.detach().to(torch.float64), head_fusion=head_fusion)  # (B, S, S)
        if discard_ratio > 0:  # 0 keeps every link
            fused = discard_weakest(fused, discard_ratio=discard_ratio, n_special=n_special)
        a = (fused + torch.eye(S, dtype=torch.float64)) / 2  # residual path
        return a / a.sum(dim=-1, keepdim=True)  # rows sum to 1


def class_token_relevance(joint: torch.Tensor, *, grid: tuple[int, int], n_special: int = 1) -> torch.Tensor:
    """The special tokens' rows of a token-to-token matrix, averaged, on the patch grid.

    Parameters
    ----------
    joint : Tensor [shape=(B, R, S)], R >= n_special
        Joint attention (or any relevance matrix) over ``n_special`` special
        tokens followed by the patches; its first ``n_special`` rows are read
        (so :func:`rollout_rows` of ``range(n_special)`` will do).
    grid : (int, int)
        ``(n_freq_patches, n_time_patches)``; patch ``p`` sits at
        ``(p // n_time, p % n_time)``.
    n_special : int >= 1
        1: the class token's row. 2 (Hugging Face AST): the mean of the class
        and distillation rows, as its classifier averages the two tokens.

    Returns
    -------
    Tensor [shape=(B, n_freq_patches, n_time_patches)]
    """
    n_freq, n_time = grid
    n_patches = joint.shape[-1] - n_special
    if n_special < 1:
        raise InputError("n_special", "the model has no class token to read a row from")
    if n_freq * n_time != n_patches:
        raise InputError("grid", f"{n_freq}x{n_time} does not hold the {n_patches} patches")
    return joint[:, :n_special, n_special:].mean(dim=1).reshape(-1, n_freq, n_time)


def rollout_map(
    attentions: Sequence[torch.Tensor],
    *,
    grid: tuple[int, int],
    shape: tuple[int, int],
    head_fusion: str = "mean",
    discard_ratio: float = 0.0,
    n_special: int = 1,
    geometry: PatchGeometry | None = None,
    normalise: bool = True,
) -> np.ndarray:
    """Rollout relevance on the spectrogram's grid, scaled to [0, 1] per clip.

    Parameters
    ----------
    attentions : sequence of Tensor [shape=(B, H, S, S)]
    grid : (int, int)
        The model's ``(n_freq_patches, n_time_patches)`` (``model.grid``).
    shape : (int, int)
        The spectrogram's ``(n_mels, n_frames)``.
    head_fusion, discard_ratio, n_special
        As in :func:`rollout`.
    geometry : PatchGeometry or None
        Where the patches sit (:func:`core.interpret.maps.patch_geometry`);
        ``None`` stretches the grid over the whole spectrogram.
    normalise : bool
        Scale each map to [0, 1]; ``False`` keeps the raw relevance (shares of
        the class token's information) for a normalisation shared across maps.

    Returns
    -------
    np.ndarray [shape=(B, n_mels, n_frames)], float32 in [0, 1], NaN where no patch reaches
    """
    joint = rollout_rows(attentions, rows=range(n_special), head_fusion=head_fusion, discard_ratio=discard_ratio,
                         n_special=n_special)  # (B, n_special, S)
    relevance = class_token_relevance(joint, grid=grid, n_special=n_special)  # (B, nF, nT)
    resized = resize_map(relevance, shape) if geometry is None else resize_patch_map(relevance, shape, geometry=geometry)
    return normalise_map(resized).numpy() if normalise else resized.numpy()


def model_rollout(model, x: torch.Tensor, *, head_fusion: str = "mean", discard_ratio: float = 0.0,
                  normalise: bool = True) -> np.ndarray:
    """A transformer's rollout map for a batch of inputs, with the model's own grid and geometry.

    Parameters
    ----------
    model : nn.Module
        A patch transformer (``grid``, ``n_special``, ``forward(x, output_attentions=True)``).
    x : Tensor [shape=(B, 1, n_mels, n_frames)]
    head_fusion, discard_ratio, normalise
        As in :func:`rollout_map`.

    Returns
    -------
    np.ndarray [shape=(B, n_mels, n_frames)], float32
    """
    if not hasattr(model, "grid"):
        raise InputError("model", f"rollout needs a transformer; this is {getattr(model, 'kind', '?')!r}")
    attentions = attention_of(model, x)
    return rollout_map(attentions, grid=model.grid, shape=tuple(x.shape[-2:]), head_fusion=head_fusion,
                       discard_ratio=discard_ratio, n_special=getattr(model, "n_special", 1),
                       geometry=patch_geometry(model), normalise=normalise)


def attention_of(model, x: torch.Tensor) -> Sequence[torch.Tensor]:
    """Every layer's attention of a batch: formed a layer at a time from recorded inputs where the model
    can (:func:`core.interpret.attention.record_attention`), else the tuple of ``output_attentions=True``."""
    if hasattr(model, "attention_input_taps"):
        from core.interpret.attention import record_attention

        return record_attention(model, x)
    with torch.no_grad():
        return model(x, output_attentions=True)[1]


def waveform_rollout(
    loaded, y: np.ndarray, *, head_fusion: str = "mean", discard_ratio: float = 0.0
) -> np.ndarray:
    """Rollout of one mono waveform through a loaded transformer checkpoint.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
        An ``"ast"`` or ``"hf-ast"`` checkpoint.
    y : np.ndarray [shape=(n_samples,)]
        Mono, at ``loaded.audio_cfg.sr``.
    head_fusion, discard_ratio
        As in :func:`rollout`.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32 in [0, 1]
    """
    x = torch.as_tensor(loaded.input(np.asarray(y, dtype=np.float32), loaded.audio_cfg.sr))[None]  # (1, 1, n_mels, n_frames)
    return model_rollout(loaded.model, x, head_fusion=head_fusion, discard_ratio=discard_ratio)[0]


def stereo_rollout(
    loaded, samples: np.ndarray, *, head_fusion: str = "mean", discard_ratio: float = 0.0
) -> dict[str, np.ndarray]:
    """Rollout maps of the left channel, the right channel and the mix-down, side by side.

    The mix-down is what the model hears, scaled on its own (it equals
    :func:`waveform_rollout` of the mix). Left and right are fed to the model
    with their level difference kept (:func:`core.interpret.stereo.stereo_inputs`),
    and their raw relevance is scaled to [0, 1] by one shared minimum and
    maximum, so the brighter side is where more of the class token's
    information comes from.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
        A transformer checkpoint.
    samples : np.ndarray [shape=(n_channels, n_samples)] or (n_samples,)
        A :class:`core.audio.features.Clip`'s samples at ``loaded.audio_cfg.sr``.
    head_fusion, discard_ratio
        As in :func:`rollout`.

    Returns
    -------
    dict
        ``{"left", "right", "mix"}`` for stereo input, ``{"mix"}`` for mono;
        each an np.ndarray [shape=(n_mels, n_frames)], float32.
    """
    from core.interpret.stereo import stereo_inputs

    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim == 2 and samples.shape[0] == 1:
        samples = samples[0]
    if samples.ndim == 1:
        return {"mix": waveform_rollout(loaded, samples, head_fusion=head_fusion, discard_ratio=discard_ratio)}
    if samples.ndim != 2 or samples.shape[0] != 2:
        raise InputError("samples", f"expected (channels, samples) with 1 or 2 channels, got {samples.shape}")
    mix = waveform_rollout(loaded, samples.mean(axis=0), head_fusion=head_fusion, discard_ratio=discard_ratio)
    x = torch.as_tensor(stereo_inputs(loaded, samples))[:, None]  # (2, 1, n_mels, n_frames): left, right
    raw = torch.as_tensor(model_rollout(loaded.model, x, head_fusion=head_fusion, discard_ratio=discard_ratio,
                                        normalise=False))  # (2, n_mels, n_frames)
    both = normalise_map(raw.permute(1, 0, 2).reshape(raw.shape[1], -1))  # one scale for L and R
    both = both.reshape(raw.shape[1], 2, raw.shape[2]).permute(1, 0, 2).numpy()
    return {"left": both[0], "right": both[1], "mix": mix}
