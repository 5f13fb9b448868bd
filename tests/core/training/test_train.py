"""Training, evaluation and prediction on a tiny synthetic dataset (one epoch, tiny models)."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from core.audio.features import AudioConfig
from core.audio.augment import AugmentConfig
from core.models.checkpoint import load_checkpoint
from core.cli import main
from core.data.datasets import open_dataset
from core.errors import InputError
from core.training.evaluate import evaluate, metrics, predict_proba, spread
from core.training.train import parse_overrides, stratified_split, train

CFG = AudioConfig(sr=8000, n_mels=32, n_fft=256, hop_length=128, n_frames=32)
SECNN = {"channels": [4, 4, 4, 4, 4], "head": [8, 8], "reduction": 2}
AST = {"patch": 8, "dim": 8, "depth": 1, "heads": 2}


def _write_dataset(root, sr, n_per_class=5, seconds=0.5):
    """Two classes in class folders: a steady 600 Hz tone and noise bursts."""
    rng = np.random.default_rng(0)
    t = np.arange(int(sr * seconds)) / sr
    for name in ("bursts", "tone"):
        (root / name).mkdir(parents=True)
        for i in range(n_per_class):
            if name == "tone":
                y = 0.5 * np.sin(2 * np.pi * (600 + 20 * i) * t)
            else:
                y = rng.standard_normal(len(t)) * (np.sin(2 * np.pi * 3 * t) > 0.5) * 0.3
            y = y + 0.01 * rng.standard_normal(len(t))
            sf.write(root / name / f"{i}.wav", y.astype(np.float32), sr)
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return _write_dataset(tmp_path_factory.mktemp("tiny"), CFG.sr)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "secnn"
    meta = train(model="secnn", data=data, test_fold=5, epochs=1, out=out, batch_size=4, seed=0,
                 val_fraction=0.25, config=SECNN, audio_cfg=CFG, device="cpu", progress=False)
    return out, meta


def test_training_writes_a_checkpoint_with_its_story(trained, data):
    out, meta = trained
    loaded = load_checkpoint(out)
    assert loaded.kind == "secnn" and loaded.classes == ["bursts", "tone"] and loaded.audio_cfg == CFG
    m = loaded.meta
    assert m["train_folds"] == [1, 2, 3, 4] and m["test_fold"] == 5
    assert (m["n_train"], m["n_val"], m["n_test"]) == (6, 2, 2)
    assert m["epochs_run"] == 1 and len(m["history"]) == 1 and m["best_epoch"] == 1
    assert set(m["history"][0]) >= {"train_loss", "val_loss", "val_accuracy", "lr"}
    # kept to the millisecond: a one-epoch run on a fast machine takes well under 0.1 s (CI once saw 0.0)
    assert m["time_s"] > 0 and 0 <= m["load_time_s"] <= m["time_s"]
    assert m["data"] == str(data.resolve()) and m["parameters"] > 0
    assert m["evaluation"]["n_clips"] == 2 and "accuracy" in m["evaluation_se_bypassed"]
    from core.interpret.novelty import load_novelty

    novelty = load_novelty(out)  # fitted at the end of training: the training clips, thresholded on validation
    assert novelty.info["n_clips"] == 6 and novelty.info["n_held_out"] == 2 and novelty.tap == "pooled"
    # the saved evaluation is what evaluating the saved checkpoint gives
    again = evaluate(loaded, open_dataset(data).select(5))
    assert again["y_pred"] == m["evaluation"]["y_pred"]
    assert again["accuracy"] == pytest.approx(m["evaluation"]["accuracy"])


def test_training_is_repeatable_with_a_seed(trained, data, tmp_path):
    out, _ = trained
    train(model="secnn", data=data, test_fold=5, epochs=1, out=tmp_path / "again", batch_size=4, seed=0,
          val_fraction=0.25, config=SECNN, audio_cfg=CFG, device="cpu", progress=False)
    a, b = load_checkpoint(out).model.state_dict(), load_checkpoint(tmp_path / "again").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_an_ast_without_augmentation(data, tmp_path):
    meta = train(model="ast", data=data, test_fold=1, epochs=1, out=tmp_path / "ast", batch_size=3,
                 val_fraction=0.25, config=AST, audio_cfg=CFG, augment=AugmentConfig(0.0, 0.0, mixup_alpha=0.0),
                 device="cpu", progress=False)
    loaded = load_checkpoint(tmp_path / "ast")
    assert loaded.kind == "ast" and loaded.model.config.n_frames == 32 and meta["test_fold"] == 1
    assert "evaluation_se_bypassed" not in meta


def test_distillation_from_a_teacher(trained, data, tmp_path):
    """With weight 1 the student learns only from the teacher's soft targets: a different model."""
    teacher, _ = trained
    common = dict(model="ast", data=data, test_fold=5, epochs=1, batch_size=4, val_fraction=0.25, config=AST,
                  audio_cfg=CFG, device="cpu", progress=False, seed=0)
    meta = train(out=tmp_path / "taught", teacher=teacher, distill_weight=1.0, **common)
    train(out=tmp_path / "plain", **common)
    assert meta["teacher"] == {"checkpoint": teacher.name, "weight": 1.0, "temperature": 2.0}
    a = load_checkpoint(tmp_path / "taught").model.state_dict()
    b = load_checkpoint(tmp_path / "plain").model.state_dict()
    assert any(not torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(InputError, match="need w"):
        train(out=tmp_path / "bad", teacher=teacher, distill_weight=1.5, **common)


def test_cosine_schedule_with_spec_augment_decays_the_rate_to_zero(data, tmp_path):
    lr = 1e-3
    meta = train(model="secnn", data=data, test_fold=5, epochs=4, patience=4, out=tmp_path / "cos", batch_size=4,
                 lr=lr, schedule="cosine", val_fraction=0.25, config={**SECNN, "pool": "time-max"}, audio_cfg=CFG,
                 augment=AugmentConfig(time_masks=2, freq_masks=2), device="cpu", progress=False)
    rates = [row["lr"] for row in meta["history"]]  # the rate after each epoch's step
    expected = [lr * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    assert rates == pytest.approx(expected, abs=1e-12) and rates[-1] == pytest.approx(0.0, abs=1e-12)
    assert meta["schedule"] == "cosine" and meta["augment"]["time_masks"] == 2
    assert load_checkpoint(tmp_path / "cos").model.config.pool == "time-max"
    with pytest.raises(InputError, match="schedule"):
        train(model="secnn", data=data, test_fold=5, epochs=1, out=tmp_path / "bad", schedule="step",
              audio_cfg=CFG, progress=False)


class _Killed(Exception):
    """Stands for the process being killed right after an epoch's state reached the disk."""


def test_a_killed_run_resumes_at_its_last_epoch_and_ends_as_an_uninterrupted_one(data, tmp_path, monkeypatch):
    import core.training.train as train_module

    # mixup, noise/shift augmentation and the AST's dropout all draw from the generators the state must carry
    common = dict(model="ast", data=data, test_fold=5, batch_size=4, val_fraction=0.25, config={**AST, "dropout": 0.2},
                  audio_cfg=CFG, device="cpu", progress=False, patience=5, seed=3)
    whole = train(epochs=3, out=tmp_path / "whole", **common)

    saved = train_module.save_training_state
    calls = []

    def killed_after_two(out, state):
        path = saved(out, state)
        calls.append(len(state["history"]))
        if len(calls) == 2:
            raise _Killed
        return path

    monkeypatch.setattr(train_module, "save_training_state", killed_after_two)
    with pytest.raises(_Killed):
        train(epochs=3, out=tmp_path / "cut", **common)
    monkeypatch.setattr(train_module, "save_training_state", saved)
    assert not (tmp_path / "cut" / "checkpoint.json").exists() and calls == [1, 2]

    resumed = train(epochs=3, out=tmp_path / "cut", resume=True, **common)
    assert [row["epoch"] for row in resumed["history"]] == [1, 2, 3]
    for a, b in zip(whole["history"], resumed["history"]):
        assert (a["train_loss"], a["val_loss"], a["lr"]) == (b["train_loss"], b["val_loss"], b["lr"])
    w, r = (load_checkpoint(tmp_path / d).model.state_dict() for d in ("whole", "cut"))
    assert all(torch.equal(w[k], r[k]) for k in w)

    # other settings are refused, naming the one that differs; a finished run only evaluates again
    with pytest.raises(InputError, match="lr="):
        train(epochs=3, out=tmp_path / "cut", resume=True, lr=0.5, **common)
    again = train(epochs=3, out=tmp_path / "cut", resume=True, **common)
    assert again["history"] == resumed["history"]


def test_bad_arguments_are_refused(data, tmp_path):
    common = dict(data=data, out=tmp_path / "x", audio_cfg=CFG, progress=False)
    with pytest.raises(InputError, match="fold 7"):
        train(model="secnn", test_fold=7, epochs=1, **common)
    with pytest.raises(InputError, match="epochs"):
        train(model="secnn", test_fold=5, epochs=0, **common)
    with pytest.raises(InputError, match="unknown model"):
        train(model="vgg", test_fold=5, epochs=1, **common)


def test_stratified_split_keeps_class_shares():
    labels = np.array([0] * 20 + [1] * 10 + [2] * 1)
    train_idx, val_idx = stratified_split(labels, 0.2, np.random.default_rng(0))
    assert sorted(np.concatenate([train_idx, val_idx]).tolist()) == list(range(31))
    assert np.bincount(labels[val_idx], minlength=3).tolist() == [4, 2, 0]
    again = stratified_split(labels, 0.2, np.random.default_rng(0))[1]
    assert again.tolist() == val_idx.tolist()
    with pytest.raises(InputError):
        stratified_split(labels, 1.0, np.random.default_rng(0))


def test_no_batch_of_one_clip():
    from core.training.train import _batches
    sizes = [len(b) for b in _batches(np.arange(9), 4)]
    assert sizes == [4, 5]
    assert [len(b) for b in _batches(np.arange(8), 4)] == [4, 4]
    assert np.concatenate(_batches(np.arange(9), 4)).tolist() == list(range(9))


def test_parse_overrides():
    assert parse_overrides(["channels=16,32,64", "dropout=0.3", "head=[64]", "name=x"]) == {
        "channels": [16, 32, 64], "dropout": 0.3, "head": [64], "name": "x"}
    with pytest.raises(InputError):
        parse_overrides(["channels"])


def test_metrics_against_hand_counts():
    y_true = [0, 0, 1, 1, 2, 2]
    proba = np.array([[.8, .1, .1], [.3, .6, .1], [.1, .8, .1], [.2, .7, .1], [.1, .1, .8], [.5, .1, .4]])
    m = metrics(y_true, proba, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    a = m["per_class"][0]  # precision 1/2, recall 1/2
    assert (a["precision"], a["recall"], a["f1"], a["support"]) == pytest.approx((0.5, 0.5, 0.5, 2))
    b = m["per_class"][1]  # precision 2/3, recall 1
    assert (b["precision"], b["recall"], b["f1"]) == pytest.approx((2 / 3, 1.0, 0.8))
    from sklearn.metrics import roc_auc_score
    assert m["roc_auc_macro"] == pytest.approx(roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))


def test_predict_proba_rows_sum_to_one(trained):
    loaded = load_checkpoint(trained[0])
    p = predict_proba(loaded, np.random.default_rng(0).standard_normal((5, 32, 32)).astype(np.float32),
                      batch_size=2)
    assert p.shape == (5, 2) and np.allclose(p.sum(1), 1)


def test_spread_picks_evenly():
    assert spread(list(range(10)), 3) == [0, 4, 9]
    assert spread(list(range(4)), None) == [0, 1, 2, 3]


def test_evaluate_command_prints_and_saves(trained, data, tmp_path, capsys):
    out_json = tmp_path / "eval.json"
    code = main(["evaluate", "--checkpoint", str(trained[0]), "--data", str(data), "--fold", "5",
                 "--out", str(out_json), "--no-progress"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "confusion matrix" in printed and "bursts" in printed
    saved = json.loads(out_json.read_text())
    assert saved["n_clips"] == 2 and saved["fold"] == 5 and len(saved["confusion_matrix"]) == 2


def test_predict_command_top_k_and_bad_files(trained, data, tmp_path, capsys):
    clip = data / "tone" / "0.wav"
    assert main(["predict", "--checkpoint", str(trained[0]), "--top-k", "5", str(clip)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    # train fitted a novelty score, so the file's line ends with novel or familiar and the score
    assert lines[0].split()[:2] in ([str(clip), "novel"], [str(clip), "familiar"]) and "novelty" in lines[0]
    assert len(lines) == 3 + (lines[0].split()[1] == "novel")  # capped at 2 classes (+ what "novel" means)
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    assert main(["predict", "--checkpoint", str(trained[0]), str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]


def test_train_command_end_to_end(tmp_path, capsys):
    data = _write_dataset(tmp_path / "data", 44100, seconds=0.3)
    code = main(["train", "--model", "secnn", "--data", str(data), "--test-fold", "2", "--epochs", "1",
                 "--out", str(tmp_path / "ckpt"), "--batch-size", "8", "--val-fraction", "0.25",
                 "--config", "channels=4,4,4,4,4", "head=8", "--threads", str(torch.get_num_threads()),
                 "--no-progress"])
    assert code == 0
    err = capsys.readouterr().err
    assert "accuracy" in err and "beside the baseline (20 MFCC means and deviations" in err
    loaded = load_checkpoint(tmp_path / "ckpt")
    # the front end fitted to 0.3 s clips at 44.1 kHz: a 0.5 s window, not 5 s
    fitted = AudioConfig(n_frames=44)
    assert loaded.model.config.channels == (4, 4, 4, 4, 4) and loaded.audio_cfg == fitted
    baseline = loaded.meta["baseline"]
    assert baseline["model_accuracy"] == loaded.meta["evaluation"]["accuracy"]
    assert baseline["low"] <= baseline["difference"] <= baseline["high"]
    assert ("warning: the model does not beat" in err) == (not baseline["beats"])


def test_train_fits_the_front_end_to_short_clips_at_8_khz(tmp_path, capsys):
    """Done when: ``train`` on a short-clip set at 8 kHz records a front end fitted to it, flags overriding."""
    data = _write_dataset(tmp_path / "data", 8000, seconds=0.5)
    args = ["train", "--model", "secnn", "--data", str(data), "--test-fold", "2", "--epochs", "1",
            "--batch-size", "8", "--val-fraction", "0.25", "--config", "channels=4,4,4,4,4", "head=8", "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "fitted")]) == 0
    cfg = load_checkpoint(tmp_path / "fitted").audio_cfg
    assert (cfg.sr, cfg.fmax, cfg.n_mels, cfg.n_fft, cfg.hop_length, cfg.n_frames) == (8000, 4000.0, 64, 512, 128, 32)
    card = load_checkpoint(tmp_path / "fitted").meta["frontend"]
    assert card["survey"]["sample_rates"] == {"8000": 10} and card["padding_share_median"] == 0.0
    assert main(args + ["--out", str(tmp_path / "one-s"), "--clip-s", "1", "--fmax-hz", "3000"]) == 0
    cfg = load_checkpoint(tmp_path / "one-s").audio_cfg
    assert (cfg.fmax, cfg.n_frames) == (3000.0, 63) and load_checkpoint(tmp_path / "one-s").meta["frontend"][
        "padding_share_median"] == pytest.approx(0.49, abs=0.02)
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "bad"), "--fmax-hz", "9000"]) == 2
    assert "fmax" in capsys.readouterr().err


def _ship_checkpoint():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "scripts" / "ship_checkpoint.py"
    spec = importlib.util.spec_from_file_location("ship_checkpoint", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipping_keeps_the_training_runs_evaluation_and_the_decoders_of_unchanged_weights(trained, data, tmp_path):
    ship = _ship_checkpoint()
    src, meta = trained
    dst = tmp_path / "shipped"
    ship.main(src, dst, evaluate_on=data)
    shipped = load_checkpoint(dst).meta
    assert "dataset_fingerprint" not in shipped and shipped["data"].startswith("demo sound set")
    assert shipped["evaluation_training_set"] == {k: meta["evaluation"][k]
                                                  for k in ("n_clips", "accuracy", "macro_f1", "roc_auc_macro")}
    again = evaluate(load_checkpoint(dst), open_dataset(data).select(5))
    assert shipped["evaluation"]["y_pred"] == again["y_pred"] and shipped["n_test"] == 2
    assert set(shipped["evaluation_se_bypassed"]) == {"accuracy", "macro_f1", "roc_auc_macro"}
    # re-shipped (to refresh the meta) over a fitted decoder: same weights, so the decoder stays
    (dst / "decoders").mkdir()
    (dst / "decoders" / "fit.json").write_text("{}")
    ship.main(src, dst, evaluate_on=data)
    assert (dst / "decoders" / "fit.json").read_text() == "{}"
    assert load_checkpoint(dst).meta["evaluation_training_set"] == shipped["evaluation_training_set"]


def test_a_teacher_with_another_front_end_is_refused_before_any_clip_loads(trained, data, tmp_path, monkeypatch):
    """Distillation feeds the teacher the student's batch: a teacher that hears another input is refused."""
    import dataclasses

    import core.training.train

    teacher, _ = trained
    monkeypatch.setattr(core.training.train, "load_split", lambda *a, **k: pytest.fail("clips were loaded first"))
    with pytest.raises(InputError, match="takes another input than the student"):
        train(out=tmp_path / "student", teacher=teacher, model="secnn", data=data, test_fold=5, epochs=1,
              config=SECNN, audio_cfg=dataclasses.replace(CFG, n_mels=16), device="cpu", progress=False)
    assert not (tmp_path / "student").exists()
