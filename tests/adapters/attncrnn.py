"""Test adapter: a CRNN with self-attention over time (conv front, GRU, multi-head attention, linear head).

Written only for the tests; core/ never imports it (it is registered with add-model). Its attention
module is found by type (``nn.MultiheadAttention``), and declared too, as an adapter would.
"""

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioConfig, log_mel
from core.audio.demo_data import CLASSES
from core.models.adapter import ModelSpec

CFG = AudioConfig(sr=16000, n_mels=32, n_fft=512, hop_length=256, n_frames=313)


class AttentionCRNN(nn.Module):
    def __init__(self, n_classes: int, width: int = 8, hidden: int = 16, heads: int = 2):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4))
        self.gru = nn.GRU(width * (CFG.n_mels // 4), hidden, batch_first=True)
        self.attn = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.fc = nn.Linear(hidden, n_classes)

    def forward(self, x):  # (B, 1, n_mels, n_frames)
        h = self.conv_block(x)  # (B, C, F', T')
        B, C, F, T = h.shape
        h, _ = self.gru(h.permute(0, 3, 1, 2).reshape(B, T, C * F))  # (B, T', hidden)
        h, _ = self.attn(h, h, h)  # weights (B, T', T'), averaged over heads
        return self.fc(h.mean(dim=1))


def to_input(y: np.ndarray, sr: int) -> np.ndarray:
    return log_mel(y, CFG)[None]


def model_spec() -> ModelSpec:
    torch.manual_seed(0)
    return ModelSpec(model=AttentionCRNN(len(CLASSES)).eval(), input=to_input, classes=list(CLASSES),
                     sample_rate=CFG.sr, clip_seconds=5.0, layout="mel-time", n_mels=CFG.n_mels,
                     hop_length=CFG.hop_length, attention=["attn"])
