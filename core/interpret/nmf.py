"""NMF-style decoders: read a tap's activations back as a mel spectrogram, ``X ≈ W H + b``.

A tap's activations become ``H``, a non-negative ``(K, T)`` time-activation
matrix at the spectrogram's frame rate; a decoder learns a non-negative basis
``W`` ``(n_mels, K)`` and a non-negative background spectrum ``b`` so that
``W H + b`` reconstructs the clip's mel spectrogram. Column ``k`` of ``W`` is
then what channel ``k`` adds to the sound when it fires (a spectral
template), and ``H[k]`` when it fires.

From activations to ``H`` (:func:`activation_matrix`)
    * conv tap ``(C, F', T')``: mean over the frequency axis ``F'``, so ``K = C``;
    * token tap ``(n_special + P, D)``: special tokens dropped, patches put on
      their ``(n_freq, n_time)`` grid, mean over ``n_freq``, so ``K = D``;
    * then linear interpolation along time from ``T'`` to ``n_frames``, and
      ``max(0, .)``: a no-op for conv taps (they follow a ReLU), a clip for
      tokens, whose values are signed.
    Each decoder divides ``H`` by a fixed per-channel scale, ``K`` times the
    channel's mean on the training clips.

The target ``X`` (:func:`nonnegative_target`): the model's standardised log-mel,
min-max scaled per clip to [0, 1] (0 = the clip's floor).

Flavours of ``W`` (all non-negative by construction):
    * ``"nonneg-linear"`` (:class:`NonNegLinear`): free, ``W = softplus(V)``;
    * ``"mel-triangular"`` (:class:`MelTriangular`): one triangular filter per
      channel with a learnable centre, half-width and gain, in mel-band units;
    * ``"mel-gaussian"`` (:class:`MelGaussian`): one Gaussian filter per channel,
      likewise.
    The filter banks' centres start at the band each channel's activation
    correlates with most (:meth:`Moments.band_correlation`), not at the
    channel's index (conv channels have no frequency order), and a fading tail
    gives them a gradient from every band early in training.

Training (:func:`train_decoder`) is full-batch Adam on sums over all training
frames (:class:`Moments`), with early stopping on held-out clips. Scores
(:func:`decoder_clip_errors`, :func:`error_interval`) sit beside two
baselines that use nothing of the clip (the training-mean spectrum, and zeros,
whose relative error is 1) and beside classic NMF of the spectrogram
(:func:`fit_spectrogram_nmf`), an oracle: its activations are optimised on the
very clip it reconstructs.

Decoders are saved beside a checkpoint as ``decoders/<name>.safetensors`` and
``decoders/<name>.json`` (:func:`save_decoder`, :func:`load_decoder`); the
dataset-level fitting and report are in :mod:`core.interpret.decoder_fit`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from core.data.activations import time_activations  # re-exported: decoders read it from here
from core.audio.features import AudioConfig
from core.errors import InputError

__all__ = [
    "FLAVOURS",
    "ORACLE",
    "DECODER_FOLDER",
    "time_activations",
    "activation_matrix",
    "nonnegative_target",
    "Moments",
    "Decoder",
    "NonNegLinear",
    "MelTriangular",
    "MelGaussian",
    "bands_to_hz",
    "build_decoder",
    "train_decoder",
    "clip_errors",
    "decoder_clip_errors",
    "relative_error",
    "error_interval",
    "difference_interval",
    "fit_spectrogram_nmf",
    "spectrogram_nmf_activations",
    "centre_spread",
    "selective_channels",
    "clip_activations",
    "discriminative_channels",
    "save_decoder",
    "load_decoder",
    "save_nmf_basis",
    "load_nmf_basis",
]

DECODER_FOLDER = "decoders"


# -- activations and target --------------------------------------------------------------


def activation_matrix(time_acts: np.ndarray, *, n_frames: int) -> np.ndarray:
    """``H``: time activations stretched to the spectrogram's frame rate, negatives clipped.

    Parameters
    ----------
    time_acts : np.ndarray [shape=(N, K, T')]
        From :func:`time_activations`.
    n_frames : int > 0

    Returns
    -------
    np.ndarray [shape=(N, K, n_frames)], float32, >= 0
    """
    h = torch.as_tensor(np.asarray(time_acts), dtype=torch.float32)
    if h.ndim != 3:
        raise InputError("time activations", f"expected (N, K, T), got shape {tuple(h.shape)}")
    if h.shape[-1] != n_frames:
        h = F.interpolate(h, size=n_frames, mode="linear", align_corners=False)
    return torch.relu(h).numpy()


def nonnegative_target(X: np.ndarray) -> np.ndarray:
    """The decoders' target: each spectrogram min-max scaled to [0, 1].

    Parameters
    ----------
    X : np.ndarray [shape=(N, n_mels, n_frames)]
        Standardised log-mel (the model input).

    Returns
    -------
    np.ndarray [shape=(N, n_mels, n_frames)], float32 in [0, 1]
    """
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 3:
        raise InputError("spectrograms", f"expected (N, n_mels, n_frames), got shape {X.shape}")
    low = X.min(axis=(1, 2), keepdims=True)
    span = X.max(axis=(1, 2), keepdims=True) - low
    return np.where(span > 0, (X - low) / np.where(span > 0, span, 1), 0).astype(np.float32)


# -- second-order statistics -------------------------------------------------------------


@dataclass
class Moments:
    """Sums over every frame of many clips: all the squared error of ``X ≈ W H + b`` needs.

    With ``h_t`` ``(K,)`` and ``x_t`` ``(n_mels,)`` the activations and the
    target at frame ``t`` (all frames of all clips), the sums are
    ``hh = Σ h hᵀ``, ``xh = Σ x hᵀ``, ``h_sum = Σ h``, ``x_sum = Σ x``,
    ``xx_band = Σ x²`` per band and ``count``, the number of frames. Training
    on them costs ``O(n_mels K²)`` a step, whatever the number of clips.

    Attributes
    ----------
    hh : Tensor [shape=(K, K)], float64
    xh : Tensor [shape=(n_mels, K)], float64
    h_sum : Tensor [shape=(K,)], float64
    x_sum : Tensor [shape=(n_mels,)], float64
    xx_band : Tensor [shape=(n_mels,)], float64
    count : int
    """

    hh: torch.Tensor
    xh: torch.Tensor
    h_sum: torch.Tensor
    x_sum: torch.Tensor
    xx_band: torch.Tensor
    count: int

    @classmethod
    def of(cls, H: np.ndarray, X: np.ndarray, *, chunk: int = 32) -> "Moments":
        """The sums of a set of clips.

        Parameters
        ----------
        H : np.ndarray [shape=(N, K, T)], >= 0
        X : np.ndarray [shape=(N, n_mels, T)]
        chunk : int > 0
            Clips summed at a time.
        """
        H, X = _check_pair(H, X)
        K, M = H.shape[1], X.shape[1]
        out = cls(torch.zeros(K, K, dtype=torch.float64), torch.zeros(M, K, dtype=torch.float64),
                  torch.zeros(K, dtype=torch.float64), torch.zeros(M, dtype=torch.float64),
                  torch.zeros(M, dtype=torch.float64), 0)
        for i in range(0, len(H), chunk):
            h = H[i : i + chunk].double().transpose(0, 1).reshape(K, -1)  # (K, n * T)
            x = X[i : i + chunk].double().transpose(0, 1).reshape(M, -1)  # (M, n * T)
            out.hh += h @ h.T
            out.xh += x @ h.T
            out.h_sum += h.sum(dim=1)
            out.x_sum += x.sum(dim=1)
            out.xx_band += (x**2).sum(dim=1)
            out.count += h.shape[1]
        return out

    def to(self, dtype: torch.dtype) -> "Moments":
        """The same sums in another dtype."""
        return Moments(self.hh.to(dtype), self.xh.to(dtype), self.h_sum.to(dtype), self.x_sum.to(dtype),
                       self.xx_band.to(dtype), self.count)

    @property
    def xx(self) -> float:
        """``Σ x²`` over every cell: the squared norm of the targets."""
        return float(self.xx_band.sum())

    def mean_spectrum(self) -> torch.Tensor:
        """Tensor [shape=(n_mels,)]: the mean of ``X`` over every frame (the training-mean baseline)."""
        return self.x_sum / max(self.count, 1)

    def band_correlation(self) -> torch.Tensor:
        """Tensor [shape=(K, n_mels)]: Pearson correlation of each channel's activation with each band, over frames.

        Dead channels and silent bands correlate 0.
        """
        n = max(self.count, 1)
        mean_h, mean_x = self.h_sum / n, self.x_sum / n
        cov = self.xh.T / n - mean_h[:, None] * mean_x[None, :]  # (K, M)
        var_h = (torch.diagonal(self.hh) / n - mean_h**2).clamp(min=0)
        var_x = (self.xx_band / n - mean_x**2).clamp(min=0)
        scale = torch.sqrt(var_h[:, None] * var_x[None, :])
        return torch.where(scale > 1e-12, cov / scale.clamp(min=1e-12), torch.zeros_like(cov))


# -- decoders ----------------------------------------------------------------------------


def _inverse_softplus(y: torch.Tensor | float) -> torch.Tensor:
    y = torch.as_tensor(y, dtype=torch.float32).clamp(min=1e-4)
    return y + torch.log(-torch.expm1(-y))


class Decoder(nn.Module):
    """Base decoder: ``X_hat = W (H / h_scale) + b`` with ``W`` ``(n_mels, K)`` and ``b`` ``(n_mels,)`` non-negative.

    ``b``, the background, is a spectrum constant over time; it starts at the
    training-mean spectrum, so a decoder whose channels add nothing scores the
    training-mean baseline, and the filters ``W`` are what the channels add
    above it.

    Parameters
    ----------
    n_mels : int > 0
    n_components : int > 0
        ``K``, the tap's channels.

    Attributes
    ----------
    flavour : str
    h_scale : Tensor [shape=(K,)]
        Fixed per-channel divisor of ``H``: ``K`` times the channel's mean on
        the training clips (dead channels: 1).
    train_mean : Tensor [shape=(n_mels,)]
        The training clips' mean spectrum (the baseline), kept with the decoder.
    """

    flavour = ""

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__()
        if n_mels < 1 or n_components < 1:
            raise InputError("decoder", f"n_mels and n_components must be > 0, got {n_mels}, {n_components}")
        self.n_mels = n_mels
        self.n_components = n_components
        self.register_buffer("h_scale", torch.ones(n_components))
        self.register_buffer("train_mean", torch.zeros(n_mels))
        self.raw_background = nn.Parameter(_inverse_softplus(torch.full((n_mels,), 0.1)))

    def basis(self, *, tail: float = 0.0) -> torch.Tensor:
        """Tensor [shape=(n_mels, K)], >= 0: column ``k`` is channel ``k``'s spectral template.

        ``tail`` > 0 (filter banks, during the first steps of training only)
        adds a long, low tail to each filter so that its centre gets a gradient
        from every band.
        """
        raise NotImplementedError

    def background(self) -> torch.Tensor:
        """Tensor [shape=(n_mels,)], >= 0."""
        return F.softplus(self.raw_background)

    @torch.no_grad()
    def initialise(self, stats: Moments) -> None:
        """Set ``h_scale``, ``train_mean`` and the background from the training clips' sums."""
        mean = (stats.h_sum / max(stats.count, 1)).float()
        self.h_scale.copy_(torch.where(mean > 0, mean * self.n_components, torch.ones_like(mean)))
        self.train_mean.copy_(stats.mean_spectrum().float())
        self.raw_background.copy_(_inverse_softplus(self.train_mean))

    def forward(self, H: torch.Tensor) -> torch.Tensor:
        """Reconstruct spectrograms.

        Parameters
        ----------
        H : Tensor [shape=(B, K, T)]

        Returns
        -------
        Tensor [shape=(B, n_mels, T)]
        """
        if H.ndim != 3 or H.shape[1] != self.n_components:
            raise InputError("H", f"expected (B, {self.n_components}, T), got shape {tuple(H.shape)}")
        recon = torch.einsum("mk,bkt->bmt", self.basis(), H / self.h_scale[:, None])
        return recon + self.background()[None, :, None]

    def squared_error(self, stats: Moments, *, tail: float = 0.0) -> torch.Tensor:
        """``Σ (X - X_hat)²`` over every cell of the clips summed in ``stats``, from the sums alone.

        Computed in the dtype of ``stats`` (:meth:`Moments.to` float32 for speed while training).
        """
        dtype = stats.hh.dtype
        W = (self.basis(tail=tail) / self.h_scale[None, :]).to(dtype)  # (M, K), acts on raw H
        b = self.background().to(dtype)
        fit = (W * stats.xh).sum() + b @ stats.x_sum  # <X, X_hat>
        energy = ((W @ stats.hh) * W).sum() + 2 * b @ (W @ stats.h_sum) + stats.count * (b @ b)  # ||X_hat||²
        return stats.xx - 2 * fit + energy

    def peaks(self) -> np.ndarray:
        """np.ndarray [shape=(K,)], float: the band where each filter peaks."""
        with torch.no_grad():
            return self.basis().argmax(dim=0).double().numpy()

    def extra_config(self) -> dict:
        return {}


class NonNegLinear(Decoder):
    """Free non-negative filters: ``W = softplus(V)``, starting small (0.01 to 0.02 per cell)."""

    flavour = "nonneg-linear"

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components)
        start = 0.01 + 0.01 * torch.rand(n_mels, n_components)
        self.raw = nn.Parameter(_inverse_softplus(start))

    def basis(self, *, tail: float = 0.0) -> torch.Tensor:
        return F.softplus(self.raw)


class _FilterBank(Decoder):
    """Shared by the mel filter banks: ``W[m, k] = gain_k * shape((m - centre_k) / width_k)``.

    Positions are in mel-band units (the bands are evenly spaced in mel, so a
    band index is a mel position): band ``m`` sits at ``m``, centres are kept
    in ``[0, n_mels - 1]``. Centres start evenly spaced (channel ``k`` at
    ``k * spacing``), which means nothing for a conv channel, so
    :meth:`initialise` moves each to the band its channel's activation
    correlates with most. During the first training steps a long tail
    ``tail * exp(-|m - centre| / (n_mels / 4))`` is added to every filter, so
    that a centre far from its band still gets a gradient; drawn and scored
    filters never have it.
    """

    def __init__(self, *, n_mels: int, n_components: int, width: float):
        super().__init__(n_mels=n_mels, n_components=n_components)
        top = n_mels - 1
        self.spacing = top / max(n_components - 1, 1)
        self.register_buffer("positions", torch.arange(n_mels, dtype=torch.float32))
        start = torch.linspace(0, top, n_components) if n_components > 1 else torch.tensor([top / 2])
        self.centre = nn.Parameter(start.float())  # in bands; kept in range by clamp_centres
        self.raw_width = nn.Parameter(torch.full((n_components,), float(_inverse_softplus(width))))
        self.raw_gain = nn.Parameter(torch.full((n_components,), float(_inverse_softplus(0.05))))

    min_width = 1.0

    def gains(self) -> torch.Tensor:
        """Tensor [shape=(K,)], > 0."""
        return F.softplus(self.raw_gain)

    def centres(self) -> torch.Tensor:
        """Tensor [shape=(K,)]: filter centres in mel-band units, in ``[0, n_mels - 1]``."""
        return self.centre

    def widths(self) -> torch.Tensor:
        """Tensor [shape=(K,)], >= ``min_width``: half-widths (triangles) or sigmas (Gaussians), in bands."""
        return self.min_width + F.softplus(self.raw_width)

    @torch.no_grad()
    def clamp_centres(self) -> None:
        self.centre.clamp_(0.0, self.n_mels - 1.0)

    @torch.no_grad()
    def initialise(self, stats: Moments, *, centres: np.ndarray | None = None) -> None:
        """As :meth:`Decoder.initialise`, and each centre at the band its channel correlates with most.

        Parameters
        ----------
        stats : Moments
        centres : np.ndarray [shape=(K,)] or None
            Start here instead (bands), e.g. to test recovery from a wrong start.
        """
        super().initialise(stats)
        if centres is None:
            centres = stats.band_correlation().argmax(dim=1).numpy()
        self.centre.copy_(torch.as_tensor(np.asarray(centres, dtype=np.float32)))
        self.clamp_centres()

    def shape(self, z: torch.Tensor) -> torch.Tensor:
        """The filter's profile at ``z = (m - centre) / width``, 1 at the centre."""
        raise NotImplementedError

    def basis(self, *, tail: float = 0.0) -> torch.Tensor:
        distance = self.positions[:, None] - self.centres()[None, :]  # (n_mels, K)
        widths = self.widths() + tail * self.n_mels  # (K,): wider while the tail fades
        return self.gains()[None, :] * self.shape(distance / widths[None, :])

    def peaks(self) -> np.ndarray:
        return self.centres().detach().double().numpy()

    def centres_hz(self, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
        """np.ndarray [shape=(K,)]: filter centres in Hz (band positions mapped through the mel scale)."""
        if cfg.n_mels != self.n_mels:
            raise InputError("audio config", f"{cfg.n_mels} mel bands; the decoder has {self.n_mels}")
        return bands_to_hz(self.centres().detach().double().numpy(), cfg)


class MelTriangular(_FilterBank):
    """Triangular filters with learnable centres and half-widths, always triangular and in range.

    ``W[m, k] = gain_k * max(0, 1 - |m - centre_k| / half_width_k)``, with
    ``half_width_k = 1 + softplus(v_k)`` (at least one band, so a filter
    never falls between bands); half-widths start at 4 bands.
    """

    flavour = "mel-triangular"

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components, width=3.0)

    def half_widths(self) -> torch.Tensor:
        """Tensor [shape=(K,)], >= 1: half the base of each triangle, in bands."""
        return self.widths()

    def shape(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(1 - z.abs())

    def extra_config(self) -> dict:
        return {"centres_band": self.centres().tolist(), "half_widths_band": self.half_widths().tolist()}


class MelGaussian(_FilterBank):
    """Gaussian filters with learnable centres and widths.

    ``W[m, k] = gain_k * exp(-(m - centre_k)² / (2 sigma_k²))``, with
    ``sigma_k = 0.5 + softplus(v_k)`` bands; sigmas start at 2 bands.
    """

    flavour = "mel-gaussian"
    min_width = 0.5

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components, width=1.5)

    def sigmas(self) -> torch.Tensor:
        """Tensor [shape=(K,)]: standard deviations in bands."""
        return self.widths()

    def shape(self, z: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * z**2)

    def extra_config(self) -> dict:
        return {"centres_band": self.centres().tolist(), "sigmas_band": self.sigmas().tolist()}


FLAVOURS = {cls.flavour: cls for cls in (NonNegLinear, MelTriangular, MelGaussian)}
ORACLE = "spectrogram-nmf"


def bands_to_hz(bands: np.ndarray, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Fractional mel-band positions (0 to ``n_mels - 1``) to Hz, as :func:`core.audio.features.mel_frequencies_hz`."""
    mels = librosa.hz_to_mel(np.array([cfg.fmin_hz, cfg.fmax]))
    band_mels = np.linspace(mels[0], mels[1], cfg.n_mels + 2)[1:-1]
    return librosa.mel_to_hz(np.interp(np.asarray(bands, dtype=np.float64), np.arange(cfg.n_mels), band_mels))


def build_decoder(flavour: str, *, n_mels: int, n_components: int, seed: int = 0) -> Decoder:
    """A fresh decoder of one flavour.

    Parameters
    ----------
    flavour : {"nonneg-linear", "mel-triangular", "mel-gaussian"}
    n_mels, n_components : int > 0
    seed : int
        Seeds the initialisation.

    Returns
    -------
    Decoder
    """
    if flavour not in FLAVOURS:
        raise InputError("flavour", f"{flavour!r} is not one of {', '.join(FLAVOURS)}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return FLAVOURS[flavour](n_mels=n_mels, n_components=n_components)


def _check_pair(H: np.ndarray, X: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    H = torch.as_tensor(np.asarray(H), dtype=torch.float32)
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    if H.ndim != 3 or X.ndim != 3 or H.shape[0] != X.shape[0] or H.shape[2] != X.shape[2]:
        raise InputError("H, X", f"need (N, K, T) and (N, n_mels, T), got {tuple(H.shape)} and {tuple(X.shape)}")
    if (H < 0).any():
        raise InputError("H", "activations must be non-negative (see activation_matrix)")
    return H, X


def train_decoder(
    decoder: Decoder,
    train: Moments,
    val: Moments,
    *,
    max_steps: int = 800,
    warmup: int = 150,
    patience: int = 100,
    lr: float = 0.1,
    centre_lr: float = 0.3,
    tail: float = 1.0,
    eval_every: int = 10,
    initialise: bool = True,
    progress: bool = False,
) -> dict:
    """Fit a decoder by full-batch Adam on the training clips' squared error, stopping early on held-out clips.

    The loss is ``||X - X_hat||² / ||X||²`` over the training clips, computed
    from their :class:`Moments`. Every ``eval_every`` steps the held-out
    relative error ``||X - X_hat|| / ||X||`` of ``val`` is measured; the best
    state after the warm-up is kept, and training stops when it has not
    improved for ``patience`` steps. During the warm-up (filter banks) each
    filter has a long tail, fading linearly from ``tail`` to 0, so centres
    get a gradient from every band; the learning rate then decays linearly to
    a tenth.

    Parameters
    ----------
    decoder : Decoder
    train, val : Moments
        Training and held-out (validation) clips.
    max_steps, warmup, patience, eval_every : int > 0
    lr : float > 0
        Adam's step for the raw (softplus) parameters.
    centre_lr : float > 0
        Adam's step for filter centres, in bands.
    tail : float >= 0
        Height of the warm-up tail, relative to the filter's peak.
    initialise : bool
        Call ``decoder.initialise(train)`` first (set False after your own).
    progress : bool
        A tqdm bar over steps.

    Returns
    -------
    dict
        ``"steps"`` run, ``"best_step"``, ``"stopped_early"``,
        ``"val_relative_error"`` (best), ``"history"``: ``[(step, train, val)]``
        relative errors.
    """
    if train.xh.shape != (decoder.n_mels, decoder.n_components) or val.xh.shape != train.xh.shape:
        raise InputError("moments", f"the decoder is {decoder.n_mels} bands x {decoder.n_components} components")
    if initialise:
        decoder.initialise(train)
    bank = isinstance(decoder, _FilterBank)
    centre = [decoder.centre] if bank else []
    rest = [p for p in decoder.parameters() if all(p is not c for c in centre)]
    groups = [{"params": rest, "lr": lr}] + ([{"params": centre, "lr": centre_lr}] if bank else [])
    optimiser = torch.optim.Adam(groups)
    warmup = warmup if bank else 0
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 1.0 if s < warmup else max(0.1, 1 - 0.9 * (s - warmup) / max(max_steps - warmup, 1)))
    train_norm, val_norm = max(train.xx, 1e-12), max(val.xx, 1e-12)
    fast = train.to(torch.float32)  # the loss's gradient; errors are measured in float64
    best, best_step, best_state, history = math.inf, -1, None, []
    decoder.train()
    bar = tqdm(range(max_steps), desc=f"decoder {decoder.flavour}", disable=not progress, leave=False)
    step = 0
    for step in bar:
        fade = tail * max(0.0, 1 - step / warmup) if warmup else 0.0
        loss = decoder.squared_error(fast, tail=fade) / train_norm
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        decay.step()
        if bank:
            decoder.clamp_centres()
        if step % eval_every == eval_every - 1 or step == max_steps - 1:
            with torch.no_grad():
                val_error = math.sqrt(max(float(decoder.squared_error(val)), 0.0) / val_norm)
            history.append((step + 1, math.sqrt(max(loss.item(), 0.0)), val_error))
            bar.set_postfix(val=f"{val_error:.4f}")
            if step >= warmup and val_error < best:
                best, best_step = val_error, step + 1
                best_state = {k: v.detach().clone() for k, v in decoder.state_dict().items()}
            elif step >= warmup and step + 1 - best_step >= patience:
                break
    if best_state is not None:
        decoder.load_state_dict(best_state)
    decoder.eval()
    return {"steps": step + 1, "best_step": best_step, "stopped_early": step + 1 < max_steps,
            "val_relative_error": best, "history": history}


# -- errors, baselines and their intervals -----------------------------------------------


def clip_errors(X: np.ndarray, X_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per clip, the squared error and the squared norm of the target.

    Parameters
    ----------
    X, X_hat : np.ndarray [shape=(N, n_mels, T)]
        ``X_hat`` may also be ``(n_mels,)`` (one spectrum for every frame) or a scalar.

    Returns
    -------
    errors, norms : np.ndarray [shape=(N,)], float64
        ``Σ (X - X_hat)²`` and ``Σ X²`` per clip.
    """
    X = np.asarray(X, dtype=np.float64)
    X_hat = np.asarray(X_hat, dtype=np.float64)
    if X_hat.ndim == 1:
        X_hat = X_hat[None, :, None]
    return ((X - X_hat) ** 2).sum(axis=(1, 2)), (X**2).sum(axis=(1, 2))


def decoder_clip_errors(decoder: Decoder, H: np.ndarray, X: np.ndarray, *, chunk: int = 32):
    """:func:`clip_errors` of a decoder's reconstructions, a chunk of clips at a time."""
    H, X = _check_pair(H, X)
    errors, norms = [], []
    with torch.no_grad():
        for i in range(0, len(H), chunk):
            e, n = clip_errors(X[i : i + chunk].numpy(), decoder(H[i : i + chunk]).numpy())
            errors.append(e)
            norms.append(n)
    return np.concatenate(errors), np.concatenate(norms)


def relative_error(errors: np.ndarray, norms: np.ndarray) -> float:
    """``sqrt(Σ errors / Σ norms)``: ``||X - X_hat||_F / ||X||_F`` over all the clips."""
    return float(np.sqrt(np.sum(errors) / max(np.sum(norms), 1e-12)))


def _ratio(errors, norms, axis=-1):
    return np.sqrt(np.sum(errors, axis=axis) / np.maximum(np.sum(norms, axis=axis), 1e-12))


def _difference(errors_a, errors_b, norms, axis=-1):
    return _ratio(errors_a, norms, axis) - _ratio(errors_b, norms, axis)


def error_interval(errors: np.ndarray, norms: np.ndarray, *, confidence: float = 0.95, n_resamples: int = 2000,
                   seed: int = 0) -> tuple[float, float, float]:
    """The relative error over clips and a bootstrap interval (clips resampled, percentile method).

    Parameters
    ----------
    errors, norms : np.ndarray [shape=(N,)]
        From :func:`clip_errors`.
    confidence : float in (0, 1)
    n_resamples : int > 0
    seed : int

    Returns
    -------
    (value, low, high) : float
    """
    from scipy.stats import bootstrap

    value = relative_error(errors, norms)
    if len(errors) < 2 or np.allclose(_ratio(errors[:, None], norms[:, None], axis=1), value):
        return value, value, value  # one clip, or every clip scores the same: no spread to resample
    ci = bootstrap((errors, norms), _ratio, paired=True, vectorized=True, confidence_level=confidence,
                   n_resamples=n_resamples, method="percentile", rng=np.random.default_rng(seed)).confidence_interval
    return value, float(ci.low), float(ci.high)


def difference_interval(errors_a: np.ndarray, errors_b: np.ndarray, norms: np.ndarray, *, confidence: float = 0.95,
                        n_resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Relative error of A minus that of B on the same clips, with a paired bootstrap interval.

    A ``high`` below 0 means A beats B on these clips (at the given confidence).

    Returns
    -------
    (value, low, high) : float
    """
    from scipy.stats import bootstrap

    value = relative_error(errors_a, norms) - relative_error(errors_b, norms)
    if len(norms) < 2:
        return value, value, value
    ci = bootstrap((errors_a, errors_b, norms), _difference, paired=True, vectorized=True,
                   confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                   rng=np.random.default_rng(seed)).confidence_interval
    return value, float(ci.low), float(ci.high)


# -- classic NMF: the oracle -------------------------------------------------------------


def _frames(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or (X < 0).any():
        raise InputError("spectrograms", "need non-negative (N, n_mels, n_frames); see nonnegative_target")
    return X.transpose(0, 2, 1).reshape(-1, X.shape[1])  # (N * T, n_mels): frames as samples


def fit_spectrogram_nmf(X: np.ndarray, *, n_components: int, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """Classic NMF of the spectrograms themselves.

    It is an oracle, not a baseline: its activations are optimised on each
    clip it reconstructs (:func:`spectrogram_nmf_activations`), so it bounds
    from above what any ``K``-component non-negative reconstruction can do;
    the decoders must take their activations from the model.

    Parameters
    ----------
    X : np.ndarray [shape=(N, n_mels, n_frames)], >= 0
        Frames of all clips are the samples.
    n_components : int > 0
    seed : int
    max_iter : int > 0

    Returns
    -------
    np.ndarray [shape=(n_mels, n_components)], >= 0
        The basis ``W``.
    """
    from sklearn.decomposition import NMF

    model = NMF(n_components=n_components, init="nndsvda", random_state=seed, max_iter=max_iter)
    model.fit(_frames(X))
    return model.components_.T.astype(np.float32)  # (n_mels, K)


def spectrogram_nmf_activations(X: np.ndarray, basis: np.ndarray, *, max_iter: int = 200) -> np.ndarray:
    """Activations of a fixed NMF basis, optimised on each clip (what makes NMF an oracle).

    Parameters
    ----------
    X : np.ndarray [shape=(N, n_mels, n_frames)], >= 0
    basis : np.ndarray [shape=(n_mels, K)]
    max_iter : int > 0

    Returns
    -------
    np.ndarray [shape=(N, K, n_frames)], >= 0
    """
    from sklearn.decomposition import non_negative_factorization

    N, n_mels, T = np.shape(X)
    components = np.asarray(basis, dtype=np.float64).T  # (K, n_mels)
    acts, _, _ = non_negative_factorization(
        _frames(X), H=components, n_components=components.shape[0], update_H=False,
        init="custom", solver="cd", max_iter=max_iter,
    )
    return acts.reshape(N, T, -1).transpose(0, 2, 1).astype(np.float32)


# -- what the filters say ----------------------------------------------------------------


def centre_spread(peaks: dict[str, np.ndarray]) -> np.ndarray:
    """Per channel, how far apart the flavours put its filter: ``max - min`` of the centres, in bands.

    Parameters
    ----------
    peaks : dict
        Flavour -> np.ndarray [shape=(K,)], each filter's centre (or, for
        free filters, its peak) in bands (:meth:`Decoder.peaks`).

    Returns
    -------
    np.ndarray [shape=(K,)]
    """
    stacked = np.stack([np.asarray(p, dtype=np.float64) for p in peaks.values()])  # (n_flavours, K)
    return stacked.max(axis=0) - stacked.min(axis=0)


def selective_channels(W: np.ndarray, *, window: int = 8, share: float = 0.5) -> np.ndarray:
    """Which free filters are frequency-selective: at least ``share`` of their mass within ``window`` bands of the peak.

    A flat filter over 128 bands keeps 17 / 128 = 13 % within 8 bands of its peak.

    Parameters
    ----------
    W : np.ndarray [shape=(n_mels, K)], >= 0
        The free (non-negative linear) decoder's filters.
    window : int >= 0
    share : float in (0, 1]

    Returns
    -------
    np.ndarray [shape=(K,)], bool
    """
    W = np.asarray(W, dtype=np.float64)
    peaks = W.argmax(axis=0)
    m = np.arange(W.shape[0])[:, None]
    near = np.abs(m - peaks[None, :]) <= window
    total = W.sum(axis=0)
    return np.where(total > 0, (W * near).sum(axis=0) / np.maximum(total, 1e-12), 0.0) >= share


def clip_activations(H: np.ndarray) -> np.ndarray:
    """Mean activation of each component per clip.

    Parameters
    ----------
    H : np.ndarray [shape=(N, K, T)]

    Returns
    -------
    np.ndarray [shape=(N, K)]
    """
    H = np.asarray(H)
    if H.ndim != 3:
        raise InputError("H", f"expected (N, K, T), got shape {H.shape}")
    return H.mean(axis=2)


def discriminative_channels(
    clip_acts: np.ndarray, labels: np.ndarray, *, top: int = 3, alpha: float = 0.05
) -> dict[int, list[tuple[int, float, float]]]:
    """Per class, the channels whose mean activation is higher in that class than in the rest, significantly.

    For each class ``c`` and channel ``k``: Welch's t-test (one-sided,
    unequal variances) of the clip activations of class ``c`` against all
    other clips. The p-values of every (class, channel) test are corrected
    together for the false discovery rate (Benjamini-Hochberg); a channel is
    discriminative for ``c`` when its corrected value ``q`` is below
    ``alpha``. Up to ``top`` per class, largest t first.

    Parameters
    ----------
    clip_acts : np.ndarray [shape=(N, K)]
        From :func:`clip_activations`.
    labels : np.ndarray [shape=(N,)], int
    top : int > 0
    alpha : float in (0, 1)

    Returns
    -------
    dict
        ``class -> [(channel, t, q), ...]`` for each class with at least two
        clips in and two out (possibly an empty list).
    """
    from scipy.stats import false_discovery_control, ttest_ind

    A = np.asarray(clip_acts, dtype=np.float64)
    labels = np.asarray(labels)
    if A.ndim != 2 or labels.shape != (A.shape[0],):
        raise InputError("labels", f"need (N, K) activations and N labels, got {A.shape} and {labels.shape}")
    classes = [c for c in np.unique(labels) if 2 <= np.sum(labels == c) <= len(labels) - 2]
    if not classes:
        return {}
    t = np.zeros((len(classes), A.shape[1]))
    p = np.ones_like(t)
    for i, c in enumerate(classes):
        with np.errstate(invalid="ignore", divide="ignore"):
            result = ttest_ind(A[labels == c], A[labels != c], equal_var=False, alternative="greater", axis=0)
        ok = np.isfinite(result.statistic)  # constant channels: no test
        t[i, ok], p[i, ok] = result.statistic[ok], result.pvalue[ok]
    q = false_discovery_control(p.ravel(), method="bh").reshape(p.shape)
    out = {}
    for i, c in enumerate(classes):
        order = [k for k in np.argsort(-t[i], kind="stable") if q[i, k] < alpha][:top]
        out[int(c)] = [(int(k), float(t[i, k]), float(q[i, k])) for k in order]
    return out


# -- saving beside a checkpoint ----------------------------------------------------------


def _paths(folder: str | Path, name: str) -> tuple[Path, Path]:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError("decoder name", f"{name!r} is not a plain file name")
    base = Path(folder) / DECODER_FOLDER
    return base / f"{name}.safetensors", base / f"{name}.json"


def save_decoder(decoder: Decoder, folder: str | Path, *, name: str, meta: dict | None = None) -> Path:
    """Save a decoder beside a checkpoint: ``folder/decoders/<name>.safetensors`` + ``.json``.

    Parameters
    ----------
    decoder : Decoder
    folder : str or Path
        The checkpoint folder.
    name : str
        File stem, e.g. ``"block4-mel-triangular"``.
    meta : dict or None
        JSON-able extras (tap, training, held-out errors).

    Returns
    -------
    Path
        The ``.safetensors`` file.
    """
    weights, info = _paths(folder, name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in decoder.state_dict().items()}, str(weights))
    config = {"flavour": decoder.flavour, "n_mels": decoder.n_mels, "n_components": decoder.n_components,
              "meta": meta or {}}
    info.write_text(json.dumps(config, indent=1))
    return weights


def load_decoder(folder: str | Path, *, name: str) -> tuple[Decoder, dict]:
    """Load a decoder saved by :func:`save_decoder`.

    Returns
    -------
    decoder : Decoder, in eval mode
    meta : dict
    """
    weights, info = _paths(folder, name)
    if not weights.is_file() or not info.is_file():
        raise InputError(weights.parent / name, "no saved decoder (.safetensors + .json) of that name")
    try:
        config = json.loads(info.read_text())
        decoder = build_decoder(config["flavour"], n_mels=config["n_mels"], n_components=config["n_components"])
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise InputError(info, f"not a decoder description ({error})") from None
    try:
        decoder.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError, ValueError, SafetensorError) as error:
        raise InputError(weights, f"does not match its json ({str(error).splitlines()[0]})") from None
    return decoder.eval(), config.get("meta", {})


def save_nmf_basis(basis: np.ndarray, folder: str | Path, *, name: str, meta: dict | None = None) -> Path:
    """Save a classic NMF basis ``(n_mels, K)`` beside a checkpoint, like :func:`save_decoder`."""
    weights, info = _paths(folder, name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({"basis": torch.as_tensor(np.ascontiguousarray(basis, dtype=np.float32))}, str(weights))
    info.write_text(json.dumps({"flavour": ORACLE, "n_mels": int(basis.shape[0]),
                                "n_components": int(basis.shape[1]), "meta": meta or {}}, indent=1))
    return weights


def load_nmf_basis(folder: str | Path, *, name: str) -> tuple[np.ndarray, dict]:
    """Load a basis saved by :func:`save_nmf_basis`: ``(n_mels, K)`` and its meta."""
    weights, info = _paths(folder, name)
    if not weights.is_file() or not info.is_file():
        raise InputError(weights.parent / name, "no saved NMF basis (.safetensors + .json) of that name")
    try:
        return load_file(str(weights))["basis"].numpy(), json.loads(info.read_text()).get("meta", {})
    except (KeyError, OSError, ValueError, SafetensorError) as error:
        raise InputError(weights, f"not an NMF basis ({error})") from None
