"""The dataset-wide pages (Embeddings, Decoders, Errors) run end to end (Streamlit AppTest).

A small demo set (5 clips per class, so every fold holds one clip of each
class) is made in a temporary cache, and two tiny random-weight checkpoints
(an SE-CNN and an AST) are found through ``$EXPLORER_CHECKPOINTS``. The pure
figure helpers the pages rely on for clicks are checked on tiny inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
TIMEOUT_S = 120
MODELS = ["tiny-secnn", "tiny-ast"]

EXPLORER_ENV = {"clips_per_class": 5, "ast": {"dim": 16, "depth": 2, "heads": 2, "mlp_ratio": 1.0}}


def start(page: str, models=("tiny-secnn",), **session) -> AppTest:
    """The app switched to ``page`` (e.g. "views/errors.py") with the given models picked."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.session_state["models"] = list(models)
    for key, value in session.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(page).run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def array(value) -> np.ndarray:
    """A figure's data array as JSON gives it: a list, or plotly's typed array ``{"dtype", "bdata", "shape"}``."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return flat.reshape([int(n) for n in str(shape).split(",")]) if shape else flat
    return np.asarray(value)


def axis_titles(fig: dict) -> list[str]:
    layout = fig["layout"]
    return [layout[k]["title"]["text"] for k in layout
            if k.startswith(("xaxis", "yaxis")) and layout[k].get("title", {}).get("text")]


# ---------------------------------------------------------------------------
# embeddings


def test_embeddings_page(env):
    at = start("views/embeddings.py", tap="block2")  # a conv tap picked on the Layers page is no default here
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Embeddings"]
    assert at.markdown[0].value.startswith("Each point is one clip")
    assert at.selectbox(key="_w_dataset_fold").value == 5
    assert at.selectbox(key="_w_embedding_tap").value == "embedding"
    figs = charts(at)
    assert len(figs) == 1
    scatter = [t for t in figs[0]["data"] if t.get("customdata")]
    indices = sorted(p[0] for t in scatter for p in t["customdata"])
    assert indices == list(range(10))  # fold 5: one clip per class
    assert set(p[1] for t in scatter for p in t["customdata"]) == {
        r.clip_id for r in env["data"].records if r.fold == 5}
    assert "PCA 1 (no unit)" in axis_titles(figs[0])
    assert any("of 10 clips predicted right" in c.value for c in at.caption)
    # the work is on disk: every tap was extracted in one pass, so another tap only adds its projections
    arrays = env["root"] / "cache" / "arrays"
    n_entries, n_taps = len(list(arrays.glob("*.npz"))), len(list(arrays.glob("*.npy")))
    assert n_entries >= 1 and n_taps >= 5  # this projection; one activation entry per tap
    # another tap, t-SNE, coloured by right / wrong: served without error
    at.selectbox(key="_w_embedding_tap").set_value("block3").run()
    at.radio(key="embeddings_method").set_value("tsne").run()
    at.radio(key="embeddings_colour").set_value("correct").run()
    no_exception(at)
    assert len(list(arrays.glob("*.npz"))) == n_entries + 2  # PCA and t-SNE of block3
    assert len(list(arrays.glob("*.npy"))) == n_taps  # no new extraction
    names = {t["name"].split(" ")[0] for t in charts(at)[0]["data"] if t.get("customdata")}
    assert names <= {"right", "wrong"} and names
    assert at.session_state["embedding_tap"] == "block3" and at.session_state["tap"] == "block2"


def test_the_first_umap_says_it_is_a_one_time_compile(env, monkeypatch):
    import core.interpret.embed

    at = start("views/embeddings.py")
    monkeypatch.setattr(core.interpret.embed, "umap_compiled", lambda: False)  # as on a machine that never ran UMAP
    at.radio(key="embeddings_method").set_value("umap").run(timeout=600)  # a real first compile can take minutes
    no_exception(at)
    assert [s.label for s in statuses(at)] == ["UMAP compiled (once on this machine)"]
    assert any("later UMAP runs" in c.value for c in at.caption)
    assert "UMAP 1 (no unit)" in axis_titles(charts(at)[0])
    monkeypatch.setattr(core.interpret.embed, "umap_compiled", lambda: True)
    at.run()
    assert not statuses(at)


def statuses(at: AppTest) -> list:
    return [e for e in at.main.children.values() if type(e).__name__ == "Status"]


def test_embeddings_current_clip_is_ringed_and_opens_on_the_clip_page(env):
    fold5 = sorted(r.clip_id for r in env["data"].records if r.fold == 5)
    # a click calls state.open_clip(clip_id) (see point_from_selection below); set its effect directly
    at = start("views/embeddings.py", clip_id=fold5[3])
    no_exception(at)
    ring = [t for t in charts(at)[0]["data"] if t.get("name") == "current clip"]
    assert len(ring) == 1 and any("The ringed point is the current clip." in c.value for c in at.caption)
    assert any(m.value.startswith(f"**Current clip:** {fold5[3]}") for m in at.markdown)
    at.button(key="embeddings_open").click().run()
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Clip"]
    assert at.session_state["clip_id"] == fold5[3]

    fold1 = sorted(r.clip_id for r in env["data"].records if r.fold == 1)
    at = start("views/embeddings.py", clip_id=fold1[0])  # not in fold 5: nothing is ringed, and no caption says so
    assert not [t for t in charts(at)[0]["data"] if t.get("name") == "current clip"]
    assert not any("ringed point is" in c.value for c in at.caption)


def test_point_and_cell_from_selection():
    from explorer.figures.dataset import cell_from_selection, point_from_selection

    state = {"selection": {"points": [{"customdata": [2, "a.wav"]}, {"customdata": [7, "b.wav"]}]}}
    assert point_from_selection(state) == 7
    assert point_from_selection(state["selection"]) == 7
    assert point_from_selection({"selection": {"points": [{"x": 1.0}]}}) is None
    assert point_from_selection(None) is None
    assert cell_from_selection({"selection": {"points": [{"customdata": [3, 1, 4]}]}}) == (3, 1)
    assert cell_from_selection({"selection": {"points": [{"customdata": ["x", 1]}]}}) is None


# ---------------------------------------------------------------------------
# errors


def test_errors_page_two_models(env):
    at = start("views/errors.py", models=MODELS)
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Errors"]
    assert at.markdown[0].value.startswith("The **confusion matrix**")
    figs = charts(at)
    assert len(figs) == 4  # a confusion matrix per model, then ROC curves per model
    cm = figs[0]
    counts = array(cm["data"][0]["z"])
    assert counts.shape == (10, 10) and counts.sum() == 10
    assert {"predicted class", "true class"} <= set(axis_titles(cm))
    assert {"false positive rate (0-1)", "true positive rate (0-1)"} <= set(axis_titles(figs[2]))
    assert [m.label for m in at.metric] == ["Accuracy", "Macro F1", "Macro ROC AUC"] * 2
    table = at.dataframe[0].value
    assert list(table.columns[:2]) == ["class", "support"] and len(table) == 10
    assert "f1 tiny-secnn" in table.columns and "f1 tiny-ast" in table.columns
    # misclassified clips with their Grad-CAM thumbnails (random weights: most clips are wrong)
    images = at.get("image")
    assert len(images) >= 1


def test_errors_cell_lists_clips_each_one_click_from_the_clip_page(env):

    at = start("views/errors.py")
    no_exception(at)
    cm = array(charts(at)[0]["data"][0]["z"])
    t, p = map(int, np.argwhere(cm > 0)[0])
    at.session_state["errors_cell"] = ["tiny-secnn", t, p]  # what a click on cell (t, p) stores
    at.run()
    no_exception(at)
    classes = env["data"].classes
    assert any(s.value.startswith(f"tiny-secnn: '{classes[t]}' clips predicted as '{classes[p]}' ({cm[t, p]})")
               for s in at.subheader)
    opens = [b for b in at.button if b.key and b.key.startswith("errors_open_cell_")]
    assert len(opens) == cm[t, p]
    opens[0].click().run()
    no_exception(at)
    assert [x.value for x in at.main.title] == ["Clip"]
    assert env["data"].record(at.session_state["clip_id"]).label == t


# ---------------------------------------------------------------------------
# decoders


def _decoder_page_figures(at, tap_label):
    """The scores chart always; filters only for the flavours that beat the training mean, else a warning each."""
    figs = charts(at)
    scores = figs[0]
    names = list(scores["data"][0]["y"])
    assert "training-mean spectrum (baseline)" in names and "zeros (baseline)" in names
    bar, labels = scores["data"][:2]  # each value is written past its interval, not under the error bar
    assert labels["mode"] == "text" and "text" not in bar and scores["layout"]["showlegend"] is False
    assert np.all(array(labels["x"]) >= array(bar["x"]) + array(bar["error_x"]["array"]) - 1e-9)
    assert any("(oracle)" in n for n in names)
    beaten = [n for n in names if "does not beat the mean" in n]
    assert len([w for w in at.warning if "does not beat the training-mean" in w.value]) == len(beaten)
    if len(beaten) < 3:
        assert len(figs) in (5, 6)  # scores, filter bank, one channel, reconstruction, errors (+ discriminative)
        bank, channel, recon = figs[1], figs[2], figs[3]
        assert len([t for t in bank["data"] if t["type"] == "heatmap"]) == 3 - len(beaten) + 1  # + NMF oracle
        assert "frequency (Hz, mel scale)" in axis_titles(bank)
        assert "frequency (Hz)" in axis_titles(channel)
        assert {"time (s)", "frequency (Hz, mel scale)"} <= set(axis_titles(recon))
        assert recon["data"][0]["colorbar"]["title"]["text"] == "dB"
    else:
        assert len(figs) == 1
    return figs


def test_decoders_page_trains_once_then_explains(env):
    at = start("views/decoders.py")
    no_exception(at)
    assert [t.value for t in at.main.title] == ["Decoders"]
    assert at.markdown[0].value.startswith("A **decoder** reads a layer back")
    assert at.selectbox(key="_w_tap").value == "block3"
    at.number_input(key="decoders_steps").set_value(60).run()
    assert len(charts(at)) == 0 and any(i.value.startswith("No decoders for") for i in at.info)
    at.button(key="decoders_train").click().run(timeout=600)  # extraction, three decoders and the oracle
    no_exception(at)
    figs = _decoder_page_figures(at, "block 3")
    # the decoders are on disk, in the cache, not beside the checkpoint
    assert list((env["root"] / "cache" / "decoders").rglob("block3-mel-gaussian.safetensors"))
    assert not (env["root"] / "checkpoints" / "tiny-secnn" / "decoders").exists()
    if len(figs) > 1:  # play one pattern
        at.radio(key="decoders_listen_mode").set_value("steady").run()  # 2 s of sound: quicker to make
        at.toggle(key="decoders_listen").set_value(True).run()
        no_exception(at)
        assert len(at.get("audio")) == 1
    # a second session finds them trained
    again = start("views/decoders.py", decoders_steps=60)
    no_exception(again)
    assert len(charts(again)) == len(figs)


def test_decoders_page_draws_saved_decoders_on_first_visit(env, tmp_path):
    """Decoders saved beside a checkpoint (as shipped ones are) draw at once, with no training button."""
    import shutil

    from core.models.checkpoint import load_checkpoint
    from core.interpret.decoder_fit import fit_decoders

    folder = env["root"] / "checkpoints" / "tiny-secnn"
    fit_decoders(load_checkpoint(folder), env["data"], taps=["block3"], progress=False, max_steps=60, warmup=20)
    try:
        at = start("views/decoders.py")
        no_exception(at)
        assert not any(i.value.startswith("No decoders for") for i in at.info)
        assert not at.main.button  # no training button: nothing to train (the sidebar has its own)
        _decoder_page_figures(at, "block 3")
        assert any("saved with the checkpoint" in c.value for c in at.caption)
    finally:
        shutil.rmtree(folder / "decoders")


# ---------------------------------------------------------------------------
# errors as messages


def test_dataset_pages_show_input_errors_as_messages(env, tmp_path):
    import soundfile as sf

    rng = np.random.default_rng(0)
    for name in ("alpha", "beta"):  # classes the checkpoints do not know, one clip each (both in fold 1)
        (tmp_path / name).mkdir()
        sf.write(str(tmp_path / name / "a.wav"), (0.1 * rng.standard_normal(22050)).astype(np.float32), 22050)
    at = start("views/embeddings.py", dataset_source="folder", dataset_folder=str(tmp_path))
    assert not at.exception, [e.value for e in at.exception]
    # the fold pick offers the folder's one fold (not an empty fold 5); two clips are too few to project
    assert at.session_state["dataset_fold"] == 1
    assert len(at.error) == 1 and "need (N, D) with N >= 3 clips" in at.error[0].value
    assert any("knows none of the 2 classes of this dataset (alpha, beta)" in w.value for w in at.warning)
    at.switch_page("views/errors.py").run()
    assert not at.exception, [e.value for e in at.exception]
    # said at once, in one sentence per model, with no error and nothing computed
    assert not at.error and not charts(at)
    assert sum("knows none of the 2 classes of this dataset (alpha, beta)" in w.value for w in at.warning) == 1


# ---------------------------------------------------------------------------
# the figures behind the pages, on tiny inputs


def test_confusion_matrix_cells_carry_true_predicted_and_count():
    from explorer.figures.dataset import confusion_matrix

    cm = np.array([[3, 1], [0, 2]])
    fig = confusion_matrix(cm, ["a", "b"]).to_dict()
    heat, cells = fig["data"]
    assert np.array_equal(array(heat["z"]), cm)
    assert heat["text"] == [["3", "1"], ["", "2"]]
    assert cells["customdata"] == [[0, 0, 3], [0, 1, 1], [1, 0, 0], [1, 1, 2]]
    assert list(zip(cells["y"], cells["x"])) == [("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]
    shares = confusion_matrix(cm, ["a", "b"], normalise=True).to_dict()["data"][0]
    assert np.allclose(array(shares["z"]), [[0.75, 0.25], [0.0, 1.0]])
    # whole counts get whole ticks; class names stand upright so they cannot overlap
    assert heat["colorbar"]["dtick"] == 1 and heat["colorbar"]["tickformat"] == "d"
    assert confusion_matrix(np.diag([40, 3]), ["a", "b"]).to_dict()["data"][0]["colorbar"]["dtick"] == 8
    assert fig["layout"]["xaxis"]["tickangle"] == -90


def test_decoder_charts_keep_labels_and_keys_readable():
    from explorer.figures.dataset import FLAVOUR_TITLES, discriminative_filters, error_bars

    bars = error_bars({"held-out": {"a": 0.5, "b": 2.0}, "this clip": {"a": 0.25, "b": 1.0}}).to_dict()
    assert all(t["textposition"] == "outside" and t["cliponaxis"] is False for t in bars["data"])
    assert bars["layout"]["yaxis"]["range"][1] > 2.0  # head room for the tallest bar's label
    assert bars["layout"]["legend"]["yanchor"] == "bottom" and bars["layout"]["legend"]["y"] > 1
    W = np.eye(6, 4, dtype=np.float32)
    picks = {"mel-gaussian": [(1, 2.5), (3, 1.0)], "spectrogram-nmf": [(0, 0.5)]}
    fig = discriminative_filters({"mel-gaussian": W, "spectrogram-nmf": W}, picks, title="t").to_dict()
    keys = [a["text"] for a in fig["layout"]["annotations"] if "filter" in a["text"]]
    assert len(keys) == 2  # one key under each panel, listing that panel's filters
    assert "filter 1 (d' 2.50)" in keys[0] and "filter 3 (d' 1.00)" in keys[0] and "filter 0" in keys[1]
    assert [a["text"] for a in fig["layout"]["annotations"]][:2] == [FLAVOUR_TITLES["mel-gaussian"],
                                                                      FLAVOUR_TITLES["spectrogram-nmf"]]


def test_embedding_scatter_groups_points_and_keeps_their_index():
    from explorer.figures.dataset import embedding_scatter

    points = np.arange(8, dtype=np.float32).reshape(4, 2)
    kwargs = dict(clip_ids=["w", "x", "y", "z"], true_names=["a", "b", "a", "b"], pred_names=["a", "a", "a", "b"],
                  confidence=np.full(4, 0.5))
    by_class = embedding_scatter(points, **kwargs).to_dict()["data"]
    with_points = [t for t in by_class if t.get("customdata") is not None]
    assert [[c[0] for c in t["customdata"]] for t in with_points] == [[0, 2], [3], [1]]  # b: right, then wrong
    legend = [(t["name"], t["marker"]["symbol"]) for t in by_class if t.get("showlegend", True)]
    assert legend == [("a (2)", "circle"), ("b (2)", "circle"), ("x: predicted wrong", "x")]  # classes are circles
    assert [t["marker"]["symbol"] for t in with_points] == ["circle", "circle", "x"]
    ten = [f"c{i}" for i in range(10)]
    colours = [t["marker"]["color"] for t in embedding_scatter(
        np.zeros((10, 2)), clip_ids=ten, true_names=ten, pred_names=ten, confidence=np.ones(10)).to_dict()["data"]]
    assert len(set(c.lower() for c in colours)) == 10
    assert np.array_equal(array(with_points[0]["x"]), [0, 4])
    right_wrong = embedding_scatter(points, colour_by="correct", highlight=1, **kwargs).to_dict()["data"]
    assert [t["name"] for t in right_wrong if t.get("showlegend", True)] == ["right (3)", "wrong (1)", "current clip"]
    assert [t for t in right_wrong if t["name"] == "wrong (1)"][1]["customdata"][0][:4] == [1, "x", "b", "a"]
    assert np.array_equal(array(right_wrong[-1]["x"]), [2])


def test_embedding_scatter_uses_webgl_past_the_threshold_and_keeps_click_indices():
    from explorer.figures.dataset import WEBGL_POINTS, embedding_scatter, point_from_selection

    for n, kind in ((WEBGL_POINTS, "scatter"), (WEBGL_POINTS + 1, "scattergl")):
        names = [f"c{i % 7}" for i in range(n)]
        fig = embedding_scatter(np.random.default_rng(n).normal(size=(n, 2)), clip_ids=[f"{i}.wav" for i in range(n)],
                                true_names=names, pred_names=names[::-1], confidence=np.full(n, 0.5),
                                highlight=3).to_dict()
        assert {t["type"] for t in fig["data"]} == {kind}
        indices = sorted(c[0] for t in fig["data"] if t.get("customdata") is not None for c in t["customdata"])
        assert indices == list(range(n))
        assert fig["layout"]["clickmode"] == "event+select"
        last = next(t for t in fig["data"] if t.get("customdata") is not None)
        assert point_from_selection({"selection": {"points": [{"customdata": list(last["customdata"][-1])}]}}) == \
            last["customdata"][-1][0]


def test_to_db_inverts_the_decoders_scale():
    from core.interpret.nmf import nonnegative_target
    from explorer.figures.dataset import to_db

    S_db = np.random.default_rng(0).uniform(-80, 0, size=(4, 6)).astype(np.float32)
    X01 = nonnegative_target(((S_db - S_db.mean()) / S_db.std())[None])[0]  # standardised, then min-max
    assert np.allclose(to_db(X01, floor_db=float(S_db.min()), peak_db=float(S_db.max())), S_db, atol=1e-4)


def test_gradcam_thumbnail_puts_low_bands_at_the_bottom_and_colours_the_heat():
    from explorer.figures.dataset import gradcam_thumbnail

    S = np.zeros((8, 10), dtype=np.float32)
    heat = np.zeros((8, 10), dtype=np.float32)
    heat[0, :] = 1.0  # the lowest band
    img = gradcam_thumbnail(S, heat)
    assert img.shape == (8, 10, 3) and img.dtype == np.uint8
    assert img[-1, 0, 0] > 200 and img[-1, 0, 2] < 60  # bottom row: red-yellow
    assert img[0, 0, 0] == img[0, 0, 1] == img[0, 0, 2]  # top row: grey spectrogram only


def test_filter_bank_sorts_filters_by_peak_frequency():
    from explorer.figures.dataset import filter_bank

    W = np.zeros((5, 3), dtype=np.float32)
    W[4, 0], W[0, 1], W[2, 2] = 2.0, 1.0, 0.5  # peaks at bands 4, 0, 2
    z = array(filter_bank({"mel-gaussian": W}).to_dict()["data"][0]["z"])
    assert np.array_equal(z.argmax(axis=1), [0, 2, 4]) and np.allclose(z.max(axis=1), 1.0)


# ---------------------------------------------------------------------------
# one cache for the command line and the app


def test_cli_evaluate_and_the_errors_page_share_one_cache_entry(env, monkeypatch, capsys):
    from core.data.activations import cache_keys
    from core.data.cache import ArrayCache, default_cache
    from core.models.checkpoint import load_checkpoint
    from core.cli import main
    from core.training.evaluate import logits_tap

    ckpt = env["root"] / "checkpoints" / "tiny-secnn"
    loaded = load_checkpoint(ckpt)
    fold = 4  # no other test opens fold 4
    key = cache_keys(loaded, env["data"].select(fold), [logits_tap(loaded.model)], reduce="vector",
                     cache=default_cache())[logits_tap(loaded.model)]
    lookups = []
    load_array = ArrayCache.load_array

    def spy(self, k, **kwargs):
        found = load_array(self, k, **kwargs)
        if k == key:
            lookups.append(found is not None)
        return found

    monkeypatch.setattr(ArrayCache, "load_array", spy)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--data", str(env["demo"]), "--fold", str(fold),
                 "--no-progress"]) == 0
    assert "accuracy" in capsys.readouterr().out
    # the command line looked (once more under the entry's lock), found nothing, computed the logits and stored them
    assert lookups and not any(lookups)
    n_cli = len(lookups)
    stored = default_cache().array_path(key)
    written = stored.stat().st_mtime_ns

    at = start("views/errors.py", dataset_fold=fold)
    no_exception(at)
    assert len(lookups) > n_cli and all(lookups[n_cli:])  # the app only read that entry
    assert stored.stat().st_mtime_ns == written


def test_the_sidebar_shows_the_cache_size_and_clears_it(env):
    from core.data.cache import default_cache

    at = start("views/errors.py")  # fills the cache with the fold's activations
    no_exception(at)
    assert default_cache().size_bytes() > 0
    assert not any("of extracted activations" in c.value for c in at.sidebar.caption), "drawn only while open"
    at.session_state["_cache_open"] = True  # the box opened
    at.run()
    assert any(c.value.endswith(f"of extracted activations and projections in `{default_cache().root}`.")
               and not c.value.startswith("0 B") for c in at.sidebar.caption)
    before = {p: p.stat().st_mtime_ns for p in default_cache().root.glob("*.np?")}
    assert before
    at.sidebar.button(key="_clear_cache").click().run()
    no_exception(at)
    after = {p: p.stat().st_mtime_ns for p in default_cache().root.glob("*.np?")}
    # everything was deleted; the page, rerun, stored only what it needs again
    assert all(p not in before or after[p] > before[p] for p in after)


def test_the_fold_pick_offers_the_datasets_own_folds(tmp_path):
    """UrbanSound8K has 10 folds: the dataset pages offer all of them (they offered 1 to 5), and the test fold
    default falls back to the last fold when a dataset has no fold 5."""
    import soundfile as sf

    from core.errors import InputError
    from explorer import cached_dataset as cd

    def write(root, folds):
        (root / "metadata").mkdir(parents=True)
        lines = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
        for fold in folds:
            (root / "audio" / f"fold{fold}").mkdir(parents=True)
            sf.write(root / "audio" / f"fold{fold}" / f"{fold}.wav", np.zeros(800, np.float32) + 0.01, 8000)
            lines.append(f"{fold}.wav,1,0,0.1,1,{fold},0,dog_bark")
        (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(lines) + "\n")
        return str(root)

    root = write(tmp_path / "us8k", range(1, 11))
    assert cd.fold_options(root) == (list(range(1, 11)) + [cd.ALL_FOLDS], 5)
    assert [r.clip_id for r in cd.records(root, 9)] == ["fold9/9.wav"]
    with pytest.raises(InputError, match="not one of this dataset's folds"):
        cd.records(root, 11)
    assert cd.fold_options(write(tmp_path / "three", (1, 2, 3))) == ([1, 2, 3, cd.ALL_FOLDS], 3)


def test_the_embeddings_page_fits_a_novelty_score_and_shows_the_share_flagged(env):
    """A model without a novelty score: the button fits one on the training folds (saved in the cache, never in
    the checkpoint folder), and the page then shows how many of the fold's clips are unlike the training data."""
    from core.interpret.novelty import NOVELTY_DIR

    at = start("views/embeddings.py")
    no_exception(at)
    assert any("tiny-secnn has no novelty score" in c.value for c in at.caption)
    [button] = [b for b in at.button if b.label == "Fit a novelty score on this dataset's training folds"]
    button.click().run()
    no_exception(at)
    shares = [x.value for x in [*at.caption, *at.warning] if "unlike tiny-secnn's training data" in x.value]
    assert len(shares) == 1 and "of 10 clips" in shares[0], shares
    assert list((env["root"] / "cache" / "novelty").glob(f"*/{NOVELTY_DIR}/novelty.json"))
    assert not (env["root"] / "checkpoints" / "tiny-secnn" / NOVELTY_DIR).exists()
