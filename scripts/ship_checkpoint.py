"""Copy a trained checkpoint into checkpoints/ with machine-free provenance.

    python scripts/ship_checkpoint.py .cache/train/secnn checkpoints/secnn

The training meta records the data folder as an absolute path on the machine
that trained it; a shipped checkpoint names the demo set instead, which anyone
can rebuild with ``python -m core make-demo-data``.

Shipped decoders (``DST/decoders``) are kept when the weights are unchanged
(re-shipping only to refresh the meta); with new weights they no longer match
the activations, so they are dropped and the script says to refit them.
"""

import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from core.demo_data import DEFAULT_SEED, VERSION  # noqa: E402


def main(src: str, dst: str) -> None:
    src, dst = Path(src), Path(dst)
    weights = "model.safetensors"
    keep = (dst / "decoders").is_dir() and (dst / weights).is_file() and \
        filecmp.cmp(src / weights, dst / weights, shallow=False)
    with tempfile.TemporaryDirectory() as tmp:
        if keep:
            shutil.copytree(dst / "decoders", Path(tmp) / "decoders")
        elif (dst / "decoders").is_dir():
            print(f"{dst}/decoders dropped: the weights changed; refit them with python -m core fit-decoders")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("decoders"))
        if keep:
            shutil.copytree(Path(tmp) / "decoders", dst / "decoders")
    path = dst / "checkpoint.json"
    doc = json.loads(path.read_text())
    meta = doc["meta"]
    meta["data"] = f"demo sound set v{VERSION}, seed {DEFAULT_SEED} (python -m core make-demo-data)"
    meta.pop("dataset_fingerprint", None)  # hashes file times: differs on every machine
    if isinstance(meta.get("teacher"), dict):
        meta["teacher"]["checkpoint"] = Path(meta["teacher"]["checkpoint"]).name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"shipped {dst} ({size / 1e6:.1f} MB{', decoders kept' if keep else ''})")


if __name__ == "__main__":
    main(*sys.argv[1:3])
