"""Cascading model-parameter randomisation (Adebayo et al., 2018): it flags a map that ignores the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.interpret.gradcam import GradCAM
from core.interpret.registry import method
from core.interpret.sanity import (MIN_CLIPS, cascading_randomisation, is_vanished, layer_groups, randomise_,
                                   rank_correlation, verdict)
from tests.core.interpret.conftest import as_loaded


def planted_batch(n, generator):
    """Class 0: a bright blob in the low bands early; class 1: in the high bands late; noise elsewhere."""
    x = 0.3 * torch.randn(n, 1, 8, 12, generator=generator)
    y = torch.randint(0, 2, (n,), generator=generator)
    for i in range(n):
        if y[i] == 0:
            x[i, 0, 0:3, 1:5] += 2.0
        else:
            x[i, 0, 5:8, 7:11] += 2.0
    return x, y


@pytest.fixture(scope="module")
def trained_cnn():
    from tests.core.interpret.conftest import TinyCNN

    torch.manual_seed(0)
    model = TinyCNN(n_classes=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    generator = torch.Generator().manual_seed(0)
    for _ in range(60):
        x, y = planted_batch(32, generator)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    x, y = planted_batch(64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (model(x).argmax(1) == y).float().mean() > 0.95  # it learned the planted task
    return model


def gradcam(model, x, target):
    return GradCAM(model, ["conv2"]).maps(x, target=target)["conv2"][0]


def test_layer_groups_run_input_to_output(real_secnn, real_ast):
    assert [n for n, _ in layer_groups(real_secnn)] == [f"blocks.{k}" for k in range(5)] + ["head", "out"]
    assert [n for n, _ in layer_groups(real_ast)] == ["embed", "layers.0", "layers.1", "norm", "head"]


def test_randomise_keeps_scale_and_destroys_structure():
    layer = torch.nn.Linear(50, 40)
    before = layer.weight.detach().clone()
    randomise_(layer, generator=torch.Generator().manual_seed(0))
    after = layer.weight.detach()
    assert after.std().item() == pytest.approx(before.std().item(), rel=0.1)
    assert abs(np.corrcoef(before.ravel(), after.ravel())[0, 1]) < 0.1


def test_rank_correlation_is_spearman_over_covered_cells():
    a = np.array([[1.0, 2.0, 3.0, np.nan]])
    assert rank_correlation(a, a ** 3) == pytest.approx(1.0)
    assert rank_correlation(a, -a) == pytest.approx(-1.0)
    assert rank_correlation(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert rank_correlation(np.zeros((2, 2)), np.eye(2)) == 0.0


def test_the_check_flags_the_energy_map_and_passes_gradcam_on_a_trained_model(trained_cnn):
    energy = method("energy").bind(as_loaded(trained_cnn))
    x, y = planted_batch(MIN_CLIPS, torch.Generator().manual_seed(2))
    energy_rho, gradcam_rho = [], []
    for i in range(len(x)):
        xi, target = x[i:i + 1], int(y[i])
        result = cascading_randomisation(trained_cnn, energy, xi, target)
        assert result.layers == ["out", "conv2", "conv1"]
        energy_rho.append(result.all_random)
        gradcam_rho.append(cascading_randomisation(trained_cnn, gradcam, xi, target, seed=i).all_random)
    assert np.mean(energy_rho) == pytest.approx(1.0)
    found = verdict(energy_rho)  # a map that ignores the weights fails
    assert found.outcome == "fails" and not found.passed and found.abs_rho[1] >= 0.5
    found = verdict(gradcam_rho)
    assert found.passed and "passes" in found.sentence and found.abs_rho[2] < 0.5, gradcam_rho
    # the trained model itself was left as it was
    assert trained_cnn.out.weight.requires_grad and cascading_randomisation(
        trained_cnn, gradcam, x[:1], int(y[0])).layers[0] == "out"


def test_an_inverted_map_is_not_a_pass(trained_cnn):
    """A map that turns into its own negative once the weights are noise is as alike as one that stays (|rho| = 1)."""
    x, y = planted_batch(MIN_CLIPS, torch.Generator().manual_seed(3))

    def inverted(model, xi, target):  # Grad-CAM of the trained model; its negative for any other model
        heat = gradcam(trained_cnn, xi, target)
        return heat if model is trained_cnn else -heat

    rho = [cascading_randomisation(trained_cnn, inverted, x[i:i + 1], int(y[i])).all_random for i in range(len(x))]
    assert np.allclose(rho, -1.0)
    found = verdict(rho)
    assert found.outcome == "fails" and found.signed_rho == pytest.approx(-1.0)
    # the old rule (signed mean under 0.5 passes) would have passed it
    assert np.mean(rho) < 0.5


def test_a_vanished_map_is_its_own_outcome_not_a_pass(trained_cnn):
    """A map that is all zero once the weights are noise has no ranks: not rho = 0, and no pass."""
    x, y = planted_batch(MIN_CLIPS, torch.Generator().manual_seed(4))

    def vanishing(model, xi, target):  # ReLU'd Grad-CAM; all zero for any model but the trained one
        heat = gradcam(trained_cnn, xi, target)
        return heat if model is trained_cnn else np.zeros_like(heat)

    results = [cascading_randomisation(trained_cnn, vanishing, x[i:i + 1], int(y[i])) for i in range(len(x))]
    assert all(r.vanished.all() and np.isnan(r.all_random) for r in results)
    found = verdict([r.all_random for r in results])
    assert found.outcome == "inconclusive" and not found.passed and found.n_vanished == MIN_CLIPS
    assert "vanished" in found.sentence
    assert is_vanished(np.zeros((3, 4))) and not is_vanished(np.eye(3))


def test_the_verdict_needs_enough_clips_and_an_interval_clear_of_the_line():
    assert verdict([0.1, 0.05, 0.12]).outcome == "inconclusive"  # too few clips
    assert verdict([0.05] * MIN_CLIPS).outcome == "passes"
    straddling = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7, 0.15, 0.85, 0.4, 0.6]  # mean 0.5, wide interval
    assert verdict(straddling).outcome == "inconclusive"
