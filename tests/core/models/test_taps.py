"""Forward-hook taps: what they record, and that they leave nothing behind."""

import numpy as np
import pytest
import torch
from torch import nn

from core.errors import InputError
from core.models import Tap, build_model, find_tap
from core.models.taps import extract, record, se_weights, tap_names

TINY_SECNN = {"channels": [4, 4, 4, 4, 4], "head": [8], "reduction": 2}


class Pair(nn.Module):
    """Returns a tuple, like Hugging Face modules."""

    def forward(self, x):
        return x * 2, x * 3


class Toy(nn.Module):
    kind = "toy"

    def __init__(self):
        super().__init__()
        self.pair = Pair()
        self.out = nn.Linear(4, 2)

    def forward(self, x):  # (B, 1, 2, 2)
        a, b = self.pair(x.flatten(1))
        return self.out(a + b)

    def taps(self):
        return [Tap("double", "x 2", "tokens", "pair", index=0),
                Tap("triple", "x 3", "tokens", "pair", index=1),
                Tap("into_out", "input of out", "embedding", "out", capture="input"),
                Tap("logits", "logits", "logits", "out")]


def _n_hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture
def secnn():
    torch.manual_seed(0)
    return build_model("secnn", TINY_SECNN, n_classes=3).eval()


def test_tuple_outputs_and_inputs_are_picked():
    model, image = Toy(), torch.arange(8.0).reshape(2, 1, 2, 2)
    out = extract(model, image)
    x = image.flatten(1)
    assert list(out) == ["double", "triple", "into_out", "logits"]
    torch.testing.assert_close(out["double"], 2 * x)
    torch.testing.assert_close(out["triple"], 3 * x)
    torch.testing.assert_close(out["into_out"], 5 * x)
    torch.testing.assert_close(out["logits"], model.out(5 * x).detach())


def test_hooks_are_removed_even_when_the_forward_pass_fails(secnn):
    with pytest.raises(RuntimeError):
        with record(secnn, ["block2", "block2.se"]):
            secnn(torch.zeros(1, 2, 32, 32))  # two input channels: the first conv refuses
    assert _n_hooks(secnn) == 0


def test_unknown_tap_names_are_refused_with_the_list(secnn):
    with pytest.raises(InputError, match="block9.*it has .*block1"):
        with record(secnn, ["block9"]):
            pass
    with pytest.raises(InputError, match="lists no taps"):
        extract(nn.Linear(2, 2), torch.zeros(1, 1, 2, 2), None)
    assert find_tap(secnn, "block3").module == "blocks.2.features"


def test_extract_keeps_the_order_asked_and_no_graph(secnn):
    x = torch.randn(2, 1, 32, 32)
    out = extract(secnn, x, ["logits", "block1"])
    assert list(out) == ["logits", "block1"]
    assert not out["logits"].requires_grad


def test_keep_graph_allows_gradients(secnn):
    x = torch.randn(1, 1, 32, 32)
    with record(secnn, ["block5"], keep_graph=True) as rec:
        logits = secnn(x)
    grad, = torch.autograd.grad(logits[0, 0], rec.outputs["block5"])
    assert grad.shape == rec.outputs["block5"].shape


def test_outputs_are_those_of_the_latest_pass(secnn):
    a, b = torch.randn(1, 1, 32, 32), torch.randn(1, 1, 32, 32)
    with torch.no_grad(), record(secnn, "logits") as rec:
        secnn(a)
        secnn(b)
    torch.testing.assert_close(rec.outputs["logits"], secnn(b).detach())


def test_se_weights_per_clip(secnn):
    x = torch.randn(3, 1, 32, 32)
    w = se_weights(secnn, x)
    assert list(w) == ["block2.se", "block3.se", "block4.se", "block5.se"]
    for value in w.values():
        assert isinstance(value, np.ndarray) and value.shape == (3, 4)
        assert value.min() >= 0 and value.max() <= 1
    assert not np.allclose(w["block2.se"][0], w["block2.se"][1])  # per clip, not shared
    ast = build_model("ast", {"patch": 8, "dim": 8, "depth": 1, "heads": 2, "n_mels": 16, "n_frames": 16}, 2)
    assert se_weights(ast, torch.zeros(1, 1, 16, 16)) == {}


def test_attention_taps_switch_the_manual_path_on_only_inside():
    model = build_model("ast", {"patch": 8, "dim": 8, "depth": 2, "heads": 2, "n_mels": 16, "n_frames": 16}, 2)
    with record(model, ["layer2.attn"]) as rec:
        assert all(layer.attn.keep_weights for layer in model.layers)
        model.eval()(torch.zeros(1, 1, 16, 16))
    assert rec.outputs["layer2.attn"].shape == (1, 2, 2, 2)  # stride 16: one patch + class token
    assert not any(layer.attn.keep_weights for layer in model.layers)
    assert tap_names(model, "attention") == ["layer1.attn", "layer2.attn"]


def test_extract_refuses_a_bad_input(secnn):
    with pytest.raises(InputError, match="B, 1, n_mels, n_frames"):
        extract(secnn, torch.zeros(32, 32), None)
