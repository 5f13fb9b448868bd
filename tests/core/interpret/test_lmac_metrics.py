"""L-MAC's AI, AD, AG, FF and Fid-In on a planted model whose logit is the energy inside a box."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.interpret.lmac_metrics import lmac_scores
from core.interpret.listen import top_cells_mask

BOX = (slice(2, 5), slice(3, 9))  # bands, frames


class BoxEnergy(nn.Module):
    """Logit 0: the sum of the input cells inside BOX; logit 1: a constant."""

    def __init__(self, constant: float):
        super().__init__()
        self.constant = constant

    def forward(self, x):  # (B, 1, n_mels, n_frames)
        inside = x[:, 0, BOX[0], BOX[1]].sum(dim=(1, 2))  # (B,)
        return torch.stack([inside, torch.full_like(inside, self.constant)], dim=1)  # (B, 2)


def softmax(logits):
    e = np.exp(np.asarray(logits) - np.max(logits))
    return e / e.sum()


def probabilities(model, X):
    with torch.no_grad():
        return torch.softmax(model(torch.as_tensor(X, dtype=torch.float32)[:, None]), dim=1).numpy()


def test_metrics_equal_the_hand_computed_values():
    x = np.zeros((8, 12))
    x[BOX] = 0.1  # energy 18 cells x 0.1 = 1.8 inside the box
    x[2:5, 3:6] = 0.2  # the box's left half louder: inside energy 9 x 0.2 + 9 x 0.1 = 2.7
    x[6, 10] = 5.0  # loud, but outside the box: the model ignores it
    model = BoxEnergy(constant=2.0)
    # the map covers only the box's left half: 9 of the 96 cells
    heat = np.zeros_like(x)
    heat[2:5, 3:6] = 1.0
    mask = top_cells_mask(heat, top_percent=100 * 9 / x.size)
    assert mask.sum() == 9 and mask[2:5, 3:6].all()
    # L-MAC multiplies the (log-power) input by the mask: masked in = x * m, masked out = x * (1 - m)
    X = np.stack([x, x * mask, x * (1 - mask)])
    p, p_in, p_out = probabilities(model, X)
    scores = {k: float(v[0]) for k, v in lmac_scores(p[None], p_in[None], p_out[None]).items()}
    # by hand: logits (2.7, 2), (1.8, 2), (0.9, 2); the prediction is class 0
    pc, oc, qc = softmax([2.7, 2.0])[0], softmax([1.8, 2.0])[0], softmax([0.9, 2.0])[0]
    assert p.argmax() == 0 and p[0] == pytest.approx(pc, abs=1e-6)
    assert scores["AI"] == 0.0  # the masked-in part is less sure of class 0
    assert scores["AD"] == pytest.approx(100 * (pc - oc) / pc, rel=1e-5)
    assert scores["AG"] == 0.0
    assert scores["FF"] == pytest.approx(pc - qc, rel=1e-5)
    assert scores["Fid-In"] == 0.0  # masked in, class 1 wins (1.8 < 2)
    # a map on the whole box keeps everything the model uses: no drop, the prediction kept
    heat[BOX] = 1.0
    mask = top_cells_mask(heat, top_percent=100 * 18 / x.size)
    p, p_in, p_out = probabilities(model, np.stack([x, x * mask, x * (1 - mask)]))
    scores = {k: float(v[0]) for k, v in lmac_scores(p[None], p_in[None], p_out[None]).items()}
    assert scores["AD"] == pytest.approx(0.0, abs=1e-4) and scores["Fid-In"] == 1.0
    assert scores["FF"] == pytest.approx(pc - softmax([0.0, 2.0])[0], rel=1e-5)


def test_an_increase_counts_for_ai_and_ag():
    p = np.array([[0.5, 0.3, 0.2], [0.6, 0.4, 0.0]])
    o = np.array([[0.7, 0.2, 0.1], [0.3, 0.7, 0.0]])
    q = np.array([[0.1, 0.5, 0.4], [0.6, 0.4, 0.0]])
    s = lmac_scores(p, o, q)
    assert s["AI"].tolist() == [100.0, 0.0]
    assert s["AG"][0] == pytest.approx(100 * 0.2 / 0.5) and s["AG"][1] == 0.0
    assert s["AD"][0] == 0.0 and s["AD"][1] == pytest.approx(100 * 0.3 / 0.6)
    assert s["FF"].tolist() == pytest.approx([0.4, 0.0]) and s["Fid-In"].tolist() == [1.0, 0.0]
