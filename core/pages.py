"""The explorer's pages, in the order the app lists them: the one home of the page list.

``core`` says which methods and views belong to which page
(:mod:`core.interpret.registry`); the app builds its navigation from this
list (``explorer/app.py``), and each page's file is ``explorer/views/<name>.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Page", "PAGES", "PAGE_NAMES", "PAGE_TITLES"]


@dataclass(frozen=True)
class Page:
    """One page: ``name`` (its URL path and file stem), ``title``, ``icon`` (a Material icon)."""

    name: str
    title: str
    icon: str


PAGES = (
    Page("tour", "Tour", ":material/school:"),
    Page("clip", "Clip", ":material/graphic_eq:"),
    Page("layers", "Layers", ":material/layers:"),
    Page("attention", "Attention", ":material/hub:"),
    Page("attribution", "Attribution", ":material/local_fire_department:"),
    Page("embeddings", "Embeddings", ":material/scatter_plot:"),
    Page("decoders", "Decoders", ":material/equalizer:"),
    Page("errors", "Errors", ":material/rule:"),
    Page("review", "Review", ":material/fact_check:"),
)
PAGE_NAMES = tuple(p.name for p in PAGES)
PAGE_TITLES = tuple(p.title for p in PAGES)
