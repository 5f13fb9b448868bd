"""The models the explorer explains, each listing its layers as named taps.

Every model takes standardised log-mel features of shape
``(batch, 1, n_mels, n_frames)`` and returns logits ``(batch, n_classes)``.
Each has ``.kind``, ``.config`` (a dataclass), ``.n_classes`` and
``taps() -> list[Tap]``, ordered from input to output.

Kinds: ``"secnn"`` (:mod:`core.models.secnn`), ``"ast"``
(:mod:`core.models.ast`) and ``"hf-ast"`` (a Hugging Face
``ASTForAudioClassification`` folder on disk, :mod:`core.models.hf_ast`; it is
loaded, not built, so :func:`build_model` refuses it).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from core.errors import InputError
from core.kinds import (  # noqa: F401 (re-exported)
    BUILDABLE_KINDS, MAP_TAP_KINDS, MODEL_KINDS, TAP_KINDS, TRAINABLE_KINDS,
)
from core.models.tap import TAP_VIEWS, Tap  # noqa: F401 (re-exported; the model modules import it from there)

if TYPE_CHECKING:  # torch loads when a model is first built: core.models.checkpoint sits in this package, and the
    from torch import nn  # app reads checkpoint.json before it needs torch (its cold start)

__all__ = ["Tap", "TAP_KINDS", "MAP_TAP_KINDS", "TAP_VIEWS", "MODEL_KINDS", "BUILDABLE_KINDS", "TRAINABLE_KINDS",
           "registry", "build_model", "config_class", "config_from_dict",
           "count_parameters", "find_tap"]


def registry() -> dict[str, tuple[type, type]]:
    """Buildable kinds: ``{"secnn": (SECNNConfig, SECNN), "ast": (ASTConfig, AudioTransformer)}``.

    A function, not a module constant: the model modules (torch, seconds) load when a model is first built.
    """
    from core.models.ast import ASTConfig, AudioTransformer
    from core.models.secnn import SECNN, SECNNConfig

    return {"secnn": (SECNNConfig, SECNN), "ast": (ASTConfig, AudioTransformer)}


def config_class(kind: str) -> type:
    """The configuration dataclass of a buildable model kind ("secnn" or "ast")."""
    builders = registry()
    if kind not in builders:
        raise InputError("model kind", f"unknown kind {kind!r}; use one of {sorted(builders)}")
    return builders[kind][0]


def config_from_dict(kind: str, config: dict | None):
    """Build a kind's configuration dataclass from a plain dict (lists become tuples).

    Raises
    ------
    InputError
        For an unknown kind, an unknown field, or a value the config refuses.
    """
    cls = config_class(kind)
    config = dict(config or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - set(fields))
    if unknown:
        raise InputError(f"{kind} config", f"unknown fields {unknown}; known: {sorted(fields)}")
    for name, value in config.items():
        if isinstance(value, list):
            config[name] = tuple(value)
        elif isinstance(fields[name].default, tuple) and isinstance(value, (int, float)):
            config[name] = (value,)  # "head=64" on the command line: a one-element tuple
    try:
        return cls(**config)
    except (TypeError, ValueError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"{kind} config", str(error)) from None


def build_model(kind: str, config: dict | object | None = None, n_classes: int = 10) -> nn.Module:
    """Build a fresh (randomly initialised) model.

    Parameters
    ----------
    kind : {"secnn", "ast"}
    config : dict, config dataclass or None
        Fields of :class:`~core.models.secnn.SECNNConfig` or
        :class:`~core.models.ast.ASTConfig`; missing fields take defaults.
    n_classes : int >= 2

    Returns
    -------
    nn.Module
        In training mode, as PyTorch builds it.

    Raises
    ------
    InputError
        Unknown kind (``"hf-ast"`` is loaded with
        :func:`core.models.hf_ast.load_hf_ast`, not built), bad config, or
        fewer than 2 classes.

    Examples
    --------
    >>> model = build_model("secnn", {"channels": [8, 8, 8, 8, 8]}, n_classes=3)
    >>> [t.name for t in model.taps()][:3]
    ['block1', 'block2', 'block2.se']
    """
    if kind == "hf-ast":
        raise InputError("model kind", "'hf-ast' is loaded from a folder with core.models.hf_ast.load_hf_ast")
    if not isinstance(n_classes, int) or n_classes < 2:
        raise InputError("n_classes", f"need an integer >= 2, got {n_classes!r}")
    cls, model_cls = registry().get(kind, (None, None))
    if cls is None:
        config_class(kind)  # raises the unknown-kind error
    if not isinstance(config, cls):
        config = config_from_dict(kind, config if isinstance(config, dict) or config is None
                                  else dataclasses.asdict(config))
    return model_cls(config, n_classes=n_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def find_tap(model: nn.Module, name: str) -> Tap:
    """The tap called ``name``; an InputError lists the model's taps when there is none."""
    taps = model.taps()
    for tap in taps:
        if tap.name == name:
            return tap
    raise InputError("tap", f"{model.kind} has no tap {name!r}; it has {[t.name for t in taps]}")
