"""The Dask engine (:mod:`core.data.distributed`) yields the local engine's arrays, on a LocalCluster on this machine."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from core.data.activations import extract
from core.data.cache import ArrayCache
from core.models.checkpoint import load_checkpoint, save_checkpoint
from core.errors import InputError
from core.models import build_model
from tests.core.data.test_activations import CFG, make_records


@pytest.fixture
def loaded(tmp_path):
    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [8]}, n_classes=2)
    return load_checkpoint(save_checkpoint(tmp_path / "ckpt", model, CFG, ["a", "b"]))


@pytest.fixture(scope="module")
def scheduler():
    """A LocalCluster of two single-threaded workers in this process (spawned ones cost ~10 s of imports)."""
    distributed = pytest.importorskip("distributed")
    import logging

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        yield cluster.scheduler_address


def test_dask_engine_gives_the_local_arrays(tmp_path, loaded, scheduler):
    records = make_records(tmp_path, 7)
    taps = ["block2", "embedding"]
    local = extract(loaded, records, taps, reduce="vector", batch_size=2, shard_size=3,
                    cache=ArrayCache(tmp_path / "local"))
    seen = []
    dask_cache = ArrayCache(tmp_path / "dask")
    remote = extract(loaded, records, taps, reduce="vector", batch_size=2, shard_size=3, cache=dask_cache,
                     engine="dask", scheduler=scheduler, on_progress=lambda done, total: seen.append((done, total)))
    for name in [*taps, "labels"]:
        np.testing.assert_array_equal(remote[name], local[name])  # same batches: bit for bit
    assert seen[0] == (0, 7) and seen[-1] == (7, 7) and len(seen) == 4  # once at the start, then per shard
    assert sorted(done for done, _ in seen[1:]) == [done for done, _ in seen[1:]]
    # the same cache entries as the local engine: a second call is a hit, from either engine
    again = extract(loaded, records, taps, reduce="vector", cache=dask_cache)
    assert dask_cache.stats.hits == 2
    np.testing.assert_array_equal(again["embedding"], local["embedding"])


def test_an_unreachable_scheduler_is_an_input_error(tmp_path, loaded, monkeypatch):
    pytest.importorskip("distributed")
    import socket

    import core.data.distributed

    monkeypatch.setattr(core.data.distributed, "CONNECT_TIMEOUT_S", 1)  # refused at once, but retried until then

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        extract(loaded, make_records(tmp_path, 2), ["embedding"], cache=ArrayCache(tmp_path / "c"),
                engine="dask", scheduler=f"tcp://127.0.0.1:{port}")


def test_without_distributed_the_message_says_how_to_install_it(tmp_path, loaded, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now raises ImportError
    with pytest.raises(InputError, match=r"pip install 'dask\[distributed\]'"):
        extract(loaded, make_records(tmp_path, 2), ["embedding"], cache=ArrayCache(tmp_path / "c"), engine="dask")


def test_cli_engine_dask_reports_what_the_local_engine_does(tmp_path, loaded, scheduler, capsys, monkeypatch):
    from core.cli import main

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    records = make_records(tmp_path / "data", 6)
    rows = ["filename,fold,target,category"] + [f"{r.clip_id},1,{r.label},{r.category}" for r in records]
    (tmp_path / "data" / "meta").mkdir()
    (tmp_path / "data" / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    reports = {}
    for engine in ("local", "dask"):
        args = ["evaluate", "--checkpoint", str(loaded.folder), "--data", str(tmp_path / "data"), "--fold", "1",
                "--no-progress", "--engine", engine, "--out", str(tmp_path / f"{engine}.json")]
        if engine == "dask":
            args += ["--scheduler", scheduler]
            monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache-dask"))  # computed again, not read
        assert main(args) == 0, capsys.readouterr().err
        result = json.loads((tmp_path / f"{engine}.json").read_text())
        reports[engine] = {k: v for k, v in result.items() if k not in ("time_s",)}
    assert reports["dask"] == reports["local"]
    assert list((tmp_path / "cache-dask" / "arrays").glob("*.npy"))


def test_cli_scheduler_without_dask_engine_is_status_2(tmp_path, loaded, capsys):
    from core.cli import main

    assert main(["evaluate", "--checkpoint", str(loaded.folder), "--data", str(tmp_path), "--fold", "1",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--engine dask" in err[0], err
