"""Checkpoints: a folder with the weights (safetensors) and one JSON file describing them.

Layout::

    NAME/model.safetensors   the state dict, tensors only
    NAME/checkpoint.json     kind, model config, preprocessing config, classes, meta

``meta`` holds what the model was trained on and its evaluation. Loading never
unpickles: weights are read with ``safetensors`` only, so a pickle file named
``model.safetensors`` is refused, not executed. A folder saved by Hugging Face
(``config.json`` of an audio spectrogram transformer) loads through
:mod:`core.models.hf_ast`.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from core.audio.features import AudioConfig, fit_duration, log_mel, resample
from core.data.datasets import load_mono
from core.errors import InputError
from core.kinds import BUILDABLE_KINDS, MAP_TAP_KINDS

if TYPE_CHECKING:  # torch is imported where it is used: reading checkpoint.json (the app's first page) needs none
    import torch
    from torch import nn

__all__ = ["FORMAT", "FORMAT_VERSION", "WEIGHTS_FILE", "META_FILE", "Loaded", "save_checkpoint",
           "load_checkpoint", "load_registered", "save_hf_checkpoint", "read_checkpoint_json",
           "checkpoint_audio_config"]

FORMAT = "audio-explorer-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
META_FILE = "checkpoint.json"


@dataclass
class Loaded:
    """A loaded checkpoint.

    Attributes
    ----------
    model : nn.Module
        In eval mode.
    audio_cfg : AudioConfig
        The preprocessing the model was trained with (for ``"hf-ast"``: the
        extractor's rate, hop and size, see :func:`core.models.hf_ast.hf_audio_config`).
    classes : list of str
        Index = output unit.
    meta : dict
        Training data, folds, epochs, time, history, evaluation (as saved).
    kind : str
        ``"secnn"``, ``"ast"``, ``"hf-ast"`` or ``"adapter"`` (a registered model).
    folder : Path
    layout : {"mel-time", "time-mel", "waveform"}
        How the model's input is laid out (:data:`core.models.adapter.LAYOUTS`).
    multi_label : bool
        Sigmoid outputs (each class on its own) rather than one softmax.
    input_fn : callable or None
        A registered model's adapter ``input(y, sr)``.
    """

    model: nn.Module
    audio_cfg: AudioConfig
    classes: list[str]
    meta: dict = field(default_factory=dict)
    kind: str = ""
    folder: Path = Path(".")
    layout: str = "mel-time"
    multi_label: bool = False
    input_fn: Any = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_samples(self) -> int:
        """Samples of one clip at ``audio_cfg.sr``: what the model hears (for a registered model, what its
        adapter's ``input`` was promised: ``round(clip_seconds * sample_rate)``)."""
        return int(self.meta.get("input_samples", self.audio_cfg.n_samples))

    @property
    def own_front_end(self) -> bool:
        """Whether the model's feature extractor takes a clip of any length (a Hugging Face AST's does)."""
        return self.kind == "hf-ast"

    @property
    def map_shape(self) -> tuple[int, int]:
        """``(n_mels, n_frames)``: the grid every map of this model is drawn on."""
        return self.audio_cfg.n_mels, self.audio_cfg.n_frames

    def input(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The model's input for one clip: the one front end every caller uses.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)]
            Mono, of any length: cut or zero-padded to :attr:`n_samples` first
            (a Hugging Face AST's extractor takes it as it is).
        sr : int
            Rate of ``y``, in Hz (resampled to the model's when different).

        Returns
        -------
        np.ndarray, float32, without the batch axis
            ``(1, n_mels, n_frames)`` for our models (:func:`core.audio.features.log_mel`)
            and a Hugging Face AST (its own feature extractor); whatever the
            adapter's ``input`` returns for a registered model.
        """
        if self.own_front_end:
            return self.features(np.asarray(y, dtype=np.float32), sr=sr)[None]
        y = np.asarray(y, dtype=np.float32)
        if int(sr) != self.audio_cfg.sr:
            y = resample(y, orig_sr=int(sr), target_sr=self.audio_cfg.sr)
        y = fit_duration(y, self.n_samples)
        if self.input_fn is not None:
            return np.ascontiguousarray(np.asarray(self.input_fn(y, self.audio_cfg.sr), dtype=np.float32))
        return log_mel(y, self.audio_cfg)[None]

    def spectrogram(self, y: np.ndarray, sr: int) -> np.ndarray:
        """The spectrogram the model sees, on our axes (the axes its maps are drawn on).

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)]
            Mono, at ``sr``; of any length (as :meth:`input`).

        Returns
        -------
        np.ndarray [shape=(n_mels, n_frames)], float32
            A mel-time model's input as it is; a time-first model's transposed;
            for a waveform model, which sees no spectrogram, the log-mel of its
            ``audio_cfg``.
        """
        if self.layout == "waveform":
            return log_mel(fit_duration(np.asarray(y, dtype=np.float32), self.n_samples), self.audio_cfg)
        x = self.input(y, sr)[0]
        return np.ascontiguousarray(x.T if self.layout == "time-mel" else x)

    def taps(self, *kinds: str) -> list:
        """The model's taps (:class:`core.models.Tap`), input to output; only those of ``kinds`` when given."""
        return [t for t in self.model.taps() if not kinds or t.kind in kinds]

    def cam_taps(self) -> list:
        """The taps a CAM can explain: conv and token taps."""
        return self.taps(*MAP_TAP_KINDS)

    def default_cam_tap(self) -> str | None:
        """The layer a CAM explains by default: the deepest whose map can be non-empty, or None when none.

        A transformer's last token layer feeds the head through its class token
        only, so the gradient on its patch tokens, and the map, is zero: for a
        model whose last CAM tap is a token layer, the one before it.
        """
        taps = self.cam_taps()
        if not taps:
            return None
        if len(taps) > 1 and taps[-1].kind == "tokens":
            return taps[-2].name
        return taps[-1].name

    def inputs(self, records, *, progress: bool = False) -> np.ndarray:
        """The model's inputs for dataset records, stacked: np.ndarray [shape=(N, ...)], float32."""
        return np.stack([self.input(load_mono(r, self.audio_cfg), self.audio_cfg.sr)
                         for r in tqdm(records, desc="inputs", unit="clip", disable=not progress)])

    def probabilities(self, logits) -> np.ndarray:
        """Class probabilities from logits (B, n_classes): sigmoid when multi-label, else softmax."""
        import torch

        logits = torch.as_tensor(logits).detach().float()
        if self.multi_label:
            return torch.sigmoid(logits).cpu().numpy()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    def features(self, y: np.ndarray, sr: int | None = None) -> np.ndarray:
        """The spectrogram a spectrogram model sees, for one mono clip at ``audio_cfg.sr``.

        Prefer :meth:`input`, which every kind has; this is its 2-D part.

        Parameters
        ----------
        y : np.ndarray [shape=(n_samples,)]

        Returns
        -------
        np.ndarray [shape=(n_mels, n_frames)], float32
            :func:`core.audio.features.log_mel` for our models; the Hugging Face feature
            extractor for ``"hf-ast"``; a registered model's own input when it
            is laid out ``"mel-time"`` as ``(1, n_mels, n_frames)`` (others
            raise :class:`InputError`).
        """
        if self.own_front_end:
            from core.models.hf_ast import hf_features

            return hf_features(y, sr or self.audio_cfg.sr, extractor=self.model.extractor).numpy()
        if self.input_fn is not None:
            x = self.input(y, sr or self.audio_cfg.sr)
            if self.layout != "mel-time" or x.ndim != 3 or x.shape[:2] != (1, self.audio_cfg.n_mels):
                raise InputError(self.folder, f"this model's input ({self.layout}, shape {x.shape}) is not a "
                                              f"(1, n_mels={self.audio_cfg.n_mels}, n_frames) spectrogram")
            return x[0]  # the adapter's own mel bands
        return log_mel(y, self.audio_cfg)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def save_checkpoint(folder: str | Path, model: nn.Module, audio_cfg: AudioConfig, classes: list[str],
                    meta: dict | None = None) -> Path:
    """Write ``model.safetensors`` and ``checkpoint.json`` into ``folder`` (created if missing).

    Parameters
    ----------
    folder : str or Path
    model : nn.Module
        A ``"secnn"`` or ``"ast"`` model from :func:`core.models.build_model`.
    audio_cfg : AudioConfig
    classes : list of str
        One name per output unit.
    meta : dict or None
        Anything JSON-able (numpy scalars and arrays, Paths and dataclasses
        are converted): training data, folds, history, evaluation.

    Returns
    -------
    Path
        The folder.
    """
    kind = getattr(model, "kind", None)
    if kind not in BUILDABLE_KINDS:
        raise InputError("model", f"only {BUILDABLE_KINDS} models are saved this way, got {kind!r}")
    if len(classes) != model.n_classes:
        raise InputError("classes", f"{len(classes)} names for a model with {model.n_classes} outputs")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    state = {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": FORMAT, "kind": kind})
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model_config": _jsonable(model.config),
        "n_classes": int(model.n_classes),
        "classes": [str(c) for c in classes],
        "audio_config": _jsonable(audio_cfg.to_dict()),
        "meta": _jsonable(meta or {}),
    }
    (folder / META_FILE).write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n")
    return folder


TRAINING_FILE = "training.json"


def save_hf_checkpoint(folder: str | Path, model, meta: dict | None = None) -> Path:
    """A fine-tuned Hugging Face AST (:class:`core.models.hf_ast.HFAST`): ``save_pretrained`` + ``training.json``.

    The folder opens like any Hugging Face AST folder; ``training.json`` is
    read back into ``Loaded.meta``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.hf.save_pretrained(str(folder), safe_serialization=True)
    model.extractor.save_pretrained(str(folder))
    (folder / TRAINING_FILE).write_text(json.dumps(_jsonable(meta or {}), indent=2, allow_nan=False) + "\n")
    return folder


def read_checkpoint_json(folder: str | Path) -> dict:
    """The checked contents of ``folder/checkpoint.json`` (no weights are read).

    Raises
    ------
    InputError
        Missing file, malformed JSON, or missing or wrong fields.
    """
    path = Path(folder) / META_FILE
    if not path.is_file():
        raise InputError(folder, f"no {META_FILE}: not a checkpoint folder")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"malformed JSON ({error})") from None
    if not isinstance(doc, dict):
        raise InputError(path, "malformed checkpoint: the JSON is not an object")
    if doc.get("format") != FORMAT:
        raise InputError(path, f"not an explorer checkpoint (format {doc.get('format')!r}, expected {FORMAT!r})")
    if doc.get("format_version") != FORMAT_VERSION:
        raise InputError(path, f"format version {doc.get('format_version')!r}; this code reads {FORMAT_VERSION}")
    missing = [k for k in ("kind", "model_config", "n_classes", "classes", "audio_config") if k not in doc]
    if missing:
        raise InputError(path, f"malformed checkpoint: missing fields {missing}")
    if doc["kind"] not in BUILDABLE_KINDS:
        raise InputError(path, f"unknown model kind {doc['kind']!r}; known: {list(BUILDABLE_KINDS)}")
    classes = doc["classes"]
    if not isinstance(classes, list) or len(classes) != doc["n_classes"]:
        raise InputError(path, f"malformed checkpoint: {doc['n_classes']} classes declared, names {classes!r}")
    if not isinstance(doc["model_config"], dict) or not isinstance(doc["audio_config"], dict):
        raise InputError(path, "malformed checkpoint: model_config and audio_config must be objects")
    doc.setdefault("meta", {})
    return doc


def checkpoint_audio_config(folder: str | Path) -> AudioConfig | None:
    """The preprocessing a checkpoint folder of ours declares, read from its JSON without loading the model.

    Returns
    -------
    AudioConfig or None
        ``None`` for a folder without ``checkpoint.json`` (a Hugging Face AST,
        a registered model): only loading it tells.

    Raises
    ------
    InputError
        Malformed ``checkpoint.json`` or ``audio_config``.
    """
    folder = Path(folder).expanduser()
    if not (folder / META_FILE).is_file():
        return None
    from core.models.user_models import is_registered_folder

    if is_registered_folder(folder):
        return None
    try:
        return AudioConfig.from_dict(read_checkpoint_json(folder)["audio_config"])
    except TypeError as error:
        raise InputError(folder / META_FILE, f"bad audio_config ({error})") from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(path.parent, f"no {WEIGHTS_FILE}: the weights are missing")
    try:
        return load_file(str(path))  # safetensors only: never unpickles
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise InputError(path, f"not a safetensors file ({str(error).strip()[:160]}); "
                               "pickled weights are never loaded") from None


def _check_state(path: Path, kind: str, expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> None:
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    if missing and unexpected:
        raise InputError(path, f"the weights are for another architecture than the {kind!r} the JSON "
                               f"describes: {len(missing)} tensors missing (e.g. {missing[:3]}), "
                               f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
    if missing:
        raise InputError(path, f"{len(missing)} tensors missing for {kind!r}: {missing[:5]}")
    if unexpected:
        raise InputError(path, f"{len(unexpected)} tensors not in a {kind!r} model: {unexpected[:5]}")
    for name, tensor in expected.items():
        if tuple(found[name].shape) != tuple(tensor.shape):
            raise InputError(path, f"tensor {name!r} has shape {tuple(found[name].shape)}, the {kind!r} "
                                   f"config in {META_FILE} makes {tuple(tensor.shape)}")


def load_checkpoint(folder: str | Path, *, kind: str | None = None) -> Loaded:
    """Load a checkpoint folder (ours, or a Hugging Face AST folder).

    Parameters
    ----------
    folder : str or Path
    kind : str or None
        When given, a checkpoint of another kind is refused.

    Returns
    -------
    Loaded
        The model in eval mode, its preprocessing, classes and meta.

    Raises
    ------
    InputError
        Missing folder or files, malformed JSON, another model kind than asked,
        weights that are not safetensors, or weights that do not match the
        configuration (another architecture, missing tensors, other shapes).

    Examples
    --------
    >>> from core.paths import CHECKPOINTS_DIR
    >>> loaded = load_checkpoint(CHECKPOINTS_DIR / "secnn")
    >>> loaded.kind, loaded.classes[:2], loaded.audio_cfg.sr
    ('secnn', ['clock_tick', 'keyboard_typing'], 44100)
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        from core.models.user_models import registered

        from core.models.hf_ast import is_hub_id, resolve_hub_id

        entry = registered().get(str(folder))
        if entry is not None:
            folder = Path(entry["folder"])
        elif is_hub_id(folder):  # a Hugging Face hub id, from the local cache (never downloaded here)
            folder = resolve_hub_id(str(folder))
        else:
            raise InputError(folder, "checkpoint folder not found (nor a registered model's name, nor a "
                                     "Hugging Face hub id in the local cache)")
    from core.models.user_models import is_registered_folder

    if is_registered_folder(folder):
        if kind is not None and kind != "adapter":
            raise InputError(folder, f"this is a registered model ('adapter'), not {kind!r}")
        return load_registered(folder)
    if not folder.is_dir():
        raise InputError(folder, "a checkpoint is a folder (model.safetensors + checkpoint.json)")
    if not (folder / META_FILE).exists():
        from core.models.hf_ast import hf_audio_config, is_hf_ast_folder, load_hf_ast

        if is_hf_ast_folder(folder):
            if kind is not None and kind != "hf-ast":
                raise InputError(folder, f"this is a Hugging Face AST checkpoint ('hf-ast'), not {kind!r}")
            model = load_hf_ast(folder)
            meta = {}
            if (folder / TRAINING_FILE).is_file():
                try:
                    meta = json.loads((folder / TRAINING_FILE).read_text())
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise InputError(folder / TRAINING_FILE, f"malformed JSON ({error})") from None
            return Loaded(model, hf_audio_config(model), model.classes, meta, "hf-ast", folder,
                          multi_label=model.multi_label)
    doc = read_checkpoint_json(folder)
    if kind is not None and doc["kind"] != kind:
        raise InputError(folder, f"this checkpoint is a {doc['kind']!r} model, not {kind!r}")
    try:
        audio_cfg = AudioConfig.from_dict(doc["audio_config"])
    except TypeError as error:
        raise InputError(folder / META_FILE, f"bad audio_config ({error})") from None
    from core.models import build_model, config_from_dict

    model_config = dict(doc["model_config"])
    if doc["kind"] == "ast" and "pad" not in model_config:
        model_config["pad"] = False  # saved before the AST padded its input to whole patches
    config = config_from_dict(doc["kind"], model_config)
    model = build_model(doc["kind"], config, n_classes=int(doc["n_classes"]))
    weights_path = folder / WEIGHTS_FILE
    state = _read_weights(weights_path)
    _check_state(weights_path, doc["kind"], model.state_dict(), state)
    model.load_state_dict(state, strict=True)
    model.eval()
    return Loaded(model, audio_cfg, list(doc["classes"]), doc["meta"], doc["kind"], folder)


def load_registered(folder: str | Path) -> Loaded:
    """A registered model (``python -m core add-model``), through its adapter.

    Imports the adapter only when the registry lists this folder and the file
    has not changed since (:func:`core.models.user_models.entry_for_folder`).
    """
    from core.models.adapter import build_adapted
    from core.models.user_models import entry_for_folder

    entry = entry_for_folder(folder)
    model, spec = build_adapted(entry["adapter"], entry.get("weights"))
    meta = {"adapter": entry["adapter"], "weights": entry.get("weights"), "name": entry["name"],
            "input_samples": spec.n_samples()}
    return Loaded(model, spec.audio_config(), list(spec.classes), meta, "adapter", Path(entry["folder"]),
                  layout=spec.layout, multi_label=bool(spec.multi_label), input_fn=spec.input)
