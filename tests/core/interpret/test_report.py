"""explain-report: the table over methods, and the command end to end on a tiny dataset."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from core.cli import main
from core.interpret.registry import report_runs
from tests.core.interpret.conftest import as_loaded
from core.interpret.report import CHANCE, SMOOTH_RANDOM, faithfulness_table, format_table


def names(runs) -> list[str]:
    return [run.name for run in runs]


def test_methods_per_model_kind(real_secnn, real_ast, real_audio_cfg):
    energy = "energy (input itself)"
    assert names(report_runs(as_loaded(real_secnn, real_audio_cfg))) == [f"grad-cam block{k}" for k in range(1, 6)] + [
        "integrated gradients", "occlusion", "SmoothGrad", energy]
    assert names(report_runs(as_loaded(real_ast, real_audio_cfg), reference=False)) == [
        "rollout (mean)", "rollout (max, discard 0.9)", "attention × gradient (Chefer)", "attention (last layer)",
        "grad-cam layer1", energy]


def test_table_on_a_real_ast_with_baselines_distractors_and_sanity(real_ast, real_audio_cfg):
    loaded = as_loaded(real_ast, real_audio_cfg)
    records = [SimpleNamespace(clip_id=f"c{i}", label=i % 3) for i in range(3)]
    features = np.random.default_rng(0).standard_normal((3, 32, 64)).astype(np.float32)
    boxes = lambda clip_id: [(0.0, 0.5, 0.0, 4000.0)] if clip_id != "c2" else []
    distractors = lambda clip_id: [(0.6, 0.9, 0.0, 4000.0)] if clip_id == "c0" else []  # planted
    table = faithfulness_table(loaded, records, features, boxes=boxes, distractor_boxes=distractors, n_steps=4,
                               draws=2, sanity_clips=1, reference=False, progress=False)
    assert list(table) == names(report_runs(loaded, reference=False)) + [SMOOTH_RANDOM, CHANCE]
    for name, row in table.items():
        if name == CHANCE:
            assert row["deletion_auc"] is None and 0 < row["pointing_game"][0] < 1 and row["n_boxed"] == 2
            continue
        assert row["n_clips"] == 3 and row["n_boxed"] == 2 and row["n_distracted"] == 1
        mean, low, high = row["deletion_auc"]
        assert 0 <= low <= mean <= high <= 1 and len(row["per_clip"]["deletion"]) == 3
        assert row["distractor_hits"][0] in (0.0, 0.5, 1.0)
    assert table["energy (input itself)"]["sanity_all"] == pytest.approx(1.0)
    assert table["energy (input itself)"]["sanity_passed"] is False and table["energy (input itself)"]["baseline"]
    assert table[SMOOTH_RANDOM]["draws"] == 2 and table[SMOOTH_RANDOM]["sanity_all"] is None
    text = format_table(table)
    assert "rollout (mean)" in text and SMOOTH_RANDOM in text and "FAILS" in text


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
                 "--limit", "2", "--steps", "3", "--draws", "2", "--sanity-clips", "1", "--ig-steps", "4",
                 "--occlusion-window", "32", "--out", str(out), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "grad-cam block5" in printed and "smooth random map" in printed and "occlusion" in printed
    doc = json.loads(out.read_text())
    assert doc["n_clips"] == 2 and doc["methods"]["smooth random map"]["n_boxed"] == 2 and doc["draws"] == 2


def test_command_refuses_a_bad_fill(tmp_path, capsys):
    assert main(["explain-report", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--fill", "loud"]) == 2
    assert "--fill" in capsys.readouterr().err
    assert main(["explain-report", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--draws", "0"]) == 2
    assert "--draws" in capsys.readouterr().err
