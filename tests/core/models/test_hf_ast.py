"""Hugging Face AST folders: a tiny random model saved to tmp_path; nothing is downloaded."""

import pickle
import sys

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

from core.models.checkpoint import load_checkpoint  # noqa: E402
from core.errors import InputError  # noqa: E402
from core.models.hf_ast import hf_features, load_hf_ast  # noqa: E402
from core.models.taps import extract, record  # noqa: E402

N_MELS, N_FRAMES = 32, 48


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        num_mel_bins=N_MELS, max_length=N_FRAMES, patch_size=16, frequency_stride=16, time_stride=16,
        num_labels=3, id2label={0: "dog", 1: "rain", 2: "siren"}, label2id={"dog": 0, "rain": 1, "siren": 2})
    path = tmp_path_factory.mktemp("hf-ast")
    transformers.ASTForAudioClassification(config).eval().save_pretrained(path)
    transformers.ASTFeatureExtractor(num_mel_bins=N_MELS, max_length=N_FRAMES).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def model(folder):
    return load_hf_ast(folder)


@pytest.fixture
def x():
    return torch.randn(2, 1, N_MELS, N_FRAMES, generator=torch.Generator().manual_seed(1))


def test_loads_with_classes_grid_and_taps(model):
    assert model.kind == "hf-ast" and model.n_special == 2 and not model.training
    assert model.classes == ["dog", "rain", "siren"]
    assert model.grid == (2, 3)  # (32 - 16) // 16 + 1, (48 - 16) // 16 + 1
    assert [t.name for t in model.taps()] == ["patches", "layer1.attn", "layer1", "layer2.attn", "layer2",
                                              "embedding", "logits"]


def test_every_tap_has_the_shape_it_declares(model, x):
    out = extract(model, x)
    for tap in model.taps():
        assert tuple(out[tap.name].shape) == tap.shape(2, None), tap.name


def _hooks(model):
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_logits_are_the_hugging_face_models(model, x):
    before = _hooks(model)  # transformers keeps hooks of its own
    with torch.no_grad():
        ours = model(x)
        theirs = model.hf(input_values=x[:, 0].transpose(1, 2)).logits
        with record(model, None):
            recorded = model(x)
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(recorded, ours, atol=1e-5, rtol=1e-5)
    assert _hooks(model) == before


def test_fused_and_eager_give_the_same_logits(model, x):
    before = model.hf.config._attn_implementation
    with torch.no_grad():
        fused = model(x)
        eager, attentions = model(x, output_attentions=True)
    torch.testing.assert_close(fused, eager, atol=1e-5, rtol=1e-5)
    assert model.hf.config._attn_implementation == before
    assert len(attentions) == 2 and attentions[0].shape == (2, 4, 8, 8)


def test_attention_rows_sum_to_one_and_match_a_plain_recomputation(model, x):
    layer = model.get_submodule(f"{model._layers}.0")
    if not hasattr(layer.attention, "q_proj"):
        pytest.skip("module layout of an older transformers")
    out = extract(model, x, ["patches", "layer1.attn"])
    with torch.no_grad():
        h = layer.layernorm_before(out["patches"])
        q = layer.attention.q_proj(h).view(2, 8, 4, 8).transpose(1, 2)  # (B, H, S, Dh)
        k = layer.attention.k_proj(h).view(2, 8, 4, 8).transpose(1, 2)
        expected = torch.softmax(q @ k.transpose(-1, -2) / np.sqrt(8), dim=-1)
    a = out["layer1.attn"]
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 4, 8))
    torch.testing.assert_close(a, expected, atol=1e-6, rtol=1e-5)


def test_embedding_tap_is_the_mean_of_the_two_special_tokens(model, x):
    out = extract(model, x, ["embedding"])
    with torch.no_grad():
        seq = model.hf.audio_spectrogram_transformer(input_values=x[:, 0].transpose(1, 2)).last_hidden_state
    torch.testing.assert_close(out["embedding"], (seq[:, 0] + seq[:, 1]) / 2)


def test_hf_features_use_the_extractor_in_our_layout(model):
    y = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    feats = hf_features(y, 16000, extractor=model.extractor)
    direct = model.extractor(y, sampling_rate=16000, return_tensors="pt")["input_values"][0]
    assert feats.shape == (N_MELS, N_FRAMES) and feats.dtype == torch.float32
    torch.testing.assert_close(feats, direct.T)
    assert hf_features(np.stack([y, y]), 16000, extractor=model.extractor).shape == (N_MELS, N_FRAMES)
    assert hf_features(y[:8000], 8000, extractor=model.extractor).shape == (N_MELS, N_FRAMES)  # resampled
    with pytest.raises(InputError):
        hf_features(np.full(100, np.nan, np.float32), 16000, extractor=model.extractor)


def test_patch_box_uses_the_extractor_axes(model):
    t0, t1, f0, f1 = model.patch_box(0)
    assert (t0, t1) == pytest.approx((0.0125, 0.1625))  # 25 ms frames every 10 ms, frames 0..15
    assert 20 < f0 < f1 < 8000
    t0b, _, f0b, _ = model.patch_box(4)  # second frequency row, second time column
    assert t0b == pytest.approx(0.0125 + 0.16) and f0b > f1


def test_load_checkpoint_recognises_the_folder(folder):
    loaded = load_checkpoint(folder)
    assert loaded.kind == "hf-ast" and loaded.classes == ["dog", "rain", "siren"]
    assert loaded.audio_cfg.sr == 16000 and loaded.audio_cfg.n_frames == N_FRAMES
    y = np.zeros(16000, np.float32)
    y[::50] = 0.5
    assert loaded.features(y).shape == (N_MELS, N_FRAMES)
    with pytest.raises(InputError, match="not 'secnn'"):
        load_checkpoint(folder, kind="secnn")


class _Bomb:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('UNPICKLED').write_text('x')",))


def test_pickled_weights_are_never_loaded(folder, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text((folder / "config.json").read_text())
    (bad / "pytorch_model.bin").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(InputError, match="safetensors"):
        load_hf_ast(bad)
    (bad / "model.safetensors").write_bytes(pickle.dumps(_Bomb()))
    with pytest.raises(InputError, match="do not load"):
        load_hf_ast(bad)
    assert not (tmp_path / "UNPICKLED").exists()


def test_other_folders_are_refused(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_hf_ast(tmp_path / "missing")
    with pytest.raises(InputError, match="config.json"):
        load_hf_ast(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(InputError, match="not 'audio-spectrogram-transformer'"):
        load_hf_ast(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="JSON"):
        load_hf_ast(tmp_path)


def test_without_transformers_the_error_says_so(folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(InputError, match="transformers: not installed"):
        load_hf_ast(folder)


def test_rollout_and_attention_relevance_read_both_special_tokens(model, x):
    """The HF classifier averages the class and distillation tokens, so the maps average their two rows."""
    from core.interpret.attention_relevance import model_attention_relevance
    from core.interpret.rollout import class_token_relevance, model_rollout, rollout

    with torch.no_grad():
        _, attentions = model(x, output_attentions=True)
    joint = rollout(attentions)
    both = class_token_relevance(joint, grid=model.grid, n_special=2)
    expected = joint[:, :2, 2:].mean(dim=1).reshape(-1, *model.grid)
    np.testing.assert_allclose(both.numpy(), expected.numpy(), atol=1e-9)
    assert model_rollout(model, x).shape == (x.shape[0], *x.shape[-2:])
    heat = model_attention_relevance(model, x[:1], target=0)  # needs the attentions in the autograd graph
    assert heat.shape == (1, *x.shape[-2:]) and np.nanmax(heat) == pytest.approx(1.0)


def test_a_folder_in_the_hub_cache_is_known_as_such(tmp_path, monkeypatch):
    from core.models.hf_ast import in_hub_cache

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    snapshot = tmp_path / "hub" / "models--MIT--ast" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    assert in_hub_cache(snapshot)
    assert not in_hub_cache(tmp_path / "my-huggingface-models" / "ast")  # the old test: "huggingface" in the path
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert in_hub_cache(tmp_path / "home" / "hub" / "x") and not in_hub_cache(snapshot)


def test_attention_formed_from_recorded_inputs_equals_the_eager_path(model, x):
    from core.interpret.attention import record_attention
    from core.interpret.rollout import model_rollout, rollout_map

    before = _hooks(model)  # transformers keeps hooks of its own
    with torch.no_grad():
        _, full = model(x, output_attentions=True)
    recorded = record_attention(model, x)
    for layer in range(len(full)):
        torch.testing.assert_close(recorded[layer], full[layer], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(recorded.rows(2, heads=[3, 0], rows=[1]), full[1][:, [3, 0]][:, :, [1]],
                               atol=1e-6, rtol=1e-5)
    from core.interpret.maps import patch_geometry

    want = rollout_map(full, grid=model.grid, shape=(N_MELS, N_FRAMES), n_special=2, geometry=patch_geometry(model))
    np.testing.assert_allclose(model_rollout(model, x), want, atol=1e-5)
    assert _hooks(model) == before


def test_the_mit_size_ast_has_its_parameter_count_and_grid():
    from core.models.fixtures import MIT_AST_PARAMETERS, mit_size_ast

    model = load_hf_ast(mit_size_ast())  # built once per machine under .cache/
    assert sum(p.numel() for p in model.parameters()) == MIT_AST_PARAMETERS  # 86.6 M
    assert model.grid == (12, 101) and model.n_classes == 527
    assert (model.config.dim, model.config.depth, model.config.heads) == (768, 12, 12)
