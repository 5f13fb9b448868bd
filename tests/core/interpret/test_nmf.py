"""NMF decoders: planted bands recovered, non-negative, triangular, early-stopped; baselines, intervals, tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio.features import AudioConfig, mel_frequencies_hz
from core.errors import InputError
from core.interpret.nmf import (
    FLAVOURS,
    MelTriangular,
    Moments,
    activation_matrix,
    bands_to_hz,
    build_decoder,
    centre_spread,
    clip_errors,
    decoder_clip_errors,
    difference_interval,
    discriminative_channels,
    error_interval,
    fit_spectrogram_nmf,
    load_decoder,
    nonnegative_target,
    relative_error,
    save_decoder,
    selective_channels,
    spectrogram_nmf_activations,
    time_activations,
    train_decoder,
)

N_MELS, K, T = 16, 6, 20


def toy_data(n=12, seed=0):
    """Spectrograms that are exactly W_true H for a non-negative W_true."""
    rng = np.random.default_rng(seed)
    W = np.abs(rng.standard_normal((N_MELS, K)))
    H = np.abs(rng.standard_normal((n, K, T))).astype(np.float32)
    X = np.einsum("mk,nkt->nmt", W, H)
    return H, (X / X.max()).astype(np.float32)


def planted_layer(n=40, n_mels=48, k=10, t=60, seed=0):
    """A synthetic layer: channel k fires only with energy in band b_k (a triangle 2 bands wide), channels shuffled.

    Returns H (n, k, t), X (n, n_mels, t) and the planted bands b (k,), in no order.
    """
    rng = np.random.default_rng(seed)
    bands = rng.choice(np.arange(3, n_mels - 3), k, replace=False)  # a random band per channel: no order
    A = rng.gamma(0.5, 1.0, (n, k, t)) * (rng.random((n, k, t)) < 0.3)  # sparse, independent activity
    m = np.arange(n_mels)
    templates = np.maximum(0, 1 - np.abs(m[:, None] - bands[None, :]) / 2.0)  # (n_mels, k)
    X = 0.2 + 0.3 * np.einsum("mk,nkt->nmt", templates, A) + 0.02 * rng.random((n, n_mels, t))
    H = A + 0.05 * rng.random(A.shape)  # the channel's activity, a little noisy
    return H.astype(np.float32), X.astype(np.float32), bands


def test_time_activations_pool_conv_over_frequency_and_tokens_over_the_grid():
    conv = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    np.testing.assert_allclose(time_activations(conv), conv.mean(axis=2))
    tokens = np.random.default_rng(0).standard_normal((2, 1 + 6, 4)).astype(np.float32)  # grid (2, 3), D = 4
    out = time_activations(tokens, grid=(2, 3))
    expected = tokens[:, 1:].reshape(2, 2, 3, 4).mean(axis=1).transpose(0, 2, 1)  # (N, D, n_time)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    with pytest.raises(InputError, match="grid"):
        time_activations(tokens)


def test_activation_matrix_reaches_the_frame_rate_and_is_non_negative():
    H = activation_matrix(np.array([[[1.0, -1.0, 3.0]]]), n_frames=6)
    assert H.shape == (1, 1, 6) and H.min() >= 0
    assert H[0, 0, 0] == 1.0 and H[0, 0, -1] == 3.0  # edges keep the end values


def test_target_is_min_max_scaled_per_clip():
    X = nonnegative_target(np.stack([np.linspace(-3, 5, 20).reshape(4, 5), np.zeros((4, 5))]))
    assert X[0].min() == 0 and X[0].max() == 1 and not X[1].any()


def test_squared_error_from_the_sums_equals_the_direct_one():
    H, X = toy_data()
    stats = Moments.of(H, X, chunk=5)
    for flavour in FLAVOURS:
        decoder = build_decoder(flavour, n_mels=N_MELS, n_components=K)
        decoder.initialise(stats)
        with torch.no_grad():
            direct = float(((decoder(torch.from_numpy(H)) - torch.from_numpy(X)) ** 2).double().sum())
            assert float(decoder.squared_error(stats)) == pytest.approx(direct, rel=1e-5)
    np.testing.assert_allclose(stats.mean_spectrum().numpy(), X.mean(axis=(0, 2)), rtol=1e-6)


def test_filter_banks_start_at_the_band_each_channel_correlates_with():
    H, X, bands = planted_layer()
    stats = Moments.of(H, X)
    decoder = build_decoder("mel-gaussian", n_mels=X.shape[1], n_components=H.shape[1])
    np.testing.assert_allclose(decoder.centres().detach().numpy(), np.linspace(0, X.shape[1] - 1, H.shape[1]))
    decoder.initialise(stats)
    assert np.abs(decoder.peaks() - bands).max() <= 1


@pytest.mark.parametrize("flavour", ["mel-triangular", "mel-gaussian"])
def test_mel_flavours_recover_planted_bands_from_a_wrong_start(flavour):
    H, X, bands = planted_layer()
    train, val = Moments.of(H[:30], X[:30]), Moments.of(H[30:], X[30:])
    n_mels = X.shape[1]
    wrong = (bands + n_mels // 2) % n_mels  # half the range away
    decoder = build_decoder(flavour, n_mels=n_mels, n_components=H.shape[1])
    decoder.initialise(train, centres=wrong)
    assert np.median(np.abs(decoder.peaks() - bands)) >= 20
    record = train_decoder(decoder, train, val, initialise=False, max_steps=300, warmup=100, patience=50)
    assert np.median(np.abs(decoder.peaks() - bands)) <= 1.0
    mean_only = relative_error(*clip_errors(X[30:], train.mean_spectrum().numpy()))
    assert record["val_relative_error"] < mean_only


def test_decoders_beat_the_training_mean_on_the_planted_layer_and_agree_on_centres():
    H, X, bands = planted_layer()
    train, val = Moments.of(H[:30], X[:30]), Moments.of(H[30:], X[30:])
    peaks = {}
    for flavour in FLAVOURS:
        decoder = build_decoder(flavour, n_mels=X.shape[1], n_components=H.shape[1])
        train_decoder(decoder, train, val, max_steps=300, warmup=100, patience=50)
        errors, norms = decoder_clip_errors(decoder, H[30:], X[30:])
        base, _ = clip_errors(X[30:], decoder.train_mean.numpy())
        assert difference_interval(errors, base, norms)[2] < 0  # the whole interval below 0
        peaks[flavour] = decoder.peaks()
    assert np.median(centre_spread(peaks)) <= 1


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_weights_and_background_stay_non_negative(flavour):
    H, X = toy_data()
    X = (1 - X).astype(np.float32)  # anti-correlated with H: the best unconstrained W is negative
    stats = Moments.of(H, X)
    decoder = build_decoder(flavour, n_mels=N_MELS, n_components=K)
    train_decoder(decoder, stats, stats, max_steps=100, warmup=30)
    assert (decoder.basis() >= 0).all() and (decoder.background() >= 0).all()
    with torch.no_grad():
        assert (decoder(torch.from_numpy(H)) >= 0).all()


def test_triangular_filters_stay_triangular_and_in_range_after_training():
    H, X, bands = planted_layer(n_mels=24, k=6)
    stats = Moments.of(H, X)
    decoder = build_decoder("mel-triangular", n_mels=24, n_components=6)
    train_decoder(decoder, stats, stats, max_steps=150, warmup=50)
    assert isinstance(decoder, MelTriangular)
    centres, half_widths, gains = decoder.centres(), decoder.half_widths(), decoder.gains()
    assert (centres >= 0).all() and (centres <= 23).all() and (half_widths >= 1).all()
    W = decoder.basis().detach().numpy()
    m = np.arange(24)
    for k in range(6):
        c, b, g = float(centres[k].detach()), float(half_widths[k].detach()), float(gains[k].detach())
        # a triangle: zero outside (c - b, c + b), linear with slope +-g/b inside, peak at the centre
        np.testing.assert_allclose(W[:, k], g * np.maximum(0, 1 - np.abs(m - c) / b), rtol=1e-5, atol=1e-6)
        support = np.flatnonzero(W[:, k] > 0)
        assert np.all(np.diff(support) == 1)  # one contiguous run
        rising = np.diff(W[: int(np.floor(c)) + 1, k])
        falling = np.diff(W[int(np.ceil(c)) :, k])
        assert (rising >= -1e-7).all() and (falling <= 1e-7).all()
    hz = decoder.centres_hz(AudioConfig(n_mels=24))
    np.testing.assert_allclose(hz, bands_to_hz(decoder.peaks(), AudioConfig(n_mels=24)))
    assert hz.min() >= mel_frequencies_hz(AudioConfig(n_mels=24))[0] - 1e-3


def test_early_stopping_keeps_the_best_held_out_state():
    H, X = toy_data(n=20)
    rng = np.random.default_rng(1)
    train = Moments.of(H[:10], X[:10])
    val = Moments.of(H[10:], rng.permutation(X[10:]))  # held-out targets unrelated to their activations
    decoder = build_decoder("nonneg-linear", n_mels=N_MELS, n_components=K)
    record = train_decoder(decoder, train, val, max_steps=2000, patience=50)
    assert record["stopped_early"] and record["steps"] < 2000
    best = min(v for _, _, v in record["history"])
    assert record["val_relative_error"] == pytest.approx(best)
    with torch.no_grad():
        assert np.sqrt(float(decoder.squared_error(val)) / val.xx) == pytest.approx(best, rel=1e-5)


def test_baselines_and_their_intervals():
    rng = np.random.default_rng(0)
    X = rng.random((30, 8, 10))
    mean = X[:20].mean(axis=(0, 2))
    errors, norms = clip_errors(X[20:], mean)
    direct = np.linalg.norm(X[20:] - mean[None, :, None]) / np.linalg.norm(X[20:])
    assert relative_error(errors, norms) == pytest.approx(direct)
    value, low, high = error_interval(errors, norms)
    assert value == pytest.approx(direct) and low < value < high
    assert error_interval(*clip_errors(X[20:], 0.0)) == (1.0, 1.0, 1.0)  # zeros: exactly 1
    better, _ = clip_errors(X[20:], X[20:] * 0.9)
    diff = difference_interval(better, errors, norms)
    assert diff[0] == pytest.approx(0.1 - direct) and diff[2] < 0
    same = difference_interval(errors, errors, norms)
    assert same == pytest.approx((0.0, 0.0, 0.0))


def test_a_decoder_whose_channels_add_nothing_scores_the_training_mean():
    H, X = toy_data()
    stats = Moments.of(H[:8], X[:8])
    decoder = build_decoder("mel-gaussian", n_mels=N_MELS, n_components=K)
    decoder.initialise(stats)
    with torch.no_grad():
        decoder.raw_gain.fill_(-30.0)  # gains ~ 0
    errors, norms = decoder_clip_errors(decoder, H[8:], X[8:])
    base, _ = clip_errors(X[8:], stats.mean_spectrum().numpy())
    np.testing.assert_allclose(errors, base, rtol=1e-4)


def test_centre_spread_and_selectivity_follow_their_definitions():
    spread = centre_spread({"a": np.array([1.0, 10.0]), "b": np.array([3.0, 10.0]), "c": np.array([2.0, 9.5])})
    np.testing.assert_allclose(spread, [2.0, 0.5])
    W = np.zeros((128, 3))
    W[60:64, 0] = 1  # narrow
    W[:, 1] = 1  # flat: 17 of 128 bands within 8 of its peak
    W[[5, 100], 2] = 1  # two far bands: half within 8 bands of the peak
    np.testing.assert_array_equal(selective_channels(W), [True, False, True])
    np.testing.assert_array_equal(selective_channels(W, share=0.6), [True, False, False])


def test_save_and_load_beside_a_checkpoint(tmp_path):
    H, X = toy_data()
    stats = Moments.of(H, X)
    decoder = build_decoder("mel-triangular", n_mels=N_MELS, n_components=K)
    train_decoder(decoder, stats, stats, max_steps=20, warmup=5)
    path = save_decoder(decoder, tmp_path, name="block3-mel-triangular", meta={"tap": "block3"})
    assert path == tmp_path / "decoders" / "block3-mel-triangular.safetensors"
    loaded, meta = load_decoder(tmp_path, name="block3-mel-triangular")
    assert meta == {"tap": "block3"}
    torch.testing.assert_close(loaded.basis(), decoder.basis())
    torch.testing.assert_close(loaded.h_scale, decoder.h_scale)
    torch.testing.assert_close(loaded.train_mean, decoder.train_mean)
    with pytest.raises(InputError):
        load_decoder(tmp_path, name="missing")
    with pytest.raises(InputError):
        save_decoder(decoder, tmp_path, name="../escape")
    path.write_bytes(b"not safetensors")
    with pytest.raises(InputError):
        load_decoder(tmp_path, name="block3-mel-triangular")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classic_nmf_oracle_reconstructs_held_out_clips():
    H, X = toy_data(n=10)
    basis = fit_spectrogram_nmf(X[:8], n_components=K, seed=0)
    assert basis.shape == (N_MELS, K) and basis.min() >= 0
    acts = spectrogram_nmf_activations(X[8:], basis)
    assert acts.shape == (2, K, T) and acts.min() >= 0
    X_hat = np.einsum("mk,nkt->nmt", basis, acts)
    assert np.linalg.norm(X[8:] - X_hat) / np.linalg.norm(X[8:]) < 0.05  # exact rank-K data


def test_discriminative_channels_by_welch_t_with_fdr_control():
    from scipy.stats import false_discovery_control, ttest_ind

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    A = rng.random((30, 4))
    A[labels == 1, 2] += 1  # channel 2 fires for class 1
    out = discriminative_channels(A, labels)
    assert set(out) == {0, 1, 2}
    assert out[1][0][0] == 2 and out[0] == [] and out[2] == []  # nothing else survives the correction
    p = np.array([[ttest_ind(A[labels == c, k], A[labels != c, k], equal_var=False, alternative="greater").pvalue
                   for k in range(4)] for c in range(3)])
    t = ttest_ind(A[labels == 1, 2], A[labels != 1, 2], equal_var=False).statistic
    assert out[1][0][1] == pytest.approx(t)
    assert out[1][0][2] == pytest.approx(false_discovery_control(p.ravel()).reshape(3, 4)[1, 2])
    noise = discriminative_channels(rng.random((30, 20)), labels)
    assert sum(len(v) for v in noise.values()) == 0


def test_decoder_on_real_secnn_activations(real_secnn):
    from core.models.taps import extract

    x = torch.randn(6, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    acts = extract(real_secnn, x, ["block3"])["block3"].numpy()  # (6, 8, 4, 8)
    H = activation_matrix(time_activations(acts), n_frames=64)
    assert H.shape == (6, 8, 64) and H.min() >= 0
    X = nonnegative_target(x[:, 0].numpy())
    decoder = build_decoder("mel-triangular", n_mels=32, n_components=8)
    record = train_decoder(decoder, Moments.of(H[:4], X[:4]), Moments.of(H[4:], X[4:]), max_steps=30, warmup=10)
    assert np.isfinite(record["val_relative_error"]) and (decoder.basis() >= 0).all()
