"""Test adapter: a CRNN (conv front, GRU over time, linear head) on our log-mel at 16 kHz.

Written only for the tests; core/ never imports it (it is registered with add-model).
"""

import numpy as np
from torch import nn

from core.audio.features import AudioConfig, log_mel
from core.audio.demo_data import CLASSES
from core.models.adapter import ModelSpec

CFG = AudioConfig(sr=16000, n_mels=32, n_fft=512, hop_length=256, n_frames=313)


class CRNN(nn.Module):
    def __init__(self, n_classes: int, width: int = 8, hidden: int = 16):
        super().__init__()
        self.conv_block1 = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                         nn.MaxPool2d(2))
        self.conv_block2 = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                         nn.MaxPool2d(2))
        self.gru = nn.GRU(width * (CFG.n_mels // 4), hidden, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(2 * hidden, n_classes)

    def forward(self, x):  # (B, 1, n_mels, n_frames)
        h = self.conv_block2(self.conv_block1(x))  # (B, C, F', T')
        B, C, F, T = h.shape
        h = h.permute(0, 3, 1, 2).reshape(B, T, C * F)  # (B, T', C * F')
        h, _ = self.gru(h)  # (B, T', 2 * hidden)
        return self.fc(h.mean(dim=1))  # (B, n_classes)


def to_input(y: np.ndarray, sr: int) -> np.ndarray:
    return log_mel(y, CFG)[None]  # (1, n_mels, n_frames)


def model_spec() -> ModelSpec:
    return ModelSpec(model=CRNN(len(CLASSES)).eval(), input=to_input, classes=list(CLASSES), sample_rate=CFG.sr,
                     clip_seconds=5.0, layout="mel-time", n_mels=CFG.n_mels, hop_length=CFG.hop_length)
