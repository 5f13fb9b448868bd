"""Dataset-wide extraction: one entry per tap and reduction, counted hits, resumable shards, bounded memory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from core.data.activations import Reduction, extract, pool_tap, time_activations
from core.audio.features import AudioConfig, log_mel
from core.data.cache import ArrayCache
from core.models.checkpoint import load_checkpoint, save_checkpoint
from core.data.datasets import ClipRecord, load_mono
from core.errors import InputError
from core.models import build_model

CFG = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=128, n_frames=64)
REPO = Path(__file__).resolve().parents[3]


def make_records(folder: Path, n: int) -> list[ClipRecord]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        path = folder / "audio" / f"clip{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        out.append(ClipRecord(path.name, path, i % 2, "ab"[i % 2], 1 + i % 5))
    return out


@pytest.fixture
def records(tmp_path):
    return make_records(tmp_path, 5)


@pytest.fixture
def loaded(tmp_path):
    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=2)
    return load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, CFG, ["a", "b"]))


def test_second_call_is_a_counted_hit_with_the_same_arrays(tmp_path, loaded, records):
    cache = ArrayCache(tmp_path / "cache")
    first = extract(loaded, records, ["block2", "embedding"], batch_size=2, shard_size=3, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (0, 2)  # one entry per tap
    second = extract(loaded, records, ["block2", "embedding"], batch_size=4, cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (2, 2)  # batch and shard sizes are not in the key
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

    # a tap on disk is read, only the new one is extracted
    third = extract(loaded, records, ["embedding", "block3"], cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (3, 3)
    np.testing.assert_array_equal(third["embedding"], first["embedding"])


def test_reductions_records_and_custom_reductions_have_their_own_entries(tmp_path, loaded, records):
    cache = ArrayCache(tmp_path / "cache")
    raw = extract(loaded, records, ["block2"], cache=cache)
    time = extract(loaded, records, ["block2"], reduce="time", cache=cache)
    np.testing.assert_allclose(time["block2"], time_activations(raw["block2"]), atol=1e-6)
    vector = extract(loaded, records, ["block2"], reduce="vector", cache=cache)
    np.testing.assert_allclose(vector["block2"], pool_tap(raw["block2"], kind="conv"), atol=1e-6)
    extract(loaded, records[:3], ["block2"], cache=cache)
    peak = extract(loaded, records, ["block2"], reduce=Reduction("peak", _peak), cache=cache)
    np.testing.assert_allclose(peak["block2"], raw["block2"].max(axis=(2, 3)), atol=1e-6)
    assert (cache.stats.hits, cache.stats.misses) == (0, 5)
    extract(loaded, records, ["block2"], reduce="time", cache=cache)
    assert (cache.stats.hits, cache.stats.misses) == (1, 5)


def _peak(a, tap, model):
    return a.max(axis=(2, 3))


def test_bad_arguments_are_input_errors(tmp_path, loaded, records):
    cache = ArrayCache(tmp_path)
    with pytest.raises(InputError, match="reduction"):
        extract(loaded, records, ["block2"], reduce="max", cache=cache)
    with pytest.raises(InputError):
        extract(loaded, records, ["block9"], cache=cache)
    with pytest.raises(InputError, match="time"):
        extract(loaded, records, ["embedding"], reduce="time", cache=cache)
    with pytest.raises(InputError, match="engine"):
        extract(loaded, records, ["embedding"], engine="spark", cache=cache)
    with pytest.raises(InputError, match="no clips"):
        extract(loaded, [], ["embedding"], cache=cache)


def test_progress_counts_clips(tmp_path, loaded, records):
    seen = []
    extract(loaded, records, ["embedding"], batch_size=2, shard_size=4, cache=ArrayCache(tmp_path),
            on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 5), (2, 5), (4, 5), (5, 5)]


KILLED_RUN = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path
    import torch
    torch.set_num_threads(1)
    from core.data.activations import extract
    from core.data.cache import ArrayCache
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import ClipRecord

    ckpt, cache_root, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    records = [ClipRecord(Path(p).name, Path(p), label, "ab"[label], fold) for p, label, fold in rows]

    def on_progress(done, total):
        if done >= 5:  # shards 0-1 and 2-3 are on disk, shard 4-5 is half written
            os.kill(os.getpid(), signal.SIGKILL)

    extract(load_checkpoint(ckpt), records, ["block2", "embedding"], batch_size=1, shard_size=2,
            cache=ArrayCache(cache_root), on_progress=on_progress)
""")


def test_a_sigkilled_extraction_resumes_and_gives_the_same_arrays(tmp_path, loaded):
    records = make_records(tmp_path, 7)
    rows = json.dumps([[str(r.path), r.label, r.fold] for r in records])
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(loaded.folder), str(tmp_path / "killed"), rows],
                            cwd=REPO, capture_output=True, text=True, timeout=600)  # a loaded machine is slow to import torch
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    cache = ArrayCache(tmp_path / "killed")
    assert not list(cache.root.glob("*.npy"))  # no entry claims to be complete
    assert len(list(cache.root.rglob("*.npy.tmp"))) == 2  # the half-written shards, one per tap

    seen = []
    resumed = extract(loaded, records, ["block2", "embedding"], batch_size=1, shard_size=2, cache=cache,
                      on_progress=lambda done, total: seen.append(done))
    assert seen[0] == 4  # two whole shards were kept
    whole = extract(loaded, records, ["block2", "embedding"], batch_size=1, cache=ArrayCache(tmp_path / "whole"))
    for name in ("block2", "embedding", "labels"):
        np.testing.assert_array_equal(resumed[name], whole[name])
    assert not list(cache.root.rglob("*.tmp")) and not list(cache.root.glob("*.parts"))


def test_peak_memory_follows_the_batch_not_the_dataset(tmp_path, loaded):
    records = make_records(tmp_path, 24)

    def peak(n: int) -> int:
        tracemalloc.start()
        acts = extract(loaded, records[:n], ["block1"], batch_size=2, shard_size=4,
                       cache=ArrayCache(tmp_path / f"cache{n}"))
        size = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert isinstance(acts["block1"], np.memmap)  # read from disk, not held
        return size

    row = 4 * 32 * 64 * 4  # block1 of one clip, float32: (4, 32, 64)
    small, large = peak(4), peak(24)
    assert large < small + 2 * row, (small, large)  # 20 more clips cost less than 2 clips' rows
