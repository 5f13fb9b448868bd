"""A named point of a model whose output can be recorded (:class:`Tap`), and the axis conventions it declares.

Its own module so that the model modules import it without importing their
package (``core/models/__init__.py`` imports them lazily in ``registry()``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from core.errors import InputError
from core.kinds import TAP_KINDS

__all__ = ["Tap", "TAP_VIEWS"]


# Declared axis conventions of a recorded tensor, each turned into (B, C, F, T):
TAP_VIEWS = {
    "time-first": "(B, C, T, F) -> (B, C, F, T), e.g. CNN14's conv blocks",
    "1d": "(B, C, T) -> (B, C, 1, T), a 1-D conv over time (waveform models)",
    "sequence": "(B, T, H) -> (B, H, 1, T), a batch-first recurrent layer's outputs",
    "sequence-time-first": "(T, B, H) -> (B, H, 1, T), a recurrent layer's outputs without batch_first",
}


@dataclass(frozen=True)
class Tap:
    """A named point of a model whose output can be recorded.

    Attributes
    ----------
    name : str
        Stable key, e.g. ``"block3"``, ``"block3.se"``, ``"layer4.attn"``,
        ``"layer4"``, ``"embedding"``, ``"logits"``.
    label : str
        What a person reads, e.g. ``"block 3 / SE"``.
    kind : {"conv", "se", "attention", "tokens", "embedding", "logits"}
    module : str
        Dotted path for ``model.get_submodule``; its forward output is the tap.
    shape : callable or None
        ``shape(batch, audio_cfg) -> tuple`` of the recorded tensor's shape.
    index : int or None
        When the module returns a tuple or list, the tap is this element of it
        (Hugging Face modules return tuples); a plain tensor is taken as is.
    capture : {"output", "input"}
        ``"input"`` records the module's first positional input instead of its
        output (for values that only exist as the input of a module).
    view : {None, "time-first", "1d", "sequence", "sequence-time-first"}
        How the recorded tensor is turned into our ``(B, C, F, T)`` layout
        (see :data:`TAP_VIEWS`); ``None`` keeps it as it is. The model itself
        goes on with the same values (see :func:`core.models.taps.record`).
    """

    name: str
    label: str
    kind: str
    module: str
    shape: Callable | None = field(default=None, compare=False, repr=False)
    index: int | None = None
    capture: str = "output"
    view: str | None = None

    def __post_init__(self):
        if self.kind not in TAP_KINDS:
            raise InputError("tap kind", f"{self.kind!r} is not one of {TAP_KINDS}")
        if self.capture not in ("output", "input"):
            raise InputError("tap capture", f"{self.capture!r} is not 'output' or 'input'")
        if self.view is not None and self.view not in TAP_VIEWS:
            raise InputError("tap view", f"{self.view!r} is not one of {sorted(TAP_VIEWS)}")
