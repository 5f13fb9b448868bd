"""SE-CNN: a 2-D CNN over the log-mel spectrogram with squeeze-and-excitation blocks.

Five conv blocks (3x3 conv, batch norm, ReLU, 2x2 max-pool), each followed,
from block 2 on, by squeeze-and-excitation that pools every channel both by
average and by max, passes both through one shared bottleneck (reduction 8),
adds them and squashes to [0, 1] per channel. A global pooling (average over
frequency and time, or, with ``pool="time-max"``, average over frequency then
max plus mean over time) and an MLP head (512 -> 256 -> classes, dropout 0.5)
follow.

Reads top to bottom: the excitation, a block, the configuration, the model.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from core.errors import InputError
from core.models.tap import Tap

__all__ = ["SECNNConfig", "SECNN", "Excitation", "SqueezeExcitation", "ConvBlock", "TimeMaxPool", "POOLS"]

POOLS = ("avg", "time-max")


class Excitation(nn.Module):
    """Channel weights in [0, 1] from average- and max-pooled channels.

    Its output, shape (B, C), is what the ``"blockK.se"`` tap records. With
    ``bypass`` set it returns ones: the block then passes its input unchanged.
    With ``fixed`` set (a (C,) tensor) it returns those weights for every clip:
    the mean-excitation ablation, which keeps the scale and removes only the
    per-clip reweighting.
    """

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))
        self.bypass = False
        self.fixed: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, _, _ = x.shape
        if self.bypass:
            return x.new_ones(B, C)
        if self.fixed is not None:
            return self.fixed.to(x).expand(B, C)
        avg = x.mean(dim=(2, 3))  # (B, C)
        peak = x.amax(dim=(2, 3))  # (B, C)
        return torch.sigmoid(self.mlp(avg) + self.mlp(peak))  # (B, C), shared bottleneck


class SqueezeExcitation(nn.Module):
    """Rescale each channel of (B, C, F, T) by its excitation weight."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.excitation = Excitation(channels, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.excitation(x)  # (B, C)
        return x * w[:, :, None, None]


class ConvBlock(nn.Module):
    """3x3 conv, batch norm, ReLU, 2x2 max-pool (``features``), then optional SE."""

    def __init__(self, c_in: int, c_out: int, *, se: bool, reduction: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.se = SqueezeExcitation(c_out, reduction) if se else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, C_out, F // 2, T // 2)
        return self.se(x) if self.se is not None else x


class TimeMaxPool(nn.Module):
    """Mean over frequency, then max plus mean over time: (B, C, F, T) -> (B, C, 1, 1).

    The pooling of PANNs (Kong et al., 2020). A short event keeps its peak
    however long the clip around it is, where a global average dilutes it.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.mean(dim=2)  # (B, C, T)
        return (x.amax(dim=2) + x.mean(dim=2))[:, :, None, None]


@dataclass(frozen=True)
class SECNNConfig:
    """SE-CNN sizes.

    The default ``channels=(16, 32, 64, 128, 128)`` (0.45 M parameters with 10
    classes) is what ships: it trains on 2 CPU cores in minutes. The
    thesis-size model, ``SECNNConfig.thesis()``, is
    ``channels=(128, 256, 512, 1024, 1480)`` with the same SE and head:
    21.6 M parameters with ESC-50's 50 classes.

    Attributes
    ----------
    channels : tuple of int > 0
        Output channels of the conv blocks, one per block (5 in the thesis).
    se_blocks : tuple of int
        1-based blocks followed by squeeze-and-excitation.
    reduction : int >= 1
        SE bottleneck reduction.
    head : tuple of int > 0
        Hidden sizes of the MLP head; the first layer goes from
        ``channels[-1]`` to ``head[0]``.
    dropout : float in [0, 1)
        Dropout after each hidden layer of the head.
    pool : {"avg", "time-max"}
        Global pooling before the head: ``"avg"`` averages over frequency and
        time (checkpoints saved before this option); ``"time-max"`` is
        :class:`TimeMaxPool`.
    """

    channels: tuple[int, ...] = (16, 32, 64, 128, 128)
    se_blocks: tuple[int, ...] = (2, 3, 4, 5)
    reduction: int = 8
    head: tuple[int, ...] = (512, 256)
    dropout: float = 0.5
    pool: str = "avg"

    def __post_init__(self):
        if not self.channels or any(int(c) != c or c < 1 for c in self.channels):
            raise InputError("channels", f"need positive integers, got {self.channels}")
        if any(b < 1 or b > len(self.channels) for b in self.se_blocks):
            raise InputError("se_blocks", f"blocks are 1..{len(self.channels)}, got {self.se_blocks}")
        if self.reduction < 1:
            raise InputError("reduction", f"need >= 1, got {self.reduction}")
        if not self.head or any(h < 1 for h in self.head):
            raise InputError("head", f"need positive hidden sizes, got {self.head}")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError("dropout", f"need a value in [0, 1), got {self.dropout}")
        if self.pool not in POOLS:
            raise InputError("pool", f"use one of {', '.join(POOLS)}, got {self.pool!r}")

    @classmethod
    def thesis(cls) -> "SECNNConfig":
        """The thesis-size configuration (21.6 M parameters with 50 classes)."""
        return cls(channels=(128, 256, 512, 1024, 1480))


class SECNN(nn.Module):
    """SE-CNN classifier.

    Parameters
    ----------
    config : SECNNConfig
    n_classes : int >= 2

    Notes
    -----
    Input (B, 1, n_mels, n_frames); block k's output has shape
    (B, channels[k-1], F_k, T_k) with F_k = n_mels // 2**k and
    T_k = n_frames // 2**k (floored at each pooling).
    """

    kind = "secnn"

    def __init__(self, config: SECNNConfig = SECNNConfig(), *, n_classes: int):
        super().__init__()
        self.config = config
        self.n_classes = n_classes
        c_in = 1
        blocks = []
        for k, c_out in enumerate(config.channels, start=1):
            blocks.append(ConvBlock(c_in, c_out, se=k in config.se_blocks, reduction=config.reduction))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1) if config.pool == "avg" else TimeMaxPool()
        layers, width = [], c_in
        for hidden in config.head:
            layers += [nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(config.dropout)]
            width = hidden
        self.head = nn.Sequential(*layers)
        self.out = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, n_mels, n_frames) -> logits (B, n_classes)."""
        for block in self.blocks:
            x = block(x)  # (B, C_k, F_k, T_k)
        x = self.pool(x).flatten(1)  # (B, C_last)
        x = self.head(x)  # (B, head[-1])
        return self.out(x)  # (B, n_classes)

    def block_shape(self, k: int, audio_cfg) -> tuple[int, int, int]:
        """(C, F, T) of block ``k``'s output (1-based) for inputs of ``audio_cfg``."""
        f, t = audio_cfg.n_mels, audio_cfg.n_frames
        for _ in range(k):
            f, t = f // 2, t // 2
        return self.config.channels[k - 1], f, t

    def taps(self) -> list[Tap]:
        """Named taps, input to output: blocks (pre-SE output), SE weights, pooled, embedding, logits."""
        taps = []
        for k, block in enumerate(self.blocks, start=1):
            taps.append(Tap(f"block{k}", f"block {k}", "conv", f"blocks.{k - 1}.features",
                            shape=lambda b, cfg, k=k: (b, *self.block_shape(k, cfg))))
            if block.se is not None:
                c = self.config.channels[k - 1]
                taps.append(Tap(f"block{k}.se", f"block {k} / SE", "se", f"blocks.{k - 1}.se.excitation",
                                shape=lambda b, cfg, c=c: (b, c)))
        c_last = self.config.channels[-1]
        pooled = "global average pool" if self.config.pool == "avg" else "global pool (time max + mean)"
        taps.append(Tap("pooled", pooled, "embedding", "pool",
                        shape=lambda b, cfg: (b, c_last, 1, 1)))
        taps.append(Tap("embedding", f"embedding ({self.config.head[-1]})", "embedding", "head",
                        shape=lambda b, cfg: (b, self.config.head[-1])))
        taps.append(Tap("logits", "logits", "logits", "out", shape=lambda b, cfg: (b, self.n_classes)))
        return taps

    def pooling_factor(self, tap: str) -> int | None:
        """Input bands (and frames) one cell of a conv tap pools: ``2**k`` after block ``k``; else None.

        Pooling floors, so block ``k`` covers the first ``(n // 2**k) * 2**k`` of ``n`` frames.
        """
        if tap.startswith("block") and tap[5:].isdigit() and 1 <= int(tap[5:]) <= len(self.blocks):
            return 2 ** int(tap[5:])
        return None

    def se_blocks(self) -> list[int]:
        """1-based indices of the blocks with squeeze-and-excitation."""
        return [k for k, block in enumerate(self.blocks, start=1) if block.se is not None]

    def set_se_bypass(self, on: bool = True) -> None:
        """Force every SE excitation to 1 (``True``) or restore it (``False``)."""
        for block in self.blocks:
            if block.se is not None:
                block.se.excitation.bypass = bool(on)

    @contextmanager
    def se_fixed(self, weights: dict[int, torch.Tensor]):
        """Context manager: block ``k``'s excitation replaced by ``weights[k]`` (shape (C,)) for every clip."""
        blocks = {k: self.blocks[k - 1].se.excitation for k in weights}
        for k, excitation in blocks.items():
            excitation.fixed = torch.as_tensor(weights[k], dtype=torch.float32)
        try:
            yield self
        finally:
            for excitation in blocks.values():
                excitation.fixed = None

    @contextmanager
    def se_bypassed(self):
        """Context manager: SE excitation forced to 1 inside, restored on exit."""
        before = [b.se.excitation.bypass for b in self.blocks if b.se is not None]
        self.set_se_bypass(True)
        try:
            yield self
        finally:
            for block, was in zip([b for b in self.blocks if b.se is not None], before):
                block.se.excitation.bypass = was
