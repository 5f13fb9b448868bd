"""Bring your own model: three models written only in test adapters pass add-model, taps, methods and Grad-CAM.

The adapters (``tests/adapters/``): a CRNN (conv blocks, GRU, linear head) on
mel-time input, a narrow CNN14 in PANNs' layout (time-first (B, 1, T, 64) at
32 kHz) and a 1-D waveform CNN. core/ never imports them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from core.models.checkpoint import load_checkpoint
from core.cli import main
from core.errors import InputError
from core.interpret.gradcam import GradCAM
from core.interpret.registry import applicable, usable
from core.models.adapter import load_adapter
from core.models.user_models import add_model, registered, registry_path

ADAPTERS = Path(__file__).resolve().parents[1] / "adapters"
EXPECTED = {  # model -> (conv taps, views, methods offered per page)
    "crnn": (["conv_block1", "conv_block2", "gru"], {"conv_block1": None, "gru": "sequence"}, True),
    "cnn14": ([f"conv_block{k}" for k in range(1, 7)], {"conv_block1": "time-first"}, False),
    "wavecnn": (["block1", "block2", "block3"], {"block1": "1d"}, False),
}


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    return tmp_path


def weights_for(name: str, folder: Path, suffix: str = ".safetensors") -> Path:
    spec = load_adapter(ADAPTERS / f"{name}.py")
    torch.manual_seed(0)
    for module in spec.model.modules():  # random, not default, so tests see real numbers
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    state = {k: v.contiguous() for k, v in spec.model.state_dict().items()}
    path = folder / f"{name}{suffix}"
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def register(name: str, folder: Path, suffix: str = ".safetensors") -> dict:
    return add_model(ADAPTERS / f"{name}.py", weights_for(name, folder, suffix), name)


def clip(sr: int, seconds: float = 5.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    rng = np.random.default_rng(seed)
    return (0.3 * np.sin(2 * np.pi * 880 * t) * (t > 2) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_add_model_registers_finds_taps_and_loads_through_one_input_path(cache, name, capsys):
    weights = weights_for(name, cache, ".pt" if name == "crnn" else ".safetensors")
    assert main(["add-model", "--adapter", str(ADAPTERS / f"{name}.py"), "--weights", str(weights),
                 "--name", name]) == 0
    out = capsys.readouterr().out
    convs, views, _ = EXPECTED[name]
    for tap in convs + ["embedding", "logits"]:
        assert tap in out
    entry = registered()[name]
    assert entry["adapter_sha256"] and Path(entry["folder"]).is_dir()
    assert json.loads(registry_path().read_text())["models"][name]["weights"] == str(weights.resolve())
    loaded = load_checkpoint(name)  # a registered name works where a folder does
    assert loaded.kind == "adapter" and loaded.classes == entry["classes"]
    assert [t.name for t in loaded.model.taps() if t.kind == "conv"] == convs
    for tap, view in views.items():
        assert next(t for t in loaded.model.taps() if t.name == tap).view == view
    x = loaded.input(clip(44100), 44100)  # resampled to the model's rate by the one input path
    assert list(x.shape) == entry["input_shape"]
    from core.training.evaluate import predict_proba

    p = predict_proba(loaded, x[None])
    assert p.shape == (1, 10) and np.isclose(p.sum(), 1.0, atol=1e-5)  # single-label: softmax
    logits = loaded.model(torch.from_numpy(x)[None]).detach()
    np.testing.assert_allclose(p, torch.softmax(logits, 1).numpy(), rtol=1e-5)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_each_page_offers_the_right_methods(cache, name):
    register(name, cache)
    loaded = load_checkpoint(name)
    spectrogram_input = EXPECTED[name][2]
    assert usable(loaded, "Layers") == ["feature maps"]  # no SE blocks
    assert usable(loaded, "Attention") == []  # no token grid, no attention
    assert usable(loaded, "Attribution") == (["Grad-CAM", "integrated gradients", "occlusion", "SmoothGrad",
                                              "deletion curve", "the map as sound (kept and removed cells)"]
                                             if spectrogram_input else ["Grad-CAM", "the map as sound (kept and removed cells)"])
    assert usable(loaded, "Embeddings") == ["embedding projection"]
    assert usable(loaded, "Decoders") == (["NMF-style decoders"] if spectrogram_input else [])
    assert usable(loaded, "Errors") == ["confusion matrix", "per-class average precision"]
    reasons = dict((m.label, why) for m, why in applicable(loaded, "Attention"))
    assert "token grid" in reasons["attention rollout"] and "attention weights" in reasons["attention rollout"]
    if not spectrogram_input:
        assert "(1, n_mels, n_frames)" in dict((m.label, why) for m, why in applicable(loaded, "Attribution"))[
            "deletion curve"]


def _raw(model: torch.nn.Module, x: torch.Tensor, module: str, target: int):
    """The tap's output as the module gives it, and the gradient of the target logit on it."""
    store = {}

    def keep(m, args, out):
        store["a"] = out[0] if isinstance(out, tuple) else out  # returns None: the output is left as it is

    handle = model.get_submodule(module).register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits[0, target], a)
    return a.detach(), g


@pytest.mark.parametrize("name", list(EXPECTED))
def test_gradcam_on_conv_taps_equals_the_formula_in_the_declared_axes(cache, name):
    register(name, cache)
    loaded = load_checkpoint(name)
    cfg = loaded.audio_cfg
    x = torch.from_numpy(loaded.input(clip(cfg.sr), cfg.sr))[None]
    target = 3
    for tap in [t for t in loaded.model.taps() if t.kind == "conv"]:
        a, g = _raw(loaded.model, x, tap.module, target)
        # declared axes: time-first (B, C, T, F) and 1-D (B, C, T) are read as (B, C, F, T)
        if tap.view == "time-first":
            a, g = a.transpose(-1, -2), g.transpose(-1, -2)
        elif tap.view == "1d":
            a, g = a[:, :, None], g[:, :, None]
        elif tap.view == "sequence":
            a, g = a.transpose(1, 2)[:, :, None], g.transpose(1, 2)[:, :, None]
        expected = torch.relu((g.mean(dim=(2, 3))[:, :, None, None] * a).sum(dim=1))[0]  # (F', T')
        got = GradCAM(loaded.model, [tap.name]).maps(x, target=target, shape=tuple(expected.shape))[tap.name][0]
        span = expected.max() - expected.min()
        expected = (expected - expected.min()) / span if span > 0 else torch.zeros_like(expected)  # min-max
        np.testing.assert_allclose(got, expected.numpy(), atol=1e-5, err_msg=f"{name} {tap.name}")
        # and on the page's axes: mel bands x frames
        drawn = GradCAM(loaded.model, [tap.name]).maps(x, target=target, shape=(cfg.n_mels, cfg.n_frames))[tap.name]
        assert drawn.shape == (1, cfg.n_mels, cfg.n_frames)


def test_time_first_view_puts_a_planted_time_on_the_time_axis(cache):
    # CNN14's conv_block1 output is (B, C, T', F'); the tap must show the loud 2nd half at late frames
    register("cnn14", cache)
    loaded = load_checkpoint("cnn14")
    from core.models.taps import extract

    y = np.zeros(loaded.n_samples, np.float32)
    y[len(y) // 2:] = clip(loaded.audio_cfg.sr)[: len(y) - len(y) // 2]
    x = torch.from_numpy(loaded.input(y, loaded.audio_cfg.sr))[None]
    a = extract(loaded.model, x, "conv_block1")["conv_block1"][0]  # (C, F', T')
    assert a.shape[-1] > a.shape[-2]  # 250 frames x 32 bands
    early, late = a[..., 2: a.shape[-1] // 2 - 5], a[..., a.shape[-1] // 2 + 5: -2]
    # silence is the same frame after frame: nothing changes along time in the first half, a lot in the second
    assert early.std(dim=-1).mean() < 1e-4 < late.std(dim=-1).mean()


BAD = {
    "raises": "raise RuntimeError('no GPU here')\n",
    "no_spec": "x = 1\n",
    "no_classes": "MODEL_CLASSES = []\n",
    "too_many_classes": "MODEL_CLASSES = [f'c{i}' for i in range(11)]\n",
    "wrong_shape": "WRONG = True\n",
}
BAD_TEMPLATE = """
import numpy as np
from torch import nn
from core.models.adapter import ModelSpec
MODEL_CLASSES = [f"c{{i}}" for i in range(10)]
WRONG = False
{extra}
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_block = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(4, 10)
    def forward(self, x):
        h = self.conv_block(x).mean(dim=(2, 3))
        return self.head(h)[:, :3] if WRONG else self.head(h)
def model_spec():
    return ModelSpec(model=Net(), input=lambda y, sr: np.zeros((1, 16, 16), np.float32), classes=MODEL_CLASSES)
"""


@pytest.mark.parametrize("problem", list(BAD))
def test_a_bad_adapter_gets_one_line_and_nothing_is_registered(cache, problem, capsys):
    path = cache / f"bad_{problem}.py"
    if problem == "no_spec":
        path.write_text(BAD[problem])
    else:
        path.write_text(BAD_TEMPLATE.format(extra=BAD[problem]))
    assert main(["add-model", "--adapter", str(path), "--name", "bad"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    words = {"raises": "no GPU here", "no_spec": "model_spec", "no_classes": "classes is empty",
             "too_many_classes": "too many classes for its head", "wrong_shape": "outputs 3 logits"}
    assert words[problem] in err
    assert registered() == {} and not (registry_path().parent / "bad").exists()


def test_an_adapter_found_in_a_folder_is_never_imported(cache, monkeypatch):
    marker = cache / "ran.txt"
    evil = cache / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    folder = cache / "found"
    folder.mkdir()
    (folder / "adapter.json").write_text(json.dumps({"adapter": str(evil), "adapter_sha256": "x"}))
    with pytest.raises(InputError, match="not in the model registry"):
        load_checkpoint(folder)
    assert not marker.exists()


def test_a_changed_adapter_is_refused_until_registered_again(cache):
    adapter = cache / "crnn_copy.py"
    adapter.write_text((ADAPTERS / "crnn.py").read_text())
    add_model(adapter, weights_for("crnn", cache), "copy")
    adapter.write_text(adapter.read_text() + "\n# edited\n")
    with pytest.raises(InputError, match="changed since"):
        load_checkpoint("copy")


def test_pt_weights_load_with_weights_only(cache):
    path = cache / "pickled.pt"
    torch.save({"w": torch.zeros(1), "obj": Path("x")}, path)  # an object that is not a tensor: pickled code
    with pytest.raises(InputError, match="weights_only"):
        add_model(ADAPTERS / "crnn.py", path, "pickled")
    assert registered() == {}


def test_attention_without_a_patch_grid_is_attention_over_time_and_equals_its_formula(cache):
    """A CRNN with self-attention over its time steps: the Attention page offers attention over time, and the
    weights it reads are softmax(Q K^T / sqrt(d)) of the module's own projections, averaged over the heads."""
    from core.interpret.sequence_attention import event_share, event_tokens, time_attention, token_edges

    entry = register("attncrnn", cache)
    assert entry["taps"]["attn.attn"]["kind"] == "attention"
    loaded = load_checkpoint("attncrnn")
    assert usable(loaded, "Attention") == ["attention over time"]
    reasons = dict((m.label, why) for m, why in applicable(loaded, "Attention"))
    assert "token grid" in reasons["attention per head"]

    x = torch.from_numpy(loaded.input(clip(16000), 16000))[None]
    w = time_attention(loaded.model, x, "attn.attn")
    net = loaded.model.net
    with torch.no_grad():  # the formula, by hand, from the GRU's output
        h = net.conv_block(x)
        B, C, F, T = h.shape
        h, _ = net.gru(h.permute(0, 3, 1, 2).reshape(B, T, C * F))
        q, k, _ = torch.nn.functional.linear(h, net.attn.in_proj_weight, net.attn.in_proj_bias).chunk(3, dim=-1)
        heads, d = net.attn.num_heads, h.shape[-1] // net.attn.num_heads
        q, k = (t.reshape(1, T, heads, d).transpose(1, 2) for t in (q, k))
        expected = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5, dim=-1).mean(dim=1)
    assert w.shape == (1, T, T)
    np.testing.assert_allclose(w[0], expected[0].double().numpy(), atol=1e-5)

    on = event_tokens(token_edges(T, 5.0), [(2.0, 3.0)])  # planted: all attention on the event's keys
    planted = np.where(on, 1.0, 0.0)[None, None, :].repeat(T, axis=1) / on.sum()
    result = event_share(planted, on)
    assert np.isclose(result["share"][0], 1.0) and np.isclose(result["ratio"][0], 1 / on.mean())
    uniform = event_share(np.full((1, T, T), 1 / T), on)
    assert np.isclose(uniform["ratio"][0], 1.0)  # uniform attention is the chance level
