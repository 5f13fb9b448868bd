"""Test adapter: a CNN14-shaped network (PANNs' layout), narrow so the tests stay fast.

Input is time-first, (B, 1, T, 64): 64 mel bands at 32 kHz, window 1024, hop
320, 50 Hz to 14 kHz, as PANNs. Six conv blocks (two 3x3 convs, batch norm,
ReLU, 2x2 average pooling; none after the last), mean over frequency, max +
mean over time, fc1 and a linear head, as in ``Cnn14``. Random weights.
Written only for the tests; core/ never imports it.
"""

import librosa
import numpy as np
import torch.nn.functional as F
from torch import nn

from core.audio.demo_data import CLASSES
from core.models.adapter import ModelSpec

SR, N_FFT, HOP, N_MELS, FMIN, FMAX = 32000, 1024, 320, 64, 50, 14000
WIDTHS = (4, 8, 8, 16, 16, 32)  # Cnn14: 64, 128, 256, 512, 1024, 2048


class ConvBlock(nn.Module):
    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x, pool_size=(2, 2)):
        x = F.relu_(self.bn1(self.conv1(x)))
        x = F.relu_(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, kernel_size=pool_size)


class Cnn14(nn.Module):
    def __init__(self, classes_num: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(N_MELS)
        chans = (1,) + WIDTHS
        for k in range(6):
            setattr(self, f"conv_block{k + 1}", ConvBlock(chans[k], chans[k + 1]))
        self.fc1 = nn.Linear(WIDTHS[-1], WIDTHS[-1])
        self.fc_audioset = nn.Linear(WIDTHS[-1], classes_num)

    def forward(self, x):  # (B, 1, T, mel)
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        for k in range(1, 7):
            x = getattr(self, f"conv_block{k}")(x, pool_size=(2, 2) if k < 6 else (1, 1))  # (B, C, T', F')
        x = x.mean(dim=3)  # (B, C, T')
        x = x.max(dim=2).values + x.mean(dim=2)  # (B, C)
        embedding = F.relu_(self.fc1(x))
        return self.fc_audioset(embedding)  # logits (PANNs applies a sigmoid here)


def to_input(y: np.ndarray, sr: int) -> np.ndarray:
    S = librosa.feature.melspectrogram(y=y, sr=sr, n_fft=N_FFT, hop_length=HOP, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    return np.log10(S + 1e-10).T[None].astype(np.float32)  # (1, T, mel): time first


def model_spec() -> ModelSpec:
    return ModelSpec(model=Cnn14(len(CLASSES)).eval(), input=to_input, classes=list(CLASSES), sample_rate=SR,
                     clip_seconds=5.0, layout="time-mel", n_mels=N_MELS, hop_length=HOP, fmin_hz=FMIN)
