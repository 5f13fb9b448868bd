"""The explorer with its start-up work done before the first click: ``streamlit run explorer/serve.py``.

``make explore`` runs this. It serves the same app as ``streamlit run explorer/app.py``, and, the moment the
server starts, a thread does what a page's first visit would otherwise wait for (see :func:`preload`): the
imports (torch, scipy.signal, librosa's lazily loaded parts, the pages' modules), the sidebar's default
models loaded into the app's shared cache with one forward pass each, and the background warm-up of the demo set
(:mod:`core.warm_background`, which goes on in its own process); about 5 s on 2 cores. The server answers at
once: the work is cut into steps that never run beside a page's run (:data:`explorer.startup.GATE`), so a page
opened meanwhile waits at most for the step under way (torch's import, 2 s, is the longest) and then does what
it needs itself; the thread carries on between runs.

``GET /_explorer/ready`` answers ``{"ready": true, "s": <seconds it took>}`` once the thread is done (the
bench waits for it before it times a first visit, as a teacher starts the app before the class).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if str(_REPO) not in sys.path:
    sys.path.insert(0, str(_REPO))

import streamlit as st  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402
from starlette.routing import Route  # noqa: E402

from explorer.startup import GATE  # noqa: E402

# What the first run of the app imports, heaviest first (measured with python -X importtime: torch 2.1 s,
# scipy.signal 1.6 s, librosa's lazily loaded feature and core modules 1.6 s plus numba's cache 1 s; the Decoders
# page's sklearn.decomposition 1 s).
MODULES = ("torch", "scipy.signal", "librosa.core.audio", "librosa.feature.spectral", "librosa.filters",
           "streamlit.emojis", "plotly.graph_objects", "explorer.cached", "explorer.trust", "explorer.ui",
           "explorer.figures", "core.training.evaluate", "core.models.taps", "sklearn.decomposition")

# The thread calls the app's cached functions outside a page's run, which Streamlit notes once per call.
logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)

_READY = {"done": False, "s": None, "error": None}


def preload(gate=GATE) -> dict:
    """Import :data:`MODULES`, load each of the sidebar's default models through :func:`explorer.cached.checkpoint` and run it
    once on a second of silence, and start the demo set's warm-up when the set exists. Returns what it did.

    Each import, each model and the warm-up's start is one ``gate.step()``: never beside a page's run.
    Nothing here is required: a failure (a checkpoint that does not load) is left for the page to show.
    """
    import importlib

    t0 = time.perf_counter()
    for name in MODULES:
        with gate.step():
            importlib.import_module(name)
    with gate.step():
        import numpy as np

        from core.audio.features import log_mel
        from core.paths import cache_dir
        from explorer import cached

        log_mel(np.zeros(16000, dtype=np.float32))  # librosa's mel filterbank and numba's cached code, once
        found, loaded = cached.checkpoint_folders(), []
    for name in cached.default_models(found):  # the sidebar's first picks
        with gate.step():
            try:
                ckpt = cached.checkpoint(found[name])
                cached._probabilities(found[name], ckpt.input(np.zeros(ckpt.n_samples, np.float32),
                                                              ckpt.audio_cfg.sr))
                loaded.append(name)
            except Exception as error:  # noqa: BLE001 - the page shows a checkpoint's problem; here it stays unloaded
                print(f"preload: {found[name]}: {error}", file=sys.stderr)
    with gate.step():
        demo = _demo_root()
        if demo is not None:
            cached.warm_up(str(cache_dir()), demo)
    return {"checkpoints": loaded, "s": time.perf_counter() - t0}


def _demo_root() -> str | None:
    """The demo set's folder when it is already made (``make explore`` makes it first), else ``None``."""
    from core.audio.demo_data import demo_ready

    return demo_ready()


def _run() -> None:
    try:
        _READY["s"] = preload()["s"]
    except Exception as error:  # noqa: BLE001 - the app works without it; say why it did not
        _READY["error"] = f"{type(error).__name__}: {error}"
        print(f"preload failed: {_READY['error']}", file=sys.stderr)
    _READY["done"] = True


@asynccontextmanager
async def _lifespan(app):
    threading.Thread(target=_run, name="explorer-preload", daemon=True).start()  # beside the server, gated
    yield


async def _ready(request):
    return JSONResponse({"ready": _READY["done"], "s": _READY["s"], "error": _READY["error"]})


app = st.App("app.py", lifespan=_lifespan, routes=[Route("/_explorer/ready", _ready)])
