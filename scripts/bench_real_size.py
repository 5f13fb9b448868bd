"""The real-size AST's row of ``python -m core bench --full``: predict per clip, the Attention page, peak memory.

Run as a script (``core/bench.py`` runs it by path in its own process, so the
peak is this model's alone and ``core`` never imports ``explorer``); prints one
line of JSON rows last.

- Model: :func:`core.models.fixtures.mit_size_ast`, MIT's AudioSet AST size
  (86.6 M parameters) with random weights, built once under ``.cache/``.
- Predict: :func:`core.training.predict.predict_files` (what ``python -m core
  predict`` runs) per clip, after loading; the median over ``--clips`` clips
  of the demo set, after one clip to warm up.
- Attention page: Streamlit's AppTest with that folder as the only checkpoint
  (``$EXPLORER_CHECKPOINTS``): the Clip page first (the model loads there), then
  the Attention page's first visit (cold caches: the rollout, the attention
  inputs, the default query) and a later visit (away to the Clip page and back).
- Peak memory: the process's resident high-water mark (``VmHWM``) at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "explorer" / "app.py")


def _peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 ** 2
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2


def predict_rows(folder: Path, data: Path, n_clips: int) -> list[dict]:
    """Loading, then ``predict`` of single clips (median s per clip)."""
    from core.data.datasets import open_dataset
    from core.models.checkpoint import load_checkpoint
    from core.training.predict import predict_files

    start = time.perf_counter()
    loaded = load_checkpoint(folder)
    load_s = time.perf_counter() - start
    paths = [str(r.path) for r in open_dataset(data).records[:n_clips + 1]]
    times = []
    for path in paths:
        start = time.perf_counter()
        predict_files(loaded, [path])
        times.append(time.perf_counter() - start)
    n_params = sum(p.numel() for p in loaded.model.parameters())
    return [{"name": "real-size AST: load", "s": load_s, "parameters_m": n_params / 1e6},
            {"name": "real-size AST: predict per clip (median, after loading)", "s": statistics.median(times[1:]),
             "clips": len(times) - 1}]


def attention_rows(folder: Path) -> list[dict]:
    """The Attention page's first and later visit through AppTest."""
    from streamlit.testing.v1 import AppTest

    os.environ["EXPLORER_CHECKPOINTS"] = str(folder)
    at = AppTest.from_file(APP, default_timeout=1200)
    at.session_state["models"] = [folder.name]
    start = time.perf_counter()
    at.run()
    clip_s = time.perf_counter() - start
    start = time.perf_counter()
    at.switch_page("views/attention.py").run()
    first_s = time.perf_counter() - start
    problems = [str(e.value)[:200] for e in at.exception]
    at.switch_page("views/clip.py").run()
    start = time.perf_counter()
    at.switch_page("views/attention.py").run()
    later_s = time.perf_counter() - start
    return [{"name": "real-size AST: Clip page, first (model loads)", "s": clip_s},
            {"name": "real-size AST: Attention page, first visit", "s": first_s,
             "exceptions": "; ".join(problems) or None},
            {"name": "real-size AST: Attention page, later visit", "s": later_s}]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="dataset folder whose first clips are predicted")
    parser.add_argument("--clips", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from core.models.fixtures import mit_size_ast

    folder = mit_size_ast()
    rows = predict_rows(folder, args.data, args.clips) + attention_rows(folder)
    rows.append({"name": "real-size AST: peak memory (predict and the pages, one process)", "gb": _peak_gb()})
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
