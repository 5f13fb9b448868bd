"""Occlusion, Integrated Gradients, gradient-weighted attention relevance and last-layer attention, each against its formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import InputError
from core.interpret.attention_relevance import model_attention_relevance, relevance_matrix
from core.interpret.faithfulness import model_predictor
from core.interpret.integrated_gradients import completeness_gap, integrated_gradients
from core.interpret.last_attention import model_last_attention
from core.interpret.maps import normalise_map
from core.interpret.occlusion import occlusion, occlusion_blocks

pytest.importorskip("captum")


def test_occlusion_is_the_probability_drop_per_block(tiny_cnn):
    x = np.random.default_rng(0).standard_normal((8, 12)).astype(np.float32)
    predict = model_predictor(tiny_cnn)
    out = occlusion(predict, x, target=1, window=(4, 5))  # 12 frames / 5: the last column of blocks is 2 wide
    blocks = occlusion_blocks((8, 12), (4, 5))
    assert len(blocks) == 2 * 3 and blocks[-1] == (slice(4, 8), slice(10, 12))
    p0 = predict(x[None])[0, 1]
    for bands, frames in blocks:
        filled = x.copy()
        filled[bands, frames] = x.min()
        np.testing.assert_allclose(out[bands, frames], p0 - predict(filled[None])[0, 1], atol=1e-6)
    assert np.isfinite(out).all()  # every cell is covered


class Linear(nn.Module):
    def __init__(self, shape=(8, 12), n_classes=3):
        super().__init__()
        self.fc = nn.Linear(shape[0] * shape[1], n_classes)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_integrated_gradients_of_a_linear_model_is_input_times_weight():
    torch.manual_seed(0)
    model = Linear().eval()
    x = torch.randn(1, 1, 8, 12)
    attributions = integrated_gradients(model, x, target=2, n_steps=4)
    expected = ((x - x.min())[0, 0] * model.fc.weight[2].reshape(8, 12)).detach().numpy()
    np.testing.assert_allclose(attributions, expected, atol=1e-5)


def test_integrated_gradients_equals_the_midpoint_formula_and_is_complete(tiny_cnn):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(2))
    baseline = torch.full_like(x, float(x.min()))
    n_steps = 16
    attributions = integrated_gradients(tiny_cnn, x, target=1, n_steps=n_steps)
    # by hand: gradients at the midpoints of n_steps equal parts of [0, 1], each weighted 1 / n_steps
    alphas = (np.arange(n_steps) + 0.5) / n_steps
    weights = np.full(n_steps, 1.0 / n_steps)
    total = torch.zeros_like(x)
    for a, w in zip(alphas, weights):
        point = (baseline + float(a) * (x - baseline)).requires_grad_(True)
        (grad,) = torch.autograd.grad(tiny_cnn(point)[0, 1], point)
        total += w * grad
    expected = ((x - baseline) * total)[0, 0].detach().numpy()
    np.testing.assert_allclose(attributions, expected, atol=1e-5)
    # completeness: the attributions sum to F(x) - F(baseline), up to the integration error
    with torch.no_grad():
        gap = float(tiny_cnn(x)[0, 1] - tiny_cnn(baseline)[0, 1])
    fine = integrated_gradients(tiny_cnn, x, target=1, n_steps=256)
    assert fine.sum() == pytest.approx(gap, abs=2e-3 + 1e-2 * abs(gap))


def test_the_completeness_gap_is_the_share_missed_and_shrinks_with_steps(tiny_cnn):
    torch.manual_seed(0)
    linear = Linear().eval()
    x = torch.randn(1, 1, 8, 12)
    assert completeness_gap(linear, x, integrated_gradients(linear, x, target=2, n_steps=2), target=2) < 1e-5
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        delta = float(tiny_cnn(x)[0, 1] - tiny_cnn(torch.full_like(x, float(x.min())))[0, 1])
    coarse = integrated_gradients(tiny_cnn, x, target=1, n_steps=2)
    assert completeness_gap(tiny_cnn, x, coarse, target=1) == pytest.approx(abs(coarse.sum() - delta) / abs(delta))
    gaps = [completeness_gap(tiny_cnn, x, integrated_gradients(tiny_cnn, x, target=1, n_steps=n), target=1)
            for n in (2, 256)]
    assert gaps[1] < gaps[0] and gaps[1] < 0.05


def test_integrated_gradients_refuses_a_batch(tiny_cnn):
    with pytest.raises(InputError):
        integrated_gradients(tiny_cnn, torch.zeros(2, 1, 8, 12), target=0)


def hand_relevance(model, x, target):
    """Chefer et al. with plain loops: R = I; R += mean_h relu(grad * A) @ R per layer."""
    x = x.clone().requires_grad_(True)
    logits, attentions = model(x, output_attentions=True)
    grads = torch.autograd.grad(logits[0, target], attentions)
    S = attentions[0].shape[-1]
    R = np.eye(S)
    for a, g in zip(attentions, grads):
        a, g = a[0].detach().double().numpy(), g[0].double().numpy()
        H = a.shape[0]
        abar = sum(np.maximum(g[h] * a[h], 0) for h in range(H)) / H
        R = R + abar @ R
    return R


def test_attention_relevance_equals_the_formula_on_a_tiny_attention_model(tiny_attention):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(3))
    expected = hand_relevance(tiny_attention, x, target=2)
    logits, attentions = tiny_attention(x.clone().requires_grad_(True), output_attentions=True)
    grads = torch.autograd.grad(logits[0, 2], attentions)
    np.testing.assert_allclose(relevance_matrix(attentions, grads)[0].numpy(), expected, atol=1e-5)
    heat = model_attention_relevance(tiny_attention, x, target=2)
    row = torch.as_tensor(expected[0, 1:]).reshape(1, 2, 3)
    reference = normalise_map(F.interpolate(row[:, None].float(), size=(8, 12), mode="bilinear",
                                            align_corners=False)[:, 0]).numpy()
    np.testing.assert_allclose(heat, reference, atol=1e-5)
    # class-specific: another class gives another map
    assert not np.allclose(heat, model_attention_relevance(tiny_attention, x, target=0))


def test_attention_relevance_on_the_real_ast(real_ast):
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    heat = model_attention_relevance(real_ast, x, target=1)
    assert heat.shape == (1, 32, 64) and np.nanmax(heat) == pytest.approx(1.0)


def test_last_layer_attention_is_the_mean_over_heads_of_the_class_row(tiny_attention):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        _, attentions = tiny_attention(x, output_attentions=True)
    row = attentions[-1][0, :, 0, 1:].mean(dim=0).reshape(1, 2, 3)
    reference = normalise_map(F.interpolate(row[:, None], size=(8, 12), mode="bilinear",
                                            align_corners=False)[:, 0]).numpy()
    np.testing.assert_allclose(model_last_attention(tiny_attention, x), reference, atol=1e-6)
