"""explain-report: the table over methods, and the command end to end on a tiny dataset."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import soundfile as sf

from core.cli import main
from core.interpret.report import faithfulness_table, format_table, heatmap_methods


def test_methods_per_model_kind(real_secnn, real_ast):
    assert list(heatmap_methods(real_secnn, (32, 64))) == [f"grad-cam block{k}" for k in range(1, 6)] + ["random"]
    assert list(heatmap_methods(real_ast, (32, 64))) == [
        "rollout (mean)", "rollout (max, discard 0.9)", "grad-cam layer1", "attention (last layer)", "random"]


def test_table_on_a_real_ast(real_ast, real_audio_cfg):
    loaded = SimpleNamespace(model=real_ast, audio_cfg=real_audio_cfg)
    records = [SimpleNamespace(clip_id=f"c{i}", label=i % 3) for i in range(2)]
    features = np.random.default_rng(0).standard_normal((2, 32, 64)).astype(np.float32)
    boxes = lambda clip_id: [(0.0, 0.5, 0.0, 4000.0)] if clip_id == "c0" else []
    table = faithfulness_table(loaded, records, features, boxes=boxes, n_steps=4, progress=False)
    assert set(table) == set(heatmap_methods(real_ast, (32, 64)))
    for row in table.values():
        assert row["n_clips"] == 2 and row["n_boxed"] == 1 and row["pointing_game"] in (0.0, 1.0)
        assert 0 <= row["deletion_auc"] <= 1 and 0 <= row["insertion_auc"] <= 1
    assert "rollout (mean)" in format_table(table)


def test_command_prints_and_saves_the_table(tmp_path, real_secnn, real_audio_cfg, capsys):
    from core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "ckpt", real_secnn, real_audio_cfg, ["a", "b", "c"])
    rng = np.random.default_rng(0)
    (tmp_path / "data" / "audio").mkdir(parents=True)
    (tmp_path / "data" / "meta").mkdir()
    rows, boxes = ["filename,fold,target,category"], ["filename,t0_s,t1_s,f0_hz,f1_hz"]
    for i in range(3):
        name = f"5-{i}-x.wav"
        sf.write(tmp_path / "data" / "audio" / name, (0.1 * rng.standard_normal(8000)).astype(np.float32), 8000)
        rows.append(f"{name},5,{i},{'abc'[i]}")
        boxes.append(f"{name},0.1,0.6,100,2000")
    (tmp_path / "data" / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "data" / "meta" / "boxes.csv").write_text("\n".join(boxes) + "\n")
    out = tmp_path / "report.json"
    code = main(["explain-report", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(tmp_path / "data"),
                 "--limit", "2", "--steps", "3", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "grad-cam block5" in printed and "random" in printed
    doc = json.loads(out.read_text())
    assert doc["n_clips"] == 2 and doc["methods"]["random"]["n_boxed"] == 2


def test_command_refuses_a_bad_fill(tmp_path, capsys):
    assert main(["explain-report", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--fill", "loud"]) == 2
    assert "--fill" in capsys.readouterr().err
