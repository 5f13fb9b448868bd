"""Rollout against a loop-by-loop implementation of Abnar & Zuidema's formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.interpret.rollout import (
    class_token_relevance,
    discard_weakest,
    model_rollout,
    rollout,
    rollout_map,
    rollout_rows,
    stereo_rollout,
)


def reference_rollout(attentions, head_fusion, discard_ratio, n_special=1):
    """Plain loops over layers, rows and columns; float64 numpy."""
    attentions = [a.detach().double().numpy() for a in attentions]
    B, H, S, _ = attentions[0].shape
    out = []
    for b in range(B):
        joint = [[1.0 if i == j else 0.0 for j in range(S)] for i in range(S)]
        for attention in attentions:
            fused = [[0.0] * S for _ in range(S)]
            for i in range(S):
                for j in range(S):
                    values = [attention[b, h, i, j] for h in range(H)]
                    fused[i][j] = {"mean": sum(values) / H, "max": max(values), "min": min(values)}[head_fusion]
            # weakest links to patches (columns >= n_special), stable by position
            candidates = [(fused[i][j], i * (S - n_special) + (j - n_special), i, j)
                          for i in range(S) for j in range(n_special, S)]
            candidates.sort(key=lambda c: (c[0], c[1]))
            for _, _, i, j in candidates[: int(discard_ratio * len(candidates))]:
                fused[i][j] = 0.0
            a = [[(fused[i][j] + (1.0 if i == j else 0.0)) / 2 for j in range(S)] for i in range(S)]
            for i in range(S):
                total = sum(a[i])
                a[i] = [v / total for v in a[i]]
            joint = [[sum(a[i][k] * joint[k][j] for k in range(S)) for j in range(S)] for i in range(S)]
        out.append(joint)
    return np.array(out)


@pytest.mark.parametrize("head_fusion", ["mean", "max", "min"])
@pytest.mark.parametrize("discard_ratio", [0.0, 0.5, 0.9])
def test_rollout_equals_loop_formula_on_a_small_model(tiny_attention, head_fusion, discard_ratio):
    x = torch.randn(2, 1, 8, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, attentions = tiny_attention(x, output_attentions=True)
    joint = rollout(attentions, head_fusion=head_fusion, discard_ratio=discard_ratio)
    expected = reference_rollout(attentions, head_fusion, discard_ratio)
    np.testing.assert_allclose(joint.numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(joint.sum(dim=-1).numpy(), 1.0, atol=1e-9)


def test_unknown_head_fusion_is_an_input_error(tiny_attention):
    attentions = [torch.rand(1, 2, 7, 7)]
    with pytest.raises(InputError, match="head_fusion"):
        rollout(attentions, head_fusion="median")


@pytest.mark.parametrize("ratio", [-0.1, 1.0])
def test_discard_ratio_out_of_range_is_an_input_error(ratio):
    with pytest.raises(InputError, match="discard_ratio"):
        rollout([torch.rand(1, 2, 7, 7)], discard_ratio=ratio)


def test_discard_keeps_links_to_the_class_token_and_works_per_item():
    fused = torch.rand(2, 5, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fused[:, :, 0] = 1e-9  # the weakest values of all sit in the class-token column
    out = discard_weakest(fused, discard_ratio=0.5, n_special=1)
    assert torch.equal(out[:, :, 0], fused[:, :, 0])
    assert ((out[:, :, 1:] == 0).sum(dim=(1, 2)) == 10).all()  # half of 5 x 4 links, in each item


def test_class_token_row_reshapes_to_a_non_square_grid():
    S = 1 + 2 * 3
    joint = torch.arange(2 * S * S, dtype=torch.float64).reshape(2, S, S)
    relevance = class_token_relevance(joint, grid=(2, 3))
    assert relevance.shape == (2, 2, 3)
    for f in range(2):
        for t in range(3):
            assert relevance[1, f, t] == joint[1, 0, 1 + f * 3 + t]
    with pytest.raises(InputError, match="grid"):
        class_token_relevance(joint, grid=(3, 3))


def test_rollout_map_is_on_the_spectrogram_grid_in_unit_range(tiny_attention):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        _, attentions = tiny_attention(x, output_attentions=True)
    heat = rollout_map(attentions, grid=(2, 3), shape=(8, 12))
    assert heat.shape == (1, 8, 12)
    assert heat.min() == 0.0 and heat.max() == pytest.approx(1.0)
    # the map's maximum lies in the block of the most relevant patch
    relevance = class_token_relevance(rollout(attentions), grid=(2, 3))[0]
    f, t = divmod(int(relevance.argmax()), 3)
    band, frame = np.unravel_index(heat[0].argmax(), (8, 12))
    assert f * 4 <= band < f * 4 + 4 and t * 4 <= frame < t * 4 + 4


def test_two_special_tokens_average_their_rows():
    joint = torch.rand(1, 2 + 6, 2 + 6, generator=torch.Generator().manual_seed(0))
    relevance = class_token_relevance(joint, grid=(2, 3), n_special=2)
    expected = (joint[0, 0, 2:] + joint[0, 1, 2:]) / 2
    np.testing.assert_allclose(relevance[0].reshape(-1).numpy(), expected.numpy(), atol=1e-7)


def test_rollout_on_the_real_ast_equals_the_loop_formula(real_ast):
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, attentions = real_ast(x, output_attentions=True)
    assert len(attentions) == 2 and attentions[0].shape == (1, 2, 1 + 4 * 8, 1 + 4 * 8)
    joint = rollout(attentions, head_fusion="max", discard_ratio=0.5)
    np.testing.assert_allclose(joint.numpy(), reference_rollout(attentions, "max", 0.5), atol=1e-6)
    from core.interpret.maps import patch_geometry

    heat = rollout_map(attentions, grid=real_ast.grid, shape=(32, 64), geometry=patch_geometry(real_ast))
    assert heat.shape == (1, 32, 64) and heat.max() == pytest.approx(1.0)


@pytest.mark.parametrize("head_fusion,discard_ratio", [("mean", 0.0), ("max", 0.5), ("min", 0.9)])
def test_rollout_rows_from_the_last_layer_down_are_the_joint_matrix_rows(head_fusion, discard_ratio):
    g = torch.Generator().manual_seed(3)
    attentions = [torch.rand(2, 3, 2 + 6, 2 + 6, generator=g).softmax(-1) for _ in range(4)]
    joint = rollout(attentions, head_fusion=head_fusion, discard_ratio=discard_ratio, n_special=2)
    rows = rollout_rows(attentions, rows=[0, 1, 5], head_fusion=head_fusion, discard_ratio=discard_ratio, n_special=2)
    assert rows.shape == (2, 3, 8) and rows.dtype == torch.float64
    np.testing.assert_allclose(rows.numpy(), joint[:, [0, 1, 5]].numpy(), atol=1e-12)


def test_model_rollout_from_recorded_inputs_equals_the_map_of_the_full_attentions(real_ast):
    from core.interpret.maps import patch_geometry

    x = torch.randn(2, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, attentions = real_ast(x, output_attentions=True)
    full = rollout_map(attentions, grid=real_ast.grid, shape=(32, 64), geometry=patch_geometry(real_ast),
                       head_fusion="max", discard_ratio=0.5)
    recorded = model_rollout(real_ast, x, head_fusion="max", discard_ratio=0.5)  # never forms all layers at once
    np.testing.assert_allclose(recorded, full, atol=1e-5)


def _loaded(real_ast, real_audio_cfg):
    from core.models.checkpoint import Loaded

    return Loaded(model=real_ast, audio_cfg=real_audio_cfg, classes=[str(k) for k in range(real_ast.n_classes)],
                  kind="ast")


def test_stereo_inputs_keep_the_level_difference(real_ast, real_audio_cfg):
    from core.audio.features import log_mel
    from core.interpret.stereo import stereo_inputs

    rng = np.random.default_rng(0)
    left = (0.1 * rng.standard_normal(128 * 63)).astype(np.float32)
    pair = stereo_inputs(_loaded(real_ast, real_audio_cfg), np.stack([left, 0.5 * left]))
    assert pair.shape == (2, 32, 64)
    # each channel standardised on its own would erase the 6 dB difference entirely
    np.testing.assert_allclose(log_mel(left, real_audio_cfg), log_mel(0.5 * left, real_audio_cfg), atol=1e-4)
    diff_db = (pair[0] - pair[1]) * np.concatenate([pair[0], pair[1]]).std()  # undo the shared scaling (roughly)
    assert pair[0].mean() > pair[1].mean() and np.median(diff_db) > 0


def test_stereo_rollout_shares_one_scale_across_left_and_right(real_ast, real_audio_cfg):
    from core.interpret.rollout import model_rollout, waveform_rollout
    from core.interpret.stereo import stereo_inputs

    loaded = _loaded(real_ast, real_audio_cfg)
    rng = np.random.default_rng(0)
    samples = (0.1 * rng.standard_normal((2, 128 * 63))).astype(np.float32)
    samples[1] *= 0.3
    maps = stereo_rollout(loaded, samples)
    assert set(maps) == {"left", "right", "mix"} and maps["left"].shape == (32, 64)
    np.testing.assert_allclose(maps["mix"], waveform_rollout(loaded, samples.mean(axis=0)), atol=1e-6)
    raw = model_rollout(real_ast, torch.as_tensor(stereo_inputs(loaded, samples))[:, None], normalise=False)
    low, high = np.nanmin(raw), np.nanmax(raw)
    np.testing.assert_allclose(maps["left"], (raw[0] - low) / (high - low), atol=1e-5)
    np.testing.assert_allclose(maps["right"], (raw[1] - low) / (high - low), atol=1e-5)
    assert max(np.nanmax(maps["left"]), np.nanmax(maps["right"])) == pytest.approx(1.0)
    assert min(np.nanmax(maps["left"]), np.nanmax(maps["right"])) < 1.0  # not each scaled to its own peak
    assert set(stereo_rollout(loaded, samples[0])) == {"mix"}


def test_pan_index_follows_which_side_holds_the_relevance():
    from core.interpret.stereo import pan_index

    left, right = np.full((4, 6), 0.2), np.full((4, 6), 0.6)
    assert pan_index(left, right) == pytest.approx(0.5)
    assert pan_index(right, left) == pytest.approx(-0.5)
    assert np.isnan(pan_index(np.zeros((4, 6)), np.zeros((4, 6))))
