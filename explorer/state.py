"""The user's picks, kept in ``st.session_state`` so that every page sees the same ones.

Each pick has a persistent key (``DATASET``, ``CLIP_ID``, ...), set once if
missing by :func:`init`. A widget that edits a pick uses its own key
(``"_w_" + name``, see :func:`bound`), synced from the pick before the widget
is drawn and copied back by its ``on_change`` callback: Streamlit forgets a
widget's key on a page that does not draw it, so the pick itself must not be a
widget key, and any page may set a pick (then ``st.rerun()``) without tripping
over a widget that already ran.

Other pages open a clip with :func:`open_clip`::

    state.open_clip(record.clip_id)
    st.switch_page(state.page_file("clip"))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import streamlit as st

from core.pages import PAGE_NAMES

__all__ = [
    "DATASET_SOURCE", "DATASET_FOLDER", "DATASET_ROOT", "CLIP_ID", "CLIP_ORIGIN", "UPLOAD", "MODELS",
    "TAP", "FOLD", "QUERY", "TARGET_CLASS", "WINDOW", "DEFAULTS", "PAGES_DIR", "PAGE_NAMES", "PAGE_FILES", "page_file",
    "ClipRef", "init", "bound", "commit", "open_clip", "use_upload", "get",
]

# Persistent picks ----------------------------------------------------------------
DATASET_SOURCE = "dataset_source"  # "demo" or "folder"
DATASET_FOLDER = "dataset_folder"  # the folder path the user typed
DATASET_ROOT = "dataset_root"  # the dataset in use (str path); the last one that opened
CLIP_ID = "clip_id"  # a clip of the dataset in use
CLIP_ORIGIN = "clip_origin"  # "dataset" or "upload": which of the two is the current clip
UPLOAD = "upload"  # {"name": original file name, "path": saved copy} of the last good upload, or None
MODELS = "models"  # list of 1 or 2 checkpoint names (folder names)
TAP = "tap"  # tap name on the Layers and Attribution pages
EMBEDDING_TAP = "embedding_tap"  # the Embeddings page's own tap: a conv tap picked on Layers is no default there
FOLD = "dataset_fold"  # the fold pick shared by the dataset pages (an int fold, or ALL_FOLDS)
QUERY = "query_patch"  # patch index (int) or "cls": the attention page's query
TARGET_CLASS = "target_class"  # class name explained on the Attribution page, or None = predicted
WINDOW = "window"  # {"recording": path, "start_s": float}: the window of a long recording every page explains

DEFAULTS: dict[str, Any] = {
    DATASET_SOURCE: "demo",
    DATASET_FOLDER: "",
    DATASET_ROOT: None,
    CLIP_ID: None,
    CLIP_ORIGIN: "dataset",
    UPLOAD: None,
    MODELS: None,  # None until the sidebar picks defaults from the checkpoints found
    TAP: None,
    QUERY: "cls",
    TARGET_CLASS: None,
    WINDOW: None,
}

# Page files, relative to explorer/ (for st.switch_page and AppTest.switch_page). They live in
# views/, not pages/: a folder named pages/ beside app.py switches Streamlit into its old
# multipage mode before st.navigation runs, so a deep link (/layers) on a fresh server runs the
# page without app.py and AppTest loses the sidebar on every rerun.
PAGES_DIR = "views"
PAGE_FILES = {name: f"{PAGES_DIR}/{name}.py" for name in PAGE_NAMES}


def page_file(name: str) -> str:
    """The file of a page relative to explorer/: ``views/<name>.py``."""
    return PAGE_FILES[name]


_WIDGET_PREFIX = "_w_"


@dataclass(frozen=True)
class ClipRef:
    """The clip every page shows.

    Attributes
    ----------
    path : str
        The audio file (a dataset file, or the saved copy of an upload); it is
        the cache key for everything computed from the clip.
    name : str
        What the user reads: the clip id or the upload's file name.
    origin : {"dataset", "upload"}
    label : int or None
        Ground-truth class index in the dataset's classes; ``None`` for uploads.
    category : str or None
    dataset_root : str or None
        The dataset the clip belongs to (``None`` for uploads).
    recording : str or None
        For a window of a recording longer than the model's window: the whole recording's file
        (``path`` is then the window, saved as a file of its own); ``None`` otherwise.
    window_s : (float, float) or None
        That window's start and end in the recording, in seconds.
    """

    path: str
    name: str
    origin: str
    label: int | None = None
    category: str | None = None
    dataset_root: str | None = None
    recording: str | None = None
    window_s: tuple[float, float] | None = None


def init() -> None:
    """Set every pick to its default if it is missing (run at the top of every run)."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = value


def get(name: str) -> Any:
    """A pick's value (its default when unset)."""
    return st.session_state.get(name, DEFAULTS.get(name))


def commit(name: str) -> None:
    """``on_change`` callback: copy a widget's value into its pick."""
    st.session_state[name] = st.session_state[_WIDGET_PREFIX + name]


def bound(widget: Callable, label: str, name: str, *, options: Sequence | None = None,
          default: Any = None, valid: Callable[[Any], bool] | None = None, **kwargs) -> Any:
    """Draw a widget that edits the pick ``name`` and return its value.

    Parameters
    ----------
    widget : callable
        ``st.selectbox``, ``st.select_slider``, ``st.radio``, ``st.multiselect``,
        ``st.text_input``, ... (or the same on ``st.sidebar``).
    label : str
    name : str
        The pick's persistent key.
    options : sequence or None
        Passed to the widget; a pick not among them (another model's tap, a
        clip of another dataset) is replaced by ``default`` or the first option.
    default : any
        Value used when the pick is unset or invalid.
    valid : callable or None
        Extra check of the pick's value (e.g. for multiselect lists).
    **kwargs
        Passed to the widget (``format_func``, ``help``, ...).

    Returns
    -------
    The widget's value, which is also the pick's value after this call.
    """
    value = st.session_state.get(name)
    ok = value is not None
    if ok and options is not None and not isinstance(value, list):
        ok = value in options
    if ok and valid is not None:
        ok = valid(value)
    if not ok:
        value = default if default is not None else (options[0] if options else value)
        st.session_state[name] = value
    key = _WIDGET_PREFIX + name
    st.session_state[key] = value
    if options is not None:
        kwargs["options"] = options
    return widget(label, key=key, on_change=commit, args=(name,), **kwargs)


def open_clip(clip_id: str) -> None:
    """Make a clip of the dataset in use the current clip (from any page).

    Call ``st.rerun()`` or ``st.switch_page(...)`` afterwards so that the
    sidebar shows it.
    """
    st.session_state[CLIP_ID] = clip_id
    st.session_state[CLIP_ORIGIN] = "dataset"


def use_upload(name: str, path: str) -> None:
    """Make a checked upload the current clip."""
    st.session_state[UPLOAD] = {"name": name, "path": path}
    st.session_state[CLIP_ORIGIN] = "upload"
