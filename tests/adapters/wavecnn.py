"""Test adapter: a 1-D CNN on the waveform at 16 kHz (strided conv front, three conv blocks, linear head).

Written only for the tests; core/ never imports it.
"""

import numpy as np
from torch import nn

from core.audio.demo_data import CLASSES
from core.models.adapter import ModelSpec

SR = 16000


def block(c_in, c_out, k, stride):
    return nn.Sequential(nn.Conv1d(c_in, c_out, k, stride=stride, padding=k // 2), nn.BatchNorm1d(c_out), nn.ReLU(),
                         nn.MaxPool1d(4))


class WaveCNN(nn.Module):
    def __init__(self, n_classes: int):
        super().__init__()
        self.block1 = block(1, 8, 64, 8)
        self.block2 = block(8, 16, 9, 1)
        self.block3 = block(16, 16, 9, 1)
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):  # (B, 1, n_samples)
        h = self.block3(self.block2(self.block1(x)))  # (B, C, T')
        return self.head(h.mean(dim=2))


def to_input(y: np.ndarray, sr: int) -> np.ndarray:
    return (y / (np.abs(y).max() + 1e-6))[None].astype(np.float32)  # (1, n_samples)


def model_spec() -> ModelSpec:
    return ModelSpec(model=WaveCNN(len(CLASSES)).eval(), input=to_input, classes=list(CLASSES), sample_rate=SR,
                     clip_seconds=5.0, layout="waveform", n_mels=64, hop_length=160)
