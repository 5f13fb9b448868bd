"""Test adapter written as a user outside the project would, from the README alone.

A time-first CNN (input ``(B, 1, T, mel)``, 40 mel bands from 50 Hz at 22.05 kHz, ``n_fft`` 1024, hop 512) whose
stem is a plain ``nn.Sequential`` (conv, batch norm, ReLU) and whose three separable blocks sit in one
``nn.Sequential`` (children 0, 1, 2), then a GRU over time and a linear head. The blocks come from a sibling
file, ``blocks.py``. core/ never imports it (it is registered with add-model).
"""

import numpy as np
from torch import nn

from blocks import SeparableBlock
from core.audio.features import AudioConfig, log_mel
from core.audio.demo_data import CLASSES
from core.models.adapter import ModelSpec

CFG = AudioConfig(sr=22050, n_mels=40, n_fft=1024, hop_length=512, fmin_hz=50.0, n_frames=216)


class TimeFirstGRU(nn.Module):
    def __init__(self, n_classes: int, width: int = 8, hidden: int = 16):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.features = nn.Sequential(SeparableBlock(width, width), SeparableBlock(width, 2 * width),
                                      SeparableBlock(2 * width, 2 * width))
        self.rnn = nn.GRU(2 * width * (CFG.n_mels // 8), hidden, batch_first=True)
        self.classifier = nn.Linear(hidden, n_classes)

    def forward(self, x):  # (B, 1, T, mel)
        h = self.features(self.stem(x))  # (B, C, T', F')
        B, C, T, F = h.shape
        h, _ = self.rnn(h.permute(0, 2, 1, 3).reshape(B, T, C * F))  # (B, T', hidden)
        return self.classifier(h.mean(dim=1))  # (B, n_classes)


def to_input(y: np.ndarray, sr: int) -> np.ndarray:
    return log_mel(y, CFG).T[None]  # (1, T, mel)


def model_spec() -> ModelSpec:
    return ModelSpec(model=TimeFirstGRU(len(CLASSES)).eval(), input=to_input, classes=list(CLASSES),
                     sample_rate=CFG.sr, clip_seconds=5.0, layout="time-mel", n_mels=CFG.n_mels,
                     hop_length=CFG.hop_length, fmin_hz=CFG.fmin_hz, n_fft=CFG.n_fft)
