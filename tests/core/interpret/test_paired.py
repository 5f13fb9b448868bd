"""Paired comparisons: "beats" needs a paired interval that excludes zero."""

from __future__ import annotations

import numpy as np

from core.interpret.paired import compare


def test_beats_needs_the_interval_not_a_lower_mean():
    rng = np.random.default_rng(0)
    baseline = rng.uniform(0.1, 0.3, 40)
    # a lower mean with a wide, noisy difference: the audit's "0.097 against 0.117 ± 0.028"
    noisy = baseline - 0.01 + rng.normal(0, 0.1, 40)
    result = compare(noisy, baseline, lower_is_better=True)
    assert result.word == "ties" and result.difference[1] < 0 < result.difference[2]
    # a small but consistent improvement, clip for clip: beats, though the two means' spreads overlap
    steady = baseline - 0.002 + rng.normal(0, 0.0005, 40)
    result = compare(steady, baseline, lower_is_better=True)
    assert result.word == "beats" and result.difference[2] < 0
    assert compare(steady, baseline, lower_is_better=False).word == "loses"  # the same numbers, higher better
    assert compare(baseline + 0.05, baseline, lower_is_better=True).word == "loses"


def test_pairs_with_a_missing_value_are_left_out():
    result = compare([0.1, np.nan, 0.1, 0.1], [0.2, 0.1, 0.2, 0.2], lower_is_better=True)
    assert result.n_clips == 3 and result.word == "beats"
    assert compare([0.1], [0.2], lower_is_better=True).word == "ties"  # one clip decides nothing
