"""The method registry: every method's map on tiny models, through the one entry point the report and pages use;
typed parameters refuse bad values; what applies to a model and why not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio.features import AudioConfig
from core.errors import InputError
from core.interpret.gradcam import GradCAM
from core.interpret.registry import (
    METHODS, VIEWS, applicable, map_methods, method, provides, report_runs, usable,
)
from core.interpret.rollout import model_rollout
from core.pages import PAGE_TITLES
from tests.core.interpret.conftest import as_loaded

CFG = AudioConfig(sr=8000, n_mels=8, n_fft=64, hop_length=32, n_frames=12)  # the tiny models' (8, 12) input


def test_ids_are_unique_plain_identifiers_and_every_need_and_page_is_known():
    from core.interpret.registry import NEEDS

    ids = [m.id for m in METHODS] + [v.id for v in VIEWS]
    assert len(ids) == len(set(ids)) and all(i.replace("-", "").isalnum() and i.islower() for i in ids)
    for item in METHODS + VIEWS:
        assert all(n in NEEDS for need in item.needs for n in need.split("|")), item.id
    assert {v.page for v in VIEWS} <= set(PAGE_TITLES)
    with pytest.raises(InputError, match="'grad-cam block1' is not one of"):
        method("grad-cam block1")  # an id is never a display label to parse


def test_every_method_that_applies_maps_one_clip_onto_the_grid(real_secnn, real_ast, real_audio_cfg):
    """Our SE-CNN and AST (tiny sizes): between them every method of the registry applies."""
    pytest.importorskip("captum")
    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    small = {"integrated-gradients": {"n_steps": 4}}
    seen = set()
    for model in (real_secnn, real_ast):
        loaded = as_loaded(model, real_audio_cfg)
        for spec in map_methods(loaded, baselines=True):
            heat = spec.explain(loaded, x, 1, small.get(spec.id))
            assert heat.shape == (32, 64) and heat.dtype == np.float32, spec.id
            assert np.nanmin(heat) >= 0 and np.nanmax(heat) <= 1 + 1e-6, spec.id
            seen.add(spec.id)
    assert seen == {m.id for m in METHODS}  # each method ran on one of the two


def test_the_registry_calls_each_method_as_its_own_module_does(tiny_cnn, tiny_attention):
    x = torch.randn(1, 1, 8, 12, generator=torch.Generator().manual_seed(1))
    cnn = as_loaded(tiny_cnn, CFG)
    np.testing.assert_allclose(method("gradcam").explain(cnn, x, 2, {"tap": "conv1"}),
                               GradCAM(tiny_cnn, ["conv1"]).maps(x, target=2)["conv1"][0])
    att = as_loaded(tiny_attention, CFG)
    np.testing.assert_allclose(method("rollout").explain(att, x, 0, {"head_fusion": "max", "discard_ratio": 0.5}),
                               model_rollout(tiny_attention, x, head_fusion="max", discard_ratio=0.5)[0])
    # a 2-D spectrogram is one clip; bind fixes the parameters for any model of the architecture (the sanity check)
    explain = method("gradcam").bind(cnn, {"tap": "conv2"})
    np.testing.assert_allclose(explain(tiny_cnn, x[0, 0], 1), method("gradcam").explain(cnn, x, 1, {"tap": "conv2"}))


def test_parameters_are_typed_checked_and_defaulted_per_model(tiny_cnn, tiny_attention):
    cnn = as_loaded(tiny_cnn, CFG)
    assert method("gradcam").resolve(cnn) == {"tap": "conv2"}  # the deepest CAM tap
    assert method("gradcam").resolve(as_loaded(tiny_attention, CFG)) == {"tap": "layer1"}  # not the empty last
    assert method("rollout").resolve(cnn, {"discard_ratio": "0.25"}) == {"head_fusion": "mean", "discard_ratio": 0.25}
    for spec, params, words in [
        ("gradcam", {"tap": "logits"}, "'logits' is not one of ['conv1', 'conv2']"),
        ("rollout", {"head_fusion": "median"}, "'median' is not one of"),
        ("rollout", {"discard_ratio": 0.99}, "must be in [0, 0.95]"),
        ("integrated-gradients", {"n_steps": "many"}, "'many' is not a int"),
        ("occlusion", {"size": 4}, "unknown ['size']"),
    ]:
        with pytest.raises(InputError, match=words.replace("[", r"\[").replace("]", r"\]")):
            method(spec).resolve(cnn, params)


def test_what_applies_and_why_not(tiny_cnn, tiny_attention):
    cnn, att = as_loaded(tiny_cnn, CFG), as_loaded(tiny_attention, CFG)
    assert provides(cnn) == {"vector", "gradients", "map", "spectrogram input", "single-label"}
    assert "tokens" in provides(att) and "attention" not in provides(att)  # its taps name no attention module
    ids = [m.id for m in map_methods(cnn)]
    assert ids[0] == "gradcam" and {"integrated-gradients", "occlusion"} <= set(ids) and "energy" not in ids
    assert not {"rollout", "attention-gradient", "last-attention"} & set(ids)
    assert "attention rollout" not in usable(att, "Attention")
    reasons = {item.label: why for item, why in applicable(cnn, "Attribution")}
    assert reasons["Grad-CAM"] is None and reasons["deletion curve"] is None
    assert reasons["attention rollout"].startswith("needs attention weights (an attention tap); and a token grid")
    assert "(this model, tiny-cnn with mel-time input, has not)" in reasons["attention rollout"]
    waveform = as_loaded(tiny_cnn, CFG)
    waveform.layout = "waveform"
    assert "integrated gradients" not in usable(waveform, "Attribution")
    assert "(1, n_mels, n_frames)" in dict((i.label, w) for i, w in applicable(waveform, "Attribution"))["occlusion"]


def test_report_runs_score_each_setting_with_overrides(tiny_cnn):
    runs = report_runs(as_loaded(tiny_cnn, CFG), params={"occlusion": {"window": 4}})
    names = [run.name for run in runs]
    assert names[:2] == ["grad-cam conv1", "grad-cam conv2"] and names[-1] == "energy (input itself)"
    assert next(r for r in runs if r.spec.id == "occlusion").params == {"window": 4}
    assert "occlusion" not in [r.spec.id for r in report_runs(as_loaded(tiny_cnn, CFG), reference=False)]


def test_integrated_gradients_warns_when_its_integral_has_not_converged(real_secnn, real_audio_cfg):
    """A method's own warning about one map: IG's completeness gap, against its formula, above and below 5 %."""
    from core.interpret.integrated_gradients import GAP_WARN, completeness_gap, integrated_gradients
    from core.interpret.registry import method

    loaded = as_loaded(real_secnn, real_audio_cfg)
    shape = (real_audio_cfg.n_mels, real_audio_cfg.n_frames)
    x = torch.randn(1, 1, *shape, generator=torch.Generator().manual_seed(3)) * 3
    ig = method("integrated-gradients")
    gaps = {n: completeness_gap(loaded.model, x, integrated_gradients(loaded.model, x, target=1, n_steps=n), target=1)
            for n in (2, 256)}
    assert gaps[2] > GAP_WARN > gaps[256]  # the planted case: 2 steps miss, 256 do not
    assert f"{gaps[2]:.0%}" in ig.note(loaded, x, 1, {"n_steps": 2})
    assert ig.note(loaded, x, 1, {"n_steps": 256}) is None
    assert method("gradcam").note(loaded, x, 1) is None  # a method without a check has nothing to say


class _Linear(torch.nn.Module):
    """logit_k = sum(W_k * x): Integrated Gradients from a constant baseline b is exactly (x - b) * W_k."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = weights  # (n_classes, n_mels, n_frames)

    def forward(self, x):
        return (x[:, 0, None] * self.weights).sum(dim=(-2, -1))


def test_a_signed_map_is_scored_as_before_and_says_where_its_zero_lies():
    """Planted truth: a linear model's IG is (x - x.min()) * W, with cells for and against the class."""
    pytest.importorskip("captum")
    from core.interpret.maps import normalise_map

    gen = torch.Generator().manual_seed(3)
    weights = torch.randn(2, 8, 12, generator=gen, dtype=torch.float32)
    x = torch.randn(1, 1, 8, 12, generator=gen)
    loaded = as_loaded(_Linear(weights), CFG)
    truth = ((x[0, 0] - x.min()) * weights[1]).numpy()
    assert (truth > 1e-3).any() and (truth < -1e-3).any()
    spec = method("integrated-gradients")
    assert spec.signed and method("occlusion").signed and not method("gradcam").signed
    heat, zero = spec.explain_signed(loaded, x, 1, {"n_steps": 8})
    # the scored map is the signed map scaled from its minimum, as explain (and the report) give it
    np.testing.assert_allclose(heat, spec.explain(loaded, x, 1, {"n_steps": 8}))
    np.testing.assert_allclose(heat, normalise_map(truth).numpy(), atol=1e-5)
    assert zero == pytest.approx(-truth.min() / (truth.max() - truth.min()), abs=1e-5)
    clear = np.abs(truth) > 1e-3 * np.abs(truth).max()  # cells whose sign the float error cannot flip
    assert np.array_equal((heat > zero)[clear], (truth > 0)[clear])  # above its 0: the cells for the class
    # a map that is not signed starts at 0
    cnn_heat, cnn_zero = method("energy").explain_signed(loaded, x, 1)
    assert cnn_zero == 0.0 and np.nanmin(cnn_heat) >= 0
