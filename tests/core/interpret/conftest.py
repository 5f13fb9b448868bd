"""Tiny models for the interpretation tests: a CNN and an attention model, each with taps()."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.models import Tap


class TinyCNN(nn.Module):
    """(B, 1, 8, 12) -> conv -> ReLU -> conv -> ReLU -> max-pool -> GAP -> 3 logits."""

    kind = "tiny-cnn"

    def __init__(self, n_classes: int = 3):
        super().__init__()
        self.n_classes = n_classes
        self.conv1 = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.out = nn.Linear(4, n_classes)

    def forward(self, x):
        a1 = self.conv1(x)  # (B, 3, 8, 12)
        a2 = self.conv2(a1)  # (B, 4, 4, 6)
        return self.out(a2.mean(dim=(2, 3)))  # (B, n_classes)

    def taps(self):
        return [Tap("conv1", "conv 1", "conv", "conv1"), Tap("conv2", "conv 2", "conv", "conv2"),
                Tap("logits", "logits", "logits", "out")]


class TinyAttention(nn.Module):
    """Patches 4x4 of a (B, 1, 8, 12) input -> grid (2, 3), class token, 2 layers of 2 heads."""

    kind = "tiny-attention"
    n_special = 1
    grid = (2, 3)

    def __init__(self, n_classes: int = 3, dim: int = 8, heads: int = 2, depth: int = 2):
        super().__init__()
        self.n_classes, self.heads, self.dim = n_classes, heads, dim
        self.patch = nn.Conv2d(1, dim, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.qkv = nn.ModuleList(nn.Linear(dim, 3 * dim) for _ in range(depth))
        self.layers = nn.ModuleList(nn.Identity() for _ in range(depth))  # tap points: each layer's tokens
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x, output_attentions=False):
        B = x.shape[0]
        p = self.patch(x).flatten(2).transpose(1, 2)  # (B, 6, D), row-major freq-major
        h = torch.cat([self.cls.expand(B, -1, -1), p], dim=1)  # (B, 7, D)
        attentions = []
        for qkv, tap in zip(self.qkv, self.layers):
            q, k, v = qkv(h).chunk(3, dim=-1)  # (B, S, D) each
            split = lambda t: t.reshape(B, -1, self.heads, self.dim // self.heads).transpose(1, 2)
            q, k, v = split(q), split(k), split(v)  # (B, H, S, d)
            probs = torch.softmax(q @ k.transpose(-1, -2) / (self.dim // self.heads) ** 0.5, dim=-1)
            attentions.append(probs)
            h = h + (probs @ v).transpose(1, 2).reshape(B, -1, self.dim)
            h = tap(torch.tanh(h))  # (B, S, D)
        logits = self.head(h[:, 0])
        return (logits, tuple(attentions)) if output_attentions else logits

    def taps(self):
        return [Tap(f"layer{k + 1}", f"layer {k + 1}", "tokens", f"layers.{k}") for k in range(len(self.layers))]

    def patch_box(self, p, audio_cfg=None):
        f, t = divmod(p, 3)
        return (t * 0.1, t * 0.1 + 0.3, f * 100.0, f * 100.0 + 300.0)


@pytest.fixture
def tiny_cnn():
    torch.manual_seed(0)
    return TinyCNN().eval()


@pytest.fixture
def tiny_attention():
    torch.manual_seed(0)
    return TinyAttention().eval()


# Real project models at tiny sizes, on a 32 x 64 input (for one integration test per method).
REAL_SHAPE = (32, 64)


@pytest.fixture
def real_secnn():
    from core.models import build_model

    torch.manual_seed(0)
    return build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=3).eval()


@pytest.fixture
def real_ast():
    from core.models import build_model

    torch.manual_seed(0)
    config = {"dim": 16, "depth": 2, "heads": 2, "patch": 8, "stride_f": 8, "stride_t": 8,
              "n_mels": REAL_SHAPE[0], "n_frames": REAL_SHAPE[1], "dropout": 0.0}
    return build_model("ast", config, n_classes=3).eval()


@pytest.fixture
def real_audio_cfg():
    from core.audio.features import AudioConfig

    return AudioConfig(sr=8000, n_mels=REAL_SHAPE[0], n_fft=256, hop_length=128, n_frames=REAL_SHAPE[1])


def as_loaded(model, cfg=None):
    """A real :class:`core.models.checkpoint.Loaded` around a test model (what the registry's methods take)."""
    from core.audio.features import AudioConfig
    from core.models.checkpoint import Loaded

    n_classes = getattr(model, "n_classes", None) or 3
    return Loaded(model=model, audio_cfg=cfg or AudioConfig(), classes=[f"class{k}" for k in range(n_classes)],
                  kind=getattr(model, "kind", ""))
