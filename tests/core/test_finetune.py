"""train's parts: distillation_loss against its formula; fine-tuning a Hugging Face AST from the CLI; hub ids offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.cli import main
from core.errors import InputError
from core.training.train import distillation_loss

transformers = pytest.importorskip("transformers")


def test_distillation_loss_is_its_formula():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    y1, y2 = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 2, 1, 0, 3, 2])
    lam, w, T = 0.7, 0.4, 3.0

    def ce(logits, y):  # mean over the batch of -log softmax at the target
        return -(logits.log_softmax(1)[torch.arange(len(y)), y]).mean()

    hard = lam * ce(s, y1) + (1 - lam) * ce(s, y2)
    p_t, p_s = (t / T).softmax(1), (s / T).softmax(1)
    kl = (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    expected = (1 - w) * hard + w * T * T * kl
    got = distillation_loss(s, (y1, y2), (lam, 1 - lam), t, weight=w, temperature=T)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(distillation_loss(s, (y1, y2), (lam, 1 - lam)), hard)  # no teacher: hard only


@pytest.fixture()
def small_demo(tmp_path, monkeypatch):
    from core.audio.demo_data import default_demo_dir, make_demo_data

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    return make_demo_data(default_demo_dir(), clips_per_class=5, workers=1, show_bar=False)


def test_fine_tuning_a_tiny_ast_from_the_cli_makes_a_folder_that_opens_in_the_explorer(small_demo, tmp_path, capsys,
                                                                                        monkeypatch, tiny_hf_ast):
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset

    init = tiny_hf_ast(tmp_path / "init", ["a", "b", "c"])  # another head: 3 classes, the data has 10
    out = tmp_path / "tuned"
    assert main(["train", "--model", "hf-ast", "--init", str(init), "--data", str(small_demo), "--test-fold", "5",
                 "--epochs", "1", "--batch-size", "8", "--out", str(out), "--device", "auto"]) == 0
    err = capsys.readouterr().err
    assert "training hf-ast on cpu" in err and "on cpu;" in err  # says which device it used
    loaded = load_checkpoint(out)
    classes = open_dataset(small_demo).classes
    assert loaded.kind == "hf-ast" and loaded.classes == classes  # a new head for the data's classes
    assert loaded.meta["epochs_run"] == 1 and loaded.meta["device"] == "cpu" and loaded.meta["init"] == str(init)
    init_state = load_checkpoint(init).model.hf.state_dict()
    tuned = loaded.model.hf.state_dict()
    assert tuned["classifier.dense.weight"].shape == (len(classes), 16)
    key = next(k for k in tuned if k.endswith("mlp.fc2.weight") or k.endswith("output.dense.weight"))
    assert not torch.equal(tuned[key], init_state[key])  # the encoder was fine-tuned, not only the head

    # and the result opens in the explorer, labelled by its kind
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(out))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "explorer" / "app.py"), default_timeout=90)
    at.session_state["models"] = ["tuned"]
    at.run()
    assert not at.exception and not at.error
    assert at.sidebar.multiselect[0].format_func("tuned") == "tuned (hf-ast)"
    for page in ("views/attention.py", "views/attribution.py"):
        at.switch_page(page).run()
        assert not at.exception and not at.error, page
        assert at.get("plotly_chart"), page


def test_init_is_only_for_hf_ast_and_needed_there(small_demo, tmp_path):
    assert main(["train", "--model", "hf-ast", "--data", str(small_demo), "--test-fold", "5", "--epochs", "1",
                 "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--model", "secnn", "--init", "a/b", "--data", str(small_demo), "--test-fold", "5",
                 "--epochs", "1", "--out", str(tmp_path / "x")]) == 2


def test_a_hub_id_loads_from_the_local_cache_offline_and_is_never_downloaded(offline_hub, tmp_path, monkeypatch):
    from core.models.checkpoint import load_checkpoint
    from core.models.hf_ast import load_hf_ast

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    loaded = load_checkpoint(offline_hub)
    assert loaded.kind == "hf-ast" and loaded.classes == ["dog", "rain"] and loaded.multi_label
    x = loaded.input(np.zeros(16000, np.float32), 16000)
    logits = loaded.model(torch.from_numpy(x)[None]).detach()
    np.testing.assert_allclose(loaded.probabilities(logits), torch.sigmoid(logits).numpy(), rtol=1e-6)
    with pytest.raises(InputError, match="not in the local Hugging Face cache"):
        load_hf_ast("someone/not-there")
    with pytest.raises(InputError, match="downloading failed"):  # offline: asking to download still fetches nothing
        load_hf_ast("someone/not-there", download=True)


def test_add_model_lists_a_hub_id_from_the_cache_and_refuses_one_not_there(offline_hub, tmp_path, monkeypatch, capsys):
    from core.models.user_models import registered

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    assert main(["add-model", "--hub", "someone/not-there"]) == 2
    assert "not in the local Hugging Face cache" in capsys.readouterr().err
    assert registered() == {}  # nothing written
    assert main(["add-model", "--hub", offline_hub]) == 0
    assert "2 classes (multi-label, sigmoid)" in capsys.readouterr().out
    entry = registered()["tiny-hub-ast"]
    assert entry["hub_id"] == offline_hub and entry["kind"] == "hf-ast"
    assert (Path(entry["folder"]) / "config.json").is_file()
    assert main(["add-model", "--hub", offline_hub, "--adapter", "x.py"]) == 2  # one or the other
