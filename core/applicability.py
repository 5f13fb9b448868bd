"""Which interpretation methods apply to a model, and why the others don't.

Each method declares what it needs (:data:`NEEDS`); a model provides some of
it (:func:`provides`, from its taps, its input layout and its outputs). A page
offers the methods of :func:`applicable` whose reason is ``None`` and says the
reason for the others.

>>> from core.checkpoint import load_checkpoint
>>> from core.paths import CHECKPOINTS_DIR
>>> for m, why in applicable(load_checkpoint(CHECKPOINTS_DIR / "secnn"), "Attention"):
...     print(f"{m.name}: {why}")  # doctest: +ELLIPSIS
attention per head: needs attention weights (an attention tap); and a token grid ...
attention rollout: needs attention weights (an attention tap); and a token grid ...
attention over time: needs attention weights over time steps ...
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NEEDS", "Method", "METHODS", "PAGES", "provides", "applicable", "usable"]

NEEDS = {
    "map": "a 2-D time x frequency map (a conv tap)",
    "tokens": "a token grid (a transformer's patch tokens on a declared grid)",
    "attention": "attention weights (an attention tap)",
    "sequence attention": "attention weights over time steps (an attention tap without a patch grid)",
    "gradients": "gradients from a class score to the tap",
    "vector": "any vector per clip (every model has its logits)",
    "se": "squeeze-and-excitation channel weights (an SE tap)",
    "spectrogram input": "an input laid out as (1, n_mels, n_frames) to mask cell by cell",
    "single-label": "one class per clip (a softmax model)",
    "multi-label": "several classes per clip (a sigmoid model)",
}


@dataclass(frozen=True)
class Method:
    """An interpretation method of a page.

    Attributes
    ----------
    name : str
    page : str
    needs : tuple of str
        Each item is a key of :data:`NEEDS`, or alternatives joined by ``|``
        (``"map|tokens"``: either will do).
    """

    name: str
    page: str
    needs: tuple[str, ...]


METHODS = (
    Method("feature maps", "Layers", ("map|tokens",)),
    Method("SE channel weights", "Layers", ("se",)),
    Method("attention per head", "Attention", ("attention", "tokens")),
    Method("attention rollout", "Attention", ("attention", "tokens")),
    Method("attention over time", "Attention", ("sequence attention",)),
    Method("Grad-CAM", "Attribution", ("gradients", "map|tokens")),
    Method("deletion curve", "Attribution", ("gradients", "map|tokens", "spectrogram input")),
    Method("kept region as sound", "Attribution", ("gradients", "map|tokens")),
    Method("embedding projection", "Embeddings", ("vector",)),
    Method("NMF-style decoders", "Decoders", ("map|tokens", "spectrogram input")),
    Method("confusion matrix", "Errors", ("single-label",)),
    Method("per-class average precision", "Errors", ("vector",)),
)
PAGES = tuple(dict.fromkeys(m.page for m in METHODS))


def provides(loaded) -> set[str]:
    """What a loaded model offers, as keys of :data:`NEEDS`."""
    model = loaded.model
    kinds = {t.kind for t in model.taps()}
    out = {"vector", "gradients"}
    if "conv" in kinds:
        out.add("map")
    if "tokens" in kinds and getattr(model, "grid", None) is not None:
        out.add("tokens")
    if "attention" in kinds:
        out.add("attention")
        if "tokens" not in out:
            out.add("sequence attention")
    if "se" in kinds:
        out.add("se")
    if getattr(loaded, "layout", "mel-time") == "mel-time":
        out.add("spectrogram input")
    out.add("multi-label" if getattr(loaded, "multi_label", False) else "single-label")
    return out


def applicable(loaded, page: str | None = None, *, name_model: bool = True) -> list[tuple[Method, str | None]]:
    """Each method of ``page`` (or of every page) with ``None`` when it applies, else the reason it doesn't.

    With ``name_model``, each reason ends by saying which model (kind and input layout) lacks it.
    """
    have = provides(loaded)
    out = []
    for method in METHODS:
        if page is not None and method.page != page:
            continue
        missing = [need for need in method.needs if not set(need.split("|")) & have]
        reason = None
        if missing:
            reason = "needs " + "; and ".join(" or ".join(NEEDS[n] for n in need.split("|")) for need in missing)
            if name_model:
                reason += (f" (this model, {getattr(loaded, 'kind', '?')} with {getattr(loaded, 'layout', 'mel-time')} "
                           "input, has not)")
        out.append((method, reason))
    return out


def usable(loaded, page: str) -> list[str]:
    """Names of the methods of ``page`` that apply to the model."""
    return [m.name for m, why in applicable(loaded, page) if why is None]
