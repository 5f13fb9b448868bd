"""The MFCC baseline: it recovers a planted difference and pairs its results with the model's."""

import numpy as np

from core.training.baseline import compare_to_baseline, fit_baseline, mfcc_statistics


def _tone(f0, rng, sr=8000, seconds=0.4):
    t = np.arange(int(sr * seconds)) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def test_mfcc_statistics_are_the_means_and_deviations_of_librosas_mfcc():
    import librosa

    y = _tone(440, np.random.default_rng(0))
    stats = mfcc_statistics(y, 8000)
    mfcc = librosa.feature.mfcc(y=y, sr=8000, n_mfcc=20, n_fft=2048, hop_length=512)
    assert stats.shape == (40,)
    np.testing.assert_allclose(stats, np.concatenate([mfcc.mean(1), mfcc.std(1)]), rtol=1e-5)


def test_the_baseline_separates_low_from_high_tones_and_not_shuffled_labels():
    rng = np.random.default_rng(0)
    waves = [_tone(f, rng) for f in np.r_[rng.uniform(200, 400, 20), rng.uniform(1500, 3000, 20)]]
    labels = np.r_[np.zeros(20, int), np.ones(20, int)]
    order = rng.permutation(40)
    train, test = order[:28], order[28:]
    result = fit_baseline([waves[i] for i in train], labels[train], [waves[i] for i in test], labels[test], sr=8000)
    assert result["accuracy"] == 1.0 and len(result["correct"]) == 12
    noise = [rng.standard_normal(3200).astype(np.float32) for _ in range(40)]
    chance = fit_baseline(noise[:28], labels[train], noise[28:], labels[test], sr=8000)
    assert chance["accuracy"] < 0.9


def test_compare_pairs_clip_by_clip():
    model = [1] * 30 + [0] * 10
    base = [0] * 20 + [1] * 10 + [0] * 10
    result = compare_to_baseline(model, base)
    assert result["difference"] == 0.5 and result["low"] > 0.3 and result["beats"]
    assert not compare_to_baseline(base, model)["beats"]
