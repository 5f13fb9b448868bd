"""Hugging Face AST checkpoints (``ASTForAudioClassification``) from a local folder.

The folder is what ``save_pretrained`` writes: ``config.json``,
``model.safetensors`` and, usually, ``preprocessor_config.json`` (the feature
extractor). Nothing is downloaded: loading uses ``local_files_only``, and only
safetensors weights are read (never a pickled ``pytorch_model.bin``).

The wrapped model speaks our interface: input (B, 1, n_mels, n_frames), taps,
``forward(x, output_attentions=...)``, ``keep_attention()``, ``grid`` and
``patch_box``. Its preprocessing is its own feature extractor's (Kaldi fbank at
16 kHz, normalised with the extractor's mean and std), exposed as
:func:`hf_features`. Two special tokens (class, distillation) precede the
patches: ``n_special = 2``.

``transformers`` is an optional dependency; without it loading raises an
:class:`~core.errors.InputError` that says so.
"""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioConfig, check_audio, resample, to_mono
from core.errors import InputError
from core.models.tap import Tap
from core.models.ast import PatchGrid, patch_grid

__all__ = ["HFASTConfig", "HFAST", "is_hf_ast_folder", "load_hf_ast", "hf_features", "hf_audio_config",
           "is_hub_id", "in_hub_cache", "resolve_hub_id", "new_head"]

MODEL_TYPE = "audio-spectrogram-transformer"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise InputError("transformers", "not installed; it is needed for Hugging Face AST checkpoints "
                                         "(pip install transformers)") from None
    return transformers


@dataclass(frozen=True)
class HFASTConfig:
    """What the explorer needs to know of a Hugging Face AST (read from its config).

    Attributes
    ----------
    folder : str
    n_mels, n_frames : int
        ``num_mel_bins`` and ``max_length``: the input is n_frames x n_mels.
    patch, stride_f, stride_t : int
    dim, depth, heads : int
    sr : int
        The feature extractor's sampling rate, in Hz.
    """

    folder: str
    n_mels: int
    n_frames: int
    patch: int
    stride_f: int
    stride_t: int
    dim: int
    depth: int
    heads: int
    sr: int

    @property
    def grid(self) -> tuple[int, int]:
        return patch_grid(self.n_mels, self.n_frames, patch=self.patch,
                          stride_f=self.stride_f, stride_t=self.stride_t)


def _set_attention(model, implementation: str) -> None:
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(implementation)
    else:  # older transformers
        model.config._attn_implementation = implementation


def _kaldi_mel(f_hz):
    return 1127.0 * np.log(1.0 + np.asarray(f_hz, dtype=np.float64) / 700.0)


def _kaldi_mel_centres_hz(n_mels: int, sr: int, fmin_hz: float = 20.0) -> np.ndarray:
    """Centres of Kaldi's mel bins (the extractor's filter bank), in Hz."""
    lo, hi = _kaldi_mel(fmin_hz), _kaldi_mel(sr / 2)
    mel = lo + (hi - lo) * np.arange(1, n_mels + 1) / (n_mels + 1)
    return 700.0 * (np.exp(mel / 1127.0) - 1.0)


class HFAST(PatchGrid, nn.Module):
    """A Hugging Face ``ASTForAudioClassification`` behind our model interface.

    Parameters
    ----------
    hf_model : transformers.ASTForAudioClassification
    extractor : transformers.ASTFeatureExtractor
    folder : str or Path
        Where it was loaded from (recorded in ``config``).
    """

    kind = "hf-ast"
    n_special = 2

    def __init__(self, hf_model, extractor, *, folder: str | Path = ""):
        super().__init__()
        c = hf_model.config
        self.hf = hf_model
        self.extractor = extractor
        self.n_classes = int(c.num_labels)
        self.multi_label = getattr(c, "problem_type", None) == "multi_label_classification"
        self.config = HFASTConfig(folder=str(folder), n_mels=c.num_mel_bins, n_frames=c.max_length,
                                  patch=c.patch_size, stride_f=c.frequency_stride, stride_t=c.time_stride,
                                  dim=c.hidden_size, depth=c.num_hidden_layers, heads=c.num_attention_heads,
                                  sr=int(extractor.sampling_rate))
        self._embeddings, self._layers = self._find_modules()
        self._keep = False

    def _find_modules(self) -> tuple[str, str]:
        embeddings = layers = None
        for name, module in self.named_modules():
            if type(module).__name__ == "ASTEmbeddings":
                embeddings = name
            if isinstance(module, nn.ModuleList) and len(module) and type(module[0]).__name__ == "ASTLayer":
                layers = name
        if embeddings is None or layers is None:
            raise InputError(self.config.folder, "unrecognised AST module layout in this transformers version")
        return embeddings, layers

    @property
    def classes(self) -> list[str]:
        id2label = self.hf.config.id2label
        return [str(id2label[i]) for i in range(self.n_classes)]

    def forward(self, x: torch.Tensor, output_attentions: bool = False):
        """Logits, and on request each layer's attention probabilities.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, 1, n_mels, n_frames)]
            :func:`hf_features` output, batched.
        output_attentions : bool

        Returns
        -------
        logits : torch.Tensor [shape=(B, n_classes)]
        attentions : tuple of torch.Tensor [shape=(B, H, 2 + P, 2 + P)], one per layer
            Only when ``output_attentions`` is True (the eager path's probabilities).
        """
        B, _, n_mels, n_frames = x.shape
        if (n_mels, n_frames) != (self.config.n_mels, self.config.n_frames):
            raise InputError("input", f"the model takes {self.config.n_mels} x {self.config.n_frames} "
                                      f"(mels x frames), got {n_mels} x {n_frames}")
        input_values = x[:, 0].transpose(1, 2)  # (B, n_frames, n_mels), the HF layout
        want = output_attentions or self._keep
        if want and self.hf.config._attn_implementation != "eager":
            with self._eager():
                out = self.hf(input_values=input_values, output_attentions=True)
        else:
            out = self.hf(input_values=input_values, output_attentions=want)
        if output_attentions:
            return out.logits, tuple(out.attentions)
        return out.logits

    @contextmanager
    def _eager(self):
        before = self.hf.config._attn_implementation
        _set_attention(self.hf, "eager")
        try:
            yield
        finally:
            _set_attention(self.hf, before)

    @contextmanager
    def keep_attention(self):
        """Inside: attention probabilities are formed, so ``layerK.attn`` taps fire."""
        before, self._keep = self._keep, True
        try:
            yield self
        finally:
            self._keep = before

    def attention_input_taps(self) -> list[Tap]:
        """One tap per layer on its attention's input (after ``layernorm_before``, (B, S, D)), for
        :func:`core.interpret.attention.record_attention`: recorded on the fused (SDPA) path."""
        return [Tap(f"layer{k}.attn_in", f"layer {k} / attention input", "tokens",
                    f"{self._layers}.{k - 1}.attention", capture="input") for k in range(1, self.config.depth + 1)]

    def layer_attention(self, x: torch.Tensor, layer: int, *, heads: slice | list[int] = slice(None),
                        rows: slice | list[int] = slice(None)) -> torch.Tensor:
        """Layer ``layer``'s (from 1) attention probabilities for some heads and query rows, from its input.

        What the eager path forms, ``softmax(q k^T * head_dim ** -0.5)``, with ``q`` only for ``rows``.

        Parameters
        ----------
        x : torch.Tensor [shape=(B, S, D)]
            The layer's recorded attention input (:meth:`attention_input_taps`).
        layer : int in [1, depth]
        heads, rows : slice or list of int
            Zero-based heads and query tokens.

        Returns
        -------
        torch.Tensor [shape=(B, n_heads, n_rows, S)]
        """
        attention = self.get_submodule(f"{self._layers}.{layer - 1}.attention")
        H, Dh = self.config.heads, attention.head_dim

        def project(linear, tokens):  # (B, s, D) -> (B, h, s, Dh)
            w = linear.weight.view(H, Dh, -1)[heads]
            out = torch.einsum("bsd,hed->bhse", tokens, w)
            return out if linear.bias is None else out + linear.bias.view(H, Dh)[heads][None, :, None]

        q, k = project(attention.q_proj, x[:, rows]), project(attention.k_proj, x)  # (B, h, r, Dh), (B, h, S, Dh)
        return ((q @ k.transpose(-2, -1)) * attention.scaling).softmax(dim=-1)  # (B, h, r, S)

    def taps(self) -> list[Tap]:
        """Named taps, input to output, as for :class:`core.models.ast.AudioTransformer`."""
        S, D, H = self.n_special + self.n_patches, self.config.dim, self.config.heads
        taps = [Tap("patches", "patch embedding", "tokens", self._embeddings, shape=lambda b, cfg: (b, S, D))]
        for k in range(1, self.config.depth + 1):
            layer = f"{self._layers}.{k - 1}"
            taps.append(Tap(f"layer{k}.attn", f"layer {k} / attention", "attention", f"{layer}.attention",
                            shape=lambda b, cfg: (b, H, S, S), index=1))
            taps.append(Tap(f"layer{k}", f"layer {k}", "tokens", layer, shape=lambda b, cfg: (b, S, D), index=0))
        taps.append(Tap("embedding", "embedding (class + distillation)", "embedding", "hf.classifier",
                        shape=lambda b, cfg: (b, D), capture="input"))
        taps.append(Tap("logits", "logits", "logits", "hf.classifier", shape=lambda b, cfg: (b, self.n_classes)))
        return taps

    def patch_box(self, p: int, audio_cfg: AudioConfig | None = None) -> tuple[float, float, float, float]:
        """Time and frequency span of patch ``p`` (Kaldi frames of 25 ms every 10 ms, Kaldi mel bins).

        Parameters
        ----------
        p : int in [0, n_patches)
        audio_cfg : ignored
            The extractor's own settings define the axes.

        Returns
        -------
        (t0_s, t1_s, f0_hz, f1_hz) : tuple of float
            Centre times of the first and last frames covered; centre
            frequencies of the lowest and highest mel bins covered.
        """
        n_freq, n_time = self.grid
        if not 0 <= p < n_freq * n_time:
            raise InputError("patch index", f"{p} is outside 0..{n_freq * n_time - 1}")
        c = self.config
        f, t = divmod(int(p), n_time)
        t0, f0 = t * c.stride_t, f * c.stride_f
        shift_s, length_s = 0.010, 0.025
        centres = _kaldi_mel_centres_hz(c.n_mels, c.sr)
        return (t0 * shift_s + length_s / 2, (t0 + c.patch - 1) * shift_s + length_s / 2,
                float(centres[f0]), float(centres[f0 + c.patch - 1]))


def hf_audio_config(model: HFAST) -> AudioConfig:
    """An :class:`AudioConfig` describing the extractor's axes (16 kHz, 10 ms hop, n_frames).

    Used for loading clips (``load_mono`` at ``sr``, ``AudioConfig.n_samples`` samples)
    and for time axes; the features themselves come from :func:`hf_features`.
    """
    c = model.config
    return AudioConfig(sr=c.sr, n_mels=c.n_mels, n_fft=int(0.025 * c.sr), hop_length=int(0.010 * c.sr),
                       fmin_hz=20.0, n_frames=c.n_frames)


def hf_features(y: np.ndarray, sr: int, *, extractor=None) -> torch.Tensor:
    """A clip through a Hugging Face AST feature extractor, in our layout.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        Mixed down to mono first.
    sr : int > 0
        Sample rate of ``y``, in Hz; resampled to the extractor's rate.
    extractor : transformers.ASTFeatureExtractor or None
        ``None`` uses the extractor's defaults (AudioSet: 16 kHz, 128 bins,
        1024 frames).

    Returns
    -------
    torch.Tensor [shape=(n_mels, n_frames)], float32
        Kaldi log-mel fbank, padded or cut to ``max_length``, normalised with
        the extractor's mean and std.
    """
    check_audio(y, source="audio")
    if not isinstance(sr, (int, np.integer)) or sr <= 0:
        raise InputError("sr", f"need a positive integer sample rate, got {sr!r}")
    if extractor is None:
        extractor = _transformers().ASTFeatureExtractor()
    y = to_mono(y).astype(np.float32, copy=False)
    y = resample(y, orig_sr=int(sr), target_sr=int(extractor.sampling_rate))
    values = extractor(y, sampling_rate=extractor.sampling_rate, return_tensors="pt")["input_values"]
    return values[0].transpose(0, 1).contiguous().float()  # (n_mels, n_frames)


_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def is_hub_id(text: str | Path) -> bool:
    """True for ``"org/name"`` that is not an existing local path (e.g. ``MIT/ast-finetuned-audioset-10-10-0.4593``)."""
    text = str(text)
    return bool(_HUB_ID.match(text)) and not Path(text).expanduser().exists()


def in_hub_cache(folder: str | Path) -> bool:
    """Whether ``folder`` lies inside the local Hugging Face hub cache (a snapshot: never ours to write into).

    The cache is ``huggingface_hub``'s (``HF_HUB_CACHE``, else ``HF_HOME/hub``,
    else ``~/.cache/huggingface/hub``), read from the environment as that
    library does, so that it need not be installed to answer.
    """
    hub = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    return Path(folder).resolve().is_relative_to(Path(hub).resolve())


def resolve_hub_id(repo_id: str, *, download: bool = False) -> Path:
    """The local folder of a Hugging Face hub model: from the local Hugging Face cache.

    Parameters
    ----------
    repo_id : str
        ``"org/name"``.
    download : bool
        Fetch it (config, extractor and safetensors weights only) when it is not
        in the cache. Only ever True when the user asked for this id; with
        ``HF_HUB_OFFLINE=1`` nothing is fetched either way.

    Raises
    ------
    InputError
        Not in the cache (and no download asked for), or the download failed.
    """
    if not _HUB_ID.match(str(repo_id)):
        raise InputError(repo_id, "a hub id looks like 'org/name'")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        _transformers()  # says how to install
        raise
    try:
        folder = snapshot_download(repo_id, local_files_only=not download,
                                   allow_patterns=["*.json", "*.safetensors"])
    except Exception as error:  # LocalEntryNotFoundError, network errors, 404s: one line for a user
        what = "downloading failed" if download else "not in the local Hugging Face cache (ask for a download)"
        raise InputError(repo_id, f"{what}: {type(error).__name__}: {str(error).strip().splitlines()[0][:160]}") \
            from None
    return Path(folder)


def new_head(model: HFAST, classes: list[str]) -> HFAST:
    """The same AST with a fresh, randomly initialised head for ``classes`` (for fine-tuning).

    Returns
    -------
    HFAST
        A new wrapper; the encoder's weights are shared with ``model``.
    """
    hf = model.hf
    c = hf.config
    c.num_labels = len(classes)
    c.id2label = {i: str(name) for i, name in enumerate(classes)}
    c.label2id = {str(name): i for i, name in enumerate(classes)}
    c.problem_type = "single_label_classification"
    dim = c.hidden_size
    hf.classifier.dense = nn.Linear(dim, len(classes))  # ASTMLPHead: layernorm, then dense
    return HFAST(hf, model.extractor, folder=model.config.folder)


def is_hf_ast_folder(folder: str | Path) -> bool:
    """True when ``folder/config.json`` declares an audio spectrogram transformer."""
    config = Path(folder) / "config.json"
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("model_type") == MODEL_TYPE
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def load_hf_ast(folder: str | Path, *, download: bool = False) -> HFAST:
    """Load a local ``ASTForAudioClassification`` folder, or a hub id, in eval mode.

    Parameters
    ----------
    folder : str or Path
        Holds ``config.json`` and ``model.safetensors`` (and optionally
        ``preprocessor_config.json``); or a hub id ``"org/name"``, read from the
        local Hugging Face cache (:func:`resolve_hub_id`).
    download : bool
        For a hub id not in the cache: fetch it (only when the user asked for that id).

    Returns
    -------
    HFAST

    Raises
    ------
    InputError
        transformers missing; folder or config missing; not an AST config; no
        safetensors weights; weights that do not load; an extractor whose
        sizes differ from the model's.
    """
    if is_hub_id(folder):
        folder = resolve_hub_id(str(folder), download=download)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(folder, "checkpoint folder not found")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise InputError(folder, "no config.json: not a Hugging Face model folder")
    try:
        model_type = json.loads(config_path.read_text()).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as error:
        raise InputError(config_path, f"not valid JSON ({error})") from None
    if model_type != MODEL_TYPE:
        raise InputError(config_path, f"model_type is {model_type!r}, not {MODEL_TYPE!r}")
    if not any(folder.glob("*.safetensors")):
        raise InputError(folder, "no .safetensors weights (pickled weights such as pytorch_model.bin are "
                                 "not loaded; convert them with save_pretrained(safe_serialization=True))")
    transformers = _transformers()
    try:
        hf_model = transformers.ASTForAudioClassification.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True)
    except Exception as error:  # transformers raises many types; a user sees one line
        raise InputError(folder, f"the weights do not load ({str(error).strip().splitlines()[0][:200]})") from None
    hf_model.eval()
    c = hf_model.config
    if (folder / "preprocessor_config.json").is_file():
        try:
            extractor = transformers.ASTFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
        except Exception as error:
            raise InputError(folder / "preprocessor_config.json",
                             f"does not load ({str(error).strip().splitlines()[0][:200]})") from None
    else:
        extractor = transformers.ASTFeatureExtractor(num_mel_bins=c.num_mel_bins, max_length=c.max_length)
    if (extractor.num_mel_bins, extractor.max_length) != (c.num_mel_bins, c.max_length):
        raise InputError(folder, f"the feature extractor makes {extractor.max_length} x {extractor.num_mel_bins} "
                                 f"(frames x bins) but the model takes {c.max_length} x {c.num_mel_bins}")
    return HFAST(hf_model, extractor, folder=folder).eval()
