"""The explorer's entry point: ``streamlit run explorer/app.py``.

Sets up the pages and the sidebar with the picks every page shares: the
dataset (the bundled demo set by default, or a folder), the clip and one or two
models. The picks live in ``st.session_state`` (see :mod:`explorer.state`), so
they persist from page to page.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `streamlit run explorer/app.py` puts explorer/ on the path, not the repository.
_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

from explorer.startup import GATE  # noqa: E402

# Imports and runs never beside explorer/serve.py's start-up steps (explorer.startup explains why).
with GATE.page_run():
    import streamlit as st

    from core.data.cache import while_waiting
    from core.data.datasets import LAYOUT_NEEDS
    from core.errors import InputError
    from core.pages import PAGES
    from core.paths import cache_dir
    from explorer import cached, state, ui

# The browser tab's icon: an emoji, drawn by the browser. A page's ":material/...:" icon as the tab's icon would be
# fetched from an internet font host (fonts.gstatic.com), which fails offline; the sidebar's material icons use
# the font Streamlit ships, so they stay.
TAB_ICON = "🎧"


def _pages() -> list:
    """The app's pages (:data:`core.pages.PAGES`), each from ``views/<name>.py``; the Clip page opens first."""
    return [st.Page(state.page_file(p.name), title=p.title, icon=p.icon, url_path=p.name, default=p.name == "clip")
            for p in PAGES]


def _demo_root() -> str:
    """The bundled demo set's folder, synthesised with a progress bar the first time."""
    from core.audio.demo_data import COMPILING, ensure_demo_data

    bar = None

    def progress(fraction: float) -> None:
        nonlocal bar
        if bar is None:
            bar = st.sidebar.progress(0.0, text="Synthesising the demo sound set (first run only)…")
        text = f"Synthesising the demo sound set… {fraction:.0%}" if fraction > 0 else f"Demo sound set: {COMPILING}…"
        bar.progress(min(max(fraction, 0.0), 1.0), text=text)

    root = ensure_demo_data(progress=progress)
    if bar is not None:
        bar.empty()
    return str(root)


def _restore_settings() -> None:
    """Once per session: the dataset folder last opened (:mod:`core.data.settings`), so a restart opens it, not the
    demo set."""
    from core.data.settings import load_settings

    if st.session_state.get(_RESTORED):
        return
    st.session_state[_RESTORED] = True
    settings, problem = load_settings()
    if problem:
        st.sidebar.warning(problem)
    if settings["dataset_folder"] and st.session_state.get(state.DATASET_SOURCE) == "demo" \
            and not st.session_state.get(state.DATASET_FOLDER):
        st.session_state[state.DATASET_SOURCE] = "folder"
        st.session_state[state.DATASET_FOLDER] = settings["dataset_folder"]


_RESTORED = "_settings_restored"


def _remember_dataset(folder: str) -> None:
    from core.data.settings import load_settings, save_settings

    if load_settings()[0]["dataset_folder"] != folder:
        save_settings(dataset_folder=folder)


def _dataset_picker() -> None:
    """Dataset source and folder; sets ``state.DATASET_ROOT`` to the dataset in use.

    A folder that opens is remembered across restarts; the demo set is built only when it is the pick (a
    folder that does not open keeps the last dataset that did, or none, with its message).
    """
    sb = st.sidebar
    source = state.bound(sb.radio, "Dataset", state.DATASET_SOURCE, options=["demo", "folder"],
                         format_func={"demo": "bundled demo set", "folder": "a folder on this computer"}.get,
                         horizontal=True)
    if source == "folder":
        folder = state.bound(sb.text_input, "Dataset folder", state.DATASET_FOLDER,
                             default="", placeholder="/path/to/labels.csv-folder or ESC-50-master",
                             help="Layouts, in the order tried: " + "; ".join(LAYOUT_NEEDS) + ".")
        _get_esc50_button()
        if not folder.strip():
            sb.info("Type a dataset folder to open it.")
            return
        root = str(Path(folder.strip()).expanduser())
        try:
            data = cached.dataset(root)
        except InputError as error:
            sb.error(str(error))  # the last dataset that opened stays (none yet: no demo set is built for it)
            return
        st.session_state[state.DATASET_ROOT] = root
        _remember_dataset(root)
        sb.caption(data.describe())
        if data.skipped:
            sb.caption(f"{len(data.skipped)} files skipped (e.g. {data.skipped[0][0]}: {data.skipped[0][1]})")
        return
    if state.get(state.DATASET_ROOT) is not None and source == "demo":
        _remember_dataset("")
    st.session_state[state.DATASET_ROOT] = root = _demo_root()
    cached.warm_up(str(cache_dir()), root)  # once per server: what the pages read first, in the background


WARM_POLL_S = 2.0  # how often the sidebar's bar reads the warm-up's status file


def _warm_up_running():
    """The background warm-up's status while its process runs, else ``None`` (:mod:`core.warm_background`); one
    this server has just started, before it writes its first status, is "starting"."""
    from core.warm_background import WarmStatus, read_status

    status = read_status()
    if status is not None and status.alive():
        return status
    process = cached.warm_up_started(str(cache_dir()))
    if process is not None and process.poll() is None:
        return WarmStatus(state="running", step="starting", pid=process.pid)
    return None


@st.fragment(run_every=WARM_POLL_S)
def _warm_up_bar() -> None:
    """The warm-up's progress, re-read every :data:`WARM_POLL_S`; once it has ended, the app reruns without it."""
    status = _warm_up_running()
    if status is None:
        st.rerun()  # done (or stopped): one full rerun, which draws no bar and so stops this polling
    st.progress(status.fraction, text=status.progress_text())


def _warm_up_progress() -> None:
    """The sidebar's bar while the warm-up runs; a line if the last one failed (the pages compute what they need)."""
    from core.warm_background import read_status

    if _warm_up_running() is not None:
        with st.sidebar:
            _warm_up_bar()
        return
    status = read_status()
    if status is not None and status.state != "done":
        st.sidebar.caption("The background warm-up of the demo set stopped"
                           + (f" ({status.error})" if status.error else "")
                           + "; pages compute what they need when opened, and the next start tries again.")


def _waiting_for(slot) -> None:
    """While the page waits on an entry another process holds (:func:`core.data.cache.while_waiting`): a bar."""
    status = _warm_up_running()
    if status is None:
        slot.info("Waiting for another process that is computing what this page needs…")
    else:
        slot.progress(status.fraction, text="This page waits for the background warm-up, which is computing what "
                                            "it needs. " + status.progress_text())


def _get_esc50_button() -> None:
    """"Get ESC-50": downloads it (only on this click) with :func:`core.data.get_data.get_dataset`, then opens it."""
    from core.data.get_data import get_dataset

    sb = st.sidebar
    if not sb.button("Get ESC-50 (about 600 MB)", key="_get_esc50",
                     help="Download the real ESC-50 from GitHub into the cache folder, check it, and open it."):
        return
    bar = sb.progress(0.0, text="Downloading ESC-50…")

    def on_progress(done: int, total: int | None) -> None:
        fraction = done / total if total else 0.0
        bar.progress(min(fraction, 1.0), text=f"Downloading ESC-50… {done / 1e6:.0f} MB")

    try:
        folder = get_dataset("esc50", on_progress=on_progress)
    except InputError as error:
        sb.error(str(error))
        return
    finally:
        bar.empty()
    st.session_state[state.DATASET_FOLDER] = str(folder)
    st.rerun()


def _clip_picker() -> None:
    sb = st.sidebar
    root = state.get(state.DATASET_ROOT)
    if root is None:
        return
    try:
        data = cached.dataset(root)
    except InputError as error:
        sb.error(str(error))
        return
    class_names = ["all classes"] + list(data.classes)
    chosen_class = sb.selectbox("Class", class_names, key="_clip_class_filter")
    records = data.records if chosen_class == "all classes" else [
        r for r in data.records if r.category == chosen_class]
    ids = [r.clip_id for r in records] or [r.clip_id for r in data.records]
    current = state.get(state.CLIP_ID)
    if current not in ids and current in {r.clip_id for r in data.records} and chosen_class != "all classes":
        ids = [current] + ids  # keep a clip opened from another page visible
    by_id = {r.clip_id: r for r in data.records}

    def on_pick() -> None:
        state.commit(state.CLIP_ID)
        st.session_state[state.CLIP_ORIGIN] = "dataset"

    value = state.get(state.CLIP_ID)
    if value not in ids:
        st.session_state[state.CLIP_ID] = ids[0]
        asked = state.url_asked(state.CLIP_ID)
        if asked is not None and value not in by_id:
            st.warning(f"The link's clip '{asked}' is not in the dataset in use ({root}): "
                       f"showing {ids[0]} instead.")
    state.url_settled(state.CLIP_ID)
    st.session_state["_w_" + state.CLIP_ID] = state.get(state.CLIP_ID)
    sb.selectbox("Clip", ids, key="_w_" + state.CLIP_ID, on_change=on_pick,
                 format_func=lambda cid: f"{cid} ({by_id[cid].category})" if cid in by_id else cid)
    upload = state.get(state.UPLOAD)
    if state.get(state.CLIP_ORIGIN) == "upload" and upload:
        sb.info(f"Showing the uploaded clip **{upload['name']}**.")
        if sb.button("Back to the dataset clip", key="_back_to_dataset"):
            st.session_state[state.CLIP_ORIGIN] = "dataset"
            st.rerun()


def _kind_of(folder: str) -> str:
    return cached.kind_label(folder)


def _model_picker() -> None:
    sb = st.sidebar
    found = cached.checkpoint_folders()
    if not found:
        sb.warning("No checkpoints found under `checkpoints/`.")
        st.session_state[state.MODELS] = []
        return
    problem = cached.registry_problem()
    if problem is not None:
        sb.warning(f"Registered models are not listed: {problem}")
    names = list(found)
    asked = state.url_asked(state.MODELS)
    if asked is not None:  # a link's models: keep the ones found, say which are not
        unknown = [n for n in state.get(state.MODELS) if n not in names]
        if unknown:
            st.warning(f"The link's model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} "
                       f"{'are' if len(unknown) > 1 else 'is'} not among the checkpoints found "
                       f"({', '.join(names)}).")
            st.session_state[state.MODELS] = [n for n in state.get(state.MODELS) if n in names] or None
        state.url_settled(state.MODELS)
    if state.get(state.MODELS) is None:
        st.session_state[state.MODELS] = cached.default_models(found)
    state.bound(sb.multiselect, "Models (one, or two side by side)", state.MODELS, options=names,
                default=cached.default_models(found), max_selections=2,
                valid=lambda v: isinstance(v, list) and all(n in names for n in v),
                format_func=lambda n: f"{n} ({_kind_of(found[n])})")


HUB_ID, HUB_DOWNLOAD, HUB_MESSAGE = "_hub_id", "_hub_download", "_hub_message"


def _add_hub_model() -> None:
    """Form callback (runs before the page redraws): list a hub id's AST and pick it beside the first model."""
    from core.models.user_models import add_hub_model

    repo_id = (st.session_state.get(HUB_ID) or "").strip()
    if not repo_id:
        return
    try:
        entry = add_hub_model(repo_id, download=bool(st.session_state.get(HUB_DOWNLOAD)))
    except InputError as error:
        st.session_state[HUB_MESSAGE] = ("error", str(error))
        return
    found = cached.checkpoint_folders()
    name = next((n for n, folder in found.items() if folder == entry["folder"]), entry["name"])
    picks = [n for n in (state.get(state.MODELS) or []) if n != name]
    st.session_state[state.MODELS] = picks[:1] + [name]
    st.session_state[HUB_MESSAGE] = ("success", f"Added {repo_id} as '{name}' ({len(entry['classes'])} classes, "
                                                f"{'multi-label' if entry['multi_label'] else 'single-label'}).")


def _sidebar_box(label: str, *, key: str, icon: str | None = None):
    """A sidebar expander whose content is drawn only while it is open: the expander, or ``None`` when closed.

    Every element drawn costs each new browser tab its time, on every page; these boxes are opened now and then.
    Opening one reruns the script (cached: a fraction of a second).
    """
    box = st.sidebar.expander(label, icon=icon, key=key, on_change="rerun")
    return box if box.open else None


def _hub_box() -> None:
    """A Hugging Face AST by hub id: from the local Hugging Face cache, or downloaded once when the box is ticked."""
    box = _sidebar_box("Add a Hugging Face AST by id", key="_hub_open")
    if box is None:
        return
    with box:
        with st.form("_hub_form", border=False):
            st.text_input("Hub id", key=HUB_ID, placeholder="MIT/ast-finetuned-audioset-10-10-0.4593",
                          help="An ASTForAudioClassification on the Hugging Face hub, as org/name.")
            st.checkbox("Download it if it is not on this computer", key=HUB_DOWNLOAD, value=False,
                        help="Without this, only the local Hugging Face cache is read and nothing is downloaded.")
            st.form_submit_button("Add", on_click=_add_hub_model)
        level, text = st.session_state.pop(HUB_MESSAGE, (None, None))
        if level is not None:
            (st.error if level == "error" else st.success)(text)


def _checkpoint_folder_box() -> None:
    """Open any checkpoint folder (or a folder of them): listed with the others, remembered across restarts."""
    from core.data.settings import add_checkpoint_folder, load_settings, remove_checkpoint_folder

    box = _sidebar_box("Checkpoint folders", key="_checkpoint_folders_open")
    if box is None:
        return
    with box:
        st.text_input("Open a checkpoint folder", key=CKPT_FOLDER, placeholder="/path/to/my-checkpoint",
                      help="A folder written by `python -m core train` (checkpoint.json), a Hugging Face AST "
                           "folder, or a folder holding several; remembered in .cache/explorer-settings.json.")
        opened = st.button("Open", key="_open_checkpoint_folder")
        if opened and (st.session_state.get(CKPT_FOLDER) or "").strip():
            try:
                settings = add_checkpoint_folder(st.session_state[CKPT_FOLDER].strip())
            except InputError as error:
                st.error(str(error))
            else:  # pick it (its first checkpoint) beside the first model picked
                opened_folder = settings["checkpoint_folders"][-1]
                found = cached.checkpoint_folders()
                new = [n for n, f in found.items() if f == opened_folder or f.startswith(opened_folder + "/")]
                st.session_state[state.MODELS] = new[:1] + [n for n in (state.get(state.MODELS) or [])
                                                            if n not in new][:1]
                st.rerun()
        for i, folder in enumerate(load_settings()[0]["checkpoint_folders"]):
            left, right = st.columns([4, 1])
            left.caption(f"`{folder}`")
            if right.button("✕", key=f"_forget_ckpt_{i}", help="Forget this folder"):
                remove_checkpoint_folder(folder)
                st.rerun()


CKPT_FOLDER = "_checkpoint_folder"


def _cache_box() -> None:
    """The on-disk cache's size, and a button that clears it (the work is redone when next asked for)."""
    from core.data.cache import default_cache, format_size

    box = _sidebar_box("Cache on disk", key="_cache_open")
    if box is None:
        return
    with box:
        cache = default_cache()
        st.caption(f"{format_size(cache.size_bytes())} of extracted activations and projections in `{cache.root}`.")
        if st.button("Clear the cache", key="_clear_cache",
                     help="Deletes the stored activations and projections; pages recompute them when opened."):
            freed = cache.clear()
            st.cache_data.clear()
            st.toast(f"Cleared {format_size(freed)}.")


def sidebar() -> None:
    """Draw the shared picks."""
    st.sidebar.title("Audio classifier explorer")
    _dataset_picker()
    _warm_up_progress()
    _clip_picker()
    _model_picker()
    _checkpoint_folder_box()
    _hub_box()
    state.bound(st.sidebar.toggle, "Presenter setting", state.PRESENTER,
                help="Larger fonts and figures and the sidebar collapsed, for a projector (1280 x 720); "
                     "the Tour shows one step per screen.")


LINK_OPEN = "_link_open"


def _link_box():
    """The sidebar's "Link to this view" box: the slot for its link while it is open, else ``None``.

    Drawn only while open (:func:`_sidebar_box`): a code block alone costs each new browser tab about 0.4 s
    (loading its highlighter).
    """
    box = _sidebar_box("Link to this view", icon=":material/link:", key=LINK_OPEN)
    return None if box is None else box.empty()


def _link(slot, page: str) -> None:
    """Write the picks into the URL, and show that URL, with a copy button (st.code's), in ``slot`` (if any)."""
    from urllib.parse import urlencode

    params = state.write_url(page)
    if slot is None:
        return
    # no browser (AppTest): ours; the default page (Clip) is at the root
    base = (st.context.url or "").split("?")[0] or f"http://localhost:8501/{'' if page == 'clip' else page}"
    with slot.container():
        st.code(base + ("?" + urlencode(params) if params else ""), language=None, wrap_lines=True)
        st.caption("Opens this page with the same dataset, clip, models and picks (copy button at the right). "
                   "An uploaded clip stays on this computer: its link opens the dataset clip.")


def main() -> None:
    st.set_page_config(page_title="Audio classifier explorer", page_icon=TAB_ICON, layout="wide")
    state.init()
    _restore_settings()
    problems = state.read_url()
    if state.get(state.PRESENTER):
        ui.presenter_style()
    page = st.navigation(_pages())
    for problem in problems:
        st.warning(problem)
    sidebar()
    name, slot = page.url_path or "clip", _link_box()  # the default page's path is empty
    _link(slot, name)  # the picks as this run starts (all of them, if the page stops early)
    if _warm_up_running() is None:
        page.run()
    else:  # a page that needs an entry the warm-up holds waits on its lock, with a bar
        waiting = st.empty()
        with while_waiting(lambda: _waiting_for(waiting)):
            page.run()
        waiting.empty()
    _link(slot, name)  # and with what the page picked by default (a layer, a class)
    _cache_box()  # after the page, so the size counts what it just stored


with GATE.page_run():
    main()
