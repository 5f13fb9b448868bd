"""The array cache: keys from checkpoint, dataset, preprocessing and product; atomic writes; size and clear."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio.features import AudioConfig
from core.data.cache import ArrayCache, checkpoint_fingerprint, dataset_fingerprint
from core.models.checkpoint import load_checkpoint, save_checkpoint
from core.data.datasets import ClipRecord
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


def test_shards_are_whole_or_absent_and_assemble_in_order(tmp_path):
    cache = ArrayCache(tmp_path)
    with cache.shard_writer("k", 0, 3) as write:
        write(0, np.arange(2.0)[:, None])
        write(2, np.array([[2.0]]))
    assert cache.has_shard("k", 0, 3)
    with pytest.raises(RuntimeError):
        with cache.shard_writer("k", 3, 5) as write:
            write(0, np.array([[3.0]]))
            raise RuntimeError("killed half-way")
    assert not cache.has_shard("k", 3, 5)
    assert not list(cache.shard_dir("k").glob("*.tmp"))  # nothing half-written stays behind
    with pytest.raises(InputError, match="rows"):
        with cache.shard_writer("k", 3, 5) as write:
            write(0, np.array([[3.0]]))  # a shard short of rows is refused
    with cache.shard_writer("k", 3, 5) as write:
        write(0, np.array([[3.0], [4.0]]))
    joined = cache.assemble("k", [(0, 3), (3, 5)])
    np.testing.assert_array_equal(joined[:, 0], np.arange(5.0))
    assert not cache.shard_dir("k").exists()
    np.testing.assert_array_equal(cache.load_array("k"), joined)


def test_size_and_clear(tmp_path):
    cache = ArrayCache(tmp_path / "arrays")
    assert cache.size_bytes() == 0
    cache.save("a", {"x": np.zeros(1000)})
    size = cache.size_bytes()
    assert size > 8000
    assert cache.clear() == size
    assert cache.size_bytes() == 0 and cache.load("a") is None


def test_the_cache_command_reports_the_size_and_clears(tmp_path, monkeypatch, capsys):
    from core.data.cache import default_cache
    from core.cli import main

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path))
    default_cache().save("k", {"x": np.zeros(10_000)})
    assert main(["cache"]) == 0
    assert capsys.readouterr().out.startswith("80.")  # kB, plus the npz header
    assert main(["cache", "--clear"]) == 0
    assert "cleared 80." in capsys.readouterr().out
    assert default_cache().size_bytes() == 0


RACER = """
import sys, time
from pathlib import Path
import numpy as np
from core.data.activations import extract
from core.models.checkpoint import load_checkpoint
from core.data.datasets import open_dataset
from core.interpret.embed import cached_embedding

ckpt, data, go, out = map(Path, sys.argv[1:])
loaded = load_checkpoint(ckpt)
records = open_dataset(data).records
while not go.exists():  # both processes start computing at the same moment
    time.sleep(0.005)
acts = extract(loaded, records, ["block2", "embedding"], reduce="vector", batch_size=3, shard_size=3)
emb = cached_embedding(loaded, records, "embedding", method="pca")
np.savez(out, block2=acts["block2"], points=emb["points"])
"""


def test_two_processes_computing_one_embedding_both_succeed_with_identical_arrays(tmp_path, loaded):
    """Two writers of the same entries (the app and a command, say): the second waits for the first, reads its result."""
    import os
    import subprocess
    import sys

    from core.paths import REPO_ROOT

    rng = np.random.default_rng(1)
    for i in range(12):
        path = tmp_path / "data" / "ab"[i % 2] / f"clip{i:02d}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, (0.1 * rng.standard_normal(4000)).astype(np.float32), 8000)
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    env = dict(os.environ, EXPLORER_CACHE=str(tmp_path / "cache"), PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(script), str(loaded.folder), str(tmp_path / "data"), str(go),
                               str(tmp_path / f"out{k}.npz")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(2)]
    go.touch()
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err
    a, b = (np.load(tmp_path / f"out{k}.npz") for k in range(2))
    assert a["block2"].shape == (12, 4) and a["points"].shape == (12, 2)
    assert np.array_equal(a["block2"], b["block2"]) and np.array_equal(a["points"], b["points"])
    arrays = tmp_path / "cache" / "arrays"
    assert not list(arrays.glob("*.parts")) and not list(arrays.rglob("*.tmp"))  # no shards or temporaries left


def test_a_waiter_with_a_callback_polls_until_the_holder_is_done_then_reads_its_entry(tmp_path, monkeypatch):
    """:func:`core.data.cache.while_waiting`: what the app's page does while the background warm-up holds an entry."""
    import threading

    from core.data import cache as cache_module
    from core.data.cache import ArrayCache, while_waiting

    monkeypatch.setattr(cache_module, "WAIT_POLL_S", 0.01)
    cache = ArrayCache(tmp_path)
    held, release = threading.Event(), threading.Event()

    def holder():
        with cache.lock("k"):
            held.set()
            release.wait(10)
            cache.save("k", {"x": np.arange(3)})

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(10)
    calls = []

    def on_wait():
        calls.append(1)
        if len(calls) == 3:
            release.set()

    with while_waiting(on_wait):
        got = cache.get_or_compute(key="k", compute=lambda: {"x": np.zeros(3)})
    thread.join()
    assert got["x"].tolist() == [0, 1, 2]  # the holder's, not computed again
    assert len(calls) >= 3 and cache.stats.misses == 0
