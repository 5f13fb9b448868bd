"""Record what named layers of a model output, through forward hooks, without editing the model.

>>> from core.models.checkpoint import load_checkpoint
>>> from core.paths import CHECKPOINTS_DIR
>>> model = load_checkpoint(CHECKPOINTS_DIR / "secnn").model
>>> x = torch.zeros(2, 1, 128, 431)  # two clips' log-mel spectrograms
>>> with record(model, ["block3", "block3.se"]) as rec:
...     logits = model(x)
>>> rec.outputs["block3"].shape, rec.outputs["block3.se"].shape  # (B, C, F, T) before SE; (B, C) its weights
(torch.Size([2, 64, 16, 53]), torch.Size([2, 64]))

Leaving the block removes every hook (and restores any attention switch it
turned on), also when the forward pass raises.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager

import numpy as np
import torch
from torch import nn

from core.errors import InputError
from core.models.tap import Tap

__all__ = ["Recording", "record", "extract", "se_weights", "tap_names", "to_view", "from_view"]


def tap_names(model: nn.Module, kind: str | None = None) -> list[str]:
    """Names of a model's taps, input to output, optionally of one kind."""
    return [t.name for t in model.taps() if kind is None or t.kind == kind]


def _select(value, tap: Tap) -> torch.Tensor:
    if isinstance(value, (tuple, list)):
        value = value[tap.index if tap.index is not None else 0]
    return value


def to_view(value: torch.Tensor, view: str) -> torch.Tensor:
    """A tensor in a declared axis convention (:data:`core.models.TAP_VIEWS`) as (B, C, F, T)."""
    if view == "time-first":
        return value.transpose(-1, -2)
    if view == "1d":
        return value.unsqueeze(2)
    if view == "sequence":
        return value.transpose(1, 2).unsqueeze(2)
    if view == "sequence-time-first":
        return value.permute(1, 2, 0).unsqueeze(2)
    raise InputError("tap view", f"{view!r} is not a known view")


def from_view(value: torch.Tensor, view: str) -> torch.Tensor:
    """The inverse of :func:`to_view`."""
    if view == "time-first":
        return value.transpose(-1, -2)
    if view == "1d":
        return value.squeeze(2)
    if view == "sequence":
        return value.squeeze(2).transpose(1, 2)
    if view == "sequence-time-first":
        return value.squeeze(2).permute(2, 0, 1)
    raise InputError("tap view", f"{view!r} is not a known view")


def _replace(value, tap: Tap, new: torch.Tensor):
    if isinstance(value, (tuple, list)):
        items = list(value)
        items[tap.index if tap.index is not None else 0] = new
        return type(value)(items) if isinstance(value, tuple) else items
    return new


class Recording:
    """Holds the hooks of one :func:`record` block and what they captured.

    Attributes
    ----------
    taps : dict[str, Tap]
        The requested taps.
    outputs : dict[str, torch.Tensor]
        The latest output of each tap (cleared at the start of every forward
        pass of the model). Tensors are detached unless ``keep_graph``.
    """

    def __init__(self, model: nn.Module, taps: list[Tap], *, keep_graph: bool):
        self.model = model
        self.taps = {t.name: t for t in taps}
        self.outputs: dict[str, torch.Tensor] = {}
        self.keep_graph = keep_graph
        self._handles: list = []

    def _store(self, tap: Tap, value) -> None:
        value = _select(value, tap)
        self.outputs[tap.name] = value if self.keep_graph or value is None else value.detach()

    def attach(self) -> None:
        # Clear stale outputs when a new forward pass starts.
        self._handles.append(self.model.register_forward_pre_hook(lambda module, args: self.outputs.clear()))
        for tap in self.taps.values():
            module = self.model.get_submodule(tap.module)
            if tap.capture == "input":
                hook = module.register_forward_pre_hook(
                    lambda m, args, kwargs, tap=tap: self._store(tap, args[0] if args else next(iter(kwargs.values()))),
                    with_kwargs=True)
            elif tap.view is not None:
                hook = module.register_forward_hook(lambda m, args, out, tap=tap: self._store_view(tap, out))
            else:
                hook = module.register_forward_hook(lambda m, args, out, tap=tap: self._store(tap, out))
            self._handles.append(hook)

    def _store_view(self, tap: Tap, out):
        # The tap is the (B, C, F, T) view, and the model goes on from that view turned back:
        # same values, but the logits now depend on the stored tensor, so gradients reach it.
        viewed = to_view(_select(out, tap), tap.view)
        self.outputs[tap.name] = viewed if self.keep_graph else viewed.detach()
        return _replace(out, tap, from_view(viewed, tap.view))

    def release(self) -> None:
        """Remove every hook; ``outputs`` stays readable."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def _resolve(model: nn.Module, names) -> list[Tap]:
    if not hasattr(model, "taps"):
        raise InputError("model", f"{type(model).__name__} lists no taps")
    if isinstance(names, str):
        names = [names]
    by_name = {t.name: t for t in model.taps()}
    names = list(by_name) if names is None else list(names)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise InputError("taps", f"{getattr(model, 'kind', type(model).__name__)} has no taps {unknown}; "
                                 f"it has {list(by_name)}")
    return [by_name[n] for n in names]


@contextmanager
def record(model: nn.Module, names=None, *, keep_graph: bool = False):
    """Record the outputs of named taps while inside the block.

    Parameters
    ----------
    model : nn.Module
        A model with ``taps()`` (see :mod:`core.models`).
    names : str, iterable of str, or None
        Tap names; ``None`` means all of them.
    keep_graph : bool
        Keep the tensors attached to the autograd graph (for gradient methods);
        by default they are detached.

    Yields
    ------
    Recording
        ``rec.outputs[name]`` holds each tap's tensor after a forward pass.

    Raises
    ------
    InputError
        For a tap name the model does not have (the message lists the names).

    Notes
    -----
    For attention taps the model is switched to its manual attention path
    (``model.keep_attention()``) inside the block, so the probabilities are
    formed; leaving the block switches it back.
    """
    taps = _resolve(model, names)
    rec = Recording(model, taps, keep_graph=keep_graph)
    with ExitStack() as stack:
        if any(t.kind == "attention" for t in taps) and hasattr(model, "keep_attention"):
            stack.enter_context(model.keep_attention())
        rec.attach()
        stack.callback(rec.release)
        yield rec


def extract(model: nn.Module, x: torch.Tensor, names=None) -> dict[str, torch.Tensor]:
    """Run one batch without gradients and return the requested taps' outputs.

    Parameters
    ----------
    model : nn.Module
        Used as it is (call ``model.eval()`` first for inference behaviour).
    x : torch.Tensor [shape=(B, ...)]
        A batch of the model's inputs (``Loaded.inputs``), e.g. (B, 1, n_mels, n_frames).
    names : str, iterable of str, or None
        Tap names; ``None`` means all.

    Returns
    -------
    dict[str, torch.Tensor]
        One entry per name, in the order asked, each of the shape its tap
        declares (``Tap.shape(B, audio_cfg)``).
    """
    spectrogram = getattr(model, "layout", "mel-time") == "mel-time"  # ours, and adapters that say so
    if not isinstance(x, torch.Tensor) or x.ndim < 2 or (spectrogram and (x.ndim != 4 or x.shape[1] != 1)):
        raise InputError("x", f"need a batch of model inputs, (B, 1, n_mels, n_frames) for a spectrogram model, got "
                              f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    taps = _resolve(model, names)
    with torch.no_grad(), record(model, [t.name for t in taps]) as rec:
        model(x)
    missing = [t.name for t in taps if t.name not in rec.outputs]
    if missing:
        raise InputError("taps", f"the forward pass did not reach {missing}")
    return {t.name: rec.outputs[t.name] for t in taps}


def se_weights(model: nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    """Each SE block's excitation weights per clip.

    Parameters
    ----------
    model : nn.Module
        A model with taps of kind ``"se"`` (the SE-CNN).
    x : torch.Tensor [shape=(B, 1, n_mels, n_frames)]

    Returns
    -------
    dict[str, np.ndarray]
        Tap name (``"block2.se"``, ...) to weights of shape (B, C), in [0, 1].
        Empty for a model without SE blocks.
    """
    names = tap_names(model, "se")
    if not names:
        return {}
    return {name: value.cpu().numpy() for name, value in extract(model, x, names).items()}
