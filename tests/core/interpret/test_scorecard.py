"""A clip's scorecard: its progress reports, and which models score on request."""

from __future__ import annotations

import numpy as np
import pytest
from torch import nn

from core.interpret.registry import method
from core.interpret.sanity import layer_groups
from core.interpret.scorecard import ON_REQUEST_PARAMETERS, clip_scorecard, scorecard_steps, starts_on_request
from tests.core.interpret.conftest import as_loaded


def test_models_over_20_million_parameters_score_on_request():
    assert ON_REQUEST_PARAMETERS == 20_000_000
    small = nn.Linear(4470, 4472)  # 4470 * 4472 + 4472 = 19,994,312 parameters
    large = nn.Linear(4473, 4473)  # 20,012,202
    assert not starts_on_request(small) and starts_on_request(large)


def test_progress_counts_every_step_up_to_the_total(real_secnn, real_audio_cfg):
    loaded = as_loaded(real_secnn, real_audio_cfg)
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    seen = []
    card = clip_scorecard(real_secnn, method("gradcam").bind(loaded, {}), x, 1, n_steps=4, draws=2,
                          progress=lambda done, total: seen.append((done, total)))
    total = 3 + 2 + 1 + len(layer_groups(real_secnn))  # map, deletion, 2 draws, energy; trained + randomised maps
    assert scorecard_steps(real_secnn, draws=2) == total
    assert [d for d, _ in seen] == sorted(set(d for d, _ in seen)) and seen[-1] == (total, total)
    assert {t for _, t in seen} == {total} and card["sanity_verdict"]


def test_what_progress_raises_stops_the_scorecard(real_secnn, real_audio_cfg):
    loaded = as_loaded(real_secnn, real_audio_cfg)
    x = np.random.default_rng(0).standard_normal((32, 64)).astype(np.float32)
    calls = []

    def leave(done, total):
        calls.append(done)
        if done == 2:
            raise KeyboardInterrupt  # what Streamlit's stop is to the computation: an exception at an update

    with pytest.raises(KeyboardInterrupt):
        clip_scorecard(real_secnn, method("gradcam").bind(loaded, {}), x, 1, n_steps=4, draws=2, progress=leave)
    assert calls == [1, 2]
