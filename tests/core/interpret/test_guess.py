"""region_share: the share of a map inside a guessed box, beside the box's area (a uniform map's share)."""

import numpy as np
import pytest

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.faithfulness import box_cells
from core.interpret.guess import region_share

CFG = AudioConfig(n_frames=300)
BOX = (1.0, 2.0, 500.0, 4000.0)


def test_a_map_planted_inside_the_box_is_all_inside_and_a_uniform_one_matches_the_area():
    bands, frames = box_cells(BOX, shape=(CFG.n_mels, CFG.n_frames), cfg=CFG)
    planted = np.zeros((CFG.n_mels, CFG.n_frames))
    planted[bands, frames] = np.random.default_rng(0).uniform(0.1, 1.0, planted[bands, frames].shape)
    r = region_share(planted, BOX, cfg=CFG)
    n_inside = (bands.stop - bands.start) * (frames.stop - frames.start)
    assert r.share == pytest.approx(1.0) and r.area == pytest.approx(n_inside / planted.size)
    uniform = region_share(np.ones_like(planted), BOX, cfg=CFG)
    assert uniform.share == pytest.approx(uniform.area) and 0 < uniform.area < 0.2
    outside = np.ones_like(planted)
    outside[bands, frames] = 0
    assert region_share(outside, BOX, cfg=CFG).share == 0.0


def test_uncovered_cells_are_left_out_of_both_and_bad_maps_are_refused():
    heat = np.ones((CFG.n_mels, CFG.n_frames))
    bands, frames = box_cells(BOX, shape=heat.shape, cfg=CFG)
    cut = (frames.start + frames.stop) // 2  # frames from here on: ones a layer's pooling never sees
    heat[:, cut:] = np.nan
    r = region_share(heat, BOX, cfg=CFG)
    assert r.area == pytest.approx((bands.stop - bands.start) * (cut - frames.start) / (CFG.n_mels * cut))
    assert r.share == pytest.approx(r.area)
    for bad, why in ((np.zeros_like(heat), "empty"), (-np.ones_like(heat), "non-negative"), (np.ones(5), "shape")):
        with pytest.raises(InputError, match=why):
            region_share(bad, BOX, cfg=CFG)
