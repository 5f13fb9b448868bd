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
    import shutil

    from core.data.cache import default_cache
    from core.interpret.decoder_fit import fit_decoders
    from core.models.checkpoint import load_checkpoint
    from core.warm_cache import warm

    folders = [env["root"] / "checkpoints" / "tiny-secnn", env["root"] / "checkpoints" / "tiny-ast"]
    loaded = load_checkpoint(folders[0])  # decoders saved with it, as shipped ones are, for the page's default layer
    names = [t.name for t in loaded.cam_taps()]
    fit_decoders(loaded, env["data"], taps=[names[len(names) // 2]], test_fold=3, val_fold=2, progress=False,
                 max_steps=20, warmup=5)
    try:
        _first_visits_after_warm_cache(folders, env, default_cache, warm)
    finally:
        shutil.rmtree(folders[0] / "decoders")


def _first_visits_after_warm_cache(folders, env, default_cache, warm) -> None:
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
    # the Decoders page in a new session (its layer is the page's default, not one another page picked)
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    fresh.session_state["models"] = ["tiny-secnn", "tiny-ast"]
    fresh.switch_page("views/decoders.py")
    before = stats.misses
    fresh.run()
    assert not fresh.exception, [e.value for e in fresh.exception]
    assert any("saved with the checkpoint" in c.value for c in fresh.caption), [i.value for i in fresh.info]
    assert stats.misses == before, f"the decoders page computed {stats.misses - before} entries after warm-cache"
