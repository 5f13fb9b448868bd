"""Registered models (add-model) render every page that applies, in AppTest; a bad one is a message.

The CRNN, the CNN14-shaped network, the 1-D waveform CNN and the time-first
CNN with a GRU head (``tfgru/``, written from the README alone) of
``tests/adapters/`` are registered into the test's cache, then picked in the
sidebar like any checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "explorer" / "app.py")
ADAPTERS = REPO / "tests" / "adapters"
EXPLORER_ENV = {"clips_per_class": 5}  # fold 5 (the pages' default) has clips
PAGES = ["views/layers.py", "views/attribution.py", "views/embeddings.py", "views/errors.py"]


@pytest.fixture(scope="module")
def registered(env):
    from core.models.adapter import load_adapter
    from core.models.user_models import add_model

    out = {}
    for name in ("crnn", "cnn14", "wavecnn", "tfgru"):
        adapter = ADAPTERS / f"{name}.py" if name != "tfgru" else ADAPTERS / "tfgru" / "tfgru.py"
        spec = load_adapter(adapter)
        torch.manual_seed(0)
        weights = env["root"] / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in spec.model.state_dict().items()}, str(weights))
        out[name] = add_model(adapter, weights, name)
    return out


def start(models, page=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["models"] = list(models)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.mark.parametrize("name", ["crnn", "cnn14", "wavecnn", "tfgru"])
def test_a_registered_model_renders_every_page_that_applies(registered, name):
    at = start([name])
    no_exception(at)
    labels = at.sidebar.multiselect[0].format_func(name)
    assert labels == f"{name} (adapter: {name}.py)"  # the kind, and the file it runs
    assert f"pred_{name}" in [c.key for c in at.get("plotly_chart")]  # the clip page with this model's top-5
    for page in PAGES:
        at.switch_page(page).run()
        no_exception(at)
        assert at.get("plotly_chart"), page
    at.switch_page("views/attribution.py").run()
    captions = " ".join(c.value for c in at.caption)
    if name == "crnn":
        assert "This map" in [m.label for m in at.metric]
    else:  # time-first or waveform input: no deletion curve, and the page says why
        assert "deletion curve" in captions and "(1, n_mels, n_frames)" in captions
    assert "Listen to the highlighted region, and to the rest" in [h.value for h in at.subheader]  # the rest of the page is there
    at.switch_page("views/decoders.py").run()
    no_exception(at)
    if name != "crnn":
        assert "NMF-style decoders" in " ".join(c.value for c in at.caption)
    at.switch_page("views/attention.py").run()
    no_exception(at)
    info = " ".join(i.value for i in at.info)  # why not (core.interpret.registry): no attention weights on a patch grid
    assert "transformer" in info and f"**{name}**: attention per head and attention rollout need attention weights" in info
    assert "token grid" in info and "attention over time needs attention weights over time steps" in info


def test_attention_over_time_for_a_model_without_a_patch_grid(env):
    """A CRNN with self-attention: the Attention page draws its time-step attention, on seconds, with the share
    that lands on the event beside uniform attention's (the demo clips have event boxes)."""
    from core.models.adapter import load_adapter
    from core.models.user_models import add_model, remove_model

    spec = load_adapter(ADAPTERS / "attncrnn.py")
    weights = env["root"] / "attncrnn.safetensors"
    save_file({k: v.contiguous() for k, v in spec.model.state_dict().items()}, str(weights))
    add_model(ADAPTERS / "attncrnn.py", weights, "attncrnn")
    try:
        at = start(["attncrnn"], "views/attention.py")
        no_exception(at)
        assert [c.key for c in at.get("plotly_chart")] == ["attention_time_matrix", "attention_time_overlay"]
        assert any("time steps, not spectrogram patches" in c.value for c in at.caption)
        assert any("attention per head" in c.value and "token grid" in c.value for c in at.caption)  # and why not
        labels = [m.label for m in at.metric]
        assert labels == ["Attention on the event", "Uniform attention (chance)", "Ratio to chance"]
        slider = at.select_slider(key="attention_time_query")
        slider.set_value(0).run()
        no_exception(at)
    finally:
        remove_model("attncrnn")


def test_hugging_face_folders_are_labelled_by_kind(env, tmp_path):
    pytest.importorskip("transformers")
    from explorer.cached import kind_label

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    assert kind_label(str(tmp_path)) == "hf-ast"


def test_a_registered_model_whose_adapter_changed_is_a_message_not_a_crash(registered, env, tmp_path):
    from core.models.user_models import add_model

    adapter = tmp_path / "crnn_edit.py"
    adapter.write_text((ADAPTERS / "crnn.py").read_text())
    add_model(adapter, None, "crnn-edit")
    adapter.write_text(adapter.read_text() + "\n# edited after registering\n")
    at = start(["crnn-edit", "crnn"], "views/layers.py")
    assert not at.exception
    assert any("changed since model 'crnn-edit' was registered" in e.value for e in at.error)
    assert at.get("plotly_chart")  # the other model still works


def test_weights_replaced_while_the_app_holds_the_model_are_a_message_not_stale_results(registered, env, tmp_path):
    from safetensors.torch import load_file

    from core.models.user_models import add_model

    weights = tmp_path / "crnn_w.safetensors"
    weights.write_bytes((env["root"] / "crnn.safetensors").read_bytes())
    add_model(ADAPTERS / "crnn.py", weights, "crnn-w")
    at = start(["crnn-w"], "views/layers.py")
    no_exception(at)
    state = load_file(str(weights))
    state["fc.bias"] = state["fc.bias"] + 1.0
    save_file(state, str(weights))  # the app's loaded model is now stale
    at.run()
    assert any("changed since model 'crnn-w' was registered" in e.value and str(weights) in e.value for e in at.error)


def test_an_unreadable_registry_is_a_warning_and_the_shipped_models_still_open(registered, env):
    from core.models.user_models import registry_path

    path = registry_path()
    saved = path.read_bytes()
    assert any(o.startswith("crnn ") for o in start(["tiny-secnn"]).sidebar.multiselect[0].options)
    try:
        path.write_text('{"models": {"crnn": ')  # cut off mid-write by some other tool
        at = start(["tiny-secnn"], "views/layers.py")
        no_exception(at)
        assert any("Registered models are not listed" in w.value and str(path) in w.value and "not valid JSON"
                   in w.value for w in at.sidebar.warning)
        assert not any(o.startswith("crnn ") for o in at.sidebar.multiselect[0].options)
        assert at.get("plotly_chart")
        assert path.read_text() == '{"models": {"crnn": '  # the app only reads it
    finally:
        path.write_bytes(saved)


def _multilabel_set(env, root: Path, n_clips: int = 12, seed: int = 0) -> tuple[Path, np.ndarray]:
    """A small dataset in ESC-50's layout whose CSV has a ';'-separated ``labels`` column."""
    import shutil

    rng = np.random.default_rng(seed)
    classes = env["classes"]
    (root / "audio").mkdir(parents=True)
    (root / "meta").mkdir()
    all_records = env["data"].records
    first = {r.label: r for r in reversed(all_records)}  # one clip of every class, so targets have no gaps
    records = list(first.values()) + [r for r in all_records if r not in first.values()][: n_clips - len(first)]
    Y = np.zeros((n_clips, len(classes)), dtype=np.int8)
    lines = ["filename,fold,target,category,labels"]
    for n, r in enumerate(records):
        extra = rng.choice(len(classes), size=int(rng.integers(0, 3)), replace=False)
        Y[n, r.label] = 1
        Y[n, extra] = 1
        shutil.copy(r.path, root / "audio" / r.path.name)
        names = ";".join(classes[c] for c in np.flatnonzero(Y[n]))
        lines.append(f"{r.path.name},5,{r.label},{r.category},{names}")
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return root, Y


def test_a_multi_label_hf_ast_shows_sigmoid_probabilities_and_average_precision(env, tmp_path, monkeypatch):
    transformers = pytest.importorskip("transformers")
    from sklearn.metrics import average_precision_score

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.training.evaluate import predict_proba

    torch.manual_seed(0)
    folder = tmp_path / "hf-multi"
    labels = {i: c for i, c in enumerate(env["classes"])}
    config = transformers.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, num_mel_bins=64, max_length=256, num_labels=len(labels),
                                    id2label=labels, label2id={c: i for i, c in labels.items()},
                                    problem_type="multi_label_classification")
    transformers.ASTForAudioClassification(config).eval().save_pretrained(folder)
    transformers.ASTFeatureExtractor(num_mel_bins=64, max_length=256).save_pretrained(folder)
    data_root, Y = _multilabel_set(env, tmp_path / "multi")
    records = open_dataset(data_root).records
    assert [r.label_set for r in records][0] == tuple(env["classes"][c] for c in np.flatnonzero(Y[0]))

    loaded = load_checkpoint(folder)
    assert loaded.multi_label
    x = loaded.inputs(records)
    proba = predict_proba(loaded, x)
    with torch.no_grad():
        logits = loaded.model(torch.from_numpy(x))
    np.testing.assert_allclose(proba, torch.sigmoid(logits).numpy(), rtol=1e-5)  # sigmoid, not softmax
    assert not np.allclose(proba.sum(axis=1), 1.0)

    monkeypatch.setenv("EXPLORER_CHECKPOINTS", os.environ["EXPLORER_CHECKPOINTS"] + os.pathsep + str(folder))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["models"] = ["hf-multi"]
    at.run()
    at.sidebar.radio[0].set_value("folder").run()
    at.sidebar.text_input[0].set_value(str(data_root)).run()
    at.switch_page("views/errors.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert sorted(m.label for m in at.metric) == ["Clips", "mAP", "mAP by chance"]
    table = at.dataframe[0].value
    aps = [average_precision_score(Y[:, c], proba[:, c]) if Y[:, c].any() else None for c in range(len(labels))]
    for c, ap in enumerate(aps):
        assert (table["AP"][c] is None or np.isnan(table["AP"][c])) if ap is None else np.isclose(table["AP"][c], ap)
    expected_map = np.mean([a for a in aps if a is not None])
    assert next(m.value for m in at.metric if m.label == "mAP") == f"{expected_map:.3f}"
    assert any("missed" in m.value and "false alarms" in m.value for m in at.markdown)


def test_the_sidebar_adds_a_hub_id_and_picks_it(offline_hub, env):
    """The sidebar's hub box: an id not cached is a message and changes nothing; a cached one is listed and picked."""
    at = start(["tiny-secnn"])
    assert not [t for t in at.sidebar.text_input if t.key == "_hub_id"], "drawn only while its box is open"
    at.session_state["_hub_open"] = True
    at.run()
    add = lambda: next(b for b in at.sidebar.button if b.label == "Add")  # the hub form's button  # noqa: E731
    at.sidebar.text_input(key="_hub_id").input("someone/not-there")
    add().click().run()
    assert any("not in the local Hugging Face cache" in e.value for e in at.sidebar.error)
    assert list(at.session_state["models"]) == ["tiny-secnn"]
    at.sidebar.text_input(key="_hub_id").input(offline_hub)
    add().click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Added someone/tiny-hub-ast" in s.value for s in at.sidebar.success)
    assert list(at.session_state["models"]) == ["tiny-secnn", "tiny-hub-ast"]
    assert at.sidebar.multiselect[0].format_func("tiny-hub-ast") == "tiny-hub-ast (hf-ast)"
    at.switch_page("views/clip.py").run()
    no_exception(at)
    from core.models.user_models import remove_model

    remove_model("tiny-hub-ast")  # the module's other tests share this registry
