"""The explorer in a real browser: every page renders, and its clicks and sliders work.

Starts ``streamlit run explorer/serve.py`` (what ``make explore`` runs: the app, with its start-up work in a
thread) on a free localhost port and drives
Debian's chromium (``/usr/bin/chromium``) through Playwright. The test skips
when chromium or Playwright is missing (``scripts/ensure-chromium.sh`` installs
chromium).

Data: a small demo set (5 clips per class, so that fold 5, the Embeddings
page's default, holds 10 clips) in a temporary ``$EXPLORER_CACHE``. Models: the
shipped checkpoints under ``checkpoints/`` when there are any; a tiny
random-weight SE-CNN and/or AST is added through ``$EXPLORER_CHECKPOINTS`` for
each kind that is not shipped.

Each page is opened from the sidebar (one session, so the picks persist) and
waited on until Streamlit is done (no "running" status or spinner, no stale or
skeleton element, at least one chart, every chart drawn). Then: Layers moves
its tap slider with the keyboard, Attention clicks a patch of the rollout map
(the query must become that patch), Embeddings clicks a point (the sidebar's
clip must become that clip, and "Open on the Clip page" must open it), and
Decoders draws at once when the shipped checkpoints carry decoders
(``checkpoints/*/decoders/``), else it trains small ones (30 steps) so that its
figures show.
Problems are collected over all pages and reported together.

One screenshot per page goes to ``$SCREENSHOT_DIR`` (default ``screenshots/``
in the repository, git-ignored), the viewport grown to the page's height; each
must not be near-uniform, and neither may the area of any chart in it.

Run it alone::

    .venv/bin/pytest -q tests/explorer/test_browser.py
    SCREENSHOT_DIR=/tmp/shots .venv/bin/pytest -q tests/explorer/test_browser.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "explorer" / "serve.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1400, "height": 1800}
SERVER_START_S = 60  # streamlit up and answering /_stcore/health
RENDER_S = 60  # one page's run, cold caches included (shared machine: generous)
CLIPS_PER_CLASS = 5  # fold = index % 5 + 1, so 5 per class puts one clip of each class in every fold

# (url path, title)
PAGES = [("clip", "Clip"), ("layers", "Layers"), ("attention", "Attention"), ("attribution", "Attribution"),
         ("embeddings", "Embeddings"), ("decoders", "Decoders"), ("errors", "Errors")]


# ---------------------------------------------------------------------------
# fixtures: data, checkpoints, server, browser


def _kind(folder: Path) -> str:
    try:
        return str(json.loads((folder / "checkpoint.json").read_text()).get("kind", "?"))
    except (OSError, ValueError, AttributeError):
        return "?"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_env(tmp_path_factory) -> dict[str, str]:
    """Environment for the app: a small demo set in a fresh cache, and checkpoints of both kinds."""
    return make_app_env(tmp_path_factory.mktemp("browser"))


def make_app_env(root: Path) -> dict[str, str]:
    """:func:`app_env`'s environment, its cache and checkpoints under ``root``."""
    import torch

    from core.audio.features import AudioConfig
    from core.models.checkpoint import save_checkpoint
    from core.data.datasets import open_dataset
    from core.audio.demo_data import default_demo_dir, make_demo_data
    from core.models import build_model
    from core.paths import CHECKPOINTS_DIR

    env = dict(os.environ)
    saved = os.environ.get("EXPLORER_CACHE")
    os.environ["EXPLORER_CACHE"] = env["EXPLORER_CACHE"] = str(root / "cache")
    try:
        demo = make_demo_data(default_demo_dir(), clips_per_class=CLIPS_PER_CLASS, workers=1, show_bar=False)
    finally:
        if saved is None:
            os.environ.pop("EXPLORER_CACHE")
        else:
            os.environ["EXPLORER_CACHE"] = saved
    classes = open_dataset(demo).classes
    shipped = {_kind(f.parent) for f in CHECKPOINTS_DIR.glob("*/checkpoint.json")}
    tiny = {"secnn": {"channels": [4, 4, 8, 8, 8], "head": [16]},
            "ast": {"dim": 16, "depth": 8, "heads": 8, "mlp_ratio": 1.0}}
    torch.manual_seed(0)
    for kind, config in tiny.items():
        if kind not in shipped:
            model = build_model(kind, config, n_classes=len(classes))
            save_checkpoint(root / "checkpoints" / f"tiny-{kind}", model, AudioConfig(), classes, {"note": "test"})
    env["EXPLORER_CHECKPOINTS"] = str(root / "checkpoints")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


@pytest.fixture(scope="module")
def server(app_env):
    """``streamlit run explorer/serve.py`` on a free port; yields its URL and the path of its log."""
    port = _free_port()
    log_path = Path(app_env["EXPLORER_CACHE"]).parent / "streamlit.log"
    log = open(log_path, "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none", "--server.runOnSave", "false"],
        cwd=REPO, env=app_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"streamlit did not start (exit code {proc.poll()}):\n{log.read()[-3000:]}")
            time.sleep(0.25)
        yield {"url": url, "log": log_path, "cache": app_env["EXPLORER_CACHE"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextlib.contextmanager
def launched_chromium():
    """Debian's chromium through Playwright, closed on exit; skips the test when either is missing."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (scripts/ensure-chromium.sh) "
                    "to run the browser test")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def browser_page():
    """A chromium page (Playwright); skips when chromium or Playwright is missing."""
    with launched_chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT, device_scale_factor=1).new_page()
        page.set_default_timeout(RENDER_S * 1000)
        yield page


@pytest.fixture(scope="module")
def screenshot_dir() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or REPO / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# ---------------------------------------------------------------------------
# helpers

# What the page looks like right now: is Streamlit still running the script, and what did it draw?
_PAGE_STATE_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  const charts = [...main.querySelectorAll('[data-testid="stPlotlyChart"]')];
  const visible = (el) => el && el.getClientRects().length > 0;
  return {
    running: visible(document.querySelector('[data-testid="stStatusWidget"]'))
      || [...main.querySelectorAll('[data-testid="stSpinner"]')].some(visible),
    skeleton: main.querySelectorAll('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"]').length,
    stale: main.querySelectorAll('[data-stale="true"]').length,
    charts: charts.length,
    drawn: charts.filter((c) => c.querySelector('.js-plotly-plot .main-svg')).length,
    exceptions: [...document.querySelectorAll('[data-testid="stException"]')].map((e) => e.innerText.slice(0, 500)),
    errors: [...main.querySelectorAll('[data-testid="stAlertContentError"]')].map((e) => e.innerText),
    title: (main.querySelector('h1') || {}).innerText || '',
    text: main.innerText,
  };
}"""


def settle(page, *, until=None, timeout_s: float = RENDER_S, quiet_s: float = 0.4) -> dict:
    """Wait until the script has finished and the page has not changed for ``quiet_s``.

    Parameters
    ----------
    until : callable(state) -> bool, optional
        Extra condition on the page state (e.g. a text that must appear).

    Returns
    -------
    dict
        The page state (see ``_PAGE_STATE_JS``).
    """
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while True:
        s = page.evaluate(_PAGE_STATE_JS)
        ready = (not s["running"] and not s["skeleton"] and not s["stale"] and s["drawn"] == s["charts"]
                 and s["title"] and (until is None or until(s)))
        key = (s["charts"], s["drawn"], len(s["text"]), s["title"])
        if not ready or key != last:
            last, since = key, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"page did not settle in {timeout_s:.0f} s: running={s['running']}, "
                                 f"skeleton={s['skeleton']}, stale={s['stale']}, charts drawn {s['drawn']}/"
                                 f"{s['charts']}, title={s['title']!r}, exceptions={s['exceptions']}, "
                                 f"text: {s['text'][:400]!r}")
        time.sleep(0.2)


def url_of(name: str) -> re.Pattern:
    """The page's URL: ``/<name>``, or ``/`` for the default (first) page."""
    return re.compile(rf"/{'(clip)?' if name == PAGES[0][0] else name}(\?.*)?$")


def open_page(page, name: str) -> None:
    """Go to a page through the sidebar's navigation (the session, and so the picks, persist)."""
    title = dict(PAGES)[name]
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()
    page.wait_for_url(url_of(name))


def main_text_lines(state: dict) -> list[str]:
    return [line.strip() for line in state["text"].split("\n")]


def shoot(page, folder: Path, name: str) -> Path:
    """A screenshot of the whole page (the viewport grows to the page's height), checked to show it.

    Raises
    ------
    AssertionError
        The image is near-uniform, or a chart's area in it is.
    """
    from PIL import Image, ImageStat

    height = page.evaluate("() => (document.querySelector('[data-testid=\"stMain\"]') || document.body).scrollHeight")
    tall = height > VIEWPORT["height"]
    if tall:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": int(min(height + 40, 9000))})
    try:
        if tall:
            settle(page, timeout_s=20)
        boxes = [b for b in page.evaluate("""() => [...document.querySelectorAll(
            '[data-testid="stMain"] [data-testid="stPlotlyChart"] .js-plotly-plot')].map((e) => {
              const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")
                 if b[2] - b[0] > 20 and b[3] - b[1] > 20 and b[1] >= 0 and b[3] <= page.viewport_size["height"]]
        path = folder / f"{name}.png"
        page.mouse.move(VIEWPORT["width"] // 2, 5)  # no hover labels or chart toolbars in the picture
        page.screenshot(path=str(path))
    finally:
        if tall:
            page.set_viewport_size(VIEWPORT)
    with Image.open(path) as image:
        grey = image.convert("L")
        stddev = ImageStat.Stat(grey).stddev[0]
        assert stddev > 10, f"{path.name} is near-uniform (grey stddev {stddev:.1f})"
        for i, box in enumerate(boxes):
            crop = grey.crop(tuple(int(round(v)) for v in box))
            crop_stddev = ImageStat.Stat(crop).stddev[0]
            n_levels = sum(1 for count in crop.histogram() if count)
            assert crop_stddev > 5 and n_levels > 16, (
                f"{path.name}: chart {i + 1} of {len(boxes)} looks empty in the screenshot "
                f"(grey stddev {crop_stddev:.1f}, {n_levels} grey levels)")
    return path


def charts(page):
    return page.locator('[data-testid="stMain"] [data-testid="stPlotlyChart"]')


def click_marker(page, chart_locator, *, index: int, biggest_trace: bool = False) -> None:
    """Click the centre of marker ``index`` of a chart (of its scatter trace with the most markers)."""
    traces = chart_locator.locator("g.trace.scatter")
    counts = [traces.nth(i).locator("path.point").count() for i in range(traces.count())]
    assert counts and max(counts) > 0, "no clickable markers in the chart"
    if biggest_trace:
        points = traces.nth(counts.index(max(counts))).locator("path.point")
    else:
        points = chart_locator.locator("g.trace.scatter path.point")
    point = points.nth(index % points.count())
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    assert box is not None, "the marker is not on screen"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # plotly picks the clicked point on hover
    page.wait_for_timeout(150)
    page.mouse.click(x, y)


def click_until(page, chart_index: int, *, index: int, until, biggest_trace: bool = False, tries: int = 3) -> dict:
    """Click a marker until the page shows ``until`` (a click can land before plotly has seen the hover)."""
    for attempt in range(tries):
        click_marker(page, charts(page).nth(chart_index), index=index, biggest_trace=biggest_trace)
        try:
            return settle(page, until=until, timeout_s=20)
        except AssertionError:
            if attempt == tries - 1:
                raise


# ---------------------------------------------------------------------------
# what each page is asked to do (beyond rendering); each returns the page state after it


def move_layer_slider(page, state: dict, problems: list[str]) -> dict:
    """Layers: the keyboard moves the tap slider two steps (onto an SE step and past it); the panel follows."""
    slider = page.locator('[data-testid="stMain"] [data-testid="stSlider"]').filter(has_text="Layer (tap)")
    # react-aria's hidden range input (Streamlit >= 1.5x); [role=slider] on older versions
    thumb = slider.locator('input[type="range"], [role="slider"]').first
    label = thumb.get_attribute("aria-valuetext")
    if not any(line.startswith(f"{label}:") for line in main_text_lines(state)):
        problems.append(f"layers: no panel heading names the slider's layer {label!r}")
    for _ in range(2):
        before = label
        thumb.focus()
        page.keyboard.press("ArrowRight")
        try:
            state = settle(page, until=lambda s: thumb.get_attribute("aria-valuetext") != before and any(
                line.startswith(f"{thumb.get_attribute('aria-valuetext')}:") for line in main_text_lines(s)))
        except AssertionError as error:
            problems.append(f"layers: the slider did not move the layer from {before!r}: {error}")
            return settle(page)
        label = thumb.get_attribute("aria-valuetext")
        if "SE" in label and "Most boosted:" not in state["text"]:
            problems.append(f"layers: no boosted / suppressed channels named at the SE step {label!r}")
    return state


def click_attention_patch(page, state: dict, problems: list[str]) -> dict:
    """Attention: it opens on a patch (arcs at first sight); a click on another patch makes that the query."""
    opened = re.search(r"Query: patch (\d+),", state["text"])
    if opened is None:
        problems.append("attention: the page does not open on a query patch (no arcs at first sight)")
    if "Sanity check" not in state["text"] or "Random blobs" not in state["text"]:
        problems.append("attention: the rollout map's baselines and sanity verdict are not shown")
    patch = 17 if opened is None or int(opened.group(1)) != 17 else 18
    try:
        # chart 0 is the layers x heads grid, chart 1 the rollout map with a marker on each patch centre
        state = click_until(page, 1, index=patch, biggest_trace=True,
                            until=lambda s: f"Query: patch {patch}," in s["text"])
    except AssertionError as error:
        problems.append(f"attention: a click on patch {patch} did not make it the query: {error}")
        return settle(page)
    if page.get_by_role("button", name="Query the class token instead").count() != 1:
        problems.append("attention: no button to go back to the class token after a click")
    return state


def click_embedding_point(page, state: dict, problems: list[str]) -> dict:
    """Embeddings: a click on a point makes its clip the current one; 'Open on the Clip page' opens it."""
    clip_box = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Clip")
    before = clip_box.input_value()
    if "Current clip:" in state["text"]:
        problems.append(f"embeddings: the current clip ({before}) is already in the fold: the click proves nothing")
    try:
        state = click_until(page, 0, index=3, until=lambda s: "Current clip:" in s["text"])
    except AssertionError as error:
        problems.append(f"embeddings: a click on a point did not pick its clip: {error}")
        return settle(page)
    clicked = re.search(r"Current clip: (\S+?),", state["text"]).group(1)
    if not clip_box.input_value().startswith(clicked) or clicked in before:
        problems.append(f"embeddings: the sidebar's clip is {clip_box.input_value()!r} (was {before!r}) after "
                        f"a click on {clicked}")
    button = page.get_by_role("button", name="Open on the Clip page")
    if button.count() != 1:
        problems.append("embeddings: no 'Open on the Clip page' button after a click")
        return state
    button.click()
    try:
        page.wait_for_url(url_of("clip"), timeout=30_000)
        settle(page, until=lambda s: s["title"] == "Clip" and f"Clip: {clicked}, true class" in s["text"])
    except Exception as error:  # AssertionError, or a Playwright timeout
        problems.append(f"embeddings: 'Open on the Clip page' did not show {clicked} there: {error}")
    open_page(page, "embeddings")
    return settle(page, until=lambda s: s["title"] == "Embeddings" and f"Current clip: {clicked}," in s["text"])


def open_preprocessing(page, state: dict, problems: list[str]) -> dict:
    """Clip: the first visit draws the clip alone; "Preprocessing, step by step" adds the four steps' figure."""
    before = state["charts"]
    page.locator('[data-testid="stMain"]').get_by_role("radio", name="Preprocessing, step by step").click()
    try:
        return settle(page, until=lambda s: s["charts"] == before + 1 and "Step 1: mel power" in s["text"])
    except AssertionError as error:
        problems.append(f"clip: 'Preprocessing, step by step' did not draw the steps: {error}")
        return settle(page)


def train_small_decoders(page, state: dict, problems: list[str]) -> dict:
    """Decoders: without saved decoders, train small ones (few steps) so the figures show."""
    train = page.get_by_role("button", name="Train the decoders")
    if train.count() == 0:
        return state
    page.locator('[data-testid="stExpander"]').filter(has_text="Training on this dataset").locator("summary").click()
    box = page.get_by_label("Training steps (at most)")
    box.fill("30")
    box.press("Enter")
    settle(page, until=lambda s, b=box: b.input_value() == "30")
    train.click()
    return settle(page, until=lambda s: s["charts"] > 0, timeout_s=4 * RENDER_S)


def _shipped_decoders() -> bool:
    from core.paths import CHECKPOINTS_DIR

    return any(CHECKPOINTS_DIR.glob("*/decoders/report.json"))


def drawn(name: str, state: dict) -> bool:
    """Whether a page has drawn what it draws first."""
    if name == "decoders" and "Train the decoders" in state["text"]:
        return not _shipped_decoders()  # shipped decoders must draw on the first visit; else training comes first
    return state["charts"] > 0


ACTIONS = {"clip": open_preprocessing, "layers": move_layer_slider, "attention": click_attention_patch, "embeddings": click_embedding_point,
           "decoders": train_small_decoders}


# ---------------------------------------------------------------------------
# the test


def test_every_page_renders_and_responds_in_a_real_browser(browser_page, server, screenshot_dir):
    page = browser_page
    timings: dict[str, float] = {}
    problems: list[str] = []

    def check(name: str, title: str, s: dict) -> None:
        if s["exceptions"]:
            problems.append(f"{name}: traceback on the page: {s['exceptions']}")
        if s["errors"]:
            problems.append(f"{name}: error messages: {s['errors']}")
        if s["title"] != title:
            problems.append(f"{name}: title {s['title']!r}, expected {title!r}")
        if s["charts"] == 0:
            problems.append(f"{name}: no chart; the page reads: {s['text'][:300]!r}")

    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    start = time.monotonic()
    page.goto(server["url"] + "/", wait_until="domcontentloaded")
    for number, (name, title) in enumerate(PAGES, start=1):
        t0 = time.monotonic()
        try:
            if name != "clip":
                open_page(page, name)
            s = settle(page, until=lambda s, name=name, title=title: s["title"] == title and (
                s["exceptions"] or s["errors"] or drawn(name, s)))
            if name in ACTIONS:
                s = ACTIONS[name](page, s, problems)
            check(name, title, s)
            shoot(page, screenshot_dir, f"{number}-{name}")
        except Exception as error:  # AssertionError, or a Playwright timeout: note it, go on to the next page
            problems.append(f"{name}: {type(error).__name__}: {error}")
        timings[name] = time.monotonic() - t0
    total = time.monotonic() - start
    icon = page.eval_on_selector("link[rel='shortcut icon']", "link => link.href")
    if not icon.startswith("data:"):  # a material icon as the tab's icon is fetched from fonts.gstatic.com
        problems.append(f"the tab's icon is {icon[:120]!r}, not drawn locally")
    elsewhere = sorted({u for u in requests if u.split("://")[0] in ("http", "https") and not u.startswith(server["url"])})
    if elsewhere:  # the app runs offline: fonts, icons and scripts all come from the local server
        problems.append(f"requests to other hosts: {elsewhere[:5]}")
    with urllib.request.urlopen(server["url"] + "/_explorer/ready", timeout=5) as r:
        preload = json.loads(r.read())  # explorer.serve's start-up work: done by now, and without an error
    if not preload["ready"] or preload["error"]:
        problems.append(f"the server's start-up work: {preload}")
    print("\nbrowser test, seconds per page: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
          + f"; total {total:.1f}; screenshots in {screenshot_dir}")
    if problems:
        problems.append("streamlit's log ends with:\n" + server["log"].read_text(errors="replace")[-2000:])
    assert not problems, "\n".join(problems)


def test_review_queue_keeps_a_verdict_and_the_lab_moves_a_probability(browser_page, server, screenshot_dir):
    """Review: walk the queue through three clips, save a verdict, reload, find it. Clip page: mute the event
    box in the counterfactual lab and see the probability of the clip's class change."""
    from core.data.datasets import open_dataset
    from core.audio.demo_data import default_demo_dir
    from core.paths import CHECKPOINTS_DIR

    demo_classes = set(open_dataset(Path(server["cache"]) / default_demo_dir().name).classes)
    for folder in CHECKPOINTS_DIR.glob("*/checkpoint.json"):
        known = set(json.loads(folder.read_text()).get("classes", []))
        if _kind(folder.parent) == "secnn" and known != demo_classes:
            pytest.skip(f"the shipped {folder.parent.name} knows other classes than the demo set: retrain it")
    page = browser_page
    page.goto(server["url"] + "/review", wait_until="domcontentloaded")
    main = page.locator('[data-testid="stMain"]')

    def heading() -> str:
        return main.locator("h3").first.inner_text()

    def walk(n: int) -> list[str]:
        seen = [heading()]
        for _ in range(n):
            main.get_by_role("button", name="▶").click()
            settle(page, until=lambda s, before=seen[-1]: s["title"] == "Review" and s["charts"] > 0
                   and heading() != before)
            seen.append(heading())
        return seen

    settle(page, until=lambda s: s["title"] == "Review" and s["charts"] > 0, timeout_s=2 * RENDER_S)
    clips = [h.split(":")[0] for h in walk(2)]
    assert len(set(clips)) == 3, clips
    main.locator('[data-testid="stRadio"]').filter(has_text="Verdict").get_by_text("label error", exact=True).click()
    settle(page, until=lambda s: "Saved in" in s["text"])
    note = main.get_by_label("Note")
    note.fill("the event is in the wrong band for its label")
    note.press("Control+Enter")
    settle(page, until=lambda s: "Saved in" in s["text"])
    shoot(page, screenshot_dir, "8-review")

    page.reload(wait_until="domcontentloaded")  # a new session: only the database remembers
    settle(page, until=lambda s: s["title"] == "Review" and s["charts"] > 0)
    assert heading().split(":")[0] == clips[0]
    walk(2)
    assert heading().split(":")[0] == clips[2]
    radio = main.locator('[data-testid="stRadio"]').filter(has_text="Verdict")
    assert radio.get_by_role("radio", name="label error").is_checked()
    assert main.get_by_label("Note").input_value() == "the event is in the wrong band for its label"

    open_page(page, "clip")
    settle(page, until=lambda s: s["title"] == "Clip" and "Pick one above" in s["text"] and s["charts"] > 0)
    main.get_by_role("radio", name="Counterfactual lab").click()  # a segmented control: its options are radios
    settle(page, until=lambda s: "Pick a region or an edit" in s["text"])
    main.locator('[data-testid="stRadio"]').filter(has_text="Region").get_by_text("box", exact=True).click()
    s = settle(page, until=lambda s: "probability of" in s["text"] and "points (was" in s["text"])
    delta = re.search(r"([+-]\d+\.\d) points \(was", s["text"])
    assert delta and abs(float(delta.group(1))) > 0.0, s["text"][-600:]
    assert not s["exceptions"] and not s["errors"]
    shoot(page, screenshot_dir, "9-counterfactual")

def _register_adapters(app_env: dict, names: tuple[str, ...]) -> None:
    """Register test adapters (random weights) into the app's cache, as ``add-model`` does."""
    import torch
    from safetensors.torch import save_file

    from core.models.adapter import load_adapter
    from core.models.user_models import add_model

    saved = os.environ.get("EXPLORER_CACHE")
    os.environ["EXPLORER_CACHE"] = app_env["EXPLORER_CACHE"]
    try:
        for name in names:
            adapter = REPO / "tests" / "adapters" / f"{name}.py"
            spec = load_adapter(adapter)
            torch.manual_seed(0)
            weights = Path(app_env["EXPLORER_CACHE"]) / f"{name}.safetensors"
            save_file({k: v.contiguous() for k, v in spec.model.state_dict().items()}, str(weights))
            add_model(adapter, weights, name)
    finally:
        if saved is None:
            os.environ.pop("EXPLORER_CACHE")
        else:
            os.environ["EXPLORER_CACHE"] = saved


def pick_models(page, names: tuple[str, ...]) -> None:
    """Replace the sidebar's model picks with ``names``, typing each into the multiselect."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first
    field = box.locator("input").first
    for _ in range(4):  # backspace in an empty input removes the last chip
        field.click()
        page.keyboard.press("Backspace")
        settle(page)
    for name in names:
        field.click()
        field.fill(name)
        page.get_by_role("option", name=re.compile(rf"^{re.escape(name)} \(adapter")).first.click()
        settle(page)
        page.keyboard.press("Escape")


def test_registered_crnn_and_cnn14_render_in_a_real_browser(browser_page, server, app_env, screenshot_dir):
    _register_adapters(app_env, ("crnn", "cnn14"))
    page = browser_page
    page.goto(server["url"] + "/", wait_until="domcontentloaded")
    settle(page, until=lambda s: s["charts"] > 0)
    pick_models(page, ("crnn", "cnn14"))
    s = settle(page, until=lambda s: s["charts"] > 0)
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "crnn (adapter: crnn.py)" in sidebar and "cnn14 (adapter: cnn14.py)" in sidebar, sidebar[:500]
    problems = []
    for name, title in (("clip", "Clip"), ("layers", "Layers"), ("attribution", "Attribution"),
                        ("errors", "Errors")):
        open_page(page, name)
        s = settle(page, until=lambda s, title=title: s["title"] == title and (
            s["exceptions"] or s["errors"] or s["charts"] > 0))
        if s["exceptions"] or s["errors"] or not s["charts"]:
            problems.append(f"{name}: {s['exceptions']} {s['errors']} charts {s['charts']}: {s['text'][:300]!r}")
        if name == "attribution" and "cnn14" in s["text"]:
            cnn14 = page.get_by_text("cnn14", exact=True).first
            cnn14.click()
            s = settle(page, until=lambda s: "deletion curve" in s["text"])
            if "(1, n_mels, n_frames)" not in s["text"]:
                problems.append("attribution: no word on why CNN14 has no deletion curve")
        shoot(page, screenshot_dir, f"adapters-{name}")
    assert not problems, "\n".join(problems)


def test_a_novel_upload_is_flagged_and_unknown_classes_are_said_at_once(browser_page, server, screenshot_dir,
                                                                         tmp_path):
    """A chirp uploaded on the Clip page is flagged there, on Attribution and on Review; then a class-folder
    dataset of three new classes: the Embeddings page says so within 5 s and draws it coloured by its own labels."""
    import soundfile as sf

    from core.interpret.novelty import CAPTION
    from core.audio.ood_sets import ood_clips
    from core.paths import CHECKPOINTS_DIR

    if not (CHECKPOINTS_DIR / "secnn" / "novelty").is_dir():
        pytest.skip("the shipped SE-CNN carries no novelty score")
    page = browser_page
    page.goto(server["url"] + "/", wait_until="domcontentloaded")
    settle(page, until=lambda s: s["title"] == "Clip" and s["charts"] > 0, timeout_s=4 * RENDER_S)  # cold start
    wav = tmp_path / "chirp.wav"
    sf.write(wav, ood_clips("chirps", 1, seed=5)[0], 44100)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(wav))
    settle(page, until=lambda s: "chirp.wav" in s["text"] and "secnn: this clip is unlike the training data" in s["text"],
           timeout_s=2 * RENDER_S)
    shoot(page, screenshot_dir, "10-novel-upload")
    open_page(page, "attribution")
    settle(page, until=lambda s: s["title"] == "Attribution" and CAPTION in s["text"])
    shoot(page, screenshot_dir, "11-novel-attribution")
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Review").click()
    page.wait_for_url(re.compile(r"/review(\?.*)?$"))
    s = settle(page, until=lambda s: s["title"] == "Review" and "your upload chirp.wav" in s["text"],
               timeout_s=2 * RENDER_S)
    assert "unlike the training data" in s["text"] and not s["exceptions"]

    folder = tmp_path / "digits"
    for name, kind in (("zero", "tones"), ("one", "chirps"), ("two", "noise")):
        (folder / name).mkdir(parents=True)
        for i, y in enumerate(ood_clips(kind, 5, seed=3, sr=22050, duration_s=2.0)):
            sf.write(folder / name / f"{name}-{i}.wav", y, 22050)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("a folder on this computer").click()
    settle(page)
    field = sidebar.get_by_role("textbox", name="Dataset folder")
    field.fill(str(folder))
    field.press("Enter")
    settle(page, until=lambda s: "15 clips" in sidebar.inner_text())
    began = time.monotonic()
    open_page(page, "embeddings")
    page.get_by_text("knows none of the 3 classes of this dataset").wait_for(timeout=5000)
    said_after_s = time.monotonic() - began
    s = settle(page, until=lambda s: s["title"] == "Embeddings" and s["charts"] > 0
               and "Coloured by the dataset's own labels" in s["text"], timeout_s=2 * RENDER_S)
    shoot(page, screenshot_dir, "12-unknown-classes")
    names = page.evaluate("() => [...document.querySelectorAll('[data-testid=\"stMain\"] .js-plotly-plot')]"
                          ".flatMap((p) => (p.data || []).map((t) => t.name))")
    assert {f"{name} (1)" for name in ("zero", "one", "two")} <= set(names), names  # coloured by its own labels
    assert said_after_s < 5 and not s["exceptions"]
