"""The sidebar's "Get ESC-50" button: downloads only on click (from a loopback server here), then opens the set."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import core.data.get_data
from tests.core.data.test_get_data import Server, esc50_zip

APP = str(Path(__file__).resolve().parents[2] / "explorer" / "app.py")
EXPLORER_ENV = {"clips_per_class": 1}


def test_get_esc50_downloads_on_click_and_opens_it(env, monkeypatch):
    with Server(esc50_zip()) as server:
        source = core.data.get_data.SOURCES["esc50"]
        monkeypatch.setitem(core.data.get_data.SOURCES, "esc50", core.data.get_data.Source(
            name=source.name, url=server.url, archive=source.archive, sha256=None, required=source.required))
        at = AppTest.from_file(APP, default_timeout=60)
        at.session_state["models"] = ["tiny-secnn"]
        at.session_state["dataset_source"] = "folder"
        at.run()
        assert not at.exception and server.ranges == []  # nothing fetched before the click
        at.sidebar.button(key="_get_esc50").click().run()
        assert not at.exception, [e.value for e in at.exception]
    assert server.ranges == [None]
    folder = Path(env["root"]) / "cache" / "data" / "ESC-50-master"
    assert at.session_state["dataset_root"] == str(folder)
    assert any("ESC-50" in c.value and "4 clips" in c.value for c in at.sidebar.caption), \
        [c.value for c in at.sidebar.caption]
