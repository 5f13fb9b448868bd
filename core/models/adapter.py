"""Bring your own model: a small Python file (the adapter) that says how to run it.

An adapter defines ``model_spec() -> ModelSpec``::

    from core.models.adapter import ModelSpec

    def model_spec():
        return ModelSpec(model=MyNet(), input=to_input, classes=["dog", "rain"],
                         sample_rate=32000, clip_seconds=5.0, layout="time-mel", n_mels=64, hop_length=320)

``python -m core add-model --adapter my_model.py --weights w.safetensors --name mine``
checks it (:func:`check_spec`: a silent clip through ``input`` and the model,
the output's shape, the classes, the taps found) and registers it
(:mod:`core.models.user_models`). The explorer imports only adapters a user registered,
never one it finds in a folder.

Taps are found by module type and name (:func:`discover_taps`): conv blocks,
recurrent layers, attention modules and the input of the head (the
embedding), each with its axis convention declared (``Tap.view``) so that it
is drawn, like ours, as ``(C, F, T)`` on seconds and Hz. ``ModelSpec.taps``
overrides them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.audio.features import AudioConfig
from core.errors import InputError
from core.models.tap import Tap

__all__ = ["LAYOUTS", "ModelSpec", "AdaptedModel", "load_adapter", "discover_taps", "load_weights", "check_spec",
           "file_sha256", "build_adapted"]

# How a model's input is laid out; each is drawn on seconds and Hz.
LAYOUTS = {
    "mel-time": "(1, n_mels, n_frames) per clip, like ours",
    "time-mel": "(1, n_frames, n_mels) per clip, time first, like PANNs' CNN14",
    "waveform": "the samples themselves, (n_samples,) or (1, n_samples) per clip",
}
MAX_CLASSES = 10_000
_CONV = (nn.Conv1d, nn.Conv2d)
_RECURRENT = (nn.GRU, nn.LSTM, nn.RNN)
_BLOCK_NAME = re.compile(r"(conv|block|layer|stage)", re.IGNORECASE)


@dataclass
class ModelSpec:
    """What an adapter returns.

    Attributes
    ----------
    model : nn.Module
        Returns logits ``(B, n_classes)`` (or a tuple whose first item is the logits).
        Weights are loaded into it by :func:`load_weights`.
    input : callable
        ``input(y, sr) -> np.ndarray``: one mono clip (float32, at
        ``sample_rate``, cut or zero-padded to exactly
        ``round(clip_seconds * sample_rate)`` samples, :meth:`n_samples`) to the
        model's input for that clip, without the batch axis.
    classes : list of str
        Index = output unit.
    multi_label : bool
        True: each output is a sigmoid probability; False: one softmax over the classes.
    sample_rate : int
        Hz.
    clip_seconds : float
    layout : {"mel-time", "time-mel", "waveform"}
        See :data:`LAYOUTS`.
    n_mels, hop_length, fmin_hz, n_fft : int, int, float, int or None
        The mel front end pages draw the clip and the maps on (set them to the
        model's own front end when it has one); ``n_fft`` ``None`` means
        ``4 * hop_length``.
    taps : dict or None
        ``{tap name: module path}`` to use instead of the discovered taps (each
        keeps the kind and view discovery gives its module).
    attention : list of str
        Module paths whose output is ``(values, attention weights)``.
    code_files : list of Path
        Set by :func:`load_adapter`: the adapter file and the local modules it
        imports (:func:`local_modules`), which registration fingerprints.
    """

    model: nn.Module
    input: Callable
    classes: list
    multi_label: bool = False
    sample_rate: int = 16000
    clip_seconds: float = 5.0
    layout: str = "mel-time"
    n_mels: int = 64
    hop_length: int = 160
    fmin_hz: float = 20.0
    n_fft: int | None = None
    taps: dict | None = None
    attention: list = field(default_factory=list)
    code_files: list = field(default_factory=list, init=False, repr=False)

    def n_samples(self) -> int:
        """The samples ``input`` receives: ``round(clip_seconds * sample_rate)``."""
        return int(round(self.clip_seconds * self.sample_rate))

    def audio_config(self) -> AudioConfig:
        """Loading (rate, clip length) and the axes pages draw on."""
        n_frames = int(round(self.clip_seconds * self.sample_rate / self.hop_length)) + 1
        n_fft = 4 * int(self.hop_length) if self.n_fft is None else int(self.n_fft)
        return AudioConfig(sr=int(self.sample_rate), n_mels=int(self.n_mels), n_fft=n_fft,
                           hop_length=int(self.hop_length), fmin_hz=float(self.fmin_hz), n_frames=n_frames)


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_adapter(path: str | Path) -> ModelSpec:
    """Import an adapter file and call its ``model_spec()``.

    Only for files a user named (``add-model``) or registered: this runs their code.

    Raises
    ------
    InputError
        Missing file, an import that raises, no ``model_spec``, or one that
        raises or returns something else than a :class:`ModelSpec`.
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file() or path.suffix != ".py":
        raise InputError(path, "an adapter is an existing .py file")
    module_name = f"_explorer_adapter_{hashlib.sha1(str(path).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    _make_siblings_importable(path.parent)
    try:
        sys.modules[module_name] = module  # dataclasses and pickling look classes up here
        spec.loader.exec_module(module)
    except Exception as error:  # the user's code: any error is one line about their file
        sys.modules.pop(module_name, None)
        raise InputError(path, f"the adapter raised on import: {type(error).__name__}: {error}") from None
    if not callable(getattr(module, "model_spec", None)):
        raise InputError(path, "the adapter defines no model_spec() function")
    try:
        spec_ = module.model_spec()
    except Exception as error:
        raise InputError(path, f"model_spec() raised {type(error).__name__}: {error}") from None
    if not isinstance(spec_, ModelSpec):
        raise InputError(path, f"model_spec() must return core.models.adapter.ModelSpec, got {type(spec_).__name__}")
    if not isinstance(spec_.model, nn.Module):
        raise InputError(path, f"ModelSpec.model must be a torch nn.Module, got {type(spec_.model).__name__}")
    if not callable(spec_.input):
        raise InputError(path, "ModelSpec.input must be a function (y, sr) -> model input")
    if spec_.layout not in LAYOUTS:
        raise InputError(path, f"ModelSpec.layout {spec_.layout!r} is not one of {sorted(LAYOUTS)}")
    classes = list(spec_.classes or [])
    if not classes:
        raise InputError(path, "ModelSpec.classes is empty: name the model's classes")
    if len(classes) > MAX_CLASSES or len(set(map(str, classes))) != len(classes):
        raise InputError(path, f"ModelSpec.classes must be at most {MAX_CLASSES} distinct names")
    spec_.classes = [str(c) for c in classes]
    spec_.code_files = [path] + local_modules(module, new=set(sys.modules) - before)
    return spec_


_ADAPTER_FOLDERS: set[Path] = set()


def _make_siblings_importable(folder: Path) -> None:
    """Put an adapter's folder first on ``sys.path``, as Python does for a script's folder.

    A sibling module of the same name already imported from another adapter's
    folder (two adapters each with a ``model.py``) is dropped from
    ``sys.modules`` first, so this adapter imports its own; the other adapter
    keeps the objects it already holds.
    """
    names = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
    for name in names:
        loaded = sys.modules.get(name)
        file = getattr(loaded, "__file__", None)
        if file and Path(file).resolve().parent not in (folder, folder / name) and any(
                Path(file).resolve().is_relative_to(other) for other in _ADAPTER_FOLDERS):
            del sys.modules[name]
    _ADAPTER_FOLDERS.add(folder)
    if str(folder) in sys.path:
        sys.path.remove(str(folder))
    sys.path.insert(0, str(folder))


def _installed_roots() -> list[Path]:
    import site
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots |= set(site.getsitepackages()) | {site.getusersitepackages()}
    from core.paths import REPO_ROOT

    roots |= {str(REPO_ROOT / "core"), str(REPO_ROOT / "explorer")}  # this project's own code is not the model's
    return [Path(r).resolve() for r in roots if r]


def local_modules(module, *, new: set[str] = frozenset()) -> list[Path]:
    """The files of the local modules an adapter uses: neither installed packages, the standard library nor ours.

    Found two ways, so that a module imported before (by an earlier load in the
    same process) is found too: the modules ``new`` in ``sys.modules`` since the
    import began, and, transitively, the modules that the adapter's globals
    (and those modules' globals) come from.

    Returns
    -------
    list of Path
        Sorted, without the adapter itself.
    """
    import types

    roots = _installed_roots()

    def local_file(mod) -> Path | None:
        file = getattr(mod, "__file__", None)
        if not file or not str(file).endswith(".py"):
            return None
        file = Path(file).resolve()
        if not file.is_file() or any(file.is_relative_to(root) for root in roots):
            return None
        return file

    found: dict[Path, object] = {}
    todo = [sys.modules[name] for name in new if name in sys.modules] + [module]
    while todo:
        mod = todo.pop()
        file = local_file(mod)
        if file is None or file in found:
            continue
        found[file] = mod
        for value in list(vars(mod).values()):
            if isinstance(value, types.ModuleType):
                todo.append(value)
            else:
                owner = sys.modules.get(getattr(value, "__module__", None) or "")
                if owner is not None:
                    todo.append(owner)
    own = local_file(module)
    return sorted(f for f in found if f != own)


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load ``.safetensors`` or ``.pt`` weights into ``model`` (strict; ``.pt`` with ``weights_only=True``).

    Raises
    ------
    InputError
        Missing file, another format, a pickle that is more than tensors, or
        tensors that do not fit the module (names listed).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(path, "weights file not found")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as error:
            raise InputError(path, f"not a safetensors file ({str(error).strip()[:160]})") from None
    elif path.suffix in (".pt", ".pth"):
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)  # never runs pickled code
        except Exception as error:
            raise InputError(path, f"does not load with weights_only=True ({str(error).strip().splitlines()[0][:160]})") from None
        if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
            state = state["state_dict"]
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise InputError(path, "a .pt file must hold a state dict of tensors")
    else:
        raise InputError(path, "weights must be .safetensors or .pt")
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model" for k, v in state.items()
             if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if wrong:
        raise InputError(path, f"the weights do not fit the adapter's model: {len(wrong)} tensors of another shape "
                               f"({'; '.join(wrong[:3])})")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise InputError(path, f"the weights do not fit the adapter's model: missing {result.missing_keys[:4]}, "
                               f"unexpected {result.unexpected_keys[:4]}")


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, _CONV) for m in module.modules())


_AFTER_CONV = (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.LayerNorm,
               nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish,
               nn.Tanh)


def _is_block(name: str, module: nn.Module) -> bool:
    """A block: holds a convolution, is not one, and is named like a block or is a numbered child."""
    return _has_conv(module) and not isinstance(module, _CONV) and (bool(_BLOCK_NAME.search(name)) or name.isdigit())


def _one_conv(module: nn.Module) -> bool:
    """A small block whatever its name: one convolution inside (with its norm, activation, pooling), no recurrence."""
    inner = list(module.modules())
    return sum(isinstance(m, _CONV) for m in inner) == 1 and not any(isinstance(m, _RECURRENT) for m in inner)


def _conv_blocks(module: nn.Module, prefix: str) -> list[tuple[str, str]]:
    """Outermost blocks holding convolutions, as ``(name, module path to read)``.

    A container of several blocks (named conv/block/layer/stage, or numbered
    children of an ``nn.Sequential``/``nn.ModuleList``) is opened: each block
    is its own tap; so is any module holding exactly one convolution (a stem of
    conv, BN, ReLU), read at its output. A bare convolution is read after the normalisation and
    activation modules that follow it among its siblings (conv, BN, ReLU: the
    ReLU's output), so its tap is what the next layer receives.
    """
    out = []
    children = list(module.named_children())
    for i, (name, child) in enumerate(children):
        path = f"{prefix}.{name}" if prefix else name
        if not _has_conv(child) or isinstance(child, _RECURRENT):
            continue
        blocks = [n for n, c in child.named_children() if _is_block(n, c)]
        if isinstance(child, _CONV):
            read = path
            for after_name, after in children[i + 1:]:
                if not isinstance(after, _AFTER_CONV):
                    break
                read = f"{prefix}.{after_name}" if prefix else after_name
            out.append((path, read))
        elif (_is_block(name, child) and len(blocks) < 2) or _one_conv(child):
            out.append((path, path))
        else:
            out += _conv_blocks(child, path)
    return out


def _head(model: nn.Module, n_classes: int) -> str | None:
    heads = [name for name, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == n_classes]
    return heads[-1] if heads else None


def conv_view(module: nn.Module, layout: str) -> str | None:
    """How a conv block's output is turned into ``(C, F, T)``: ``"1d"`` for a 1-D conv, ``"time-first"`` in a
    time-first model, else ``None`` (already ``(C, F, T)``, or no convolution at all)."""
    if not _has_conv(module):
        return None  # read as it is; check_spec refuses it unless it is (B, C, F, T)
    one_d = isinstance(module, nn.Conv1d) or (not isinstance(module, nn.Conv2d) and
                                              any(isinstance(m, nn.Conv1d) for m in module.modules()))
    return "1d" if one_d else ("time-first" if layout == "time-mel" else None)


def discover_taps(model: nn.Module, *, layout: str, n_classes: int, attention=(), prefix: str = "net") -> list[Tap]:
    """Taps of an adapted model by module type and name, with their axis conventions.

    - conv blocks (outermost modules named conv/block/layer/stage, or numbered
      children of a container, that hold a ``Conv1d``/``Conv2d``; a container of
      several blocks is opened, one tap per block), and bare convs, read after
      the norm and activation modules that follow them: kind ``"conv"``; a 2-D
      conv of a time-first model is viewed ``"time-first"``, a 1-D conv ``"1d"``.
    - ``GRU``/``LSTM``/``RNN``: kind ``"conv"`` over time only, viewed ``"sequence"``.
    - modules named in ``attention`` (and every ``nn.MultiheadAttention``): kind ``"attention"``.
    - the input of the last ``Linear`` with ``n_classes`` outputs: ``"embedding"``;
      the model's output: ``"logits"``.

    Returns
    -------
    list of Tap
        Input to output; module paths start with ``prefix`` (the wrapper's attribute).
    """
    taps: list[Tap] = []
    modules = dict(model.named_modules())
    attention = list(attention) + [n for n, m in modules.items() if isinstance(m, nn.MultiheadAttention)
                                   and n not in attention]
    convs = dict(_conv_blocks(model, ""))  # name -> the module read
    order = {name: i for i, name in enumerate(modules)}
    found = [(name, "conv") for name in convs]
    found += [(name, "recurrent") for name, m in modules.items() if isinstance(m, _RECURRENT)]
    found += [(name, "attention") for name in attention if name in modules]
    for name, what in sorted(found, key=lambda item: order[item[0]]):
        module = modules[name]
        label = name.replace(".", " / ")
        if what == "conv":
            taps.append(Tap(name, label, "conv", f"{prefix}.{convs[name]}", view=conv_view(module, layout)))
        elif what == "recurrent":
            view = "sequence" if getattr(module, "batch_first", False) else "sequence-time-first"
            taps.append(Tap(name, f"{label} (over time)", "conv", f"{prefix}.{name}", index=0, view=view))
        else:
            taps.append(Tap(f"{name}.attn", f"{label} / attention", "attention", f"{prefix}.{name}", index=1))
    head = _head(model, n_classes)
    if head is not None:
        taps.append(Tap("embedding", "embedding (input of the head)", "embedding", f"{prefix}.{head}", capture="input"))
    taps.append(Tap("logits", "logits", "logits", prefix))
    return taps


class AdaptedModel(nn.Module):
    """A user's model behind our model interface: ``kind``, ``n_classes``, ``taps()``, logits out.

    Parameters
    ----------
    spec : ModelSpec
        With weights already loaded.
    adapter : str
        The adapter file it came from (recorded in ``config``).
    """

    kind = "adapter"

    def __init__(self, spec: ModelSpec, *, adapter: str = ""):
        super().__init__()
        self.net = spec.model
        self.n_classes = len(spec.classes)
        self.layout = spec.layout
        self.multi_label = bool(spec.multi_label)
        self.config = {"adapter": adapter, "layout": spec.layout, "multi_label": self.multi_label}
        self._taps = discover_taps(spec.model, layout=spec.layout, n_classes=self.n_classes,
                                   attention=spec.attention)
        if spec.taps:
            by_module = {t.module: t for t in self._taps}
            modules = dict(spec.model.named_modules())
            chosen = []
            for name, path in dict(spec.taps).items():
                if path not in modules:
                    raise InputError(adapter or "adapter", f"ModelSpec.taps names {path!r}, which the model "
                                                           f"does not have")
                base = by_module.get(f"net.{path}") or Tap(name, name, "conv", f"net.{path}",
                                                           view=conv_view(modules[path], spec.layout))
                chosen.append(Tap(name, name.replace(".", " / "), base.kind, base.module, index=base.index,
                                  capture=base.capture, view=base.view))
            self._taps = chosen + [t for t in self._taps if t.kind in ("embedding", "logits")]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if isinstance(out, dict):
            out = out.get("logits", next(iter(out.values())))
        return out

    def taps(self) -> list[Tap]:
        return list(self._taps)


def build_adapted(adapter: str | Path, weights: str | Path | None) -> tuple[AdaptedModel, ModelSpec]:
    """Import the adapter, load the weights, wrap the model (eval mode)."""
    spec = load_adapter(adapter)
    if weights is not None:
        load_weights(spec.model, weights)
    model = AdaptedModel(spec, adapter=str(Path(adapter).expanduser().resolve())).eval()
    return model, spec


# What each kind of tap must record (batch first): a conv map (B, C, F, T) once viewed; attention
# (B, heads, S, S) or (B, S, S); a vector per clip.
_TAP_NDIM = {"conv": (4,), "se": (2, 4), "attention": (4, 3), "tokens": (3,), "embedding": (2,), "logits": (2,)}


def check_spec(model: AdaptedModel, spec: ModelSpec, *, source: str | Path = "adapter") -> dict:
    """Run a silent clip through the adapter's input function and the model; check what comes out.

    Returns
    -------
    dict
        ``input_shape``, ``taps`` (name -> kind and recorded shape),
        ``layout``, ``multi_label``, ``n_classes``.

    Raises
    ------
    InputError
        The input function or the model raises, the output is not
        ``(1, n_classes)`` logits, the head has fewer outputs than there are
        classes (or more), or the output is not finite.
    """
    from core.models.taps import record

    cfg = spec.audio_config()
    y = np.zeros(spec.n_samples(), dtype=np.float32)
    try:
        x = np.asarray(spec.input(y, cfg.sr), dtype=np.float32)
    except Exception as error:
        raise InputError(source, f"input(y, sr) raised {type(error).__name__}: {error}") from None
    xt = torch.from_numpy(np.ascontiguousarray(x))[None]
    try:
        with torch.no_grad(), record(model, None) as rec:
            logits = model(xt)
    except InputError:
        raise
    except Exception as error:
        raise InputError(source, f"the model raised on a silent clip of input shape {tuple(xt.shape)}: "
                                 f"{type(error).__name__}: {str(error).splitlines()[0][:200]}") from None
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or logits.shape[0] != 1:
        raise InputError(source, f"the model must return logits (batch, n_classes); got "
                                 f"{tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__}")
    if logits.shape[1] != len(spec.classes):
        more = "too many classes for its head" if len(spec.classes) > logits.shape[1] else "too few class names"
        raise InputError(source, f"{more}: the model outputs {logits.shape[1]} logits, the adapter names "
                                 f"{len(spec.classes)} classes")
    if not torch.isfinite(logits).all():
        raise InputError(source, "the model's output on a silent clip is not finite")
    taps = {}
    for tap in model.taps():
        value = rec.outputs.get(tap.name)
        taps[tap.name] = {"kind": tap.kind, "view": tap.view,
                          "shape": list(value.shape) if isinstance(value, torch.Tensor) else None}
    unreached = [name for name, t in taps.items() if t["shape"] is None]
    if unreached:
        raise InputError(source, f"the forward pass did not reach the taps {unreached}")
    for tap in model.taps():
        shape = taps[tap.name]["shape"]
        if len(shape) not in _TAP_NDIM[tap.kind]:
            raise InputError(source, f"tap {tap.name!r} ({tap.module.removeprefix('net.')}) is read as a {tap.kind} "
                                     f"tap, {_TAP_NDIM[tap.kind][0]}-D, but its output has shape {tuple(shape)}; "
                                     f"name another module in ModelSpec.taps")
    return {"input_shape": list(x.shape), "taps": taps, "layout": spec.layout, "multi_label": spec.multi_label,
            "n_classes": len(spec.classes)}
