"""The Review page (Streamlit AppTest): verdicts are kept, shared between sessions, exported, and a bad
database gives a message while the page goes on.

Runs on the small demo set of the shared ``env`` fixture with a tiny random SE-CNN, whose many mistakes
fill the queue.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import sqlite3
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.review.verdicts import VerdictStore

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
PAGE = "views/review.py"
TIMEOUT_S = 120
EXPLORER_ENV = {"clips_per_class": 2}


def start(db: Path | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn"]
    if db is not None:
        at.session_state["review_db"] = str(db)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def current_clip(at: AppTest) -> str:
    return at.subheader[0].value.split(":")[0]


def verdict_radio(at: AppTest):
    return next(r for r in at.radio if r.key and r.key.startswith("review_verdict_"))


def note_area(at: AppTest):
    return next(t for t in at.text_area if t.key and t.key.startswith("review_note_"))


def test_a_verdict_survives_a_restart(env, tmp_path):
    db = tmp_path / "review.sqlite"
    at = start(db)
    assert [t.value for t in at.main.title] == ["Review"]
    clip = current_clip(at)
    verdict_radio(at).set_value("label error").run()
    note_area(at).input("sounds like rain to me").run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]

    again = start(db)  # a new session: a restart of the app as far as the page can tell
    assert current_clip(again) != clip  # it opens on the first clip without a verdict: the second
    assert "**2 /" in " ".join(m.value for m in again.markdown)
    again.button(key="review_prev").click().run()
    assert current_clip(again) == clip
    assert verdict_radio(again).value == "label error"
    assert note_area(again).value == "sounds like rain to me"


def test_two_open_sessions_each_keep_their_verdict(env, tmp_path):
    """Two tabs open on the same database, each saving a verdict while the other's page is stale.

    The runs are in turn: AppTest compiles the script on its own thread, and CPython 3.11's parser is not
    safe to run from two threads at once (``SystemError: AST constructor recursion depth mismatch``).
    Truly concurrent writers are tested on the store itself, in threads and in processes
    (``tests/core/review/test_verdicts.py``).
    """
    db = tmp_path / "review.sqlite"
    first, second = start(db), start(db)
    second.button(key="review_next").click().run()
    clips = [current_clip(first), current_clip(second)]
    assert clips[0] != clips[1]
    verdict_radio(first).set_value("model error")
    verdict_radio(second).set_value("ambiguous")
    first.run()
    second.run()
    assert not first.exception and not second.exception
    saved = {v.clip_id: v.verdict for v in VerdictStore(db).all()}
    assert saved == {clips[0]: "model error", clips[1]: "ambiguous"}


def test_a_corrupt_database_gives_a_message_and_the_page_works(env, tmp_path):
    db = tmp_path / "broken.sqlite"
    db.write_bytes(b"this is not a database" * 300)
    at = start(db)
    assert any("not a readable SQLite database" in e.value for e in at.error)
    assert any("not being saved" in w.value for w in at.warning)
    assert current_clip(at)
    assert len(at.get("plotly_chart")) >= 3  # top 5 and the two Grad-CAM maps
    verdict_radio(at).set_value("ambiguous").run()  # nothing to save to, and nothing breaks
    assert not at.exception
    assert db.read_bytes().startswith(b"this is not a database")


@contextmanager
def read_only(folder: Path):
    """Make a folder unwritable: chmod, or ``chattr +i`` where the tests run as root; skip if neither holds."""
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    immutable = False
    try:
        if os.access(folder, os.W_OK) and shutil.which("chattr"):
            immutable = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        probe = folder / "probe"
        try:
            probe.touch()
            probe.unlink()
            pytest.skip("cannot make a folder read-only here (root without chattr)")
        except OSError:
            pass
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=False)
        folder.chmod(stat.S_IRWXU)


def test_a_read_only_folder_gives_a_message_and_the_page_works(env, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    with read_only(folder):
        at = start(folder / "review.sqlite")
        assert any("cannot be opened for writing" in e.value for e in at.error), [e.value for e in at.error]
        assert current_clip(at)
        verdict_radio(at).set_value("ambiguous").run()
        assert not at.exception


def test_a_database_from_a_newer_version_gives_a_message(env, tmp_path):
    db = tmp_path / "newer.sqlite"
    VerdictStore(db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE schema_version SET version = 99")
    at = start(db)
    assert any("newer version" in e.value for e in at.error)
    assert current_clip(at)


@pytest.fixture
def downloads(monkeypatch):
    """What the page's download buttons would serve, by file name (static bytes and deferred callables)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    served: dict[str, object] = {}
    add, add_deferred = MediaFileManager.add, MediaFileManager.add_deferred

    def record(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if file_name:
            served[file_name] = path_or_data
        return add(self, path_or_data, mimetype, coordinates, file_name, is_for_static_download)

    def record_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        if file_name:
            served[file_name] = data_callable
        return add_deferred(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add", record)
    monkeypatch.setattr(MediaFileManager, "add_deferred", record_deferred)
    return served


def _bytes(value) -> bytes:
    value = value() if callable(value) else value
    return value.encode() if isinstance(value, str) else bytes(value)


def test_exports_hold_what_was_saved(env, tmp_path, downloads):
    db = tmp_path / "review.sqlite"
    at = start(db)
    clip = current_clip(at)
    verdict_radio(at).set_value("correct after all").run()
    note_area(at).input("the <label> is right").run()
    at.run()
    rows = list(csv.DictReader(io.StringIO(_bytes(downloads["review.csv"]).decode())))
    assert [(r["clip_id"], r["verdict"], r["note"]) for r in rows] == [(clip, "correct after all", "the <label> is right")]
    page = _bytes(downloads["review.html"]).decode()
    assert clip in page and "correct after all" in page and "the &lt;label&gt; is right" in page
    assert page.count("data:image/png;base64,") >= 1 and page.count("data:audio/wav;base64,") == 1
    assert "http://" not in page and "https://" not in page  # opens offline


def test_counterfactual_lab_on_the_clip_page(env):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn"]
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.segmented_control(key="clip_section").set_value("Counterfactual lab").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Pick a region or an edit to compare the two versions." in [i.value for i in at.info]
    n_audio = len(at.get("audio"))
    at.radio(key="lab_region").set_value("box").run()
    at.radio(key="lab_mode").set_value("keep").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("audio")) == n_audio + 2  # before and after
    metric = at.metric[0]
    assert "probability of" in metric.label and "was" in metric.delta
    for m in at.metric:  # a change that rounds to zero reads ±0.0, not "↓ -0.0"
        assert not m.delta.startswith(("-0.0", "+0.0")), m.delta

    from core.data.datasets import open_dataset

    boxes = open_dataset(env["demo"]).boxes(at.session_state["clip_id"])  # the default box holds all of them
    lo, hi = at.slider(key="lab_time").value
    assert lo <= min(b.t0_s for b in boxes) + 0.05 and hi >= min(max(b.t1_s for b in boxes), 4.95) - 0.05, boxes
    keys = [c.key for c in at.get("plotly_chart")]  # the clip's own charts, then two maps and two top-5s
    assert keys[-4:] == ["lab_map_Before", "lab_top5_Before", "lab_map_After", "lab_top5_After"], keys


def test_a_recording_is_checked_like_an_upload(env):
    import io

    import numpy as np
    import soundfile as sf

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn"]
    at.run()
    recorder = at.audio_input(key="_recorder")
    buffer = io.BytesIO()
    sf.write(buffer, np.full(20000, np.nan, dtype=np.float32), 44100, format="WAV", subtype="FLOAT")
    recorder.set_value(("recording.wav", buffer.getvalue(), "audio/wav")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("NaN" in e.value or "not finite" in e.value or "infinite" in e.value for e in at.error), \
        [e.value for e in at.error]
    assert at.session_state["clip_origin"] == "dataset"  # the bad recording did not replace the clip
    t = np.arange(44100) / 44100
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100, format="WAV")
    at.audio_input(key="_recorder").set_value(("recording.wav", buffer.getvalue(), "audio/wav")).run()
    assert not at.exception and not at.error
    assert at.session_state["clip_origin"] == "upload"
    assert at.session_state["upload"]["name"].startswith("recording-")


def test_a_short_clips_padding_is_marked_on_the_review_maps(env, tmp_path):
    """A dataset of 1 s clips of the model's own classes: the Grad-CAMs grey the padded 4 s, and a caption says how
    much of the input is padding."""
    import soundfile as sf

    folder = tmp_path / "short"
    for record in env["data"].records:
        y, sr = sf.read(record.path, dtype="float32")
        (folder / record.category).mkdir(parents=True, exist_ok=True)
        sf.write(folder / record.category / Path(record.path).name, y[:sr], sr)
    at = start()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(folder)).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    assert "80 % of the model's input is padding" in captions and "Grey: padding" in captions
    shapes = [s for chart in at.get("plotly_chart") if "review_cam" in (chart.proto.id or "")
              for s in __import__("json").loads(chart.proto.spec)["layout"].get("shapes", [])]
    assert shapes  # the padded span drawn on the maps
