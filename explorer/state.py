"""The user's picks, kept in ``st.session_state`` so that every page sees the same ones.

Each pick has a persistent key (``DATASET``, ``CLIP_ID``, ...), set once if
missing by :func:`init`. A widget that edits a pick uses its own key
(``"_w_" + name``, see :func:`bound`), synced from the pick before the widget
is drawn and copied back by its ``on_change`` callback: Streamlit forgets a
widget's key on a page that does not draw it, so the pick itself must not be a
widget key, and any page may set a pick (then ``st.rerun()``) without tripping
over a widget that already ran.

The picks also live in the URL (:data:`URL_PARAMS`): :func:`read_url` copies a link's query
parameters into them at a session's first run, :func:`write_url` writes them back on every run, and
a link's value that a page cannot show is named by the check that finds it (:func:`bound`, the
sidebar's clip and models), which then shows a default.

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
    "TOUR_STEP", "METHOD", "PRESENTER", "URL_PARAMS", "read_url", "write_url", "url_asked", "url_settled",
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
TOUR_STEP = "tour_step"  # the Tour page's step, 1-based
METHOD = "method"  # the explanation method picked (the Tour's "where did the model look?" step)
PRESENTER = "presenter"  # bool: larger fonts and figures, sidebar collapsed, for a projector

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
    TOUR_STEP: 1,
    METHOD: None,
    PRESENTER: False,
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
        asked = url_asked(name)
        value = default if default is not None else (options[0] if options else value)
        st.session_state[name] = value
        if asked is not None:  # a link asked for something this page does not have: say so, go on
            shown = kwargs.get("format_func", str)(value) if value is not None else "nothing"
            getattr(widget, "__self__", st).warning(
                f"The link's {_PARAM_OF[name]}={asked} is not one of this page's choices for '{label}': "
                f"showing {shown} instead.")
    url_settled(name)
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


# Links that open a view ----------------------------------------------------------
# Query parameter -> pick. The page is the URL's path (/layers); the dataset is "demo" or a folder path;
# models are comma-separated names; an uploaded clip has no link (its file lives on this computer only).
URL_PARAMS: dict[str, str] = {
    "data": DATASET_FOLDER, "clip": CLIP_ID, "models": MODELS, "layer": TAP, "class": TARGET_CLASS,
    "query": QUERY, "method": METHOD, "step": TOUR_STEP, "presenter": PRESENTER,
}
_PARAM_OF = {pick: param for param, pick in URL_PARAMS.items()}
SHARED_PARAMS = ("data", "clip", "models", "presenter")  # in every page's link
PAGE_PARAMS: dict[str, tuple[str, ...]] = {  # what else a page's link carries: the picks it reads
    "tour": ("step", "method"), "layers": ("layer",), "attribution": ("layer", "class"), "attention": ("query",),
}
_URL_READ, _URL_ASKED = "_url_read", "_url_asked"


def _parse(param: str, text: str) -> Any:
    """A query parameter's text as its pick's value; ValueError when it cannot be one."""
    if param == "models":
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names or len(names) > 2:
            raise ValueError("one or two model names, separated by a comma")
        return names
    if param == "step":
        if not text.isdigit() or int(text) < 1:
            raise ValueError("a step number from 1")
        return int(text)
    if param == "query":
        if text != "cls" and not text.isdigit():
            raise ValueError("a patch number, or cls for the class token")
        return text if text == "cls" else int(text)
    if param == "presenter":
        if text not in ("0", "1"):
            raise ValueError("1 (on) or 0 (off)")
        return text == "1"
    if not text.strip():
        raise ValueError("a value")
    return text


def _text(param: str, value: Any) -> str:
    if param == "models":
        return ",".join(value)
    if param == "presenter":
        return "1" if value else "0"
    return str(value)


def read_url() -> list[str]:
    """Copy the URL's query parameters into the picks, once per session (at its first run).

    A parameter that cannot be a pick (``step=abc``) or that this explorer
    does not know is left out; one that is well-formed but names something the
    dataset or page lacks (a clip that does not exist) is checked where it is
    used (:func:`bound`, the sidebar), which says so and shows a default.

    Returns
    -------
    list of str
        One sentence per parameter left out, for the page to show.
    """
    if st.session_state.get(_URL_READ):
        return []
    st.session_state[_URL_READ] = True
    asked, problems = {}, []
    for param in st.query_params:
        text = st.query_params.get(param, "")
        if param not in URL_PARAMS:
            problems.append(f"The link's parameter '{param}' is not one this explorer reads "
                            f"({', '.join(URL_PARAMS)}); it was ignored.")
            continue
        try:
            value = _parse(param, text)
        except ValueError as error:
            problems.append(f"The link's {param}={text!r} is not {error}; it was ignored.")
            continue
        if param == "data":
            st.session_state[DATASET_SOURCE] = "demo" if value == "demo" else "folder"
            if value == "demo":
                continue
        st.session_state[URL_PARAMS[param]] = value
        asked[URL_PARAMS[param]] = text
    if CLIP_ID in asked:
        st.session_state[CLIP_ORIGIN] = "dataset"
    st.session_state[_URL_ASKED] = asked
    return problems


def url_asked(name: str) -> str | None:
    """The text a link asked for pick ``name``, while it has not been checked yet (else ``None``)."""
    return st.session_state.get(_URL_ASKED, {}).get(name)


def url_settled(name: str) -> None:
    """Pick ``name`` has been checked against what the page offers: a later fallback is not the link's doing."""
    st.session_state.get(_URL_ASKED, {}).pop(name, None)


def write_url(page: str) -> dict[str, str]:
    """Set the URL's query parameters to the picks that ``page`` reads (and the shared ones).

    Returns
    -------
    dict
        The parameters written (parameter -> text).
    """
    params = {}
    for param in SHARED_PARAMS + PAGE_PARAMS.get(page, ()):
        value = get(URL_PARAMS[param])
        if param == "data":
            value = "demo" if get(DATASET_SOURCE) != "folder" else get(DATASET_FOLDER) or "demo"
        if param == "clip" and get(CLIP_ORIGIN) == "upload":
            value = None  # an upload has no link; the URL keeps no clip rather than a wrong one
        if value is None or value == [] or (param == "presenter" and not value):
            continue
        params[param] = _text(param, value)
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    return params
