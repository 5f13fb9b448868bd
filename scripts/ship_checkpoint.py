"""Copy a trained checkpoint into checkpoints/ with machine-free provenance.

    python scripts/ship_checkpoint.py .cache/train/secnn checkpoints/secnn

The training meta records the data folder as an absolute path on the machine
that trained it; a shipped checkpoint names the demo set instead, which anyone
can rebuild with ``python -m core make-demo-data``.
"""

import json
import shutil
import sys
from pathlib import Path

from core.demo_data import DEFAULT_SEED, VERSION


def main(src: str, dst: str) -> None:
    src, dst = Path(src), Path(dst)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("decoders"))
    path = dst / "checkpoint.json"
    doc = json.loads(path.read_text())
    meta = doc["meta"]
    meta["data"] = f"demo sound set v{VERSION}, seed {DEFAULT_SEED} (python -m core make-demo-data)"
    meta.pop("dataset_fingerprint", None)  # hashes file times: differs on every machine
    if isinstance(meta.get("teacher"), dict):
        meta["teacher"]["checkpoint"] = Path(meta["teacher"]["checkpoint"]).name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"shipped {dst} ({sum(f.stat().st_size for f in dst.iterdir()) / 1e6:.1f} MB)")


if __name__ == "__main__":
    main(*sys.argv[1:3])
