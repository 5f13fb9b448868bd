"""Copy a trained checkpoint into checkpoints/ with machine-free provenance.

    python scripts/ship_checkpoint.py .cache/train/secnn checkpoints/secnn [--evaluate-on DEMO_DIR]

The training meta records the data folder as an absolute path on the machine
that trained it; a shipped checkpoint names the demo set instead, which anyone
can rebuild with ``python -m core make-demo-data``.

A model trained on a larger demo set (``make-demo-data --clips-per-class N``)
is shipped with ``--evaluate-on`` the default set: clips are drawn per
(seed, class, index) and fold = index % 5 + 1, so the default set is the larger
one's first 60 clips per class, and its fold 5 was never trained on. The card's
accuracy is then measured there, on the 120 clips the app and the tests use;
the training run's own test-fold figures are kept as ``evaluation_training_set``.

Shipped decoders (``DST/decoders``) are kept when the weights are unchanged
(re-shipping only to refresh the meta); with new weights they no longer match
the activations, so they are dropped and the script says to refit them. The
novelty score (``DST/novelty``) is kept the same way; with new weights the one
``train`` fitted comes along, and the script says how the model card's is refitted.
"""

import filecmp
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from core.audio.demo_data import CLIPS_PER_CLASS, DEFAULT_SEED, VERSION  # noqa: E402


def main(src: str, dst: str, evaluate_on: str | None = None) -> None:
    src, dst = Path(src), Path(dst)
    weights = "model.safetensors"
    keep = (dst / "decoders").is_dir() and (dst / weights).is_file() and \
        filecmp.cmp(src / weights, dst / weights, shallow=False)
    same_weights = (dst / weights).is_file() and filecmp.cmp(src / weights, dst / weights, shallow=False)
    keep_novelty = same_weights and (dst / "novelty").is_dir()
    with tempfile.TemporaryDirectory() as tmp:
        if keep:
            shutil.copytree(dst / "decoders", Path(tmp) / "decoders")
        elif (dst / "decoders").is_dir():
            print(f"{dst}/decoders dropped: the weights changed; refit them with python -m core fit-decoders")
        if keep_novelty:
            shutil.copytree(dst / "novelty", Path(tmp) / "novelty")
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("decoders", "training-state.pt*",
                                                                *(["novelty"] if keep_novelty else [])))
        if keep:
            shutil.copytree(Path(tmp) / "decoders", dst / "decoders")
        if keep_novelty:
            shutil.copytree(Path(tmp) / "novelty", dst / "novelty")
        elif (dst / "novelty").is_dir():
            print(f"{dst}/novelty is the one train fitted (its validation split); the model card's is refitted "
                  "with python -m core fit-novelty (checkpoints/README.md)")
    path = dst / "checkpoint.json"
    doc = json.loads(path.read_text())
    meta = doc["meta"]
    trained_test = meta.get("evaluation_training_set", meta["evaluation"])["n_clips"]  # re-shipping keeps it
    per_class = (meta["n_train"] + meta["n_val"] + trained_test) // len(doc["classes"])
    meta["data"] = f"demo sound set v{VERSION}, seed {DEFAULT_SEED} (python -m core make-demo-data)"
    if per_class != CLIPS_PER_CLASS:
        meta["data"] = (f"demo sound set v{VERSION}, seed {DEFAULT_SEED}, {per_class} clips per class "
                        f"(python -m core make-demo-data --clips-per-class {per_class})")
    if evaluate_on is not None:
        _evaluate_on(doc, dst, Path(evaluate_on))
    meta.pop("dataset_fingerprint", None)  # hashes file times: differs on every machine
    if isinstance(meta.get("teacher"), dict):
        meta["teacher"]["checkpoint"] = Path(meta["teacher"]["checkpoint"]).name
    path.write_text(json.dumps(doc, indent=2) + "\n")
    size = sum(f.stat().st_size for f in dst.rglob("*") if f.is_file())
    print(f"shipped {dst} ({size / 1e6:.1f} MB{', decoders kept' if keep else ''})")


def _evaluate_on(doc: dict, dst: Path, data: Path) -> None:
    """Replace the meta's test-fold evaluation with one on ``data``'s test fold (SE bypass included)."""
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.training.evaluate import HEADLINE, evaluate, headline

    meta = doc["meta"]
    (dst / "checkpoint.json").write_text(json.dumps(doc, indent=2) + "\n")  # load what is shipped
    loaded = load_checkpoint(dst)
    records = open_dataset(data).select(meta["test_fold"])
    meta.setdefault("evaluation_training_set", headline(meta["evaluation"]))
    meta["evaluation"] = evaluate(loaded, records, progress=True)
    meta["n_test"] = len(records)
    meta["evaluated_on"] = f"fold {meta['test_fold']} of {data.name} ({len(records)} clips)"
    if "evaluation_se_bypassed" in meta:
        with loaded.model.se_bypassed():
            bypassed = evaluate(loaded, records)
        meta["evaluation_se_bypassed"] = {k: bypassed[k] for k in HEADLINE}
    print(f"fold {meta['test_fold']} of {data}: accuracy {meta['evaluation']['accuracy']:.3f} "
          f"(the training set's fold: {meta['evaluation_training_set']['accuracy']:.3f} on "
          f"{meta['evaluation_training_set']['n_clips']} clips)")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--evaluate-on", default=None, help="demo set whose test fold the card reports")
    args = parser.parse_args()
    main(args.src, args.dst, args.evaluate_on)
