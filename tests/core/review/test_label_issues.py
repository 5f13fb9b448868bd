"""Label-error ranking: out-of-fold probabilities, confident learning, and its scoring against planted errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from core.errors import InputError
from core.review.label_issues import out_of_fold_probabilities, rank_label_issues, read_truth, score_ranking


def planted(n_per_class: int = 40, n_classes: int = 4, n_flipped: int = 8, seed: int = 0):
    """Well-separated Gaussian clusters with some labels flipped to another class: the truth is known."""
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(n_classes), n_per_class)
    centres = rng.normal(scale=4.0, size=(n_classes, 6))
    X = centres[true] + rng.normal(size=(len(true), 6))
    given = true.copy()
    flipped = rng.choice(len(true), size=n_flipped, replace=False)
    given[flipped] = (true[flipped] + rng.integers(1, n_classes, size=n_flipped)) % n_classes
    folds = np.tile(np.arange(1, 6), len(true) // 5 + 1)[: len(true)]
    rng.shuffle(folds)
    return X, given, folds, set(flipped.tolist())


def test_out_of_fold_probabilities_never_see_the_clip_label():
    X, given, folds, flipped = planted()
    P = out_of_fold_probabilities(X, given, folds)
    assert P.shape == (len(given), 4)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-6)
    # a flipped clip sits in its true cluster: out of fold, its given label gets little probability
    idx = sorted(flipped)
    assert np.median(P[idx, given[idx]]) < 0.2
    # in-sample the flipped label would be partly learned; out of fold it is not: most flipped clips are
    # predicted as their true class
    assert np.mean(P[idx].argmax(axis=1) != given[idx]) >= 0.75


def test_confident_learning_ranks_the_planted_errors_first():
    X, given, folds, flipped = planted()
    P = out_of_fold_probabilities(X, given, folds)
    order, flagged, quality = rank_label_issues(given, P)
    assert sorted(order.tolist()) == list(range(len(given)))
    assert np.all(np.diff(quality[order][flagged[order]]) >= 0)  # flagged, then by quality
    top = set(order[: len(flipped)].tolist())
    assert len(top & flipped) >= 0.75 * len(flipped)
    s = score_ranking([str(i) for i in order], {str(i) for i in flipped}, ks=(5, 10))
    assert s["recall_at_n_wrong"] >= 0.75 > s["random_recall_at_n_wrong"]


def test_a_random_ranking_scores_at_chance():
    rng = np.random.default_rng(1)
    ids = [str(i) for i in range(1000)]
    wrong = set(rng.choice(ids, size=50, replace=False).tolist())
    s = score_ranking(list(rng.permutation(ids)), wrong, ks=(100,))
    assert s["random_precision"] == 0.05
    assert abs(s["precision_at"][100] - 0.05) < 0.05


def test_one_fold_is_refused():
    X, given, _, _ = planted()
    with pytest.raises(InputError, match="two folds"):
        out_of_fold_probabilities(X, given, np.ones(len(given)))


def test_truth_file_is_read_only_where_it_exists(tmp_path):
    assert read_truth(tmp_path) is None
    (tmp_path / "meta").mkdir()
    with open(tmp_path / "meta" / "label_truth.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "given_target", "given_category", "true_target", "true_category"])
        w.writerow(["1-00001-A-0.wav", 3, "clock_tick", 0, "siren"])
    assert read_truth(tmp_path) == {"1-00001-A-0.wav": 0}


def test_the_command_ranks_scores_and_refuses_bad_input(tmp_path, monkeypatch, capsys):
    import torch

    from core.audio.features import AudioConfig
    from core.models.checkpoint import save_checkpoint
    from core.cli import main
    from core.data.datasets import open_dataset
    from core.audio.demo_data import make_demo_data
    from core.models import build_model

    monkeypatch.setenv("EXPLORER_CACHE", str(tmp_path / "cache"))
    demo = make_demo_data(tmp_path / "demo", clips_per_class=2, workers=1, show_bar=False)
    data = open_dataset(demo)
    torch.manual_seed(0)
    model = build_model("secnn", {"channels": [4, 4, 8, 8, 8], "head": [16]}, n_classes=len(data.classes))
    save_checkpoint(tmp_path / "ckpt", model, AudioConfig(), data.classes, {})
    wrong = data.records[3]
    with open(demo / "meta" / "label_truth.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["filename", "given_target", "given_category", "true_target", "true_category"])
        w.writerow([wrong.clip_id, wrong.label, wrong.category, (wrong.label + 1) % 10, "?"])
    out_csv = tmp_path / "ranking.csv"
    assert main(["label-issues", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(demo), "--top", "3",
                 "--out", str(out_csv)]) == 0
    out = capsys.readouterr().out
    assert "method: out-of-fold probabilities" in out and "confident learning" in out
    assert "precision at 10" in out and "recall at 1" in out and "random ranking: 0.050" in out
    assert "names no test fold: every figure below is in-sample" in out and "in-sample, every clip" in out
    with open(out_csv) as f:
        assert len(list(csv.DictReader(f))) == len(data.records)
    assert main(["label-issues", "--checkpoint", str(tmp_path), "--data", str(demo)]) == 2
