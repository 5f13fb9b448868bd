"""SE ablations: mean excitation keeps the scale and removes only the per-clip reweighting."""

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.models import build_model
from core.interpret.se_ablation import mean_excitation, se_ablation
from core.models.taps import se_weights

TINY = {"channels": [4, 4, 8, 8, 8], "head": [16]}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("secnn", TINY, n_classes=3).eval()


def test_mean_excitation_is_the_mean_of_the_se_taps_over_clips(model):
    x = torch.randn(10, 1, 128, 64, generator=torch.Generator().manual_seed(1))
    means = mean_excitation(model, x[:, 0].numpy(), batch_size=3)
    direct = se_weights(model, x)
    assert sorted(means) == model.se_blocks()
    for k, m in means.items():
        np.testing.assert_allclose(m, direct[f"block{k}.se"].mean(axis=0), atol=1e-6)
    # the model's own input shape, channel axis included (what the CLI's features_for gives), means the same
    with_channel = mean_excitation(model, x.numpy(), batch_size=4)
    for k, m in means.items():
        np.testing.assert_allclose(with_channel[k], m, atol=1e-6)


def test_fixed_excitation_is_the_same_for_every_clip_and_is_restored(model):
    x = torch.randn(4, 1, 128, 64, generator=torch.Generator().manual_seed(2))
    k = model.se_blocks()[0]
    fixed = torch.linspace(0.1, 0.9, model.blocks[k - 1].se.excitation.mlp[-1].out_features)
    before = se_weights(model, x)[f"block{k}.se"]
    with model.se_fixed({k: fixed}):
        inside = se_weights(model, x)[f"block{k}.se"]
    np.testing.assert_allclose(inside, np.tile(fixed.numpy(), (4, 1)), atol=1e-7)
    np.testing.assert_allclose(se_weights(model, x)[f"block{k}.se"], before)
    assert np.ptp(before, axis=0).max() > 0  # the intact excitation does vary per clip


def test_ablation_reports_every_block_and_refuses_a_model_without_se(model):
    rng = np.random.default_rng(3)
    train, test = rng.standard_normal((6, 128, 64)), rng.standard_normal((5, 128, 64))
    y = np.array([0, 1, 2, 0, 1])
    result = se_ablation(type("L", (), {"model": model})(), train.astype(np.float32), test.astype(np.float32), y)
    assert sorted(result["mean_block"]) == model.se_blocks()
    for key in ("intact", "forced_to_1", "mean_all"):
        assert 0.0 <= result[key] <= 1.0
    ast = build_model("ast", {"dim": 16, "depth": 1, "heads": 2, "mlp_ratio": 1.0}, n_classes=3)
    with pytest.raises(InputError, match="squeeze-and-excitation"):
        se_ablation(type("L", (), {"model": ast})(), train, test, y)


def test_saved_ablation_round_trips_through_checkpoint_json_and_falls_back_to_the_training_card(model, tmp_path):
    from core.audio.features import AudioConfig
    from core.models.checkpoint import load_checkpoint, save_checkpoint
    from core.interpret.se_ablation import save_ablation, saved_ablation

    meta = {"test_fold": 5, "evaluation": {"accuracy": 0.8, "n_clips": 120},
            "evaluation_se_bypassed": {"accuracy": 0.1}}
    folder = save_checkpoint(tmp_path / "ck", model, AudioConfig(), ["a", "b", "c"], meta)
    fallback = saved_ablation(load_checkpoint(folder).meta)  # only what training measured
    assert fallback == {"intact": 0.8, "forced_to_1": 0.1, "mean_all": None, "mean_block": {}, "fold": 5,
                        "n_clips": 120}
    result = {"intact": 0.75, "forced_to_1": 0.2, "mean_all": 0.3, "mean_block": {2: 0.7, 4: 0.4}}
    save_ablation(folder, result, fold=3, n_clips=40, data="somewhere")
    loaded = load_checkpoint(folder)
    assert saved_ablation(loaded.meta) == {**result, "fold": 3, "n_clips": 40}
    assert loaded.meta["evaluation"]["accuracy"] == 0.8  # the rest of the card is kept
    assert saved_ablation({}) is None


def test_shipped_secnn_card_holds_the_ablation_its_readme_reports():
    """checkpoints/secnn/checkpoint.json (se-ablation --save) and checkpoints/README.md agree."""
    from pathlib import Path

    from core.models.checkpoint import read_checkpoint_json
    from core.interpret.se_ablation import saved_ablation

    repo = Path(__file__).resolve().parents[3]
    card = saved_ablation(read_checkpoint_json(repo / "checkpoints" / "secnn")["meta"])
    readme = (repo / "checkpoints" / "README.md").read_text()
    assert card is not None and card["mean_block"], "run se-ablation --save on checkpoints/secnn"
    assert f"| intact | {card['intact'] * 100:.1f} % |" in readme
    assert f"| every excitation forced to 1 | {card['forced_to_1'] * 100:.1f} % |" in readme
    assert f"in every SE block | {card['mean_all'] * 100:.1f} % |" in readme
    for k, acc in card["mean_block"].items():
        assert f"| mean excitation in block {k} only | {acc * 100:.1f} % |" in readme, k
