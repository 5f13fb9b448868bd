"""Does the stereo rollout lean to the side the event was panned to? Numbers for the model card.

    python scripts/stereo_pan_check.py [--fold 5] [--checkpoint checkpoints/ast]

For every stereo clip of the demo set's fold, the pan index (:func:`core.interpret.stereo.pan_index`,
-1 left .. 1 right) of the left/right rollout pair inside the event box, against the pan the event was
mixed with (``meta/scene.csv``; the loudest distractor is panned the other way). Baselines: the same
index of the two channels' mel power (the input's own energy, no model), and 0 (no stereo information).
"""

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from core.audio.features import load_audio, mel_power  # noqa: E402
from core.models.checkpoint import load_checkpoint  # noqa: E402
from core.data.datasets import open_dataset, read_scene  # noqa: E402
from core.audio.demo_data import ensure_demo_data  # noqa: E402
from core.interpret.rollout import stereo_rollout  # noqa: E402
from core.interpret.stereo import pan_index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fold", type=int, default=5)
    parser.add_argument("--checkpoint", default="checkpoints/ast")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    root = ensure_demo_data()
    data, scene = open_dataset(root), read_scene(root)
    loaded = load_checkpoint(args.checkpoint)
    cfg = loaded.audio_cfg
    rows = []
    for r in data.records:
        info = scene.get(r.clip_id, {})
        if r.fold != args.fold or info.get("channels") != 2:
            continue
        samples = load_audio(r.path, cfg).samples
        maps = stereo_rollout(loaded, samples)
        boxes = data.boxes(r.clip_id)
        power = [mel_power(channel, cfg)[:, : cfg.n_frames] for channel in samples]
        model_pan = pan_index(maps["left"], maps["right"], boxes, cfg=cfg)
        energy_pan = pan_index(*[np.pad(p, ((0, 0), (0, max(0, cfg.n_frames - p.shape[1])))) for p in power], boxes,
                               cfg=cfg)
        rows.append((r.clip_id, info["event_pan"], model_pan, energy_pan))
    pans = np.array([[e, m, g] for _, e, m, g in rows], dtype=np.float64)
    n = len(rows)
    side = np.sign(pans[:, 0])
    print(f"{args.checkpoint}, fold {args.fold}: {n} stereo clips")
    for name, col in (("rollout L/R", 1), ("input energy L/R (no model)", 2)):
        agree = int(np.sum(np.sign(pans[:, col]) == side))
        r = np.corrcoef(pans[:, 0], pans[:, col])[0, 1]
        print(f"  {name:<28} leans to the event's side in {agree}/{n} clips ({agree / n:.0%}); "
              f"correlation with the event's pan {r:.2f}; median |pan index| {np.median(np.abs(pans[:, col])):.2f}")
    print("  no stereo information: 0 (leans nowhere); a coin: 50 %")


if __name__ == "__main__":
    main()
