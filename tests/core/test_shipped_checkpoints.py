"""The checkpoints that ship: they load safely, and evaluating them gives what the model card states."""

import math

import pytest

from core.models.checkpoint import load_checkpoint
from core.data.datasets import open_dataset
from core.training.evaluate import evaluate, spread
from core.paths import CHECKPOINTS_DIR

SHIPPED = {"secnn": "secnn", "ast": "ast"}  # folder -> kind
SLICE = 24


@pytest.fixture(scope="module")
def fold5(demo_dir):
    return spread(open_dataset(demo_dir).select(5), SLICE)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_checkpoint_is_small_and_loads_as_its_kind(name):
    folder = CHECKPOINTS_DIR / name
    assert sum(f.stat().st_size for f in folder.iterdir()) < 20e6
    loaded = load_checkpoint(folder, kind=SHIPPED[name])
    assert loaded.meta["test_fold"] == 5 and loaded.meta["train_folds"] == [1, 2, 3, 4]
    decoders = folder / "decoders"
    if decoders.exists():  # shipped decoders (python -m core fit-decoders): small, every flavour of every tap
        from core.interpret.decoder_fit import decoder_taps, saved_taps

        assert sum(f.stat().st_size for f in decoders.iterdir()) < 5e6
        assert saved_taps(folder) == [t.name for t in decoder_taps(loaded.model)]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_accuracy_on_a_slice_of_fold_5_matches_the_card(name, fold5):
    loaded = load_checkpoint(CHECKPOINTS_DIR / name)
    stated = loaded.meta["evaluation"]["accuracy"]
    card = (CHECKPOINTS_DIR / "README.md").read_text()
    assert f"{100 * stated:.1f} %" in card, "the model card must state the accuracy saved in checkpoint.json"
    measured = evaluate(loaded, fold5)["accuracy"]
    noise = 3 * math.sqrt(stated * (1 - stated) / len(fold5)) + 1 / len(fold5)
    assert abs(measured - stated) <= noise, (measured, stated)


def test_se_blocks_matter(fold5):
    loaded = load_checkpoint(CHECKPOINTS_DIR / "secnn")
    plain = evaluate(loaded, fold5)["accuracy"]
    with loaded.model.se_bypassed():
        bypassed = evaluate(loaded, fold5)["accuracy"]
    assert bypassed < plain - 0.3
    assert loaded.meta["evaluation_se_bypassed"]["accuracy"] < loaded.meta["evaluation"]["accuracy"] - 0.3


def test_the_shortcut_checkpoint_ships_small_with_its_card():
    """The positive control (core.audio.shortcut_data): a small SE-CNN trained on the set with the planted tone."""
    from core.audio.shortcut_data import SHORTCUT_CLASS

    folder = CHECKPOINTS_DIR / "shortcut"
    assert sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) < 2e6
    loaded = load_checkpoint(folder, kind="secnn")
    assert SHORTCUT_CLASS in loaded.classes and loaded.meta["test_fold"] == 5
    assert "make-shortcut-data" in loaded.meta["data"]
    card = (CHECKPOINTS_DIR / "README.md").read_text()
    assert f"{100 * loaded.meta['evaluation']['accuracy']:.1f} %" in card
    assert "shortcut-report --checkpoint checkpoints/shortcut" in card
