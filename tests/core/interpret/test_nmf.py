"""NMF decoders: non-negative, triangular, trainable, saved and loaded; the baseline and the report."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.audio import AudioConfig, mel_frequencies_hz
from core.errors import InputError
from core.interpret.nmf import (
    FLAVOURS,
    MelTriangular,
    activation_matrix,
    build_decoder,
    discriminative_components,
    fit_spectrogram_nmf,
    load_decoder,
    nonnegative_target,
    reconstruction_error,
    save_decoder,
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


@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_training_lowers_the_error_and_keeps_weights_non_negative(flavour):
    H, X = toy_data()
    torch.manual_seed(0)
    decoder = build_decoder(flavour, n_mels=N_MELS, n_components=K)
    decoder.fit_scale(H)
    before = reconstruction_error(decoder, H, X)["mse"]
    losses = train_decoder(decoder, H, X, epochs=15, batch_size=4, lr=0.05, progress=False)
    assert len(losses) == 15
    assert reconstruction_error(decoder, H, X)["mse"] < before
    assert (decoder.basis() >= 0).all()


def test_triangular_filters_stay_triangular_and_in_range_after_training():
    H, X = toy_data()
    decoder = build_decoder("mel-triangular", n_mels=N_MELS, n_components=K)
    train_decoder(decoder, H, X, epochs=10, batch_size=4, lr=0.2, progress=False)
    assert isinstance(decoder, MelTriangular)
    centres, half_widths, gains = decoder.centres(), decoder.half_widths(), decoder.gains()
    assert (centres >= 0).all() and (centres <= N_MELS - 1).all() and (half_widths >= 1).all()
    assert not torch.allclose(centres, build_decoder("mel-triangular", n_mels=N_MELS, n_components=K).centres())
    W = decoder.basis().detach().numpy()
    m = np.arange(N_MELS)
    for k in range(K):
        c, b, g = float(centres[k].detach()), float(half_widths[k].detach()), float(gains[k].detach())
        # a triangle: zero outside (c - b, c + b), linear with slope +-g/b inside, peak at the centre
        np.testing.assert_allclose(W[:, k], g * np.maximum(0, 1 - np.abs(m - c) / b), rtol=1e-5, atol=1e-6)
        support = np.flatnonzero(W[:, k] > 0)
        assert np.all(np.diff(support) == 1)  # one contiguous run
        rising = np.diff(W[: int(np.floor(c)) + 1, k])
        falling = np.diff(W[int(np.ceil(c)) :, k])
        assert (rising >= -1e-7).all() and (falling <= 1e-7).all()


def test_gaussian_bank_starts_mel_like_and_adapts_only_a_little():
    H, X = toy_data()
    decoder = build_decoder("mel-gaussian", n_mels=N_MELS, n_components=K)
    start = decoder.centres().detach().clone()
    np.testing.assert_allclose(np.diff(start.numpy()), decoder.spacing, rtol=1e-5)  # evenly spaced in mel
    train_decoder(decoder, H, X, epochs=20, batch_size=4, lr=0.5, progress=False)
    assert ((decoder.centres() - start).abs() <= decoder.spacing / 2 + 1e-6).all()
    ratio = decoder.sigmas() / decoder.sigma0
    assert (ratio >= np.exp(-0.5) - 1e-6).all() and (ratio <= np.exp(0.5) + 1e-6).all()
    hz = decoder.centres_hz(AudioConfig(n_mels=N_MELS))
    assert np.all(np.diff(hz) > 0) and hz[0] >= mel_frequencies_hz(AudioConfig(n_mels=N_MELS))[0] - 1e-3


def test_save_and_load_beside_a_checkpoint(tmp_path):
    H, X = toy_data()
    decoder = build_decoder("mel-triangular", n_mels=N_MELS, n_components=K)
    train_decoder(decoder, H, X, epochs=2, progress=False)
    path = save_decoder(decoder, tmp_path, name="block3-mel-triangular", meta={"tap": "block3"})
    assert path == tmp_path / "decoders" / "block3-mel-triangular.safetensors"
    loaded, meta = load_decoder(tmp_path, name="block3-mel-triangular")
    assert meta == {"tap": "block3"}
    torch.testing.assert_close(loaded.basis(), decoder.basis())
    torch.testing.assert_close(loaded.h_scale, decoder.h_scale)
    with pytest.raises(InputError):
        load_decoder(tmp_path, name="missing")
    with pytest.raises(InputError):
        save_decoder(decoder, tmp_path, name="../escape")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_classic_nmf_baseline_reconstructs_held_out_clips():
    H, X = toy_data(n=10)
    basis = fit_spectrogram_nmf(X[:8], n_components=K, seed=0)
    assert basis.shape == (N_MELS, K) and basis.min() >= 0
    acts = spectrogram_nmf_activations(X[8:], basis)
    assert acts.shape == (2, K, T) and acts.min() >= 0
    X_hat = np.einsum("mk,nkt->nmt", basis, acts)
    assert np.linalg.norm(X[8:] - X_hat) / np.linalg.norm(X[8:]) < 0.05  # exact rank-K data


def test_discriminative_components_rank_the_separating_component_first():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 10)
    A = rng.random((30, 4))
    A[labels == 1, 2] += 3  # component 2 fires for class 1
    for score in ("dprime", "auc"):
        out = discriminative_components(A, labels, top=2, score=score)
        assert set(out) == {0, 1, 2}
        assert out[1][0][0] == 2
    in_, out_ = A[labels == 1, 2], A[labels != 1, 2]
    d = (in_.mean() - out_.mean()) / np.sqrt((in_.var() + out_.var()) / 2)
    assert discriminative_components(A, labels)[1][0][1] == pytest.approx(d)
    assert discriminative_components(A, labels, score="auc")[1][0][1] == pytest.approx(1.0)


def test_decoder_on_real_secnn_activations(real_secnn):
    from core.taps import extract

    x = torch.randn(6, 1, 32, 64, generator=torch.Generator().manual_seed(0))
    acts = extract(real_secnn, x, ["block3"])["block3"].numpy()  # (6, 8, 4, 8)
    H = activation_matrix(time_activations(acts), n_frames=64)
    assert H.shape == (6, 8, 64) and H.min() >= 0
    X = nonnegative_target(x[:, 0].numpy())
    decoder = build_decoder("mel-triangular", n_mels=32, n_components=8)
    losses = train_decoder(decoder, H[:4], X[:4], epochs=3, progress=False)
    assert np.isfinite(losses).all() and (decoder.basis() >= 0).all()
    assert np.isfinite(reconstruction_error(decoder, H[4:], X[4:])["relative_error"])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_decoder_report_scores_every_flavour_and_the_baseline():
    from core.interpret.nmf import decoder_report

    H, X = toy_data(n=12)
    labels = np.repeat([0, 1], 2)
    report = decoder_report(H[:8], X[:8], H[8:], X[8:], labels, epochs=3, progress=False)
    assert set(report) == set(FLAVOURS) | {"spectrogram-nmf"}
    for row in report.values():
        assert row["mse"] >= 0 and row["relative_error"] >= 0
        assert set(row["discriminative"]) == {0, 1} and len(row["discriminative"][0]) == 3


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_decoders_from_cached_activations_saves_beside_the_checkpoint(tmp_path, real_secnn, real_audio_cfg):
    import soundfile as sf

    from core.cache import ArrayCache
    from core.checkpoint import load_checkpoint, save_checkpoint
    from core.datasets import ClipRecord
    from core.interpret.nmf import fit_decoders, load_nmf_basis

    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", real_secnn, real_audio_cfg, ["a", "b", "c"]))
    rng = np.random.default_rng(0)
    records = []
    for i in range(6):
        path = tmp_path / f"{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        records.append(ClipRecord(path.name, path, i % 3, "abc"[i % 3], 1))
    cache = ArrayCache(tmp_path / "cache")
    report = fit_decoders(loaded, records[:3], records[3:], tap="block2", epochs=2, progress=False, cache=cache,
                          flavours=["mel-gaussian"])
    assert set(report) == {"mel-gaussian", "spectrogram-nmf"}
    decoder, meta = load_decoder(loaded.folder, name="block2-mel-gaussian")
    assert decoder.n_components == 4 and meta["tap"] == "block2"
    assert load_nmf_basis(loaded.folder, name="block2-spectrogram-nmf")[0].shape == (32, 4)
    fit_decoders(loaded, records[:3], records[3:], tap="block2", epochs=1, progress=False, cache=cache,
                 flavours=["mel-gaussian"], save=False)
    assert cache.stats.hits == 2  # the second fit reads the activations from disk
