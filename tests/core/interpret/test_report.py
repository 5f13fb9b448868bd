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


def test_table_on_a_real_ast_with_baselines_distractors_fills_pairs_and_sanity(real_ast, real_audio_cfg):
    loaded = as_loaded(real_ast, real_audio_cfg)
    records = [SimpleNamespace(clip_id=f"c{i}", label=i % 3) for i in range(3)]
    features = np.random.default_rng(0).standard_normal((3, 32, 64)).astype(np.float32)
    n_samples = loaded.n_samples
    audio = [0.1 * np.random.default_rng(i).standard_normal(n_samples).astype(np.float32) for i in range(3)]
    boxes = lambda clip_id: [(0.0, 0.5, 0.0, 4000.0)] if clip_id != "c2" else []
    distractors = lambda clip_id: [(0.6, 0.9, 0.0, 4000.0)] if clip_id == "c0" else []  # planted
    fills = {"blur": "blur", "training mean": np.zeros(32, dtype=np.float32)}
    table = faithfulness_table(loaded, records, features, audio=audio, boxes=boxes, distractor_boxes=distractors,
                               fills=fills, n_steps=4, draws=2, sanity_clips=2, reference=False, progress=False)
    rows = table["rows"]
    assert list(rows) == names(report_runs(loaded, reference=False)) + [SMOOTH_RANDOM, CHANCE]
    assert table["fills"] == ["blur", "training mean"] and len(table["targets"]) == 3
    for name, row in rows.items():
        if name == CHANCE:
            assert row["deletion_auc"] is None and 0 < row["pointing_game"][0] < 1 and row["n_boxed"] == 2
            continue
        assert row["n_clips"] == 3 and row["n_boxed"] == 2 and row["n_distracted"] == 1
        for fill in fills:
            mean, low, high = row["deletion_auc"][fill]
            assert 0 <= low <= mean <= high <= 1 and len(row["per_clip"][f"deletion/{fill}"]) == 3
        assert row["distractor_hits"][0] in (0.0, 0.5, 1.0)
        assert set(row["lmac"]) == {"AI", "AD", "AG", "FF", "Fid-In"}
    energy = rows["energy (input itself)"]
    assert energy["sanity"]["signed_rho"] == pytest.approx(1.0) and energy["baseline"]
    assert energy["sanity"]["outcome"] == "inconclusive"  # 2 clips are too few for any verdict
    assert rows[SMOOTH_RANDOM]["draws"] == 2 and rows[SMOOTH_RANDOM]["sanity"] is None
    pair = table["paired"]["rollout (mean)"]["blur"]["deletion_vs_energy"]
    assert pair["word"] in ("beats", "ties", "loses") and pair["n_clips"] == 3
    assert "energy (input itself)" not in table["paired"]
    text = format_table(table)
    assert "rollout (mean)" in text and SMOOTH_RANDOM in text and "inconclusive" in text
    assert "deletion AUC ↓ (training mean)" in text and "L-MAC, published" in text


def test_slices_are_class_stratified_and_leave_planted_flips_out():
    from core.interpret.report import report_slice

    records = [SimpleNamespace(clip_id=f"{i}.wav", label=i % 3) for i in range(30)]  # 10 per class
    chosen = report_slice(records, 9, flipped={"0.wav", "3.wav"})
    assert [sum(r.label == c for r in chosen) for c in range(3)] == [3, 3, 3]
    assert not {"0.wav", "3.wav"} & {r.clip_id for r in chosen}
    assert len(report_slice(records, None, flipped={"0.wav"})) == 29


def test_command_prints_and_saves_the_table(tmp_path, real_secnn, real_audio_cfg, capsys):
    from core.models.checkpoint import save_checkpoint

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
    assert "completeness gap" in printed and "blur" in printed and "training mean" not in printed  # one fold only
    doc = json.loads(out.read_text())
    assert doc["n_clips"] == 2 and doc["rows"]["smooth random map"]["n_boxed"] == 2 and doc["draws"] == 2
    assert len(doc["completeness"]["per_clip"]) == 2 and doc["target"] == "predicted class"

    # A cut run resumes from its journal: one clip's line kept, the other cut short as a killed process leaves it.
    journal = tmp_path / "report.clips.jsonl"
    key, first, second = journal.read_text().splitlines()
    journal.write_text("\n".join([key, first, second[: len(second) // 2]]))  # no newline after the cut
    (tmp_path / "resumed.clips.jsonl").write_text(journal.read_text())
    args = ["explain-report", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(tmp_path / "data"),
            "--limit", "2", "--steps", "3", "--draws", "2", "--sanity-clips", "1", "--ig-steps", "4",
            "--occlusion-window", "32", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "resumed.json")]) == 0
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    untimed = lambda d: {k: d[k] for k in ("paired", "completeness", "targets")} | {"rows": {
        name: {f: v for f, v in row.items() if f != "seconds_per_clip"} for name, row in d["rows"].items()}}
    assert untimed(resumed) == untimed(doc)
    lines = (tmp_path / "resumed.clips.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["clip_id"] == "5-1-x.wav"  # the cut clip scored again
    # another setting is another run: the old journal is set aside, not mixed in
    assert main(args + ["--out", str(tmp_path / "resumed.json"), "--seed", "1"]) == 0
    assert (tmp_path / "resumed.clips.jsonl.old").exists()


def test_command_refuses_bad_options(tmp_path, capsys):
    assert main(["explain-report", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--top-percent", "0"]) == 2
    assert "--top-percent" in capsys.readouterr().err
    assert main(["explain-report", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--draws", "0"]) == 2
    assert "--draws" in capsys.readouterr().err
