"""Baselines: the energy map, smooth random maps, pointing-game chance, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.baselines import (
    bootstrap_interval,
    energy_map,
    pointing_chance,
    random_curves,
    smooth_random_map,
)
from core.interpret.faithfulness import box_cells, in_boxes, pointing_game_hit, random_heatmap


def test_energy_map_is_the_input_min_max_scaled():
    x = np.random.default_rng(0).standard_normal((8, 12)).astype(np.float32)
    np.testing.assert_allclose(energy_map(x), (x - x.min()) / (x.max() - x.min()), rtol=1e-6)
    with pytest.raises(InputError):
        energy_map(np.ones(5))


def test_smooth_random_map_is_seeded_smooth_and_not_shape_bound():
    a, b = smooth_random_map((128, 431), seed=1), smooth_random_map((128, 431), seed=1)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (128, 431) and a.min() == 0 and a.max() == pytest.approx(1)
    assert not np.array_equal(a, smooth_random_map((128, 431), seed=2))
    # neighbouring cells move together in a smooth map, not in per-cell noise
    lag1 = lambda m: np.corrcoef(m[:, :-1].ravel(), m[:, 1:].ravel())[0, 1]
    assert lag1(a) > 0.9 and abs(lag1(random_heatmap((128, 431), seed=1))) < 0.05
    assert smooth_random_map((128, 432), seed=0).shape == (128, 432)


def test_pointing_chance_is_the_share_of_cells_in_the_boxes():
    cfg = AudioConfig()
    shape = (cfg.n_mels, cfg.n_frames)
    boxes = [(0.5, 1.5, 200.0, 2000.0), (1.0, 2.0, 1000.0, 4000.0)]  # overlapping: the union counts once
    inside = np.zeros(shape, dtype=bool)
    for box in boxes:
        bands, frames = box_cells(box, shape=shape, cfg=cfg)
        inside[bands, frames] = True
    chance = pointing_chance(boxes, shape=shape, cfg=cfg)
    assert chance == pytest.approx(inside.mean()) and 0 < chance < 1
    # every cell as the peak in turn: the hit rate is the chance level
    cells = [(f, t) for f in range(0, shape[0], 4) for t in range(0, shape[1], 4)]
    rate = np.mean([in_boxes(c, boxes, shape=shape, cfg=cfg) for c in cells])
    assert rate == pytest.approx(chance, abs=0.01)


def test_bootstrap_interval_holds_the_mean_and_narrows_with_more_clips():
    rng = np.random.default_rng(0)
    few = rng.random(10)
    many = rng.random(400)
    mean, low, high = bootstrap_interval(few)
    assert low <= mean <= high and mean == pytest.approx(few.mean())
    _, low2, high2 = bootstrap_interval(many)
    assert high2 - low2 < high - low
    assert bootstrap_interval([0.3]) == (0.3, 0.3, 0.3)
    assert all(np.isnan(bootstrap_interval([])))


def test_random_curves_average_many_draws():
    mask = np.zeros((8, 12), dtype=bool)
    mask[2:5, 3:8] = True

    def predict(X):
        p = X[:, mask].mean(axis=1)
        return np.stack([1 - p, p], axis=1)

    x = np.ones((8, 12), dtype=np.float32)
    rc = random_curves(predict, x, target=1, draws=5, n_steps=4, fill=0.0, seed=3)
    assert rc.deletion_aucs.shape == (5,) and rc.insertion_aucs.shape == (5,)
    assert rc.deletion_auc == pytest.approx(rc.deletion_aucs.mean()) and rc.deletion_spread > 0
    assert rc.deletion_mean.shape == (5,) and rc.deletion_mean[0] == pytest.approx(1.0)
    with pytest.raises(InputError):
        random_curves(predict, x, target=1, draws=0)


def test_a_pointing_hit_on_a_constant_map_is_a_draw_not_the_first_cell():
    cfg = AudioConfig()
    shape = (cfg.n_mels, cfg.n_frames)
    box = (0.0, 0.05, 0.0, 60.0)  # the first frames of the lowest bands
    flat = np.zeros(shape)
    assert pointing_game_hit(flat, [box], cfg=cfg, seed=None)  # first cell: a hit by construction
    hits = np.mean([pointing_game_hit(flat, [box], cfg=cfg, seed=s) for s in range(50)])
    assert hits < 0.1  # drawn at random: about the box's tiny share
