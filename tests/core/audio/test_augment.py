import numpy as np
import pytest
from scipy import signal

from core.audio.augment import (AugmentConfig, add_noise, augment_waveform, coloured_noise, mixup, spec_augment,
                          time_shift)
from core.errors import InputError

SR = 44100


def octave_slope_db(noise):
    """Power change per octave from a Welch PSD, fitted over 100 Hz to 10 kHz."""
    f, psd = signal.welch(noise, fs=SR, nperseg=8192)
    keep = (f >= 100) & (f <= 10000)
    slope, _ = np.polyfit(np.log2(f[keep]), 10 * np.log10(psd[keep]), 1)
    return slope


@pytest.mark.parametrize("colour,expected", [("white", 0.0), ("pink", -3.01), ("brown", -6.02)])
def test_noise_colours_fall_per_octave(colour, expected):
    noise = coloured_noise(SR * 10, colour=colour, rng=np.random.default_rng(0))
    assert np.sqrt(np.mean(noise**2)) == pytest.approx(1.0, rel=1e-4)
    assert octave_slope_db(noise) == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize("colour", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr_db", [0.0, 15.0, 30.0])
def test_snr_of_noised_clip(colour, snr_db):
    rng = np.random.default_rng(1)
    y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(SR * 2) / SR)).astype(np.float32)
    noisy = add_noise(y, snr_db=snr_db, colour=colour, rng=rng)
    noise = noisy - y
    measured = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean(noise.astype(np.float64) ** 2))
    assert abs(measured - snr_db) < 0.5


def test_noise_on_stereo_and_silence():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((2, 1000)).astype(np.float32)
    assert add_noise(y, snr_db=10, rng=rng).shape == (2, 1000)
    silent = np.zeros(1000, np.float32)
    np.testing.assert_array_equal(add_noise(silent, snr_db=10, rng=rng), silent)


def test_unknown_colour_refused():
    with pytest.raises(InputError, match="colour"):
        coloured_noise(100, colour="purple", rng=np.random.default_rng(0))


def test_time_shift_is_a_roll_within_limit():
    y = np.arange(100, dtype=np.float32)
    for seed in range(20):
        shifted = time_shift(y, max_fraction=0.2, rng=np.random.default_rng(seed))
        k = int(np.argmax(shifted == 0))
        assert min(k, 100 - k) <= 20
        np.testing.assert_array_equal(np.roll(shifted, -k), y)


def test_augment_probabilities():
    rng = np.random.default_rng(3)
    y = np.sin(np.arange(4000) / 10).astype(np.float32)
    changed = sum(not np.array_equal(augment_waveform(y, rng, AugmentConfig()), y) for _ in range(400))
    assert 0.4 * 400 < changed < 0.6 * 400  # 1 - 0.7 * 0.7 = 0.51
    never = AugmentConfig(p_noise=0.0, p_shift=0.0)
    assert all(np.array_equal(augment_waveform(y, rng, never), y) for _ in range(20))


def test_mixup():
    a, b = np.ones(3), np.zeros(3)
    np.testing.assert_allclose(mixup(a, b, 0.25), 0.25)
    with pytest.raises(InputError):
        mixup(a, b, 1.5)


def test_spec_augment_masks_spans_no_wider_than_asked_and_leaves_the_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 32, 100)).astype(np.float32)
    before = x.copy()
    cfg = AugmentConfig(time_masks=2, time_mask_max=10, freq_masks=1, freq_mask_max=5)
    widest_t = widest_f = 0
    for _ in range(200):
        y = spec_augment(x, rng, cfg)
        assert y.shape == x.shape
        changed = y != x
        frames = np.flatnonzero(changed.all(axis=(0, 1)))  # a masked frame is masked in every band
        bands = np.flatnonzero(changed.all(axis=(0, 2)))
        assert len(frames) <= 20 and len(bands) <= 5
        assert np.allclose(y[changed], x.mean())  # masked cells hold the clip's mean
        # every changed cell lies in a masked frame or a masked band
        assert not (changed & ~np.isin(np.arange(100), frames)[None, None] & ~np.isin(np.arange(32), bands)[None, :, None]).any()
        widest_t, widest_f = max(widest_t, len(frames)), max(widest_f, len(bands))
    assert widest_t > 10 and widest_f == 5  # the widths are drawn up to the maximum
    np.testing.assert_array_equal(x, before)
    assert spec_augment(x, rng, AugmentConfig()) is x  # off by default


@pytest.mark.parametrize("bad", [dict(time_masks=-1), dict(freq_masks=-2), dict(time_mask_max=0)])
def test_bad_mask_settings_are_refused(bad):
    with pytest.raises(InputError):
        AugmentConfig(**bad)
