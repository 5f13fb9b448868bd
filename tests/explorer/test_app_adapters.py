"""Registered models (add-model) render every page that applies, in AppTest; a bad one is a message.

The CRNN, the CNN14-shaped network and the 1-D waveform CNN of
``tests/adapters/`` are registered into the test's cache, then picked in the
sidebar like any checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

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
    from core.registry import add_model

    out = {}
    for name in ("crnn", "cnn14", "wavecnn"):
        spec = load_adapter(ADAPTERS / f"{name}.py")
        torch.manual_seed(0)
        weights = env["root"] / f"{name}.safetensors"
        save_file({k: v.contiguous() for k, v in spec.model.state_dict().items()}, str(weights))
        out[name] = add_model(ADAPTERS / f"{name}.py", weights, name)
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


@pytest.mark.parametrize("name", ["crnn", "cnn14", "wavecnn"])
def test_a_registered_model_renders_every_page_that_applies(registered, name):
    at = start([name])
    no_exception(at)
    labels = at.sidebar.multiselect[0].format_func(name)
    assert labels == f"{name} (adapter: {name}.py)"  # the kind, and the file it runs
    assert len(at.get("plotly_chart")) >= 4  # the clip page with this model's predictions
    for page in PAGES:
        at.switch_page(page).run()
        no_exception(at)
        assert at.get("plotly_chart"), page
    at.switch_page("views/attribution.py").run()
    captions = " ".join(c.value for c in at.caption)
    if name == "crnn":
        assert "Deletion AUC (Grad-CAM)" in [m.label for m in at.metric]
    else:  # time-first or waveform input: no deletion curve, and the page says why
        assert "deletion curve" in captions and "(1, n_mels, n_frames)" in captions
    at.switch_page("views/decoders.py").run()
    no_exception(at)
    if name != "crnn":
        assert "NMF-style decoders" in " ".join(c.value for c in at.caption)
    at.switch_page("views/attention.py").run()
    no_exception(at)
    assert any("transformer" in i.value for i in at.info)


def test_hugging_face_folders_are_labelled_by_kind(env, tmp_path):
    pytest.importorskip("transformers")
    from explorer.cached import kind_label

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "audio-spectrogram-transformer"}))
    assert kind_label(str(tmp_path)) == "hf-ast"


def test_a_registered_model_whose_adapter_changed_is_a_message_not_a_crash(registered, env, tmp_path):
    from core.registry import add_model

    adapter = tmp_path / "crnn_edit.py"
    adapter.write_text((ADAPTERS / "crnn.py").read_text())
    add_model(adapter, None, "crnn-edit")
    adapter.write_text(adapter.read_text() + "\n# edited after registering\n")
    at = start(["crnn-edit", "crnn"], "views/layers.py")
    assert not at.exception
    assert any("changed since model 'crnn-edit' was registered" in e.value for e in at.error)
    assert at.get("plotly_chart")  # the other model still works
