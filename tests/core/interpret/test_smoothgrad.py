"""SmoothGrad against its formula: the plain gradient without noise, the mean of noisy gradients by hand, the
weights of a linear model whatever the noise; and it reaches the report, the Attribution page's list and the
scorecard through its one registry entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import InputError
from core.interpret.maps import normalise_map
from core.interpret.registry import map_methods, method, report_runs
from core.interpret.scorecard import clip_scorecard
from core.interpret.smoothgrad import smoothgrad, smoothgrad_map
from tests.core.interpret.conftest import as_loaded


def gradient(model, x: torch.Tensor, target: int) -> np.ndarray:
    x = x.clone().requires_grad_(True)
    model(x)[0, target].backward()
    return x.grad[0, 0].double().numpy()


def test_without_noise_it_is_the_plain_gradient(tiny_cnn):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(0))
    for n_samples in (1, 5):
        np.testing.assert_allclose(smoothgrad(tiny_cnn, x, target=2, n_samples=n_samples, noise=0.0),
                                   gradient(tiny_cnn, x, 2), atol=1e-6)
    np.testing.assert_allclose(smoothgrad_map(tiny_cnn, x, target=2, noise=0.0),
                               normalise_map(np.abs(gradient(tiny_cnn, x, 2))).numpy(), atol=1e-6)


def test_it_is_the_mean_of_the_noisy_gradients_drawn_with_the_seed(tiny_cnn):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(1))
    n, noise, seed = 6, 0.2, 3
    sigma = noise * float(x.max() - x.min())
    draws = torch.randn((n, 1, 8, 12), generator=torch.Generator().manual_seed(seed))
    by_hand = np.mean([gradient(tiny_cnn, x + sigma * draws[k:k + 1], 1) for k in range(n)], axis=0)
    out = smoothgrad(tiny_cnn, x, target=1, n_samples=n, noise=noise, seed=seed)
    np.testing.assert_allclose(out, by_hand, atol=1e-6)
    assert not np.allclose(out, gradient(tiny_cnn, x, 1), atol=1e-4)  # the noise did something
    np.testing.assert_array_equal(out, smoothgrad(tiny_cnn, x, target=1, n_samples=n, noise=noise, seed=seed))


def test_a_linear_models_map_is_its_weights_whatever_the_noise():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 12, 3)).eval()
    x = torch.randn(1, 1, 8, 12)
    weights = model[1].weight[2].detach().reshape(8, 12).double().numpy()
    np.testing.assert_allclose(smoothgrad(model, x, target=2, n_samples=4, noise=0.5), weights, atol=1e-6)


def test_bad_input_is_refused(tiny_cnn):
    x = torch.zeros(1, 1, 8, 12)
    with pytest.raises(InputError, match="n_samples"):
        smoothgrad(tiny_cnn, x, target=0, n_samples=0)
    with pytest.raises(InputError, match="noise"):
        smoothgrad(tiny_cnn, x, target=0, noise=-0.1)
    with pytest.raises(InputError, match="one clip"):
        smoothgrad(tiny_cnn, x[0], target=0)
    with pytest.raises(InputError, match=r"must be in \[0, 0.5\]"):
        method("smoothgrad").resolve(as_loaded(tiny_cnn), {"noise": 0.9})


def test_its_registry_entry_puts_it_in_the_report_the_page_list_and_the_scorecard(real_secnn, real_audio_cfg):
    loaded = as_loaded(real_secnn, real_audio_cfg)
    assert "smoothgrad" in [m.id for m in map_methods(loaded)]  # the Attribution page's method box
    run = next(r for r in report_runs(loaded) if r.spec.id == "smoothgrad")
    assert run.name == "SmoothGrad" and run.params == {"n_samples": 16, "noise": 0.15}
    assert "smoothgrad" not in [r.spec.id for r in report_runs(loaded, reference=False)]  # a costly one
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    card = clip_scorecard(real_secnn, method("smoothgrad").bind(loaded, {"n_samples": 2}), x, 1, n_steps=4, draws=1)
    np.testing.assert_allclose(card["heat"], smoothgrad_map(real_secnn, torch.from_numpy(x)[None, None], target=1,
                                                            n_samples=2))
    assert 0 <= card["auc"] <= 1 and card["sanity_verdict"]
