"""``python -m core bench``: how fast the pipeline, the models and the explorer are.

Prints a table and writes JSON (with machine info) to ``results/``. Quick by
default; ``--full`` runs more repeats and the larger cases. Figures are medians
of repeated runs, in milliseconds unless the unit says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from core.paths import CHECKPOINTS_DIR, REPO_ROOT

__all__ = ["median_ms", "machine_info", "configure", "run"]


def median_ms(fn: Callable[[], object], *, repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs, in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def machine_info() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def bench_preprocessing(data_dir: Path, repeats: int) -> list[dict]:
    from core.audio.features import AudioConfig, load_audio, log_mel, mel_power, power_to_db, resample, standardise
    from core.data.datasets import open_dataset

    cfg = AudioConfig()
    record = open_dataset(data_dir).records[0]
    clip = load_audio(record.path, cfg)
    y = clip.mono
    y22 = resample(y, orig_sr=cfg.sr, target_sr=22050)
    S = mel_power(y, cfg)
    rows = [
        ("preprocess: load wav (5 s)", lambda: load_audio(record.path, cfg)),
        ("preprocess: resample 22.05 -> 44.1 kHz", lambda: resample(y22, orig_sr=22050, target_sr=cfg.sr)),
        ("preprocess: mel", lambda: mel_power(y, cfg)),
        ("preprocess: dB + standardise", lambda: standardise(power_to_db(S, cfg))),
        ("preprocess: whole log_mel from waveform", lambda: log_mel(y, cfg)),
    ]
    return [{"name": name, "ms": median_ms(fn, repeats=repeats)} for name, fn in rows]


def bench_models(repeats: int) -> list[dict]:
    import torch

    from core.models.checkpoint import load_checkpoint
    from core.models.taps import extract

    out = []
    for folder in sorted(p.parent for p in CHECKPOINTS_DIR.glob("*/checkpoint.json")):
        loaded = load_checkpoint(folder)
        model, cfg = loaded.model, loaded.audio_cfg
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
        for device in devices:
            model.to(device)
            for batch in (1, 32):
                x = torch.randn(batch, 1, cfg.n_mels, cfg.n_frames, device=device)
                sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

                def plain():
                    with torch.no_grad():
                        model(x)
                    sync()

                def with_taps():
                    extract(model, x, None)
                    sync()

                reps = max(3, repeats // (4 if batch > 1 else 1))
                out.append({"name": f"{folder.name} forward, batch {batch} ({device})",
                            "ms": median_ms(plain, repeats=reps), "ms_per_clip": None})
                out.append({"name": f"{folder.name} forward + all taps, batch {batch} ({device})",
                            "ms": median_ms(with_taps, repeats=reps), "ms_per_clip": None})
                for row in out[-2:]:
                    row["ms_per_clip"] = row["ms"] / batch
        model.to("cpu")
    return out


def bench_extraction(data_dir: Path, limit: int | None) -> list[dict]:
    import torch

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import load_features, open_dataset
    from core.models.taps import extract

    records = open_dataset(data_dir).records[:limit]
    out = []
    t0 = time.perf_counter()
    features = load_features(records, progress=False)
    feature_s = time.perf_counter() - t0
    out.append({"name": f"features for {len(records)} clips (load + log-mel)", "s": feature_s,
                "clips_per_s": len(records) / feature_s})
    for folder in sorted(p.parent for p in CHECKPOINTS_DIR.glob("*/checkpoint.json")):
        loaded = load_checkpoint(folder)
        t0 = time.perf_counter()
        for i in range(0, len(features), 32):
            extract(loaded.model, torch.from_numpy(features[i:i + 32, None]), None)
        s = time.perf_counter() - t0
        out.append({"name": f"{folder.name}: all taps for {len(records)} clips (from features)", "s": s,
                    "clips_per_s": len(records) / s})
        out.append({"name": f"{folder.name}: features + all taps, whole set", "s": s + feature_s,
                    "clips_per_s": len(records) / (s + feature_s)})
    return out


def _demo_embeddings(data_dir: Path) -> np.ndarray | None:
    """The shipped SE-CNN's "embedding" tap over the whole dataset: (N, 256), or None without it."""
    import torch

    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import load_features, open_dataset
    from core.models.taps import extract

    folder = CHECKPOINTS_DIR / "secnn"
    if not (folder / "checkpoint.json").is_file():
        return None
    loaded = load_checkpoint(folder)
    features = load_features(open_dataset(data_dir).records, loaded.audio_cfg, progress=False)
    return np.concatenate([extract(loaded.model, torch.from_numpy(features[i:i + 32, None]), "embedding")["embedding"]
                           .numpy() for i in range(0, len(features), 32)])


def bench_embeddings(data_dir: Path, n_points: list[int]) -> list[dict]:
    """PCA, t-SNE and UMAP through :func:`core.interpret.embed.project`, the function the Embeddings page calls: first and
    second call (UMAP's first call in a process loads its numba code from ``.cache/numba``, or compiles it once)."""
    from core.interpret.embed import project

    rng = np.random.default_rng(0)
    sets = []
    demo = _demo_embeddings(data_dir)
    if demo is not None:
        sets.append((f"the demo set's SE-CNN embeddings ({len(demo)} x {demo.shape[1]})", demo))
    for n in n_points:  # clustered Gaussian points, 10 clusters
        centres = np.repeat(rng.standard_normal((10, 128)), n // 10 + 1, axis=0)[:n] * 3
        sets.append((f"{n} points x 128", (rng.standard_normal((n, 128)) + centres).astype(np.float32)))
    out = []
    for label, X in sets:
        for name, method in (("PCA", "pca"), ("t-SNE", "tsne"), ("UMAP", "umap")):
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                project(X, method=method, seed=0)
                times.append(time.perf_counter() - t0)
            out.append({"name": f"{name} on {label}", "first_s": times[0], "warm_s": times[1]})
    return out


def bench_explorer(repeats: int, loads: int = 3, *, first_visits: bool = False) -> list[dict]:
    """Browser page loads against a bare page, warm re-render per page (AppTest, median) and the cold start;
    with ``first_visits``, each page's first visit on a fresh server after ``warm-cache`` too."""
    script = REPO_ROOT / "scripts" / "bench_pages.py"
    if not script.exists():
        return [{"name": "explorer", "note": "scripts/bench_pages.py is missing"}]
    result = subprocess.run([sys.executable, str(script), "--repeats", str(repeats), "--loads", str(loads)]
                            + (["--first-visits"] if first_visits else []),
                            capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        return [{"name": "explorer", "note": "failed: " + result.stderr.strip().splitlines()[-1][:200]}]
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- setup: a fresh clone's `make explore` ---------------------------------------------------------


def bench_fresh_clone(*, timeout_s: float = 1800.0) -> list[dict]:
    """Seconds from ``make explore`` in a fresh ``git clone`` of this repository to the server answering.

    The clone makes its own ``.venv`` and ``.cache`` (pip's own download cache is
    whatever this machine has: the row says whether it was warm). The server is
    stopped once it answers, and the clone deleted.
    """
    import shutil
    import signal
    import socket
    import tempfile
    import urllib.request

    pip_cache = Path(os.environ.get("PIP_CACHE_DIR", Path.home() / ".cache" / "pip"))
    warm_pip = pip_cache.is_dir() and any(pip_cache.iterdir())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = Path(tempfile.mkdtemp(prefix="fresh-clone-"))
    try:
        subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(tmp / "repo")], check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("EXPLORER_CACHE", "NUMBA_CACHE_DIR", "VIRTUAL_ENV")}
        t0 = time.perf_counter()
        proc = subprocess.Popen(["make", "explore", f"PORT={port}"], cwd=tmp / "repo", env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        served = None
        try:
            while served is None and proc.poll() is None and time.perf_counter() - t0 < timeout_s:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                        served = time.perf_counter() - t0 if r.read().strip() == b"ok" else None
                except OSError:
                    time.sleep(1)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    row = {"name": "fresh clone: `make explore` until the app answers", "pip_cache": "warm" if warm_pip else "cold"}
    return [row | ({"s": served} if served is not None else {"note": f"not served within {timeout_s:.0f} s"})]


def bench_real_size(data_dir: Path) -> list[dict]:
    """MIT's AudioSet AST size with random weights: predict per clip, its Attention page, peak memory
    (``scripts/bench_real_size.py``, in its own process)."""
    script = REPO_ROOT / "scripts" / "bench_real_size.py"
    result = subprocess.run([sys.executable, str(script), "--data", str(data_dir)], capture_output=True, text=True,
                            cwd=REPO_ROOT)
    if result.returncode != 0:
        return [{"name": "real-size AST", "note": "failed: " + result.stderr.strip().splitlines()[-1][:200]}]
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- scale: 400, 2,000 and 10,000 clips --------------------------------------------------------

SCALE_SIZES = (400, 2000, 10000)
SCALE_CAPTION = (
    "Scale (`bench --full`): each set is a folder of hard links to the demo set's 600 clips (clip k -> clip k mod "
    "600) with a generated meta/esc50.csv (renamed clip ids, folds 1-5 dealt in turn; synthesising new clips costs "
    "~0.17 s CPU each), so past 600 clips the audio comes from the same files, warm in the OS page cache. Shipped "
    "SE-CNN, every tap pooled to one vector per clip in one pass (what the Embeddings and Errors pages extract), "
    "batch 32, into an empty cache; peak memory is the process's resident high-water mark during extraction, "
    "reset before it; UMAP of the embedding tap's vectors (numba compiled beforehand; past 600 clips every vector "
    "repeats, the neighbour graph falls apart into many components and UMAP's spectral start fails, so its time "
    "is not what as many distinct clips would cost); pages: AppTest rerun "
    "median with warm caches, all folds, the SE-CNN only, UMAP on the Embeddings page."
)


def scale_folder(source: str | Path, n_clips: int, dest: str | Path) -> Path:
    """A dataset of ``n_clips`` clips in ESC-50's layout made of hard links to ``source``'s clips.

    Clip ``k`` links to source clip ``k % len(source)`` (a symbolic link where
    hard links fail), is named ``x<copy>-<source name>``, keeps its class and
    goes to fold ``1 + k % 5``. Built in a temporary folder and renamed into
    place; an existing folder of the same size is reused.

    Parameters
    ----------
    source : str or Path
        A dataset in ESC-50's layout (the demo set).
    n_clips : int > 0
    dest : str or Path
        The folder to make.

    Returns
    -------
    Path
    """
    import csv
    import shutil
    import tempfile

    from core.data.datasets import open_dataset

    dest = Path(dest)
    meta = dest / "meta" / "esc50.csv"
    if meta.is_file() and sum(1 for _ in open(meta)) == n_clips + 1:
        return dest
    records = open_dataset(source, check_files=False).records
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        (tmp / "audio").mkdir()
        (tmp / "meta").mkdir()
        with open(tmp / "meta" / "esc50.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["filename", "fold", "target", "category"])
            for k in range(n_clips):
                r = records[k % len(records)]
                name = f"x{k // len(records):03d}-{Path(r.clip_id).name}"
                try:
                    os.link(r.path, tmp / "audio" / name)
                except OSError:
                    os.symlink(Path(r.path).resolve(), tmp / "audio" / name)
                writer.writerow([name, 1 + k % 5, r.label, r.category])
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _reset_peak_rss() -> bool:
    """Reset this process's resident high-water mark (Linux: ``/proc/self/clear_refs``); False where not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    """This process's resident high-water mark (``VmHWM``; ``ru_maxrss`` elsewhere), in bytes."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def bench_scale(demo: Path, sizes: Sequence[int], *, repeats: int = 5, workdir: Path | None = None) -> list[dict]:
    """Listing, extraction, UMAP, page re-render, peak memory and cache size at each dataset size.

    Each size gets its own cache (``<workdir>/cache-<n>``, emptied first) so
    the extraction starts cold; the page re-render runs ``scripts/bench_pages.py
    --scale-folder`` with ``EXPLORER_CACHE`` pointing at that cache, so the
    pages find what was extracted here (the CLI and the app share keys).
    """
    import shutil

    import torch

    from core.data.activations import extract
    from core.data.cache import ArrayCache
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.interpret.embed import cached_embedding, project
    from core.paths import cache_dir

    folder = CHECKPOINTS_DIR / "secnn"
    if not (folder / "checkpoint.json").is_file():
        return [{"name": "scale", "note": "checkpoints/secnn is missing"}]
    workdir = Path(workdir or cache_dir() / "bench")
    loaded = load_checkpoint(folder)
    taps = [t.name for t in loaded.model.taps()]
    project(np.random.default_rng(0).standard_normal((200, 8)), method="umap")  # numba's compile, not timed
    with torch.no_grad():  # first-call costs (imports, filter banks), not timed
        extract(loaded, open_dataset(demo, check_files=False).records[:4], taps, reduce="vector",
                cache=ArrayCache(workdir / "cache-warmup" / "arrays"))
    shutil.rmtree(workdir / "cache-warmup", ignore_errors=True)
    rows = []
    for n in sizes:
        root = scale_folder(demo, n, workdir / f"scale-{n}")
        listing = []
        for _ in range(3):
            t0 = time.perf_counter()
            data = open_dataset(root)
            listing.append(time.perf_counter() - t0)
        records = data.select(None)
        home = workdir / f"cache-{n}"
        shutil.rmtree(home, ignore_errors=True)
        cache = ArrayCache(home / "arrays")
        reset = _reset_peak_rss()
        before = _peak_rss_bytes()
        t0 = time.perf_counter()
        with torch.no_grad():
            extract(loaded, records, taps, reduce="vector", batch_size=32, cache=cache)
        extract_s = time.perf_counter() - t0
        peak = _peak_rss_bytes()
        t0 = time.perf_counter()
        cached_embedding(loaded, records, "embedding", method="umap", seed=0, cache=cache)
        umap_s = time.perf_counter() - t0
        row = {"name": f"scale: {len(records)} clips", "clips": len(records), "listing_s": statistics.median(listing),
               "extract_s": extract_s, "extract_clips_per_s": len(records) / extract_s, "umap_s": umap_s,
               "peak_rss_mb": peak / 1e6, "rss_before_mb": before / 1e6, "peak_reset": reset,
               "cache_mb": cache.size_bytes() / 1e6, "folder": str(root)}
        row.update(_scale_pages(root, home, repeats))
        rows.append(row)
        print(_table([row]), flush=True)
    return rows


def _scale_pages(root: Path, home: Path, repeats: int) -> dict:
    """Warm re-render of the Embeddings and Errors pages on ``root`` (``scripts/bench_pages.py --scale-folder``)."""
    script = REPO_ROOT / "scripts" / "bench_pages.py"
    env = dict(os.environ, EXPLORER_CACHE=str(home))
    result = subprocess.run([sys.executable, str(script), "--scale-folder", str(root), "--repeats", str(repeats)],
                            capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    if result.returncode != 0:
        return {"pages_note": "failed: " + (result.stderr.strip().splitlines() or ["?"])[-1][:200]}
    return {f"{r['page']}_ms": r["ms"] for r in json.loads(result.stdout.strip().splitlines()[-1])} | \
        {f"{r['page']}_first_s": r["first_ms"] / 1000 for r in json.loads(result.stdout.strip().splitlines()[-1])}


def scale_table(rows: list[dict]) -> str:
    """The scale rows as the README's markdown table."""
    lines = ["| clips | listing | extraction | UMAP | Embeddings / Errors re-render | peak memory | cache on disk |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        if "clips" not in r:
            continue
        pages = (f"{r['embeddings_ms']:.0f} / {r['errors_ms']:.0f} ms" if "embeddings_ms" in r
                 else r.get("pages_note", "not measured"))
        lines.append(f"| {r['clips']:,} | {r['listing_s']:.2f} s | {r['extract_s']:.0f} s "
                     f"({r['extract_clips_per_s']:.0f} clips/s) | {r['umap_s']:.1f} s | {pages} | "
                     f"{r['peak_rss_mb']:.0f} MB | {r['cache_mb']:.1f} MB |")
    return "\n".join(lines)


def _table(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        figures = [f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                   if k != "name" and v is not None]
        lines.append(f"  {row['name']:<58} {'  '.join(figures)}")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--full", action="store_true", help="more repeats and the larger cases")
    parser.add_argument("--data", type=Path, default=None, help="dataset folder (default: the demo set)")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["preprocessing", "models", "extraction", "embeddings", "explorer", "scale", "setup",
                                 "real-size"])
    parser.add_argument("--scale-sizes", type=int, nargs="+", default=None,
                        help=f"dataset sizes of the scale table (default with --full: {' '.join(map(str, SCALE_SIZES))}; "
                             "else 400, and only with --only scale)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results")


def run(args: argparse.Namespace) -> int:
    from core.audio.demo_data import ensure_demo_data

    data = args.data or ensure_demo_data()
    repeats = 30 if args.full else 10
    sections = {
        "preprocessing": lambda: bench_preprocessing(data, repeats),
        "models": lambda: bench_models(repeats),
        "extraction": lambda: bench_extraction(data, None if args.full else 96),
        "embeddings": lambda: bench_embeddings(data, [2000] if args.full else []),
        "explorer": lambda: bench_explorer(10, loads=7 if args.full else 3, first_visits=args.full),
        "setup": lambda: bench_fresh_clone(),
        "scale": lambda: bench_scale(data, args.scale_sizes or (SCALE_SIZES if args.full else (400,))),
        "real-size": lambda: bench_real_size(data),
    }
    results = {"machine": machine_info(), "full": bool(args.full)}
    print(f"machine: {results['machine']}")
    for name, fn in sections.items():
        if args.only and name not in args.only:
            continue
        if name in ("scale", "setup", "real-size") and not (args.full or args.only):
            continue  # minutes: only with --full or --only NAME
        print(f"{name}:", flush=True)
        rows = fn()
        results[name] = rows
        print(_table(rows) if name != "scale" else SCALE_CAPTION + "\n" + scale_table(rows), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written {path}")
    return 0
