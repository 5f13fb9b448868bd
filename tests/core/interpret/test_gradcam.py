"""Grad-CAM against the formula computed by hand with autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.errors import InputError
from core.interpret.gradcam import GradCAM


def minmax(a):
    a = np.asarray(a, dtype=np.float64)
    span = a.max() - a.min()
    return (a - a.min()) / span if span > 0 else np.zeros_like(a)


def hand_gradcam(activations, score, shape):
    """activations (B, C, h, w) attached to score; ReLU(sum_c mean(dy/dA_c) A_c), resized, min-max."""
    (grads,) = torch.autograd.grad(score, activations, retain_graph=True)
    weights = grads.mean(dim=(2, 3))  # (B, C)
    cam = torch.relu((weights[:, :, None, None] * activations).sum(dim=1))  # (B, h, w)
    cam = F.interpolate(cam[:, None].detach(), size=shape, mode="bilinear", align_corners=False)[:, 0]
    return np.stack([minmax(c) for c in cam.numpy()])


def test_gradcam_equals_hand_formula_on_a_tiny_cnn(tiny_cnn):
    x = torch.randn(2, 1, 8, 12, generator=torch.Generator().manual_seed(0))
    targets = [2, 0]
    maps = GradCAM(tiny_cnn, ["conv1", "conv2"]).maps(x, target=targets)

    a1 = tiny_cnn.conv1(x)
    a2 = tiny_cnn.conv2(a1)
    logits = tiny_cnn.out(a2.mean(dim=(2, 3)))
    score = logits[0, 2] + logits[1, 0]
    expected2 = hand_gradcam(a2, score, (8, 12))
    a1 = tiny_cnn.conv1(x)
    logits = tiny_cnn.out(tiny_cnn.conv2(a1).mean(dim=(2, 3)))
    expected1 = hand_gradcam(a1, logits[0, 2] + logits[1, 0], (8, 12))

    assert maps["conv2"].shape == (2, 8, 12)
    np.testing.assert_allclose(maps["conv2"], expected2, atol=1e-5)
    np.testing.assert_allclose(maps["conv1"], expected1, atol=1e-5)


def test_gradcam_on_the_token_grid(tiny_attention):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(3))
    maps = GradCAM(tiny_attention, ["layer1"]).maps(x, target=1)

    recorded = {}
    hook = tiny_attention.layers[0].register_forward_hook(lambda m, i, o: recorded.setdefault("t", o))
    logits = tiny_attention(x)
    hook.remove()
    tokens = recorded["t"]  # (1, 7, D)
    (grads,) = torch.autograd.grad(logits[0, 1], tokens)
    a = tokens[:, 1:].reshape(1, 2, 3, -1).permute(0, 3, 1, 2)  # (1, D, 2, 3)
    g = grads[:, 1:].reshape(1, 2, 3, -1).permute(0, 3, 1, 2)
    cam = torch.relu((g.mean(dim=(2, 3))[:, :, None, None] * a).sum(dim=1))
    cam = F.interpolate(cam[:, None].detach(), size=(8, 12), mode="bilinear", align_corners=False)[0, 0]
    np.testing.assert_allclose(maps["layer1"][0], minmax(cam.numpy()), atol=1e-5)


def test_default_target_is_the_predicted_class_and_output_is_in_unit_range(tiny_cnn):
    x = torch.randn(3, 1, 8, 12, generator=torch.Generator().manual_seed(4))
    predicted = tiny_cnn(x).argmax(dim=1).tolist()
    cam = GradCAM(tiny_cnn, ["conv2"])
    np.testing.assert_array_equal(cam.maps(x)["conv2"], cam.maps(x, target=predicted)["conv2"])
    combined = cam(x, target=0, shape=(16, 24))
    assert combined.shape == (3, 16, 24)
    assert combined.min() >= 0 and combined.max() <= 1


def test_no_hook_outlives_a_call_even_on_error(tiny_cnn):
    x = torch.randn(1, 1, 8, 12)
    cam = GradCAM(tiny_cnn, ["conv2"])
    cam.maps(x, target=0)
    with pytest.raises(InputError, match="target"):
        cam.maps(x, target=7)
    for module in tiny_cnn.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks


def test_non_spatial_taps_and_unknown_taps_are_refused(tiny_cnn):
    with pytest.raises(InputError, match="conv or token"):
        GradCAM(tiny_cnn, ["logits"])
    with pytest.raises(InputError):
        GradCAM(tiny_cnn, ["conv9"])
    with pytest.raises(InputError, match="taps"):
        GradCAM(tiny_cnn, [])


def test_channel_weights_are_the_mean_gradient_over_both_spatial_axes(tiny_cnn):
    g = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    w = GradCAM(tiny_cnn, ["conv2"]).channel_weights(torch.zeros_like(g), g)
    np.testing.assert_allclose(w.numpy(), g.numpy().reshape(2, 3, -1).mean(axis=2))


def test_gradcam_on_the_real_secnn_equals_hand_formula(real_secnn):
    x = torch.randn(2, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    maps = GradCAM(real_secnn, ["block1", "block3"]).maps(x, target=1)
    a1 = real_secnn.blocks[0].features(x)  # the "block1" tap (the first block has no SE)
    assert real_secnn.blocks[0].se is None
    h = real_secnn.blocks[1](a1)
    a3 = real_secnn.blocks[2].features(h)
    h = real_secnn.blocks[2].se(a3)
    for block in real_secnn.blocks[3:]:
        h = block(h)
    logits = real_secnn.out(real_secnn.head(real_secnn.pool(h).flatten(1)))
    np.testing.assert_allclose(maps["block3"], hand_gradcam(a3, logits[:, 1].sum(), (32, 64)), atol=1e-5)
    np.testing.assert_allclose(maps["block1"], hand_gradcam(a1, logits[:, 1].sum(), (32, 64)), atol=1e-5)


def test_gradcam_on_the_real_ast_token_grid(real_ast):
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    maps = GradCAM(real_ast, ["layer1"]).maps(x, target=0)
    assert maps["layer1"].shape == (1, 32, 64) and maps["layer1"].max() == pytest.approx(1.0)
    with pytest.raises(InputError, match="conv or token"):
        GradCAM(real_ast, ["layer1.attn"])
