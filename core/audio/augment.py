"""Training augmentations: coloured noise at an SNR and time shift on waveforms, SpecAugment masks on
features, mixup on batches."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError

__all__ = ["NOISE_COLOURS", "AugmentConfig", "coloured_noise", "add_noise", "time_shift",
           "augment_waveform", "spec_augment", "mixup"]

# Power spectral density ~ 1 / f**beta: white 0, pink 1 (-3 dB/octave), brown 2 (-6 dB/octave).
NOISE_COLOURS = {"white": 0.0, "pink": 1.0, "brown": 2.0}


@dataclass(frozen=True)
class AugmentConfig:
    """Waveform augmentations used in training.

    Attributes
    ----------
    p_noise, p_shift : float in [0, 1]
        Probability of adding noise and of shifting, each drawn per clip.
    snr_db : float
        Signal-to-noise ratio of the added noise, in dB.
    colours : tuple of str
        Noise colours drawn from, uniformly.
    max_shift_fraction : float in [0, 1)
        Largest shift as a fraction of the clip's length.
    mixup_alpha : float >= 0
        Beta(alpha, alpha) parameter of mixup; 0 turns mixup off.
    time_masks, freq_masks : int >= 0
        SpecAugment (Park et al., 2019): this many time and frequency masks
        per clip, on the features; 0 turns them off.
    time_mask_max, freq_mask_max : int >= 1
        Widest mask, in frames and in mel bands; each width is drawn from
        0..max.
    """

    p_noise: float = 0.3
    p_shift: float = 0.3
    snr_db: float = 15.0
    colours: tuple[str, ...] = ("white", "pink", "brown")
    max_shift_fraction: float = 0.2
    mixup_alpha: float = 0.2
    time_masks: int = 0
    time_mask_max: int = 40
    freq_masks: int = 0
    freq_mask_max: int = 16

    def __post_init__(self):
        if self.time_masks < 0 or self.freq_masks < 0:
            raise InputError("time_masks, freq_masks", f"need counts >= 0, got {self.time_masks}, {self.freq_masks}")
        if self.time_mask_max < 1 or self.freq_mask_max < 1:
            raise InputError("time_mask_max, freq_mask_max",
                             f"need widths >= 1, got {self.time_mask_max}, {self.freq_mask_max}")


def coloured_noise(n_samples: int, *, colour: str = "white", rng: np.random.Generator,
                   n_channels: int | None = None) -> np.ndarray:
    """Gaussian noise shaped to a 1/f**beta power spectrum, unit RMS.

    Parameters
    ----------
    n_samples : int > 0
    colour : {"white", "pink", "brown"}
        Pink falls 3 dB per octave, brown 6 dB per octave.
    rng : np.random.Generator
    n_channels : int or None
        ``None`` gives shape (n_samples,); otherwise (n_channels, n_samples).

    Returns
    -------
    np.ndarray, float32, RMS 1 per channel
    """
    if colour not in NOISE_COLOURS:
        raise InputError("colour", f"unknown noise colour {colour!r}; use one of {sorted(NOISE_COLOURS)}")
    beta = NOISE_COLOURS[colour]
    shape = (n_samples,) if n_channels is None else (n_channels, n_samples)
    white = rng.standard_normal(shape)
    if beta == 0.0:
        noise = white
    else:
        spectrum = np.fft.rfft(white, axis=-1)
        f = np.fft.rfftfreq(n_samples)
        scale = np.zeros_like(f)
        scale[1:] = f[1:] ** (-beta / 2.0)  # amplitude ~ f^(-beta/2), so power ~ f^(-beta); no DC
        noise = np.fft.irfft(spectrum * scale, n=n_samples, axis=-1)
    rms = np.sqrt(np.mean(noise**2, axis=-1, keepdims=True))
    return (noise / np.maximum(rms, 1e-12)).astype(np.float32)


def add_noise(y: np.ndarray, *, snr_db: float = 15.0, colour: str = "white",
              rng: np.random.Generator) -> np.ndarray:
    """Add coloured noise so that signal power / noise power equals ``snr_db``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
    snr_db : float, in dB
    colour : {"white", "pink", "brown"}
    rng : np.random.Generator

    Returns
    -------
    np.ndarray [shape=y.shape], float32. A silent ``y`` is returned unchanged
    (no SNR is defined for it).
    """
    signal_power = float(np.mean(y.astype(np.float64) ** 2))
    if signal_power == 0.0:
        return y.astype(np.float32, copy=True)
    noise = coloured_noise(y.shape[-1], colour=colour, rng=rng,
                           n_channels=None if y.ndim == 1 else y.shape[0])
    noise_rms = np.sqrt(signal_power / 10.0 ** (snr_db / 10.0))
    return (y + noise_rms * noise).astype(np.float32)


def time_shift(y: np.ndarray, *, max_fraction: float = 0.2, rng: np.random.Generator) -> np.ndarray:
    """Roll the clip by a random offset of up to ``max_fraction`` of its length, either way.

    Returns
    -------
    np.ndarray [shape=y.shape]
    """
    limit = int(max_fraction * y.shape[-1])
    shift = int(rng.integers(-limit, limit + 1)) if limit > 0 else 0
    return np.roll(y, shift, axis=-1)


def augment_waveform(y: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """Apply the training augmentations, each with its probability.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
    rng : np.random.Generator
    cfg : AugmentConfig

    Returns
    -------
    np.ndarray [shape=y.shape], float32
    """
    if rng.random() < cfg.p_shift:
        y = time_shift(y, max_fraction=cfg.max_shift_fraction, rng=rng)
    if rng.random() < cfg.p_noise:
        colour = cfg.colours[int(rng.integers(len(cfg.colours)))]
        y = add_noise(y, snr_db=cfg.snr_db, colour=colour, rng=rng)
    return y.astype(np.float32, copy=False)


def spec_augment(x: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """SpecAugment's masks: ``cfg.time_masks`` spans of frames and ``cfg.freq_masks`` of bands set to the mean.

    Parameters
    ----------
    x : np.ndarray [shape=(..., n_mels, n_frames)]
        Features; not changed (a masked copy is returned).
    rng : np.random.Generator
    cfg : AugmentConfig

    Returns
    -------
    np.ndarray [shape=x.shape]; ``x`` itself when no mask is asked for.

    Examples
    --------
    >>> cfg = AugmentConfig(time_masks=1, time_mask_max=3)
    >>> x = np.arange(12.0).reshape(2, 6)
    >>> y = spec_augment(x, np.random.default_rng(1), cfg)
    >>> int((y != x).any(axis=0).sum()) <= 3, y.shape
    (True, (2, 6))
    """
    if cfg.time_masks == 0 and cfg.freq_masks == 0:
        return x
    out = np.array(x, copy=True)
    fill = float(x.mean())
    n_mels, n_frames = x.shape[-2:]
    for _ in range(cfg.time_masks):
        width = int(rng.integers(0, min(cfg.time_mask_max, n_frames) + 1))
        start = int(rng.integers(0, n_frames - width + 1))
        out[..., start:start + width] = fill
    for _ in range(cfg.freq_masks):
        width = int(rng.integers(0, min(cfg.freq_mask_max, n_mels) + 1))
        start = int(rng.integers(0, n_mels - width + 1))
        out[..., start:start + width, :] = fill
    return out


def mixup(x_a, x_b, lam: float):
    """Convex mix ``lam * x_a + (1 - lam) * x_b`` (inputs, or one-hot targets).

    Works on numpy arrays and torch tensors alike; draw ``lam`` from
    ``rng.beta(alpha, alpha)``.
    """
    if not 0.0 <= lam <= 1.0:
        raise InputError("lam", f"mixup weight must be in [0, 1], got {lam}")
    return lam * x_a + (1.0 - lam) * x_b
