"""SE-CNN: tap shapes, hooks that change nothing, SE against its formula, sizes."""

import pytest
import torch
import torch.nn.functional as F

from core.audio.features import AudioConfig
from core.errors import InputError
from core.models import build_model, count_parameters
from core.models.secnn import SECNNConfig
from core.models.taps import extract, record

TINY = {"channels": [4, 8, 8, 8, 8], "head": [16, 8], "reduction": 2}
CFG = AudioConfig(n_mels=32, n_frames=40)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("secnn", TINY, n_classes=3).eval()


@pytest.fixture
def x():
    return torch.randn(2, 1, CFG.n_mels, CFG.n_frames, generator=torch.Generator().manual_seed(1))


def test_taps_are_ordered_and_named(model):
    names = [t.name for t in model.taps()]
    assert names == ["block1", "block2", "block2.se", "block3", "block3.se", "block4", "block4.se",
                     "block5", "block5.se", "pooled", "embedding", "logits"]
    assert {t.kind for t in model.taps()} == {"conv", "se", "embedding", "logits"}
    assert next(t for t in model.taps() if t.name == "block3.se").label == "block 3 / SE"


def test_every_tap_has_the_shape_it_declares(model, x):
    out = extract(model, x)
    for tap in model.taps():
        assert tuple(out[tap.name].shape) == tap.shape(2, CFG), tap.name


def test_block_shapes_follow_the_pooling_by_hand():
    # 32 x 40 halves (floored) five times: 16x20, 8x10, 4x5, 2x2, 1x1
    model = build_model("secnn", TINY, n_classes=3)
    expected = [(4, 16, 20), (8, 8, 10), (8, 4, 5), (8, 2, 2), (8, 1, 1)]
    assert [model.block_shape(k, CFG) for k in range(1, 6)] == expected
    default = build_model("secnn", {}, n_classes=10)
    assert default.block_shape(5, AudioConfig()) == (128, 4, 13)  # 128 x 431 input


def test_hooks_leave_the_output_unchanged_and_are_removed(model, x):
    with torch.no_grad():
        plain = model(x)
        with record(model, None) as rec:
            recorded = model(x)
    assert torch.equal(plain, recorded)
    assert torch.equal(rec.outputs["logits"], plain)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_se_weights_match_the_formula(model, x):
    out = extract(model, x, ["block3", "block3.se"])
    feats, w = out["block3"], out["block3.se"]
    mlp = model.blocks[2].se.excitation.mlp
    def bottleneck(v):
        return F.linear(F.relu(F.linear(v, mlp[0].weight, mlp[0].bias)), mlp[2].weight, mlp[2].bias)
    with torch.no_grad():
        expected = torch.sigmoid(bottleneck(feats.mean(dim=(2, 3))) + bottleneck(feats.amax(dim=(2, 3))))
    torch.testing.assert_close(w, expected)
    assert w.shape == (2, 8) and float(w.min()) >= 0 and float(w.max()) <= 1


def test_se_bypass_forces_excitation_to_one_and_is_restored(model, x):
    with torch.no_grad():
        normal = model(x)
        with model.se_bypassed():
            out = extract(model, x, ["block2.se", "logits"])
            # with SE at 1 each block is its conv features alone
            h = x
            for block in model.blocks:
                h = block.features(h)
            manual = model.out(model.head(model.pool(h).flatten(1)))
    assert torch.equal(out["block2.se"], torch.ones(2, 8))
    torch.testing.assert_close(out["logits"], manual)
    assert not torch.allclose(out["logits"], normal)
    assert not any(b.se.excitation.bypass for b in model.blocks if b.se is not None)
    model.set_se_bypass(True)
    assert all(b.se.excitation.bypass for b in model.blocks if b.se is not None)


def _expected_parameters(channels, head, reduction, se_blocks, n_classes):
    total, c_in = 0, 1
    for k, c in enumerate(channels, start=1):
        total += 9 * c_in * c + 2 * c  # conv (no bias) + batch norm
        if k in se_blocks:
            h = c // reduction
            total += c * h + h + h * c + c
        c_in = c
    for width in head:
        total += c_in * width + width
        c_in = width
    return total + c_in * n_classes + n_classes


def test_default_size_matches_the_specification():
    model = build_model("secnn", {}, n_classes=10)
    c = model.config
    assert c.channels == (16, 32, 64, 128, 128) and c.head == (512, 256) and c.reduction == 8
    assert c.se_blocks == (2, 3, 4, 5) and c.dropout == 0.5
    assert model.head[0].in_features == 128 and model.head[0].out_features == 512
    assert count_parameters(model) == _expected_parameters(c.channels, c.head, 8, c.se_blocks, 10)


def test_thesis_size_is_about_21_6_million():
    c = SECNNConfig.thesis()
    n = _expected_parameters(c.channels, c.head, c.reduction, c.se_blocks, 50)
    assert abs(n - 21.6e6) < 0.1e6


def test_time_max_pool_is_frequency_mean_then_time_max_plus_mean(x):
    torch.manual_seed(0)
    model = build_model("secnn", {**TINY, "pool": "time-max"}, n_classes=3).eval()
    out = extract(model, x, ["block5", "pooled"])
    with torch.no_grad():
        weighted = model.blocks[4].se(out["block5"])  # the block tap is before SE; the pool reads after it
    by_time = weighted.mean(dim=2)  # (B, C, T)
    pooled = out["pooled"]
    torch.testing.assert_close(pooled.flatten(1), by_time.amax(dim=2) + by_time.mean(dim=2))
    # a short peak survives it; a global average dilutes it by the clip's length
    short = torch.zeros(1, 2, 4, 100)
    short[..., 50] = 1.0
    assert float(model.pool(short)[0, 0]) == pytest.approx(1.01)
    assert float(torch.nn.AdaptiveAvgPool2d(1)(short)[0, 0]) == pytest.approx(0.01)
    assert [t.label for t in model.taps() if t.name == "pooled"] == ["global pool (time max + mean)"]


def test_a_config_without_pool_keeps_the_global_average():
    """Checkpoints saved before the option have no "pool" field: they load as they were trained."""
    model = build_model("secnn", {k: v for k, v in TINY.items()}, n_classes=3)
    assert model.config.pool == "avg" and isinstance(model.pool, torch.nn.AdaptiveAvgPool2d)


@pytest.mark.parametrize("bad", [{"channels": []}, {"channels": [4, 0]}, {"se_blocks": [6]},
                                 {"dropout": 1.0}, {"head": []}, {"width": 3}, {"pool": "median"}])
def test_bad_config_is_refused(bad):
    with pytest.raises(InputError):
        build_model("secnn", bad, n_classes=3)


def test_unknown_kind_is_refused():
    with pytest.raises(InputError, match="unknown kind"):
        build_model("resnet", {}, n_classes=3)
