"""Print the figures the model card states, from the shipped checkpoints' JSON.

    python scripts/model_card_numbers.py
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from core.paths import CHECKPOINTS_DIR  # noqa: E402

for path in sorted(CHECKPOINTS_DIR.glob("*/checkpoint.json")):
    doc = json.loads(path.read_text())
    meta, ev = doc["meta"], doc["meta"]["evaluation"]
    line = (f"{path.parent.name}: {doc['kind']} {meta['parameters']:,} parameters; fold {meta['test_fold']} "
            f"accuracy {100 * ev['accuracy']:.1f} %, macro F1 {ev['macro_f1']:.3f}, macro ROC AUC "
            f"{ev['roc_auc_macro']:.3f}; {meta['epochs_run']} epochs (best {meta['best_epoch']}) in "
            f"{meta['time_s'] / 60:.0f} min on {meta['device']} with {meta['threads']} threads")
    if "evaluation_se_bypassed" in meta:
        line += f"; SE forced to 1: {100 * meta['evaluation_se_bypassed']['accuracy']:.1f} %"
    print(line)
    print("   config:", doc["model_config"])
