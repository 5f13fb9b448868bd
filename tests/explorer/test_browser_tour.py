"""The Tour in a real browser: Next through all ten steps on a bundled clip, on an uploaded one, and in the
presenter setting at 1280 x 720 (the arrow key instead of Next), each step screenshotted.

The server, data and checkpoints are those of ``test_browser.py`` (the shipped checkpoints, or tiny random
ones for a kind that is not shipped). In the presenter setting each step must fit one screen: the Next button's
bottom edge inside the 720 px viewport without scrolling (step 9 before its reveal, which adds a second map).

``TOUR_READING_PACE=1`` pauses on each step as long as a person reads it (200 words a minute, plus 6 s per
figure, plus 10 s to set a guess on step 9) and prints the total: the tour's time at reading pace.

    .venv/bin/pytest -q tests/explorer/test_browser_tour.py
    SCREENSHOT_DIR=/tmp/shots TOUR_READING_PACE=1 .venv/bin/pytest -q -s tests/explorer/test_browser_tour.py -k bundled
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.explorer import test_browser
from tests.explorer.test_browser import RENDER_S, launched_chromium, settle

# test_browser's fixtures: its data and checkpoints in a fresh cache, the server, the screenshot folder
app_env, server, screenshot_dir = test_browser.app_env, test_browser.server, test_browser.screenshot_dir

N_STEPS = 10
WIDE = {"width": 1400, "height": 1000}
PROJECTOR = {"width": 1280, "height": 720}
READING_PACE = os.environ.get("TOUR_READING_PACE") == "1"


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as chromium:
        yield chromium


def new_page(browser, viewport: dict):
    page = browser.new_context(viewport=viewport, device_scale_factor=1).new_page()
    page.set_default_timeout(RENDER_S * 1000)
    return page


def at_step(step: int):
    return lambda s: any(line.strip().startswith(f"{step}. ") for line in s["text"].split("\n"))


def reading_time(s: dict) -> float:
    """Seconds a person spends on a step: its words at 200 a minute, and 6 s for each figure."""
    return len(s["text"].split()) / 200 * 60 + 6 * s["charts"]


def walk(page, folder: Path, prefix: str, *, presenter: bool = False) -> tuple[list[str], float]:
    """Next (or the right arrow key) from step 1 to 10; returns the problems seen and the seconds it took."""
    problems, start = [], time.monotonic()
    for step in range(1, N_STEPS + 1):
        s = settle(page, until=at_step(step))
        if presenter:  # one step per screen: Next is visible without scrolling
            box = page.get_by_role("button", name="Next").bounding_box()
            if box is None or box["y"] + box["height"] > PROJECTOR["height"]:
                problems.append(f"{prefix} step {step}: Next is below the 720 px screen ({box})")
            page.screenshot(path=str(folder / f"{prefix}-{step:02d}.png"))
        if READING_PACE:
            page.wait_for_timeout(1000 * reading_time(s))
        if step == 9:
            if READING_PACE:
                page.wait_for_timeout(10_000)  # setting the guess
            page.get_by_role("button", name="Reveal").click()
            s = settle(page, until=lambda s: "of its weight in your box" in s["text"] or "does not apply" in s["text"])
            if READING_PACE:
                page.wait_for_timeout(1000 * reading_time(s))
        if s["exceptions"] or s["errors"]:
            problems.append(f"{prefix} step {step}: {s['exceptions']} {s['errors']}")
        if step not in (8, 10) and s["charts"] == 0 and "does not apply" not in s["text"]:
            problems.append(f"{prefix} step {step}: no figure: {s['text'][:300]!r}")
        if not presenter:
            page.screenshot(path=str(folder / f"{prefix}-{step:02d}.png"), full_page=True)
        if step < N_STEPS:
            if presenter:
                page.keyboard.press("ArrowRight")
            else:
                page.get_by_role("button", name="Next").click()
    return problems, time.monotonic() - start


def test_tour_walks_on_a_bundled_clip(browser, server, screenshot_dir):
    page = new_page(browser, WIDE)
    page.goto(server["url"] + "/tour?step=1", wait_until="domcontentloaded")
    problems, seconds = walk(page, screenshot_dir, "tour-bundled")
    print(f"\ntour on a bundled clip: {seconds:.0f} s{' at reading pace' if READING_PACE else ''}")
    assert not problems, "\n".join(problems)


def test_tour_walks_on_an_uploaded_clip(browser, server, screenshot_dir, tmp_path):
    import soundfile as sf

    sr = 22050
    t = np.arange(3 * sr) / sr
    chirp = 0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t)
    chirp[(t % 0.5) < 0.01] += 0.6  # a click every half second
    path = tmp_path / "chirp-and-clicks.wav"
    sf.write(path, chirp.astype(np.float32), sr)
    page = new_page(browser, WIDE)
    page.goto(server["url"] + "/", wait_until="domcontentloaded")  # the Clip page, the default
    settle(page, until=lambda s: s["title"] == "Clip" and s["charts"] > 0)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    settle(page, until=lambda s: "chirp-and-clicks.wav (uploaded" in s["text"])
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text="Tour").click()
    problems, _ = walk(page, screenshot_dir, "tour-upload")
    assert "chirp-and-clicks.wav" in page.locator('[data-testid="stMain"]').inner_text()
    assert not problems, "\n".join(problems)


def test_tour_in_the_presenter_setting_fits_a_projector(browser, server, screenshot_dir):
    page = new_page(browser, PROJECTOR)
    page.goto(server["url"] + "/tour?step=1&presenter=1", wait_until="domcontentloaded")
    s = settle(page, until=at_step(1))
    font = page.evaluate("() => getComputedStyle(document.documentElement).fontSize")
    assert font == "20px", font
    assert not page.locator('[data-testid="stSidebar"]').is_visible() or page.locator(
        '[data-testid="stSidebar"]').get_attribute("aria-expanded") == "false", "the sidebar is not collapsed"
    assert s["title"].startswith("1. ")  # the step's title is the screen's heading
    problems, _ = walk(page, screenshot_dir, "tour-presenter", presenter=True)
    assert not problems, "\n".join(problems)
