"""After ``warm-cache``, the pages' first visit computes nothing: every on-disk entry they read is there.

Runs on the small demo set of the shared ``env`` fixture with its tiny SE-CNN and AST. Counted with the
on-disk cache's lookups (``default_cache().stats``): an entry a page had to compute is a miss.
"""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 300
EXPLORER_ENV = {"clips_per_class": 3}
WARMED_PAGES = ("attribution", "attention", "embeddings", "errors", "review")


def test_after_warm_cache_the_first_visits_compute_no_entry_and_a_second_warm_is_a_no_op(env):
    from core.data.cache import default_cache
    from core.warm_cache import warm

    folders = [env["root"] / "checkpoints" / "tiny-secnn", env["root"] / "checkpoints" / "tiny-ast"]
    first = warm(folders, env["demo"], progress=False)
    assert first["misses"] > 0
    assert warm(folders, env["demo"], progress=False)["misses"] == 0  # the second run only reads

    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = ["tiny-secnn", "tiny-ast"]
    at.run()
    stats = default_cache().stats
    for page in WARMED_PAGES:
        before = stats.misses
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert stats.misses == before, f"the {page} page computed {stats.misses - before} entries after warm-cache"
