"""Every page in a real browser with a real-size AST as the user's model (slow: 2.5 min on 2 cores, more when loaded).

The model is MIT's AudioSet AST's size (86.6 M parameters, 1214 tokens) with random weights, built once per
machine under ``.cache/`` (:func:`core.models.fixtures.mit_size_ast`), and opened as a user opens a Hugging Face
folder: listed through ``$EXPLORER_CHECKPOINTS`` beside ``test_browser.py``'s data and checkpoints. It is the
only model picked, and each page is opened from the sidebar in one session until it has drawn (the Decoders page
until it offers to train). The Attention and Attribution pages must offer their scorecard on a button rather
than start it.

    .venv/bin/pytest -q -p no:xdist -m slow tests/explorer/test_browser_real_size.py
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.explorer import test_browser
from tests.explorer.test_browser import PAGES, drawn, launched_chromium, settle, shoot

pytestmark = pytest.mark.slow
server, screenshot_dir = test_browser.server, test_browser.screenshot_dir
PAGE_S = 600  # one page's first visit, the fold's extraction included (10 clips), on a loaded 2-core machine
SCORE_BUTTON = "Score this map"
STEREO = "Rollout of the left and right channels"  # the Attention page's toggle for a large model's stereo clip
NOT_OFFERED = "Not offered for this model"  # a page's methods that do not apply to the model
TRAIN_DECODERS = "Train the decoders"  # the Decoders page before any decoders are fitted for the model
KNOWS_NONE = "knows none of the"  # a dataset page's sentence when the model knows none of the dataset's classes


@pytest.fixture(scope="module")
def app_env(tmp_path_factory) -> dict[str, str]:
    """``test_browser.py``'s environment, with the real-size AST's folder added to ``$EXPLORER_CHECKPOINTS``."""
    from core.models.fixtures import mit_size_ast

    env = test_browser.make_app_env(tmp_path_factory.mktemp("browser-real-size"))
    env["EXPLORER_CHECKPOINTS"] += os.pathsep + str(mit_size_ast())
    return env


def pick_only(page, name: str) -> None:
    """Make ``name`` the sidebar's only model pick."""
    box = page.locator('[data-testid="stSidebar"] [data-testid="stMultiSelect"]').first
    field = box.locator("input").first
    for _ in range(4):  # backspace in an empty input removes the last chip
        field.click()
        page.keyboard.press("Backspace")
        settle(page, timeout_s=PAGE_S)
    field.click()
    field.fill(name)
    page.get_by_role("option", name=re.compile(rf"^{re.escape(name)} \(")).first.click()
    settle(page, timeout_s=PAGE_S)
    page.keyboard.press("Escape")


def test_every_page_works_with_a_real_size_ast(server, screenshot_dir):
    from core.models.fixtures import mit_size_ast

    name = mit_size_ast().name
    problems, timings = [], {}
    with launched_chromium() as chromium:
        page = chromium.new_context(viewport=test_browser.VIEWPORT).new_page()
        page.set_default_timeout(PAGE_S * 1000)
        page.goto(server["url"] + "/", wait_until="domcontentloaded")
        settle(page, until=lambda s: s["charts"] > 0, timeout_s=PAGE_S)
        pick_only(page, name)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert f"{name} (hf-ast)" in sidebar, sidebar[:500]
        for number, (url_name, title) in enumerate(PAGES + [("review", "Review")], start=1):
            t0 = time.monotonic()
            try:
                page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).click()
                page.wait_for_url(re.compile(rf"/{'(clip)?' if url_name == 'clip' else url_name}(\?.*)?$"))
                s = settle(page, timeout_s=PAGE_S, until=lambda s, n=url_name, t=title: s["title"] == t and (
                    s["exceptions"] or s["errors"] or drawn(n, s) or NOT_OFFERED in s["text"]
                    or (n == "decoders" and TRAIN_DECODERS in s["text"])  # none ship for this model
                    or KNOWS_NONE in s["text"]  # Errors and Review: AudioSet's classes are not the demo set's
                    or (n == "review" and "queue" in s["text"])))
                if s["exceptions"] or s["errors"]:
                    problems.append(f"{url_name}: {s['exceptions']} {s['errors']}")
                if url_name in ("attention", "attribution") and SCORE_BUTTON not in s["text"]:
                    problems.append(f"{url_name}: no '{SCORE_BUTTON}' button: {s['text'][-400:]!r}")
                if url_name == "attention" and "Left, right and mix-down" in s["text"] and STEREO not in s["text"]:
                    problems.append("attention: a stereo clip's left and right rollouts are not on request")
                shoot(page, screenshot_dir, f"real-size-{number}-{url_name}")
            except Exception as error:  # a timeout: note it, go on to the next page
                problems.append(f"{url_name}: {type(error).__name__}: {str(error)[:600]}")
            timings[url_name] = time.monotonic() - t0
    print("\nreal-size AST in the browser, seconds per first visit: "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if problems:
        problems.append("streamlit's log ends with:\n" + Path(server["log"]).read_text(errors="replace")[-2000:])
    assert not problems, "\n".join(problems)
