"""Novelty scores: each formula against its definition, planted outliers recovered, the shipped SE-CNN's file."""

import json

import numpy as np
import pytest
import torch

from core.interpret import novelty as nv
from core.errors import InputError


def test_knn_distance_is_the_kth_smallest_distance_between_unit_vectors():
    rng = np.random.default_rng(0)
    bank, queries = rng.normal(size=(12, 5)), rng.normal(size=(4, 5))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    brute = np.array([np.sort(np.linalg.norm(unit(bank) - q, axis=1))[2] for q in unit(queries)])
    np.testing.assert_allclose(nv.knn_distance(bank, queries, k=3), brute, rtol=1e-6, atol=1e-9)
    with pytest.raises(InputError, match="k"):
        nv.knn_distance(bank, queries, k=13)


def test_mahalanobis_distance_is_the_smallest_quadratic_form_over_class_means():
    rng = np.random.default_rng(1)
    means, queries = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    a = rng.normal(size=(4, 4))
    precision = np.linalg.inv(a @ a.T + np.eye(4))
    brute = np.array([min((q - m) @ precision @ (q - m) for m in means) for q in queries])
    np.testing.assert_allclose(nv.mahalanobis_distance(means, precision, queries), brute, rtol=1e-10)


def test_baselines_are_minus_max_softmax_and_minus_logsumexp():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 0.0, 0.0]])
    scores = nv.baseline_scores(logits.numpy())
    np.testing.assert_allclose(scores["msp"], -torch.softmax(logits, 1).max(1).values.numpy(), rtol=1e-6)
    np.testing.assert_allclose(scores["energy"], -torch.logsumexp(logits, 1).numpy(), rtol=1e-6)


def test_separation_auroc_and_fpr_at_95():
    same = nv.separation(np.arange(100.0), np.arange(100.0))
    assert same["auroc"] == pytest.approx(0.5) and same["fpr_at_95"] == pytest.approx(0.95)
    apart = nv.separation(np.arange(100.0), np.arange(100.0) + 1000)
    assert apart["auroc"] == 1.0 and apart["fpr_at_95"] == 0.0


@pytest.mark.parametrize("method", nv.METHODS)
def test_planted_outliers_are_flagged_and_about_5_percent_of_new_inliers(method):
    """Three classes in 8-d; out-of-distribution points from a cluster none of them is in."""
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=4, size=(3, 8))

    def draw(n):
        y = rng.integers(0, 3, n)
        return centres[y] + rng.normal(size=(n, 8)), y

    train, y = draw(300)
    held, _ = draw(400)
    new, _ = draw(1000)
    outliers = rng.normal(size=(200, 8)) + 3 * centres.mean(axis=0) + 12  # far from every class
    fitted = nv.fit_novelty(train, y, np.arange(300) % 4, method=method, held_out=held)
    assert fitted.info["held_out_flagged"] == pytest.approx(0.05, abs=0.005)
    assert 0.02 <= np.mean(fitted.is_novel(fitted.score(new))) <= 0.09
    assert np.mean(fitted.is_novel(fitted.score(outliers))) > 0.95
    oof = nv.fit_novelty(train, y, np.arange(300) % 4, method=method)  # threshold out of fold
    assert 0.01 <= np.mean(oof.is_novel(oof.score(new))) <= 0.12


def test_saved_and_loaded_back(tmp_path):
    rng = np.random.default_rng(3)
    z = rng.normal(size=(40, 6))
    fitted = nv.fit_novelty(z, rng.integers(0, 2, 40), np.arange(40) % 2)
    where = nv.save_novelty(fitted, tmp_path)
    back = nv.load_novelty(tmp_path)
    assert back.threshold == fitted.threshold and back.method == fitted.method
    assert json.loads((where / "novelty.json").read_text())["fitted"]["n_clips"] == 40
    np.testing.assert_allclose(back.score(z[:5]), fitted.score(z[:5]), rtol=2e-2)
    (where / "novelty.json").write_text("{not json")
    with pytest.raises(InputError, match="novelty.json"):
        nv.load_novelty(tmp_path)
    assert nv.load_novelty(tmp_path / "nowhere") is None


def test_shipped_secnn_flags_few_fold_5_clips_and_most_made_up_sounds(demo_dir):
    """Done when: <= 10 % of fold 5 (a spread of 60 clips) and >= 80 % of 40 synthesised out-of-distribution clips."""
    from core.models.checkpoint import load_checkpoint
    from core.data.datasets import open_dataset
    from core.training.evaluate import spread
    from core.audio.ood_sets import ood_set
    from core.paths import CHECKPOINTS_DIR

    loaded = load_checkpoint(CHECKPOINTS_DIR / "secnn")
    found = nv.find_novelty(loaded.folder)
    assert found is not None and found.tap == nv.novelty_tap(loaded.model) == "pooled"
    assert sum(p.stat().st_size for p in (loaded.folder / nv.NOVELTY_DIR).iterdir()) < 300e3
    fold5 = spread(open_dataset(demo_dir).select(5), 60)
    vectors, _ = nv.embedding_vectors(loaded, fold5, tap=found.tap)
    clips, kinds = ood_set(("tones", "music", "noise", "chirps"), per_kind=10, seed=1)
    ood, _ = nv.audio_vectors(loaded, clips, 44100, tap=found.tap)
    assert np.mean(found.is_novel(found.score(vectors))) <= 0.10
    assert len(clips) >= 40 and np.mean(found.is_novel(found.score(ood))) >= 0.80


def test_fit_after_training_thresholds_on_the_validation_clips(tmp_path):
    from core.models import build_model, config_from_dict

    torch.manual_seed(0)
    model = build_model("secnn", config_from_dict("secnn", {"channels": [4, 4, 4, 4, 4], "head": [8, 6]}),
                        n_classes=2)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(30, 128, 64)).astype(np.float32)
    fitted = nv.fit_after_training(tmp_path, model, x[:20], np.arange(20) % 2, x[20:])
    assert nv.load_novelty(tmp_path).threshold == pytest.approx(fitted.threshold)
    assert fitted.info["n_held_out"] == 10 and "validation" in fitted.info["held_out"]


def test_fit_novelty_command_refuses_a_dataset_of_other_classes(tmp_path):
    import soundfile as sf

    from core.cli import main

    for name in ("zero", "one"):
        (tmp_path / name).mkdir()
        sf.write(tmp_path / name / "a.wav", np.zeros(4410, np.float32), 44100)
    assert main(["fit-novelty", "--checkpoint", "checkpoints/secnn", "--data", str(tmp_path)]) == 2
