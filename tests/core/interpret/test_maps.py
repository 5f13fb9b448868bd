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
    np.testing.assert_allclose(out[5, 8], 12.0)  # past the last centres: edge value
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
