"""Explorer timings for ``python -m core bench``: warm re-render per page, cache worth, cold start.

Run as a script (``python scripts/bench_pages.py``; ``core/bench.py`` runs it by
path, so ``core`` never imports ``explorer``); prints one line of JSON rows last.
Warm re-render: the page's script rerun through Streamlit's AppTest with every cache warm (median of ``--repeats``). Cache worth: the same reruns
with Streamlit's caches cleared before each, as a ratio. Cold start: a real
``streamlit run`` server and headless chromium, from spawning the server to the
first page showing its first chart.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")
CHROMIUM = "/usr/bin/chromium"


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

    from core.checkpoint import load_checkpoint
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


def cold_start(timeout_s: float = 180.0) -> dict:
    if not Path(CHROMIUM).exists():
        return {"name": "cold start", "note": "chromium not installed"}
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = dict(os.environ, STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    t0 = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", APP, "--server.headless", "true",
                               "--server.port", str(port), "--server.address", "127.0.0.1"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                        "--disable-background-networking", "--disable-component-update"])
            page = browser.new_page()
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5000)
                    break
                except Exception:
                    if time.perf_counter() - t0 > timeout_s:
                        raise
                    time.sleep(0.2)
            page.wait_for_selector('[data-testid="stPlotlyChart"]', timeout=timeout_s * 1000)
            elapsed = time.perf_counter() - t0
            browser.close()
        return {"name": "cold start to first rendered page (server + browser)", "s": elapsed}
    finally:
        server.terminate()
        server.wait(timeout=20)


def scale_pages(folder: str, repeats: int) -> list[dict]:
    """Warm re-render of the Embeddings and Errors pages on a dataset folder (``core.bench``'s scale table).

    All folds, the shipped SE-CNN only, UMAP on the Embeddings page; the
    caller points ``EXPLORER_CACHE`` at the cache its extraction filled.
    """
    from streamlit.testing.v1 import AppTest

    from explorer.state import page_file

    at = AppTest.from_file(APP, default_timeout=1800)
    at.session_state["models"] = ["secnn"]
    at.session_state["dataset_source"] = "folder"
    at.session_state["dataset_folder"] = folder
    at.session_state["dataset_fold"] = 0  # all folds
    at.session_state["embeddings_method"] = "umap"
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
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.scale_folder is not None:
        print(json.dumps(scale_pages(args.scale_folder, args.repeats)))
        return 0
    rows = [] if args.no_cold else [cold_start()]
    rows += warm_pages(args.repeats)
    rows.append(grid_figure_validation(args.repeats))
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
