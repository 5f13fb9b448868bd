"""AST-style audio transformer: patches of the log-mel spectrogram, a class token, L layers.

Patch embedding (a strided ``patch x patch`` convolution over the mel
spectrogram), a learned class token first, learned position embeddings, pre-norm
transformer layers, a final layer norm and a linear head on the class token.

Attention has two paths. Without a request for weights it calls PyTorch's fused
``scaled_dot_product_attention``, which never forms the attention matrix. When
weights are requested (``forward(x, output_attentions=True)``, or inside
``model.keep_attention()``, which :mod:`core.models.taps` enters for attention taps) it
takes the manual path: ``softmax(q k^T / sqrt(d))``, passed through the
``probs`` identity module (the tap point) and then multiplied with ``v``. The
probabilities returned are the ones that multiplied ``v`` (before attention
dropout, which is off in eval mode).

Patches are indexed over the patch grid only (the class token is index 0 of the
sequence, ``n_special = 1``): patch ``p`` is row-major, frequency-major,
``f = p // n_time``, ``t = p % n_time``.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.audio.features import AudioConfig, frame_times_s, mel_frequencies_hz
from core.errors import InputError
from core.models.tap import Tap

__all__ = ["ASTConfig", "AudioTransformer", "Attention", "Layer", "patch_grid", "padded_size"]


def patch_grid(n_mels: int, n_frames: int, *, patch: int, stride_f: int, stride_t: int,
               pad: bool = False) -> tuple[int, int]:
    """(n_freq_patches, n_time_patches) of a strided patch grid.

    Without ``pad`` the grid stops at the last whole patch, so up to
    ``stride - 1`` trailing frames or bands are never seen. With ``pad`` the
    input is padded (see :func:`padded_size`) so that the last patch reaches
    the last frame and band.

    Raises
    ------
    InputError
        When the input is smaller than one patch.
    """
    if n_mels < patch or n_frames < patch:
        raise InputError("patch", f"a {patch}x{patch} patch does not fit a {n_mels}x{n_frames} input")
    if pad:
        return _padded_count(n_mels, patch, stride_f), _padded_count(n_frames, patch, stride_t)
    return (n_mels - patch) // stride_f + 1, (n_frames - patch) // stride_t + 1


def _padded_count(n: int, patch: int, stride: int) -> int:
    """Patches along an axis of ``n`` cells once padded: enough to reach the last cell, none that starts past it."""
    return min(-(-(n - patch) // stride) + 1, (n - 1) // stride + 1)


def padded_size(n: int, *, patch: int, stride: int) -> int:
    """The length a padded axis of ``n`` cells takes: the padded grid's last patch ends there (never below ``n``)."""
    return max(n, (_padded_count(n, patch, stride) - 1) * stride + patch)


class Attention(nn.Module):
    """Multi-head self-attention, fused or manual (see the module docstring)."""

    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.dropout = dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.probs = nn.Identity()  # tap point: attention probabilities (B, H, S, S)
        self.attn_drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)
        self.keep_weights = False

    def forward(self, x: torch.Tensor, *, need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, S, D = x.shape
        qkv = self.qkv(x).reshape(B, S, 3, self.heads, self.head_dim)  # (B, S, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, S, Dh)
        if need_weights or self.keep_weights:
            scores = (q @ k.transpose(-2, -1)) * self.scale  # (B, H, S, S)
            attn = self.probs(scores.softmax(dim=-1))  # (B, H, S, S), rows sum to 1
            out = self.attn_drop(attn) @ v  # (B, H, S, Dh)
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(B, S, D)  # (B, S, D)
        return self.proj(out), attn

    def probabilities(self, x: torch.Tensor, *, heads: slice | list[int] = slice(None),
                      rows: slice | list[int] = slice(None)) -> torch.Tensor:
        """The manual path's ``softmax(q k^T / sqrt(d))`` for some heads and query rows, from this module's input.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, S, D)]
            What ``forward`` was given (the layer's normed tokens).
        heads, rows : slice or list of int
            Zero-based heads and query tokens to form.

        Returns
        -------
        torch.Tensor [shape=(B, n_heads, n_rows, S)]
        """
        B, S, D = x.shape
        w, b = self.qkv.weight.view(3, self.heads, self.head_dim, D), self.qkv.bias.view(3, self.heads, self.head_dim)
        q = torch.einsum("bsd,hed->bhse", x[:, rows], w[0, heads]) + b[0, heads][None, :, None]  # (B, h, r, Dh)
        k = torch.einsum("bsd,hed->bhse", x, w[1, heads]) + b[1, heads][None, :, None]  # (B, h, S, Dh)
        return ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1)  # (B, h, r, S)


class Layer(nn.Module):
    """Pre-norm transformer layer: x + attn(norm(x)), then x + mlp(norm(x)). Output (B, S, D)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, attn_dropout: float | None = None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout if attn_dropout is None else attn_dropout)
        self.drop = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))
        self._weights: torch.Tensor | None = None

    def forward(self, x: torch.Tensor, *, need_weights: bool = False) -> torch.Tensor:
        a, self._weights = self.attn(self.norm1(x), need_weights=need_weights)
        x = x + self.drop(a)
        return x + self.mlp(self.norm2(x))

    def pop_weights(self) -> torch.Tensor | None:
        w, self._weights = self._weights, None
        return w


class TokenEmbedding(nn.Module):
    """Patches to tokens: (B, 1, n_mels, n_frames) -> (B, 1 + P, D), class token first."""

    def __init__(self, dim: int, patch: int, stride_f: int, stride_t: int, n_patches: int, dropout: float):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, kernel_size=patch, stride=(stride_f, stride_t))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, 1 + n_patches, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B = x.shape[0]
        p = self.patch(x)  # (B, D, n_freq, n_time)
        p = p.flatten(2).transpose(1, 2)  # (B, P, D), frequency-major
        tokens = torch.cat([self.cls_token.expand(B, -1, -1), p], dim=1)  # (B, 1 + P, D)
        return self.drop(tokens + self.pos)


class ClassToken(nn.Module):
    """(B, S, D) -> (B, D): the class token (tap point of the embedding)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0]


@dataclass(frozen=True)
class ASTConfig:
    """AST-style transformer sizes.

    With the defaults and a 128 x 431 input the patch grid is 8 x 27 (216
    patches, 217 tokens) and the model has about 3.6 M parameters.

    Attributes
    ----------
    patch : int > 0
        Square patch size, in mel bands and frames.
    stride_f, stride_t : int > 0
        Patch strides along frequency and time (16 = no overlap; AST uses 10).
    dim : int > 0
        Token width; a multiple of ``heads``.
    depth : int > 0
        Number of layers.
    heads : int > 0
    mlp_ratio : float > 0
        MLP hidden width as a multiple of ``dim``.
    dropout : float in [0, 1)
    attn_dropout : float in [0, 1) or None
        Dropout on the attention probabilities while training; ``None``: the
        same as ``dropout``. At 0, training takes the fused attention kernel:
        about 3x faster on CPU, where dropping attention weights means forming
        the (B, H, S, S) matrix and drawing a random mask over it.
    n_mels, n_frames : int
        Input size the position embeddings are made for.
    """

    patch: int = 16
    stride_f: int = 16
    stride_t: int = 16
    dim: int = 192
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 4.0
    dropout: float = 0.1
    attn_dropout: float | None = None
    n_mels: int = 128
    n_frames: int = 431
    pad: bool = True

    def __post_init__(self):
        for name in ("patch", "stride_f", "stride_t", "dim", "depth", "heads", "n_mels", "n_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(name, f"need a positive integer, got {value!r}")
        if self.dim % self.heads:
            raise InputError("dim", f"{self.dim} is not a multiple of heads={self.heads}")
        if self.mlp_ratio <= 0:
            raise InputError("mlp_ratio", f"need > 0, got {self.mlp_ratio}")
        for name in ("dropout", "attn_dropout"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value < 1.0:
                raise InputError(name, f"need a value in [0, 1), got {value}")
        patch_grid(self.n_mels, self.n_frames, patch=self.patch, stride_f=self.stride_f, stride_t=self.stride_t)

    @property
    def grid(self) -> tuple[int, int]:
        return patch_grid(self.n_mels, self.n_frames, patch=self.patch,
                          stride_f=self.stride_f, stride_t=self.stride_t, pad=self.pad)

    @property
    def padded_shape(self) -> tuple[int, int]:
        """(n_mels, n_frames) after padding to a whole number of patches (the input's own shape without ``pad``)."""
        if not self.pad:
            return self.n_mels, self.n_frames
        return (padded_size(self.n_mels, patch=self.patch, stride=self.stride_f),
                padded_size(self.n_frames, patch=self.patch, stride=self.stride_t))


class PatchGrid:
    """What every patch transformer shares: its patch grid, read from ``self.config.grid``.

    The class defines ``patch_box(p, audio_cfg)``; this gives all of them.
    """

    @property
    def grid(self) -> tuple[int, int]:
        """(n_freq_patches, n_time_patches)."""
        return self.config.grid

    @property
    def n_patches(self) -> int:
        n_freq, n_time = self.grid
        return n_freq * n_time

    def patch_boxes(self, audio_cfg: AudioConfig = AudioConfig()) -> np.ndarray:
        """np.ndarray [shape=(n_patches, 4)]: :meth:`patch_box` of every patch, (t0_s, t1_s, f0_hz, f1_hz)."""
        return np.array([self.patch_box(p, audio_cfg) for p in range(self.n_patches)])


class AudioTransformer(PatchGrid, nn.Module):
    """AST-style classifier.

    Parameters
    ----------
    config : ASTConfig
    n_classes : int >= 2
    """

    kind = "ast"
    n_special = 1

    def __init__(self, config: ASTConfig = ASTConfig(), *, n_classes: int):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        n_freq, n_time = config.grid
        self.embed = TokenEmbedding(config.dim, config.patch, config.stride_f, config.stride_t,
                                    n_freq * n_time, config.dropout)
        self.layers = nn.ModuleList(
            Layer(config.dim, config.heads, config.mlp_ratio, config.dropout, config.attn_dropout)
            for _ in range(config.depth))
        self.norm = nn.LayerNorm(config.dim)
        self.cls = ClassToken()
        self.head = nn.Linear(config.dim, n_classes)

    def forward(self, x: torch.Tensor, output_attentions: bool = False):
        """Logits, and on request each layer's attention probabilities.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, 1, n_mels, n_frames)]
        output_attentions : bool
            Take the manual attention path and return the probabilities.

        Returns
        -------
        logits : torch.Tensor [shape=(B, n_classes)]
        attentions : tuple of torch.Tensor [shape=(B, H, 1 + P, 1 + P)], one per layer
            Only when ``output_attentions`` is True.
        """
        B, _, n_mels, n_frames = x.shape
        if (n_mels, n_frames) != (self.config.n_mels, self.config.n_frames):
            raise InputError("input", f"the model takes {self.config.n_mels} x {self.config.n_frames} "
                                      f"(mels x frames), got {n_mels} x {n_frames}")
        h = self.embed(self.pad_input(x))  # (B, 1 + P, D)
        attentions = []
        for layer in self.layers:
            h = layer(h, need_weights=output_attentions)  # (B, 1 + P, D)
            if output_attentions:
                attentions.append(layer.pop_weights())
            else:
                layer.pop_weights()
        logits = self.head(self.cls(self.norm(h)))  # (B, n_classes)
        return (logits, tuple(attentions)) if output_attentions else logits

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, n_frames) -> (B, 1, *config.padded_shape): pad bands and frames with each clip's minimum.

        The minimum is what the preprocessing pads a short clip with, so the
        padding reads as silence, and the last patch reaches the clip's end.
        """
        n_mels, n_frames = self.config.padded_shape
        extra_f, extra_t = n_mels - x.shape[2], n_frames - x.shape[3]
        if extra_f == 0 and extra_t == 0:
            return x
        floor = x.amin(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        x = torch.cat([x, floor.expand(-1, -1, x.shape[2], extra_t)], dim=3)  # (B, 1, n_mels_in, n_frames)
        return torch.cat([x, floor.expand(-1, -1, extra_f, x.shape[3])], dim=2)  # (B, 1, n_mels, n_frames)

    @contextmanager
    def keep_attention(self):
        """Inside: every layer takes the manual path so ``layerK.attn`` taps fire."""
        before = [layer.attn.keep_weights for layer in self.layers]
        for layer in self.layers:
            layer.attn.keep_weights = True
        try:
            yield self
        finally:
            for layer, was in zip(self.layers, before):
                layer.attn.keep_weights = was

    def attention_input_taps(self) -> list[Tap]:
        """One tap per layer on its attention's input (the normed tokens, (B, S, D)), for
        :func:`core.interpret.attention.record_attention`."""
        return [Tap(f"layer{k}.attn_in", f"layer {k} / attention input", "tokens", f"layers.{k - 1}.attn",
                    capture="input") for k in range(1, self.config.depth + 1)]

    def layer_attention(self, x: torch.Tensor, layer: int, *, heads: slice | list[int] = slice(None),
                        rows: slice | list[int] = slice(None)) -> torch.Tensor:
        """Layer ``layer``'s (from 1) attention probabilities formed from its recorded input:
        :meth:`Attention.probabilities`, (B, n_heads, n_rows, S)."""
        return self.layers[layer - 1].attn.probabilities(x, heads=heads, rows=rows)

    def taps(self) -> list[Tap]:
        """Named taps, input to output: tokens, per layer attention then tokens, embedding, logits."""
        S, D, H = 1 + self.n_patches, self.config.dim, self.config.heads
        taps = [Tap("patches", "patch embedding", "tokens", "embed", shape=lambda b, cfg: (b, S, D))]
        for k in range(1, self.config.depth + 1):
            taps.append(Tap(f"layer{k}.attn", f"layer {k} / attention", "attention",
                            f"layers.{k - 1}.attn.probs", shape=lambda b, cfg: (b, H, S, S)))
            taps.append(Tap(f"layer{k}", f"layer {k}", "tokens", f"layers.{k - 1}",
                            shape=lambda b, cfg: (b, S, D)))
        taps.append(Tap("embedding", "embedding (class token)", "embedding", "cls", shape=lambda b, cfg: (b, D)))
        taps.append(Tap("logits", "logits", "logits", "head", shape=lambda b, cfg: (b, self.n_classes)))
        return taps

    def patch_box(self, p: int, audio_cfg: AudioConfig = AudioConfig()) -> tuple[float, float, float, float]:
        """Time and frequency span of patch ``p``.

        Parameters
        ----------
        p : int in [0, n_patches)
            Patch index over patches only (class token excluded), frequency-major.
        audio_cfg : AudioConfig
            The preprocessing the model was trained with.

        Returns
        -------
        (t0_s, t1_s, f0_hz, f1_hz) : tuple of float
            Centre times of the first and last frames the patch covers, and
            centre frequencies of its lowest and highest mel bands.
        """
        n_freq, n_time = self.grid
        if not 0 <= p < n_freq * n_time:
            raise InputError("patch index", f"{p} is outside 0..{n_freq * n_time - 1}")
        c = self.config
        if (audio_cfg.n_mels, audio_cfg.n_frames) != (c.n_mels, c.n_frames):
            raise InputError("audio config", f"{audio_cfg.n_mels} x {audio_cfg.n_frames} does not match the "
                                             f"model's {c.n_mels} x {c.n_frames} (mels x frames)")
        f, t = divmod(int(p), n_time)
        t0, f0 = t * c.stride_t, f * c.stride_f
        times = frame_times_s(c.n_frames, audio_cfg)
        freqs = mel_frequencies_hz(audio_cfg)
        # A padded last patch reaches past the clip: its box ends at the last real frame or band.
        t1, f1 = min(t0 + c.patch, c.n_frames) - 1, min(f0 + c.patch, c.n_mels) - 1
        return float(times[t0]), float(times[t1]), float(freqs[f0]), float(freqs[f1])
