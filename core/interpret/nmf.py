"""NMF-style decoders: read a tap's activations back as a mel spectrogram, ``X ≈ W H``.

A tap's activations become ``H``, a non-negative ``(K, T)`` time-activation
matrix at the spectrogram's frame rate; a decoder learns a non-negative basis
``W`` ``(n_mels, K)`` so that ``W H`` reconstructs the clip's mel spectrogram.
Column ``k`` of ``W`` is then what channel ``k`` "hears" (a spectral template),
and ``H[k]`` when it hears it.

From activations to ``H`` (:func:`activation_matrix`)
    * conv tap ``(C, F', T')``: mean over the frequency axis ``F'``, so ``K = C``;
    * token tap ``(n_special + P, D)``: special tokens dropped, patches put on
      their ``(n_freq, n_time)`` grid, mean over ``n_freq``, so ``K = D``;
    * then linear interpolation along time from ``T'`` to ``n_frames`` (the
      tap's coarse time steps are stretched over the clip, cell centres on cell
      centres), and ``max(0, .)``: a no-op for conv taps (they follow a ReLU),
      a clip for tokens, whose values are signed.
    Each decoder also divides ``H`` by a fixed per-channel scale, ``K`` times
    the channel's mean on the training clips, so every flavour starts with
    ``W H`` on the scale of the target.

The target ``X`` (:func:`nonnegative_target`): the model's standardised log-mel,
min-max scaled per clip to [0, 1] (0 = the clip's floor), so that a
non-negative product can reach it and errors compare across clips.

Flavours of ``W`` (all non-negative by construction):
    * ``"nonneg-linear"`` (:class:`NonNegLinear`): ``W = softplus(V)``, ``V``
      Xavier-initialised, no bias;
    * ``"mel-triangular"`` (:class:`MelTriangular`): ``K`` triangular filters
      with learnable centres and bandwidths, in mel-band units (the bands are
      evenly spaced in mel, so a band index is a mel position);
    * ``"mel-gaussian"`` (:class:`MelGaussian`): a Gaussian mel-like filter
      bank whose centres and widths may only adapt a little.
    Plus the baseline, classic NMF of the spectrogram itself
    (:func:`fit_spectrogram_nmf`, scikit-learn).

Decoders are saved beside a checkpoint as ``decoders/<name>.safetensors`` and
``decoders/<name>.json`` (:func:`save_decoder`, :func:`load_decoder`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm.auto import tqdm

from core.activations import time_activations  # re-exported: decoders read it from here
from core.audio import AudioConfig
from core.errors import InputError

__all__ = [
    "FLAVOURS",
    "time_activations",
    "activation_matrix",
    "nonnegative_target",
    "Decoder",
    "NonNegLinear",
    "MelTriangular",
    "MelGaussian",
    "build_decoder",
    "train_decoder",
    "reconstruction_error",
    "fit_spectrogram_nmf",
    "spectrogram_nmf_activations",
    "clip_activations",
    "discriminative_components",
    "save_decoder",
    "load_decoder",
    "save_nmf_basis",
    "load_nmf_basis",
    "decoder_report",
    "fit_decoders",
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


# -- decoders ----------------------------------------------------------------------------


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class Decoder(nn.Module):
    """Base decoder: ``X_hat = W (H / h_scale)`` with ``W`` ``(n_mels, K)`` non-negative.

    Parameters
    ----------
    n_mels : int > 0
    n_components : int > 0
        ``K``, the tap's channels.

    Attributes
    ----------
    flavour : str
    h_scale : Tensor [shape=(K,)]
        Fixed per-channel divisor of ``H``; set by :meth:`fit_scale`.
    """

    flavour = ""

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__()
        if n_mels < 1 or n_components < 1:
            raise InputError("decoder", f"n_mels and n_components must be > 0, got {n_mels}, {n_components}")
        self.n_mels = n_mels
        self.n_components = n_components
        self.register_buffer("h_scale", torch.ones(n_components))

    def basis(self) -> torch.Tensor:
        """Tensor [shape=(n_mels, K)], >= 0: column ``k`` is channel ``k``'s spectral template."""
        raise NotImplementedError

    @torch.no_grad()
    def fit_scale(self, H: np.ndarray | torch.Tensor) -> None:
        """Set ``h_scale`` to ``K`` times each channel's mean over clips and time (dead channels: 1).

        Parameters
        ----------
        H : array [shape=(N, K, T)]
        """
        H = torch.as_tensor(np.asarray(H), dtype=torch.float32)
        mean = H.mean(dim=(0, 2))
        self.h_scale.copy_(torch.where(mean > 0, mean * self.n_components, torch.ones_like(mean)))

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
        return torch.einsum("mk,bkt->bmt", self.basis(), H / self.h_scale[:, None])

    def extra_config(self) -> dict:
        return {}


class NonNegLinear(Decoder):
    """``W = softplus(V)``, ``V`` Xavier-uniform initialised; no bias."""

    flavour = "nonneg-linear"

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components)
        self.raw = nn.Parameter(torch.empty(n_mels, n_components))
        nn.init.xavier_uniform_(self.raw)

    def basis(self) -> torch.Tensor:
        return F.softplus(self.raw)


class _FilterBank(Decoder):
    """Shared by the mel filter banks: ``W[m, k] = gain_k * shape((m - centre_k) / width_k)``.

    Positions are in mel-band units: band ``m`` sits at ``m``, centres range over
    ``[0, n_mels - 1]``. Initial centres are evenly spaced, ``spacing`` apart.
    """

    coverage = 1.0  # sum over filters of the initial shapes at a band

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components)
        self.spacing = (n_mels - 1) / max(n_components - 1, 1)
        self.register_buffer("positions", torch.arange(n_mels, dtype=torch.float32))
        # Each band starts near (K / 2) * (1 / K) * coverage / coverage = 0.5 after h_scale.
        gain = _inverse_softplus(n_components / (2 * self.coverage))
        self.raw_gain = nn.Parameter(torch.full((n_components,), gain))

    def gains(self) -> torch.Tensor:
        """Tensor [shape=(K,)], > 0."""
        return F.softplus(self.raw_gain)

    def centres(self) -> torch.Tensor:
        """Tensor [shape=(K,)]: filter centres in mel-band units."""
        raise NotImplementedError

    def centres_hz(self, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
        """np.ndarray [shape=(K,)]: filter centres in Hz (band positions mapped through the mel scale)."""
        if cfg.n_mels != self.n_mels:
            raise InputError("audio config", f"{cfg.n_mels} mel bands; the decoder has {self.n_mels}")
        mels = librosa.hz_to_mel(np.array([cfg.fmin_hz, cfg.fmax]))
        band_mels = np.linspace(mels[0], mels[1], self.n_mels + 2)[1:-1]  # as core.audio.mel_frequencies_hz
        centres = self.centres().detach().double().numpy()
        return librosa.mel_to_hz(np.interp(centres, np.arange(self.n_mels), band_mels))


class MelTriangular(_FilterBank):
    """Triangular filters with learnable centres and half-widths, always triangular and in range.

    ``centre_k = (n_mels - 1) * sigmoid(u_k)``, ``half_width_k = 1 + softplus(v_k)``
    (at least one band, so a filter never falls between bands),
    ``W[m, k] = gain_k * max(0, 1 - |m - centre_k| / half_width_k)``.
    Initially centres are evenly spaced and half-widths equal the spacing (at
    least 1.5 bands), as in a mel filter bank.
    """

    flavour = "mel-triangular"

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components)
        top = n_mels - 1
        centres = torch.linspace(0, top, n_components) if n_components > 1 else torch.tensor([top / 2])
        fraction = (centres / max(top, 1)).clamp(1e-3, 1 - 1e-3)  # stay off the sigmoid's flat ends
        self.raw_centre = nn.Parameter(torch.logit(fraction))
        half_width = max(self.spacing, 1.5)  # > 1: the floor of 1 band is reached only by learning
        self.raw_width = nn.Parameter(torch.full((n_components,), _inverse_softplus(half_width - 1.0)))

    def centres(self) -> torch.Tensor:
        return (self.n_mels - 1) * torch.sigmoid(self.raw_centre)

    def half_widths(self) -> torch.Tensor:
        """Tensor [shape=(K,)], >= 1: half the base of each triangle, in bands."""
        return 1.0 + F.softplus(self.raw_width)

    def basis(self) -> torch.Tensor:
        distance = (self.positions[:, None] - self.centres()[None, :]).abs()  # (n_mels, K)
        return self.gains()[None, :] * torch.relu(1 - distance / self.half_widths()[None, :])

    def extra_config(self) -> dict:
        return {"centres_band": self.centres().tolist(), "half_widths_band": self.half_widths().tolist()}


class MelGaussian(_FilterBank):
    """A Gaussian mel-like filter bank with small learnable adaptations.

    Starts as Gaussians evenly spaced in mel (``sigma`` = the spacing, at least
    one band). Each centre may move at most half a spacing
    (``centre_k = c0_k + spacing / 2 * tanh(u_k)``), each width may change by a
    factor in ``[e^-0.5, e^0.5]`` (``sigma_k = sigma0 * exp(0.5 tanh(v_k))``);
    gains are free and positive.
    """

    flavour = "mel-gaussian"
    coverage = math.sqrt(2 * math.pi)

    def __init__(self, *, n_mels: int, n_components: int):
        super().__init__(n_mels=n_mels, n_components=n_components)
        top = n_mels - 1
        initial = torch.linspace(0, top, n_components) if n_components > 1 else torch.tensor([top / 2])
        self.register_buffer("initial_centres", initial.float())
        self.sigma0 = max(self.spacing, 1.0)
        self.raw_shift = nn.Parameter(torch.zeros(n_components))
        self.raw_width = nn.Parameter(torch.zeros(n_components))

    def centres(self) -> torch.Tensor:
        return self.initial_centres + self.spacing / 2 * torch.tanh(self.raw_shift)

    def sigmas(self) -> torch.Tensor:
        """Tensor [shape=(K,)]: standard deviations in bands."""
        return self.sigma0 * torch.exp(0.5 * torch.tanh(self.raw_width))

    def basis(self) -> torch.Tensor:
        z = (self.positions[:, None] - self.centres()[None, :]) / self.sigmas()[None, :]  # (n_mels, K)
        return self.gains()[None, :] * torch.exp(-0.5 * z**2)

    def extra_config(self) -> dict:
        return {"centres_band": self.centres().tolist(), "sigmas_band": self.sigmas().tolist()}


FLAVOURS = {cls.flavour: cls for cls in (NonNegLinear, MelTriangular, MelGaussian)}


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
    H: np.ndarray,
    X: np.ndarray,
    *,
    epochs: int = 30,
    batch_size: int = 16,
    lr: float = 0.02,
    seed: int = 0,
    progress: bool = True,
) -> list[float]:
    """Fit a decoder by Adam on the mean squared error of ``W H`` against ``X``.

    Sets ``h_scale`` from ``H`` first (see :meth:`Decoder.fit_scale`).

    Parameters
    ----------
    decoder : Decoder
    H : np.ndarray [shape=(N, K, T)], >= 0
        From :func:`activation_matrix`.
    X : np.ndarray [shape=(N, n_mels, T)]
        From :func:`nonnegative_target`.
    epochs, batch_size : int > 0
    lr : float > 0
    seed : int
        Seeds the batch order.
    progress : bool
        Show a tqdm bar over epochs.

    Returns
    -------
    list of float
        Mean training loss per epoch.
    """
    H, X = _check_pair(H, X)
    if X.shape[1] != decoder.n_mels or H.shape[1] != decoder.n_components:
        raise InputError("H, X", f"the decoder is {decoder.n_mels} bands x {decoder.n_components} components")
    decoder.fit_scale(H)
    decoder.train()
    optimiser = torch.optim.Adam(decoder.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    bar = tqdm(range(epochs), desc=f"decoder {decoder.flavour}", disable=not progress, leave=False)
    for _ in bar:
        order = torch.randperm(len(H), generator=generator)
        total = 0.0
        for start in range(0, len(H), batch_size):
            idx = order[start : start + batch_size]
            loss = F.mse_loss(decoder(H[idx]), X[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        losses.append(total / len(H))
        bar.set_postfix(mse=f"{losses[-1]:.4f}")
    decoder.eval()
    return losses


def _errors(X: np.ndarray, X_hat: np.ndarray) -> dict[str, float]:
    X = np.asarray(X, dtype=np.float64)
    X_hat = np.asarray(X_hat, dtype=np.float64)
    return {
        "mse": float(np.mean((X - X_hat) ** 2)),
        "relative_error": float(np.linalg.norm(X - X_hat) / max(np.linalg.norm(X), 1e-12)),
    }


def reconstruction_error(decoder: Decoder, H: np.ndarray, X: np.ndarray) -> dict[str, float]:
    """How well a decoder reconstructs held-out clips.

    Parameters
    ----------
    decoder : Decoder
    H : np.ndarray [shape=(N, K, T)]
    X : np.ndarray [shape=(N, n_mels, T)]

    Returns
    -------
    dict
        ``"mse"``: mean squared error per cell; ``"relative_error"``:
        ``||X - W H||_F / ||X||_F``.
    """
    H, X = _check_pair(H, X)
    with torch.no_grad():
        X_hat = decoder(H)
    return _errors(X.numpy(), X_hat.numpy())


# -- classic NMF baseline ----------------------------------------------------------------


def _frames(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 3 or (X < 0).any():
        raise InputError("spectrograms", "need non-negative (N, n_mels, n_frames); see nonnegative_target")
    return X.transpose(0, 2, 1).reshape(-1, X.shape[1])  # (N * T, n_mels): frames as samples


def fit_spectrogram_nmf(X: np.ndarray, *, n_components: int, seed: int = 0, max_iter: int = 300) -> np.ndarray:
    """Classic NMF of the spectrograms themselves (the baseline).

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


def spectrogram_nmf_activations(X: np.ndarray, basis: np.ndarray, *, max_iter: int = 300) -> np.ndarray:
    """Activations of a fixed NMF basis for spectrograms (held-out clips).

    Parameters
    ----------
    X : np.ndarray [shape=(N, n_mels, n_frames)], >= 0
    basis : np.ndarray [shape=(n_mels, K)]

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


# -- discriminative filters --------------------------------------------------------------


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


def discriminative_components(
    clip_acts: np.ndarray, labels: np.ndarray, *, top: int = 3, score: str = "dprime"
) -> dict[int, list[tuple[int, float]]]:
    """Per class, the components whose activation is most higher in that class than in the rest.

    Parameters
    ----------
    clip_acts : np.ndarray [shape=(N, K)]
        From :func:`clip_activations`.
    labels : np.ndarray [shape=(N,)], int
    top : int > 0
    score : {"dprime", "auc"}
        ``"dprime"``: ``(mean_in - mean_out) / sqrt((var_in + var_out) / 2)``
        (0 where both variances are 0); ``"auc"``: ROC AUC of the activation as
        a score for "this class" (0.5 = no separation).

    Returns
    -------
    dict
        ``class -> [(component, score), ...]``, best first, for each class
        present with at least one clip in and one out.
    """
    A = np.asarray(clip_acts, dtype=np.float64)
    labels = np.asarray(labels)
    if A.ndim != 2 or labels.shape != (A.shape[0],):
        raise InputError("labels", f"need (N, K) activations and N labels, got {A.shape} and {labels.shape}")
    if score not in ("dprime", "auc"):
        raise InputError("score", f"{score!r} is not 'dprime' or 'auc'")
    out = {}
    for c in np.unique(labels):
        inside = labels == c
        if inside.all():
            continue
        if score == "dprime":
            a_in, a_out = A[inside], A[~inside]
            pooled = np.sqrt((a_in.var(axis=0) + a_out.var(axis=0)) / 2)
            diff = a_in.mean(axis=0) - a_out.mean(axis=0)
            scores = np.divide(diff, pooled, out=np.zeros_like(diff), where=pooled > 0)
        else:
            from sklearn.metrics import roc_auc_score

            scores = np.array([roc_auc_score(inside, A[:, k]) for k in range(A.shape[1])])
        best = np.argsort(-scores, kind="stable")[:top]
        out[int(c)] = [(int(k), float(scores[k])) for k in best]
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
        JSON-able extras (tap, training losses, errors).

    Returns
    -------
    Path
        The ``.safetensors`` file.
    """
    weights, info = _paths(folder, name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous() for k, v in decoder.state_dict().items()}, str(weights))
    config = {"flavour": decoder.flavour, "n_mels": decoder.n_mels, "n_components": decoder.n_components,
              "filters": decoder.extra_config(), "meta": meta or {}}
    info.write_text(json.dumps(config, indent=2))
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
    except RuntimeError as error:
        raise InputError(weights, f"does not match its json ({str(error).splitlines()[0]})") from None
    return decoder.eval(), config.get("meta", {})


def save_nmf_basis(basis: np.ndarray, folder: str | Path, *, name: str, meta: dict | None = None) -> Path:
    """Save a classic NMF basis ``(n_mels, K)`` beside a checkpoint, like :func:`save_decoder`."""
    weights, info = _paths(folder, name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    save_file({"basis": torch.as_tensor(np.ascontiguousarray(basis, dtype=np.float32))}, str(weights))
    info.write_text(json.dumps({"flavour": "spectrogram-nmf", "n_mels": int(basis.shape[0]),
                                "n_components": int(basis.shape[1]), "meta": meta or {}}, indent=2))
    return weights


def load_nmf_basis(folder: str | Path, *, name: str) -> tuple[np.ndarray, dict]:
    """Load a basis saved by :func:`save_nmf_basis`: ``(n_mels, K)`` and its meta."""
    weights, info = _paths(folder, name)
    if not weights.is_file() or not info.is_file():
        raise InputError(weights.parent / name, "no saved NMF basis (.safetensors + .json) of that name")
    return load_file(str(weights))["basis"].numpy(), json.loads(info.read_text()).get("meta", {})


# -- the report --------------------------------------------------------------------------


def decoder_report(
    H_train: np.ndarray,
    X_train: np.ndarray,
    H_test: np.ndarray,
    X_test: np.ndarray,
    labels_test: np.ndarray,
    *,
    flavours: Sequence[str] = tuple(FLAVOURS),
    nmf_components: int | None = None,
    epochs: int = 30,
    top: int = 3,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train every flavour and the NMF baseline; score them on held-out clips.

    Parameters
    ----------
    H_train, H_test : np.ndarray [shape=(N, K, T)]
        From :func:`activation_matrix`.
    X_train, X_test : np.ndarray [shape=(N, n_mels, T)]
        From :func:`nonnegative_target`.
    labels_test : np.ndarray [shape=(N_test,)]
    flavours : sequence of str
    nmf_components : int or None
        Components of the baseline; ``None`` uses ``min(K, n_mels)``.
    epochs, top, seed, progress
        Training epochs; filters listed per class; seed; progress bars.

    Returns
    -------
    dict
        ``flavour -> {"mse", "relative_error", "discriminative": {class: [(k, dprime)]},
        "decoder": Decoder or "basis": np.ndarray}``; the baseline is ``"spectrogram-nmf"``.
    """
    n_mels, K = np.shape(X_train)[1], np.shape(H_train)[1]
    report = {}
    for flavour in flavours:
        decoder = build_decoder(flavour, n_mels=n_mels, n_components=K, seed=seed)
        losses = train_decoder(decoder, H_train, X_train, epochs=epochs, seed=seed, progress=progress)
        report[flavour] = {
            **reconstruction_error(decoder, H_test, X_test),
            "discriminative": discriminative_components(clip_activations(H_test), labels_test, top=top),
            "train_losses": losses,
            "decoder": decoder,
        }
    k_nmf = nmf_components or min(K, n_mels)
    basis = fit_spectrogram_nmf(X_train, n_components=k_nmf, seed=seed)
    acts = spectrogram_nmf_activations(X_test, basis)
    report["spectrogram-nmf"] = {
        **_errors(X_test, np.einsum("mk,nkt->nmt", basis, acts)),
        "discriminative": discriminative_components(clip_activations(acts), labels_test, top=top),
        "basis": basis,
    }
    return report


def fit_decoders(
    loaded,
    train_records: Sequence,
    test_records: Sequence,
    *,
    tap: str,
    flavours: Sequence[str] = tuple(FLAVOURS),
    epochs: int = 30,
    top: int = 3,
    seed: int = 0,
    batch_size: int = 16,
    progress: bool = True,
    save: bool = True,
    cache=None,
) -> dict:
    """Decoders for one tap of a checkpoint, from the dataset's cached activations, saved beside it.

    Activations come from :func:`core.activations.extract` with
    ``reduce="time"`` (extracted once, then read from disk); spectrograms
    from :func:`core.datasets.load_features`. Each decoder is saved as
    ``<checkpoint>/decoders/<tap>-<flavour>`` and the baseline as
    ``<tap>-spectrogram-nmf``, with their held-out errors and discriminative
    filters in the json.

    Parameters
    ----------
    loaded : core.checkpoint.Loaded
    train_records, test_records : sequence of ClipRecord
    tap : str
        A conv or token tap.
    flavours, epochs, top, seed
        As in :func:`decoder_report`.
    batch_size : int
        Extraction batch size.
    progress, save : bool
    cache : core.cache.ArrayCache or None

    Returns
    -------
    dict
        As :func:`decoder_report`.
    """
    from core.activations import extract
    from core.datasets import load_features

    cfg = loaded.audio_cfg
    model = loaded.model

    def matrices(records):
        acts = extract(loaded, records, [tap], reduce="time", batch_size=batch_size, progress=progress,
                       cache=cache)
        H = activation_matrix(acts[tap], n_frames=cfg.n_frames)
        X = nonnegative_target(load_features(list(records), cfg, progress=progress))
        return H, X, acts["labels"]

    H_train, X_train, _ = matrices(train_records)
    H_test, X_test, labels_test = matrices(test_records)
    report = decoder_report(H_train, X_train, H_test, X_test, labels_test, flavours=flavours, epochs=epochs,
                            top=top, seed=seed, progress=progress)
    if save:
        for flavour, row in report.items():
            meta = {"tap": tap, "kind": getattr(model, "kind", ""), "epochs": epochs, "seed": seed,
                    "n_train": len(train_records), "n_test": len(test_records),
                    "mse": row["mse"], "relative_error": row["relative_error"],
                    "discriminative": {str(c): v for c, v in row["discriminative"].items()}}
            if "decoder" in row:
                save_decoder(row["decoder"], loaded.folder, name=f"{tap}-{flavour}", meta=meta)
            else:
                save_nmf_basis(row["basis"], loaded.folder, name=f"{tap}-{flavour}", meta=meta)
    return report
