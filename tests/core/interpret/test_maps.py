"""Shared map helpers: resizing to the spectrogram, patch geometry, scaling, token grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.interpret.maps import (
    PatchGeometry,
    check_heatmap,
    normalise_map,
    resize_map,
    resize_patch_map,
    tokens_to_grid,
)


def test_resize_patch_map_puts_values_at_patch_centres():
    grid = torch.tensor([[0.0, 1.0, 2.0], [10.0, 11.0, 12.0]])  # (n_freq 2, n_time 3)
    # patches of 4 with stride 2: frame centres 1.5, 3.5, 5.5; band centres 1.5, 3.5; input 6 x 9
    out = resize_patch_map(grid, (6, 9), geometry=PatchGeometry(4, 4, 2, 2)).numpy()
    assert out.shape == (6, 9)
    np.testing.assert_allclose(out[0, :2], 0.0)  # before the first centre: edge value
    np.testing.assert_allclose(out[1, 2], 0.25)  # band 1 (edge row), frame 2: a quarter from 1.5 to 3.5
    np.testing.assert_allclose(out[2, 1], 2.5)  # band 2: a quarter of the way from row 0 to row 1
    np.testing.assert_allclose(out[5, 7], 12.0)  # past the last centres, inside the last patch: edge value
    assert np.isnan(out[:, 8]).all()  # frame 8: no patch covers it (patches end at frame 7)
    batch = resize_patch_map(torch.stack([grid, 2 * grid]), (6, 9), geometry=PatchGeometry(4, 4, 2, 2))
    np.testing.assert_allclose(batch[1].numpy(), 2 * out, rtol=1e-6)


def test_resize_map_keeps_shape_and_block_structure():
    out = resize_map(torch.tensor([[0.0, 1.0]]), (2, 8)).numpy()
    assert out.shape == (2, 8)
    assert out[0, 0] == 0 and out[0, -1] == 1 and np.all(np.diff(out[0]) >= 0)


def test_normalise_map_scales_each_map_and_zeros_constant_ones():
    maps = torch.stack([torch.tensor([[1.0, 3.0]]), torch.full((1, 2), 5.0)])
    out = normalise_map(maps).numpy()
    np.testing.assert_allclose(out[0], [[0, 1]])
    np.testing.assert_allclose(out[1], 0)


def test_tokens_to_grid_drops_special_tokens_frequency_major():
    tokens = torch.arange(1 * 8 * 2, dtype=torch.float32).reshape(1, 8, 2)  # 2 special + 6 patches, D = 2
    image = tokens_to_grid(tokens, grid=(2, 3), n_special=2)
    assert image.shape == (1, 2, 2, 3)
    assert torch.equal(image[0, :, 1, 0], tokens[0, 2 + 3])  # patch p = f * n_time + t
    with pytest.raises(InputError):
        tokens_to_grid(tokens, grid=(3, 3), n_special=2)


def test_check_heatmap_refuses_wrong_shapes_and_nan():
    with pytest.raises(InputError):
        check_heatmap(np.ones((2, 3)), (3, 2))
    with pytest.raises(InputError):
        check_heatmap(np.array([[np.inf]]), (1, 1))


def test_pooling_that_rounds_down_leaves_the_last_frames_uncovered():
    from core.interpret.maps import pooling_geometry

    # 3 cells after pooling by 4: frames 0-11 are covered, 12 and 13 of a 14-frame input are not
    cells = torch.tensor([[1.0, 2.0, 3.0]])
    out = resize_patch_map(cells, (4, 14), geometry=pooling_geometry(4)).numpy()
    # centres at frames 1.5, 5.5 and 9.5 (not stretched to 13)
    np.testing.assert_allclose(out[0, 5:7], [1.875, 2.125])  # around 5.5: 2 at the centre
    np.testing.assert_allclose(out[0, 10:12], 3.0)  # past the last centre, inside its cell: its value
    assert np.isnan(out[:, 12:]).all() and np.isfinite(out[:, :12]).all()
    # a stretched map would put the last cell's value at the very end instead
    assert resize_map(cells, (4, 14)).numpy()[0, 13] == pytest.approx(3.0)


def test_gradcam_of_a_secnn_block_whose_pooling_rounds_down(real_secnn):
    from core.interpret.gradcam import GradCAM

    x = torch.randn(1, 1, 32, 70, generator=torch.Generator().manual_seed(0))  # block 5: 70 // 32 = 2 cells
    heat = GradCAM(real_secnn, ["block5", "block1"]).maps(x, target=0)
    assert np.isnan(heat["block5"][0, :, 64:]).all() and np.isfinite(heat["block5"][0, :, :64]).all()
    assert np.isnan(heat["block1"][0, :, 70 // 2 * 2:]).all() and np.isfinite(heat["block1"][0, :, :70]).all()


def test_normalise_map_ignores_nan():
    out = normalise_map(torch.tensor([[1.0, np.nan, 3.0]])).numpy()
    np.testing.assert_allclose(out[0, [0, 2]], [0.0, 1.0])
    assert np.isnan(out[0, 1])
