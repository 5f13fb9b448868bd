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
import warnings
from pathlib import Path
from typing import Callable

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
    from core.audio import AudioConfig, load_audio, log_mel, mel_power, power_to_db, resample, standardise
    from core.datasets import open_dataset

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

    from core.checkpoint import load_checkpoint
    from core.taps import extract

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

    from core.checkpoint import load_checkpoint
    from core.datasets import load_features, open_dataset
    from core.taps import extract

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

    from core.checkpoint import load_checkpoint
    from core.datasets import load_features, open_dataset
    from core.taps import extract

    folder = CHECKPOINTS_DIR / "secnn"
    if not (folder / "checkpoint.json").is_file():
        return None
    loaded = load_checkpoint(folder)
    features = load_features(open_dataset(data_dir).records, loaded.audio_cfg, progress=False)
    return np.concatenate([extract(loaded.model, torch.from_numpy(features[i:i + 32, None]), "embedding")["embedding"]
                           .numpy() for i in range(0, len(features), 32)])


def bench_embeddings(data_dir: Path, n_points: list[int]) -> list[dict]:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

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
        n = len(X)
        methods = {
            "PCA": lambda: PCA(n_components=2, random_state=0).fit_transform(X),
            "t-SNE": lambda: TSNE(n_components=2, random_state=0, init="pca", perplexity=min(30, n // 4)).fit_transform(X),
            "UMAP": lambda: _umap(X),
        }
        for name, fn in methods.items():
            t0 = time.perf_counter()
            fn()
            first = time.perf_counter() - t0
            t0 = time.perf_counter()
            fn()
            warm = time.perf_counter() - t0
            out.append({"name": f"{name} on {label}", "first_s": first, "warm_s": warm})
    return out


def _umap(X):
    import umap

    with warnings.catch_warnings():  # seeded UMAP warns that it runs single-threaded: that is the point
        warnings.simplefilter("ignore")
        return umap.UMAP(n_components=2, random_state=0, n_jobs=1).fit_transform(X)


def bench_explorer(repeats: int) -> list[dict]:
    """Warm re-render per page (AppTest, median) and the cold start (a real server + browser)."""
    script = REPO_ROOT / "scripts" / "bench_pages.py"
    if not script.exists():
        return [{"name": "explorer", "note": "scripts/bench_pages.py is missing"}]
    result = subprocess.run([sys.executable, str(script), "--repeats", str(repeats)], capture_output=True,
                            text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        return [{"name": "explorer", "note": "failed: " + result.stderr.strip().splitlines()[-1][:200]}]
    return json.loads(result.stdout.strip().splitlines()[-1])


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
                        choices=["preprocessing", "models", "extraction", "embeddings", "explorer"])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "results")


def run(args: argparse.Namespace) -> int:
    from core.demo_data import ensure_demo_data

    data = args.data or ensure_demo_data()
    repeats = 30 if args.full else 10
    sections = {
        "preprocessing": lambda: bench_preprocessing(data, repeats),
        "models": lambda: bench_models(repeats),
        "extraction": lambda: bench_extraction(data, None if args.full else 96),
        "embeddings": lambda: bench_embeddings(data, [2000] if args.full else []),
        "explorer": lambda: bench_explorer(10),
    }
    results = {"machine": machine_info(), "full": bool(args.full)}
    print(f"machine: {results['machine']}")
    for name, fn in sections.items():
        if args.only and name not in args.only:
            continue
        print(f"{name}:", flush=True)
        rows = fn()
        results[name] = rows
        print(_table(rows), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written {path}")
    return 0
