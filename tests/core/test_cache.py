"""The activation cache: keyed by checkpoint, dataset, preprocessing and product; hits counted."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio import AudioConfig, log_mel
from core.cache import ArrayCache, cached_activations, checkpoint_fingerprint, dataset_fingerprint
from core.checkpoint import load_checkpoint, save_checkpoint
from core.datasets import ClipRecord, load_mono
from core.errors import InputError
from core.models import build_model

CFG = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=128, n_frames=64)


@pytest.fixture
def records(tmp_path):
    rng = np.random.default_rng(0)
    out = []
    for i in range(5):
        path = tmp_path / "audio" / f"clip{i}.wav"
        path.parent.mkdir(exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        out.append(ClipRecord(path.name, path, i % 2, "a" if i % 2 == 0 else "b", 1 + i % 5))
    return out


@pytest.fixture
def loaded(tmp_path):
    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=2)
    return load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, CFG, ["a", "b"]))


def test_second_call_is_a_counted_hit_with_the_same_arrays(tmp_path, loaded, records):
    cache = ArrayCache(tmp_path / "cache")
    first = cached_activations(loaded, records, ["block2", "embedding"], CFG, batch_size=2, progress=False,
                               cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (0, 1)
    second = cached_activations(loaded, records, ["block2", "embedding"], CFG, batch_size=2, progress=False,
                                cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)
    assert set(second) == {"block2", "embedding", "labels"}
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])
    assert first["block2"].shape == (5, 4, 8, 16)
    np.testing.assert_array_equal(first["labels"], [0, 1, 0, 1, 0])

    # the extracted values are the model's own
    x = torch.as_tensor(np.stack([log_mel(load_mono(r, CFG), CFG) for r in records]))[:, None]
    with torch.no_grad():
        a = loaded.model.blocks[1].features(loaded.model.blocks[0](x))
    np.testing.assert_allclose(first["block2"], a.numpy(), atol=1e-5)


def test_other_taps_reduction_records_or_preprocessing_miss(tmp_path, loaded, records):
    cache = ArrayCache(tmp_path / "cache")
    kwargs = dict(batch_size=4, progress=False, cache=cache)
    cached_activations(loaded, records, ["block2"], CFG, **kwargs)
    time = cached_activations(loaded, records, ["block2"], CFG, reduction="time", **kwargs)
    assert time["block2"].shape == (5, 4, 16)
    vector = cached_activations(loaded, records, ["block2"], CFG, reduction="vector", **kwargs)
    assert vector["block2"].shape == (5, 4)
    cached_activations(loaded, records[:3], ["block2"], CFG, **kwargs)
    assert (cache.stats.hits, cache.stats.misses) == (0, 4)
    cached_activations(loaded, records, ["block2"], CFG, reduction="time", **kwargs)
    assert (cache.stats.hits, cache.stats.misses) == (1, 4)


def test_fingerprints_follow_contents(tmp_path, loaded, records):
    before = checkpoint_fingerprint(loaded.folder)
    (loaded.folder / "decoders").mkdir()
    assert checkpoint_fingerprint(loaded.folder) == before  # sub-folders do not count
    (loaded.folder / "model.safetensors").write_bytes(b"changed")
    assert checkpoint_fingerprint(loaded.folder) != before
    assert dataset_fingerprint(records) != dataset_fingerprint(records[::-1])


def test_array_cache_round_trip_and_refusals(tmp_path):
    cache = ArrayCache(tmp_path)
    key = cache.key(checkpoint="c", dataset="d", preprocessing={"sr": 1}, extra="x")
    assert cache.load(key) is None
    cache.save(key, {"a": np.arange(3)})
    np.testing.assert_array_equal(cache.load(key)["a"], np.arange(3))
    assert key != cache.key(checkpoint="c", dataset="d", preprocessing={"sr": 2}, extra="x")
    with pytest.raises(InputError):
        cache.save(key, {})
    cache.path(key).write_bytes(b"not an npz")
    assert cache.load(key) is None  # a broken entry is recomputed, not trusted


def test_bad_arguments_are_input_errors(tmp_path, loaded, records):
    with pytest.raises(InputError, match="reduction"):
        cached_activations(loaded, records, ["block2"], CFG, reduction="max", cache=ArrayCache(tmp_path))
    with pytest.raises(InputError):
        cached_activations(loaded, records, ["block9"], CFG, cache=ArrayCache(tmp_path))
    with pytest.raises(InputError, match="time"):
        cached_activations(loaded, records, ["embedding"], CFG, reduction="time", progress=False,
                           cache=ArrayCache(tmp_path))
