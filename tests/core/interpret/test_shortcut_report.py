"""The positive control's scoring: a map that finds what a planted model uses scores on the tone's box."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioConfig
from core.models.checkpoint import Loaded
from core.interpret.faithfulness import box_cells
from core.interpret.shortcut_report import ablation, box_mass, tone_scores

CFG = AudioConfig(sr=8000, n_mels=16, n_fft=256, hop_length=128, n_frames=40)
TONE = (0.2, 0.35, 2500.0, 3000.0)  # (t0_s, t1_s, f0_hz, f1_hz)


class ToneDetector(nn.Module):
    """Logit 1: the sum of the input inside the tone's box; logit 0: a constant. Uses nothing else."""

    def __init__(self):
        super().__init__()
        self.bands, self.frames = box_cells(TONE, shape=(CFG.n_mels, CFG.n_frames), cfg=CFG)
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):  # (B, 1, n_mels, n_frames)
        inside = x[:, 0, self.bands, self.frames].sum(dim=(1, 2)) * self.scale  # (B,)
        return torch.stack([torch.full_like(inside, 1.0), inside], dim=1)  # (B, 2)

    def taps(self):
        return []


def clips(n, *, tone: bool, seed=0):
    rng = np.random.default_rng(seed)
    X = 0.1 * rng.standard_normal((n, CFG.n_mels, CFG.n_frames)).astype(np.float32)
    X[:, 2, 30] += 5.0  # a loud cell the model ignores: the energy map's peak
    if tone:
        bands, frames = box_cells(TONE, shape=(CFG.n_mels, CFG.n_frames), cfg=CFG)
        X[:, bands, frames] += 1.0
    return X


def test_maps_of_the_planted_model_find_the_tone_and_the_energy_map_does_not():
    loaded = Loaded(ToneDetector().eval(), CFG, ["other", "toned"])
    X = clips(6, tone=True)
    rows = tone_scores(loaded, X, [[TONE]] * len(X), target=1, ig_steps=8, occlusion_window=4, draws=2,
                       progress=False)
    assert rows["integrated gradients"]["pointing"][0] == 1.0 and rows["integrated gradients"]["mass"][0] > 0.9
    chance = rows["chance (box area)"]["pointing"][0]
    assert rows["occlusion"]["mass"][0] > 3 * chance  # its 4-cell blocks smear the box a little
    assert rows["energy (input itself)"]["pointing"][0] == 0.0  # its peak is the loud cell outside
    assert 0 < chance < 0.1 and rows["energy (input itself)"]["mass"][0] < 0.5
    assert abs(rows["smooth random map"]["mass"][0] - chance) < 0.1


def test_ablation_shows_the_model_needs_the_tone():
    loaded = Loaded(ToneDetector().eval(), CFG, ["other", "toned"])
    records = [type("R", (), {"label": k % 2})() for k in range(8)]
    truth = np.array([r.label for r in records])
    with_tone = np.stack([clips(1, tone=bool(t), seed=k)[0] for k, t in enumerate(truth)])[:, None]
    without = np.stack([clips(1, tone=False, seed=k)[0] for k in range(8)])[:, None]
    out = ablation(loaded, records, with_tone, without, shortcut_label=1)
    assert out["with_tone"]["shortcut_recall"][0] == 1.0 and out["with_tone"]["accuracy"][0] == 1.0
    assert out["without_tone"]["shortcut_recall"][0] == 0.0  # the tone gone, the class is never named
    assert out["chance"] == 0.5


def test_box_mass_is_the_share_inside():
    heat = np.zeros((CFG.n_mels, CFG.n_frames))
    bands, frames = box_cells(TONE, shape=heat.shape, cfg=CFG)
    heat[bands, frames] = 1.0
    heat[0, 0] = float(heat.sum())  # as much outside as inside
    assert box_mass(heat, [TONE], cfg=CFG) == 0.5
    assert np.isnan(box_mass(np.zeros_like(heat), [TONE], cfg=CFG))


def test_the_command_refuses_a_set_without_tone_boxes_and_a_model_without_the_class(tmp_path, capsys):
    from core.models.checkpoint import save_checkpoint
    from core.cli import main
    from core.audio.demo_data import CLASSES
    from core.models import build_model

    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=len(CLASSES))
    save_checkpoint(tmp_path / "ckpt", model, AudioConfig(), list(CLASSES), {})
    (tmp_path / "data").mkdir()
    args = ["shortcut-report", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(tmp_path / "data"),
            "--no-tone-data", str(tmp_path / "data")]
    assert main(args) == 2
    assert "shortcut.csv" in capsys.readouterr().err
    save_checkpoint(tmp_path / "other", model, AudioConfig(), [f"c{i}" for i in range(len(CLASSES))], {})
    args[2] = str(tmp_path / "other")
    assert main(args) == 2
    assert "singing_bowl" in capsys.readouterr().err
