"""Explorer timings for ``python -m core bench``: browser page loads, warm re-render, cache worth, cold start.

Run as a script (``python scripts/bench_pages.py``; ``core/bench.py`` runs it by
path, so ``core`` never imports ``explorer``); prints one line of JSON rows last.

- Browser page load: a real ``streamlit run explorer/serve.py`` server of the app
  (what ``make explore`` serves), and one of a bare page that draws one plotly heatmap (128 x 431), both in this run, and
  headless chromium. Every page is loaded once to warm the caches; then each is
  loaded ``--loads`` times in a new tab (a new Streamlit session) until Streamlit has finished and every chart and image is drawn. The
  median load time is printed beside the bare page's, as a ratio.
- Warm re-render: the page's script rerun through Streamlit's AppTest with
  every cache warm (median of ``--repeats``). Cache worth: the same reruns
  with Streamlit's caches cleared before each, as a ratio.
- First visits: a fresh server of the app after ``python -m core warm-cache``
  (what the app runs in the background from its start), once the server's
  start-up work (``/_explorer/ready``, timed in its own row) is done, as a
  teacher starts the app before the class, and one of the bare page; each
  page opened once, in the order of the app's list, each in a new tab (a new
  session: the first visit of that page since the server started), timed as
  the page loads above; the bare page's first load is the reference.
- Cold start: a fresh server and browser, from spawning the server to the
  first page showing its first chart (the server answers at once; its
  start-up work goes on in steps between the page's runs, which wait at most
  for the step under way: :mod:`explorer.startup`).

"Drawn", for every timing here: no script running, no spinner or stale
element, and every plotly chart laid out with its traces in (not only its
empty frame) and every image decoded; the clock stops when that state first
appeared and then held for 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
SERVED = str(REPO / "explorer" / "serve.py")  # what `make explore` serves: the app, its start-up work in a thread
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1000}
# (url path, title) of the pages timed in the browser
BROWSER_PAGES = [("clip", "Clip"), ("layers", "Layers"), ("attention", "Attention"), ("attribution", "Attribution"),
                 ("embeddings", "Embeddings"), ("decoders", "Decoders"), ("errors", "Errors"), ("review", "Review")]
BARE_PAGE = """import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.title("Bare")
z = np.random.default_rng(0).standard_normal((128, 431)).astype(np.float32)
st.plotly_chart(go.Figure(go.Heatmap(z=z, colorscale="Magma")))
"""


def _time_reruns(at, repeats: int, *, clear: bool) -> float:
    import streamlit as st

    times = []
    for _ in range(repeats):
        if clear:
            st.cache_data.clear()
            st.cache_resource.clear()
        t0 = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def warm_pages(repeats: int) -> list[dict]:
    from streamlit.testing.v1 import AppTest

    from explorer.state import PAGE_NAMES, page_file

    rows = []
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    for page in PAGE_NAMES:
        path = page_file(page)
        if not (REPO / "explorer" / path).exists():
            continue
        t0 = time.perf_counter()
        at.switch_page(path).run()
        first_ms = (time.perf_counter() - t0) * 1000
        if at.exception:
            rows.append({"name": f"page {page}", "note": "exception: " + str(at.exception[0].value)[:120]})
            continue
        warm = _time_reruns(at, repeats, clear=False)
        row = {"name": f"page {page}: warm re-render", "ms": warm, "first_ms": first_ms}
        if page in ("layers", "attention"):
            cold = _time_reruns(at, max(3, repeats // 3), clear=True)
            row["caches_off_ms"] = cold
            row["caches_off_ratio"] = cold / warm
        rows.append(row)
    return rows


def grid_figure_validation(repeats: int) -> dict:
    """The attention grid (3 layers x 8 heads) built as the page does, and with plotly's validation."""
    import numpy as np
    import plotly.graph_objects as go

    from core.models.checkpoint import load_checkpoint
    from core.paths import CHECKPOINTS_DIR
    from explorer import figures

    loaded = load_checkpoint(CHECKPOINTS_DIR / "ast")
    cfg, model = loaded.audio_cfg, loaded.model
    rng = np.random.default_rng(0)
    S = rng.standard_normal((cfg.n_mels, cfg.n_frames)).astype(np.float32)
    layers, heads = (1, 4, 8), tuple(range(1, model.config.heads + 1))
    weights = rng.dirichlet(np.ones(model.n_patches), size=(len(layers), len(heads)))
    boxes = model.patch_boxes(cfg)

    def build():
        return figures.attention_grid(S, cfg, weights=weights, layers=layers, heads=heads, patch_boxes=boxes,
                                      query=17, top_k=5)

    fast = statistics.median(_timed(build) for _ in range(repeats))
    fig = build()
    validated = statistics.median(_timed(lambda: go.Figure(fig.to_dict())) for _ in range(max(3, repeats // 3)))
    return {"name": "attention grid figure: built unvalidated (as the page does)", "ms": fast,
            "validated_ms": validated, "ratio": validated / fast}


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def _server(script: str | Path, *, timeout_s: float = 120.0, ready: bool = False):
    """``streamlit run script`` on a free localhost port; yields its URL once it answers, and with ``ready`` once
    its start-up work is done too (``/_explorer/ready``, :mod:`explorer.serve`)."""
    import urllib.request

    port = _free_port()
    # no background warm-up (core.warm_background) in the servers timed here: first_visits runs warm-cache itself
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false", EXPLORER_WARM_CACHE="0")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(script), "--server.headless", "true",
                             "--server.port", str(port), "--server.address", "127.0.0.1",
                             "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit run {script} did not start (exit code {proc.poll()})")
            time.sleep(0.2)
        while ready and not _preload(url)["ready"]:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"streamlit run {script}: its start-up work did not finish (exit code {proc.poll()})")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _preload(url: str) -> dict:
    """The served app's start-up work (:mod:`explorer.serve`): ``{"ready": bool, "s": seconds or None, ...}``."""
    import urllib.request

    with urllib.request.urlopen(url + "/_explorer/ready", timeout=5) as r:
        return json.loads(r.read())


# Is the page done: no script running, a title, at least one chart or image, and every one drawn?
_DRAWN_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return null;
  const visible = (el) => el && el.getClientRects().length > 0;
  if (visible(document.querySelector('[data-testid="stStatusWidget"]'))
      || [...main.querySelectorAll('[data-testid="stSpinner"]')].some(visible)
      || main.querySelectorAll('[data-stale="true"], [data-testid="stSkeleton"]').length) return null;
  if (!main.querySelector('h1')) return null;
  const charts = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const images = [...main.querySelectorAll('[data-testid="stImage"] img, [data-testid="stFullScreenFrame"] img')];
  if (charts.length + images.length === 0) return null;
  // drawn: plotly has laid the chart out and put its traces (or its pictures) in, not only its empty frame. The
  // traces sit in the subplot's group (g.overplot > g.xy > g.scatterlayer > g.trace, g.heatmaplayer > g.hm > image),
  // layout pictures in .layer-below / .layer-above, WebGL traces in a canvas
  const drawn = (c) => {
    const gd = c.querySelector('.js-plotly-plot');
    if (!gd || !gd._fullLayout || !gd.querySelector('.main-svg') || !gd.getClientRects().length) return false;
    return !(gd._fullData || []).some((t) => t.visible !== false)
      || !!gd.querySelector('.main-svg .trace, .main-svg image, .gl-container canvas');
  };
  if (!charts.every(drawn)) return null;
  if (!images.every((i) => i.complete && i.naturalWidth > 0)) return null;
  return charts.length + ':' + images.length + ':' + main.innerText.length;
}"""


_SEEN_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main) return 'no main';
  return JSON.stringify({status: !!document.querySelector('[data-testid="stStatusWidget"]'),
    spinners: main.querySelectorAll('[data-testid="stSpinner"]').length,
    stale: main.querySelectorAll('[data-stale="true"]').length,
    skeleton: main.querySelectorAll('[data-testid="stSkeleton"]').length,
    charts: main.querySelectorAll('[data-testid="stPlotlyChart"]').length,
    drawn: main.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg').length,
    images: [...main.querySelectorAll('[data-testid="stImage"] img')].map((i) => i.complete),
    text: main.innerText.slice(0, 300)});
}"""


def _load_s(context, url: str, *, timeout_s: float, quiet_s: float = 0.5) -> float:
    """Seconds from opening ``url`` in a new tab until the page is drawn and stays so for ``quiet_s``.

    A new tab is a new Streamlit session (fresh picks, the server's caches
    shared); the browser's HTTP cache is shared too, as for a user's second tab.
    The time counted ends when the final drawn state first appeared, not after
    the quiet wait.
    """
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
        last, since = None, None
        while True:
            key = page.evaluate(_DRAWN_JS)
            now = time.perf_counter()
            if key is None or key != last:
                last, since = key, now
            elif now - since >= quiet_s:
                return since - t0
            if now - t0 > timeout_s:
                seen = page.evaluate(_SEEN_JS)
                raise TimeoutError(f"{url} was not drawn in {timeout_s:.0f} s: {seen}")
            time.sleep(0.03)
    finally:
        page.close()


def browser_loads(loads: int, *, pages=BROWSER_PAGES, timeout_s: float = 300.0) -> list[dict]:
    """Median fresh-load time of each page, and its ratio to the bare one-heatmap page (see the module doc)."""
    if not Path(CHROMIUM).exists():
        return [{"name": "browser page loads", "note": "chromium not installed"}]

    rows = []
    with _app_and_bare_page(pages) as (context, targets, _):
        for name, url in targets:  # warm every cache (and the disk cache) first
            warm = _load_s(context, url, timeout_s=timeout_s)
            print(f"{name}: {warm:.2f} s (warming)", file=sys.stderr, flush=True)
        times: dict[str, list[float]] = {name: [] for name, _ in targets}
        for _ in range(loads):  # interleaved, so that a busy moment on the machine hits every page alike
            for name, url in targets:
                times[name].append(_load_s(context, url, timeout_s=timeout_s))
                print(f"{name}: {times[name][-1]:.2f} s", file=sys.stderr, flush=True)
    bare = statistics.median(times[targets[0][0]])
    for name, _ in targets:
        ms = statistics.median(times[name]) * 1000
        rows.append({"name": f"browser load: {name}", "ms": ms, "ratio": ms / (bare * 1000),
                     "loads": loads})
    return rows


def first_visits(*, pages=BROWSER_PAGES, timeout_s: float = 600.0) -> list[dict]:
    """Each page's first visit on a fresh server after ``warm-cache``, against the bare page's first load."""
    if not Path(CHROMIUM).exists():
        return [{"name": "browser first visits", "note": "chromium not installed"}]

    warmed = subprocess.run([sys.executable, "-m", "core", "warm-cache"], cwd=REPO, capture_output=True, text=True)
    if warmed.returncode != 0:
        return [{"name": "browser first visits", "note": "warm-cache failed: " + warmed.stderr.strip()[-200:]}]
    times: dict[str, float] = {}
    with _app_and_bare_page(pages) as (context, targets, app_url):
        preload_s = _preload(app_url)["s"]
        for name, url in targets:
            times[name] = _load_s(context, url, timeout_s=timeout_s)
            print(f"first visit, {name}: {times[name]:.2f} s", file=sys.stderr, flush=True)
    bare = times[targets[0][0]]
    return [{"name": "server start-up work (explorer/serve.py: imports, default models, one pass each)",
             "ms": preload_s * 1000}] + [
        {"name": f"browser first visit after warm-cache: {name}", "ms": s * 1000, "ratio": s / bare}
        for name, s in times.items()]


@contextmanager
def _app_and_bare_page(pages):
    """A server of the app and one of the bare page, and a headless chromium: ``(context, targets)``, the targets
    ``(name, url)`` the bare page first, then ``pages``."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, _server(SERVED, ready=True) as app_url, \
            _server(_write(Path(tmp) / "bare.py", BARE_PAGE)) as bare_url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        try:
            yield context, [("bare page (one plotly heatmap)", bare_url + "/")] + [
                # the Clip page is the app's default, at the root: /clip would open it under a "Page not found"
                (title, f"{app_url}/{'' if name == 'clip' else name}") for name, title in pages], app_url
        finally:
            browser.close()


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _cold_start_s(app: str, timeout_s: float) -> float:
    """Seconds from spawning a ``streamlit run`` server of ``app`` (:func:`_server`) and a headless chromium to
    its first chart."""
    from playwright.sync_api import sync_playwright

    t0 = time.perf_counter()
    with _server(app, timeout_s=timeout_s) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                    "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page()
        page.goto(url + "/", timeout=timeout_s * 1000)
        page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=timeout_s * 1000)
        elapsed = time.perf_counter() - t0
        browser.close()
    return elapsed


def cold_start(timeout_s: float = 180.0, repeats: int = 2) -> dict:
    """Cold start to the first chart, median of ``repeats``, beside the bare one-heatmap page's cold start.

    The bare page is the floor on this machine: a server, a browser and Streamlit's own JavaScript.
    """
    if not Path(CHROMIUM).exists():
        return {"name": "cold start", "note": "chromium not installed"}
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        bare_app = str(_write(Path(tmp) / "bare.py", BARE_PAGE))
        app = statistics.median(_cold_start_s(SERVED, timeout_s) for _ in range(repeats))
        bare = statistics.median(_cold_start_s(bare_app, timeout_s) for _ in range(repeats))
    return {"name": "cold start to first rendered page (server + browser)", "s": app, "bare_s": bare,
            "ratio": app / bare}


def scale_pages(folder: str, repeats: int) -> list[dict]:
    """Warm re-render of the Embeddings and Errors pages on a dataset folder (``core.bench``'s scale table).

    All folds, the shipped SE-CNN only, UMAP on the Embeddings page; the
    caller points ``EXPLORER_CACHE`` at the cache its extraction filled.
    """
    from streamlit.testing.v1 import AppTest

    from explorer import state
    from explorer.cached_dataset import ALL_FOLDS
    from explorer.state import page_file

    at = AppTest.from_file(APP, default_timeout=1800)
    at.session_state[state.MODELS] = ["secnn"]
    at.session_state[state.DATASET_SOURCE] = "folder"
    at.session_state[state.DATASET_FOLDER] = folder
    at.session_state[state.FOLD] = ALL_FOLDS
    at.session_state["embeddings_method"] = "umap"  # the Embeddings page's own radio
    at.run()
    rows = []
    for page in ("embeddings", "errors"):
        t0 = time.perf_counter()
        at.switch_page(page_file(page)).run()
        first_ms = (time.perf_counter() - t0) * 1000
        if at.exception:
            raise RuntimeError(f"{page}: {at.exception[0].value}")
        rows.append({"page": page, "ms": _time_reruns(at, repeats, clear=False), "first_ms": first_ms})
    return rows

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--no-cold", action="store_true")
    parser.add_argument("--scale-folder", default=None, help="only the Embeddings and Errors pages on this dataset")
    parser.add_argument("--loads", type=int, default=3, help="fresh browser loads per page (0: none)")
    parser.add_argument("--only-browser", action="store_true", help="only the browser page loads")
    parser.add_argument("--pages", nargs="*", default=None, help="page url names to load in the browser")
    parser.add_argument("--first-visits", action="store_true",
                        help="also each page's first visit on a fresh server after warm-cache")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.scale_folder is not None:
        print(json.dumps(scale_pages(args.scale_folder, args.repeats)))
        return 0
    pages = [p for p in BROWSER_PAGES if args.pages is None or p[0] in args.pages]
    rows = [] if args.no_cold or args.only_browser else [cold_start()]
    if args.first_visits:
        rows += first_visits(pages=pages)
    if args.loads > 0:
        rows += browser_loads(args.loads, pages=pages)
    if not args.only_browser:
        rows += warm_pages(args.repeats)
        rows.append(grid_figure_validation(args.repeats))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
