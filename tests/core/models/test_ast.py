"""AST-style transformer: tap shapes, exact attention, fused = manual, patch geometry."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.audio.features import AudioConfig, frame_times_s, mel_frequencies_hz
from core.errors import InputError
from core.models import build_model
from core.models.ast import ASTConfig
from core.models.taps import extract, record

CFG = AudioConfig(n_mels=32, n_frames=40)
TINY = {"patch": 8, "stride_f": 8, "stride_t": 4, "dim": 16, "depth": 2, "heads": 2,
        "n_mels": 32, "n_frames": 40}


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("ast", TINY, n_classes=3).eval()


@pytest.fixture
def x():
    return torch.randn(2, 1, 32, 40, generator=torch.Generator().manual_seed(1))


def test_default_grid_is_8_by_27_padded_to_the_whole_clip():
    c = ASTConfig()
    assert (c.patch, c.stride_f, c.stride_t, c.dim, c.depth, c.heads) == (16, 16, 16, 192, 8, 8)
    assert c.grid == (8, 27) and c.padded_shape == (128, 432)
    assert ASTConfig(pad=False).grid == (8, 26)


@pytest.mark.parametrize("pad", [True, False])
def test_the_last_frames_reach_the_output_only_with_padding(pad):
    config = {**TINY, "n_frames": 43, "stride_t": 8, "pad": pad}  # 43 frames: 5 whole patches cover 40
    torch.manual_seed(0)
    model = build_model("ast", config, n_classes=3).eval()
    x = torch.randn(1, 1, 32, 43, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[..., 40:] += 5.0  # change only the frames a 5-patch grid does not cover
    with torch.no_grad():
        changed = not torch.allclose(model(x), model(y))
    assert model.grid == ((4, 6) if pad else (4, 5))
    assert changed == pad
    if pad:  # the padded last patch's box ends at the clip's last frame
        cfg = AudioConfig(n_mels=32, n_frames=43)
        t0, t1, _, _ = model.patch_box(5, cfg)
        times = frame_times_s(43, cfg)
        assert t0 == pytest.approx(times[40]) and t1 == pytest.approx(times[42])


def test_grid_and_taps(model):
    assert model.grid == (4, 9) and model.n_patches == 36 and model.n_special == 1
    names = [t.name for t in model.taps()]
    assert names == ["patches", "layer1.attn", "layer1", "layer2.attn", "layer2", "embedding", "logits"]


def test_every_tap_has_the_shape_it_declares(model, x):
    out = extract(model, x)
    for tap in model.taps():
        assert tuple(out[tap.name].shape) == tap.shape(2, CFG), tap.name
    assert out["layer1.attn"].shape == (2, 2, 37, 37)


def test_fused_and_manual_paths_give_the_same_logits(model, x):
    with torch.no_grad():
        fused = model(x)
        manual, attentions = model(x, output_attentions=True)
    torch.testing.assert_close(fused, manual, atol=1e-5, rtol=1e-5)
    assert len(attentions) == 2 and attentions[0].shape == (2, 2, 37, 37)


def test_attention_rows_sum_to_one_and_match_a_plain_recomputation(model, x):
    with torch.no_grad():
        _, attentions = model(x, output_attentions=True)
        tokens = extract(model, x, ["patches", "layer1"])
    inputs = [tokens["patches"], tokens["layer1"]]  # what layer 1 and layer 2 receive
    for k, (a, h) in enumerate(zip(attentions, inputs)):
        torch.testing.assert_close(a.sum(-1), torch.ones(2, 2, 37))
        layer = model.layers[k]
        with torch.no_grad():
            qkv = F.linear(F.layer_norm(h, (16,), layer.norm1.weight, layer.norm1.bias),
                           layer.attn.qkv.weight, layer.attn.qkv.bias)
        q, key = qkv[..., :16], qkv[..., 16:32]
        for head in range(2):
            qh, kh = q[..., head * 8:(head + 1) * 8], key[..., head * 8:(head + 1) * 8]
            expected = torch.softmax(qh @ kh.transpose(1, 2) / np.sqrt(8), dim=-1)
            torch.testing.assert_close(a[:, head], expected, atol=1e-6, rtol=1e-5)


def test_attention_taps_equal_the_returned_probabilities(model, x):
    with torch.no_grad():
        _, attentions = model(x, output_attentions=True)
    out = extract(model, x, ["layer1.attn", "layer2.attn"])
    torch.testing.assert_close(out["layer1.attn"], attentions[0])
    torch.testing.assert_close(out["layer2.attn"], attentions[1])
    assert not any(layer.attn.keep_weights for layer in model.layers)  # switched back


def test_hooks_leave_the_output_unchanged(model, x):
    with torch.no_grad():
        plain = model(x)
        with record(model, None):
            recorded = model(x)
    torch.testing.assert_close(plain, recorded, atol=1e-5, rtol=1e-5)  # manual path inside the block
    assert all(not m._forward_hooks for m in model.modules())


def test_patch_tokens_are_frequency_major(model, x):
    tokens = extract(model, x, ["patches"])["patches"]
    w, b = model.embed.patch.weight, model.embed.patch.bias
    n_time = model.grid[1]
    for p in (0, 1, n_time, 2 * n_time + 5, 35):
        f, t = p // n_time, p % n_time
        cut = x[:, :, f * 8:f * 8 + 8, t * 4:t * 4 + 8]  # (B, 1, 8, 8)
        with torch.no_grad():
            expected = (cut[:, None] * w[None]).sum(dim=(2, 3, 4)) + b + model.embed.pos[0, 1 + p]
        torch.testing.assert_close(tokens[:, 1 + p], expected, atol=1e-5, rtol=1e-5)


def test_patch_box_maps_back_to_time_and_frequency(model):
    times, freqs = frame_times_s(40, CFG), mel_frequencies_hz(CFG)
    assert model.patch_box(0, CFG) == pytest.approx((times[0], times[7], freqs[0], freqs[7]))
    p = 2 * 9 + 3  # frequency row 2, time column 3
    assert model.patch_box(p, CFG) == pytest.approx((times[12], times[19], freqs[16], freqs[23]))
    assert model.patch_boxes(CFG).shape == (36, 4)
    with pytest.raises(InputError):
        model.patch_box(36, CFG)
    with pytest.raises(InputError, match="does not match"):
        model.patch_box(0, AudioConfig())


def test_wrong_input_size_is_refused(model):
    with pytest.raises(InputError, match="32 x 40"):
        model(torch.zeros(1, 1, 32, 41))


@pytest.mark.parametrize("bad", [{"dim": 15}, {"patch": 64}, {"depth": 0}, {"dropout": -0.1},
                                 {"attn_dropout": 1.0}])
def test_bad_config_is_refused(bad):
    with pytest.raises(InputError):
        build_model("ast", {**TINY, **bad}, n_classes=3)


def test_attention_dropout_is_its_own_setting_and_defaults_to_dropout(x):
    torch.manual_seed(0)
    same = build_model("ast", {**TINY, "dropout": 0.3}, n_classes=3)
    torch.manual_seed(0)
    apart = build_model("ast", {**TINY, "dropout": 0.3, "attn_dropout": 0}, n_classes=3)
    assert [layer.attn.dropout for layer in same.layers] == [0.3, 0.3]
    assert [layer.attn.dropout for layer in apart.layers] == [0, 0]
    assert apart.layers[0].mlp[2].p == 0.3 and apart.layers[0].drop.p == 0.3  # the rest keeps its dropout
    # in eval mode no dropout acts: the two settings give one model
    apart.load_state_dict(same.state_dict())
    torch.testing.assert_close(same.eval()(x), apart.eval()(x))
    # while training, attention dropout alone makes two passes of the same batch differ
    only_attn = build_model("ast", {**TINY, "dropout": 0.0, "attn_dropout": 0.5}, n_classes=3).train()
    none = build_model("ast", {**TINY, "dropout": 0.0, "attn_dropout": 0.0}, n_classes=3).train()
    assert not torch.equal(only_attn(x), only_attn(x))
    assert torch.equal(none(x), none(x))
