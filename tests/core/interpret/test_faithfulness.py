"""Deletion and insertion curves, random baseline and pointing game."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio.features import AudioConfig, frame_times_s, mel_frequencies_hz
from core.errors import InputError
from core.interpret.faithfulness import (
    box_cells,
    deletion_curve,
    insertion_curve,
    model_predictor,
    perturbed_inputs,
    pointing_game,
    pointing_game_hit,
    random_heatmap,
)

SHAPE = (8, 12)


def region_predictor(mask):
    """Target probability = mean of the input over a region (input values in [0, 1])."""

    def predict(X):
        p = X[:, mask].mean(axis=1)
        return np.stack([1 - p, p], axis=1)

    return predict


def test_perturbed_inputs_remove_and_reveal_most_important_cells_first():
    x = np.arange(8 * 12, dtype=np.float32).reshape(SHAPE) + 1
    heatmap = x.copy()  # importance grows with value
    inputs, fractions = perturbed_inputs(x, heatmap, mode="deletion", n_steps=4, fill=0.0)
    assert inputs.shape == (5, *SHAPE)
    np.testing.assert_array_equal(fractions, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(inputs[0], x)
    np.testing.assert_array_equal(inputs[2], np.where(x > 48, 0, x))
    assert not inputs[4].any()
    inserted, _ = perturbed_inputs(x, heatmap, mode="insertion", n_steps=4, fill="min")
    np.testing.assert_array_equal(inserted[1], np.where(x > 72, x, 1))  # fill = clip minimum, 1


def test_auc_is_the_trapezoid_of_the_target_probability():
    probs = iter([np.linspace(1, 0, 5)])

    def predict(X):
        p = next(probs)
        return np.stack([p, 1 - p], axis=1)

    curve = deletion_curve(predict, np.ones(SHAPE), np.ones(SHAPE), target=0, n_steps=4)
    assert curve.auc == pytest.approx(0.5)
    np.testing.assert_allclose(curve.probabilities, np.linspace(1, 0, 5))


def test_a_faithful_map_beats_random_on_both_curves():
    rng = np.random.default_rng(0)
    x = rng.random(SHAPE).astype(np.float32) * 0.1
    mask = np.zeros(SHAPE, dtype=bool)
    mask[2:5, 3:8] = True
    x[mask] += 0.9
    predict = region_predictor(mask)
    truth, noise = mask.astype(float), random_heatmap(SHAPE, seed=1)
    assert deletion_curve(predict, x, truth, target=1).auc < deletion_curve(predict, x, noise, target=1).auc
    assert insertion_curve(predict, x, truth, target=1).auc > insertion_curve(predict, x, noise, target=1).auc


def test_model_predictor_returns_softmax_of_the_model(tiny_cnn):
    X = np.random.default_rng(0).standard_normal((5, *SHAPE)).astype(np.float32)
    probs = model_predictor(tiny_cnn, batch_size=2)(X)
    expected = torch.softmax(tiny_cnn(torch.from_numpy(X)[:, None]), dim=1).detach().numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_random_heatmap_is_seeded():
    np.testing.assert_array_equal(random_heatmap(SHAPE, seed=3), random_heatmap(SHAPE, seed=3))
    assert not np.array_equal(random_heatmap(SHAPE, seed=3), random_heatmap(SHAPE, seed=4))


@pytest.mark.parametrize("kwargs", [dict(mode="sideways"), dict(fill="median"), dict(n_steps=0),
                                    dict(heatmap=np.ones((8, 11))), dict(heatmap=np.full(SHAPE, np.nan))])
def test_bad_curve_arguments_are_input_errors(kwargs):
    args = dict(x=np.ones(SHAPE), heatmap=np.ones(SHAPE), mode="deletion") | kwargs
    with pytest.raises(InputError):
        perturbed_inputs(**args)


def test_pointing_game_maps_boxes_in_seconds_and_hz_to_cells():
    cfg = AudioConfig(n_mels=16, n_frames=40)
    times, freqs = frame_times_s(40, cfg), mel_frequencies_hz(cfg)
    box = (times[10], times[19], freqs[4], freqs[7])  # frames 10..19, bands 4..7
    bands, frames = box_cells(box, shape=(16, 40), cfg=cfg)
    assert (bands.start, bands.stop, frames.start, frames.stop) == (4, 8, 10, 20)

    heat = np.zeros((16, 40))
    heat[6, 15] = 1
    assert pointing_game_hit(heat, [box], cfg=cfg)
    heat[6, 15], heat[9, 15] = 0, 1  # band 9 is above the box
    assert not pointing_game_hit(heat, [box], cfg=cfg)
    assert pointing_game_hit(heat, [box], cfg=cfg, tolerance=2)
    assert pointing_game([heat, heat], [[box], [box, (0.0, 5.0, 0.0, 22050.0)]], cfg=cfg) == 0.5


def test_a_box_narrower_than_a_cell_covers_its_nearest_cell():
    cfg = AudioConfig(n_mels=16, n_frames=40)
    t = frame_times_s(40, cfg)[7] + 0.001
    bands, frames = box_cells((t, t, 1000.0, 1000.0), shape=(16, 40), cfg=cfg)
    assert frames == slice(7, 8)
    assert bands.stop - bands.start == 1


def test_pointing_game_needs_boxes():
    with pytest.raises(InputError, match="box"):
        pointing_game_hit(np.ones((128, 10)), [])


def test_curves_for_a_real_secnn_and_its_gradcam(real_secnn):
    from core.interpret.gradcam import GradCAM

    x = torch.randn(1, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    heat = GradCAM(real_secnn, ["block2"]).maps(x, target=1)["block2"][0]
    predict = model_predictor(real_secnn)
    deletion = deletion_curve(predict, x[0, 0].numpy(), heat, target=1, n_steps=5)
    insertion = insertion_curve(predict, x[0, 0].numpy(), heat, target=1, n_steps=5)
    p = torch.softmax(real_secnn(x), dim=1)[0, 1].item()
    assert deletion.probabilities[0] == pytest.approx(p, abs=1e-6)
    assert insertion.probabilities[-1] == pytest.approx(p, abs=1e-6)
    assert 0 <= deletion.auc <= 1 and 0 <= insertion.auc <= 1


def test_ties_are_broken_at_random_seeded_and_nan_cells_come_last():
    from core.interpret.faithfulness import importance_order

    heat = np.zeros((4, 6))
    heat[0, 0], heat[3, 5] = 2.0, 1.0
    heat[1, 1] = np.nan
    order = importance_order(heat, seed=0)
    assert order[0] == 0 and order[1] == 3 * 6 + 5 and order[-1] == 1 * 6 + 1
    np.testing.assert_array_equal(order, importance_order(heat, seed=0))
    ties = [tuple(importance_order(heat, seed=s)[2:-1]) for s in range(5)]
    assert len(set(ties)) == 5  # a different order of the zeros per seed
    assert ties[0] != tuple(sorted(ties[0]))  # not row-major
    assert tuple(importance_order(heat, seed=None)[2:-1]) == tuple(sorted(ties[0]))


def test_random_ties_remove_a_low_band_bias():
    # A map with no information (all ties) deleting the low bands first would hurt a model
    # that listens to low bands; in a random order it hurts as much as any random order.
    mask = np.zeros(SHAPE, dtype=bool)
    mask[:2] = True  # the model listens to the two lowest bands
    predict = region_predictor(mask)
    x = np.ones(SHAPE, dtype=np.float32)
    flat = np.zeros(SHAPE)
    fixed = deletion_curve(predict, x, flat, target=1, n_steps=12, fill=0.0, seed=None).auc
    drawn = np.mean([deletion_curve(predict, x, flat, target=1, n_steps=12, fill=0.0, seed=s).auc for s in range(20)])
    assert fixed == pytest.approx(0.125, abs=1e-6) and drawn == pytest.approx(0.5, abs=0.1)


def test_distractor_hit_counts_a_peak_in_a_distractor_and_not_in_the_event():
    from core.interpret.faithfulness import distractor_hit

    cfg = AudioConfig()
    shape = (cfg.n_mels, cfg.n_frames)
    event, distractor = (0.5, 1.0, 300.0, 1500.0), (3.0, 4.0, 3000.0, 8000.0)
    heat = np.zeros(shape)
    bands, frames = box_cells(distractor, shape=shape, cfg=cfg)
    heat[bands.start + 1, frames.start + 1] = 1.0
    assert distractor_hit(heat, [distractor], [event], cfg=cfg)
    assert not pointing_game_hit(heat, [event], cfg=cfg)
    bands, frames = box_cells(event, shape=shape, cfg=cfg)
    heat[bands.start, frames.start] = 2.0
    assert not distractor_hit(heat, [distractor], [event], cfg=cfg) and pointing_game_hit(heat, [event], cfg=cfg)
    assert not distractor_hit(heat, [], [event], cfg=cfg)
    # a peak where the two overlap counts for the event
    assert not distractor_hit(heat, [event], [event], cfg=cfg)


def test_nan_cells_are_never_the_peak():
    cfg = AudioConfig()
    heat = np.full((cfg.n_mels, cfg.n_frames), np.nan)
    heat[:, :10] = 0.5
    heat[5, 3] = 0.9
    from core.interpret.faithfulness import peak_cell

    assert peak_cell(heat) == (5, 3)


def test_fills_blur_as_rise_and_a_spectrum_fills_every_frame():
    from scipy.ndimage import gaussian_filter

    from core.interpret.faithfulness import BLUR_SIGMA, fill_values, mean_spectrum, perturbed_inputs

    x = np.random.default_rng(0).standard_normal((8, 12)).astype(np.float32)
    np.testing.assert_allclose(fill_values(x, "blur"), gaussian_filter(x, BLUR_SIGMA, truncate=1.0, mode="nearest"),
                               atol=1e-6)
    spectrum = mean_spectrum(np.stack([x, x + 2.0]))
    np.testing.assert_allclose(spectrum, x.mean(axis=1) + 1.0, atol=1e-5)
    inputs, _ = perturbed_inputs(x, np.ones_like(x), mode="deletion", n_steps=1, fill=spectrum)
    np.testing.assert_allclose(inputs[-1], np.repeat(spectrum[:, None], 12, axis=1))  # every cell removed
    inputs, _ = perturbed_inputs(x, np.ones_like(x), mode="insertion", n_steps=1, fill="blur")
    np.testing.assert_allclose(inputs[0], fill_values(x, "blur"))  # insertion starts from the blurred clip
    with pytest.raises(InputError, match="fill"):
        fill_values(x, np.zeros(3))
