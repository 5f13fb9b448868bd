"""fit-decoders and decoder-report: every tap fitted, scored, saved beside the checkpoint and scored again."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import InputError


@pytest.fixture
def tiny_setup(tmp_path, real_secnn, real_audio_cfg):
    """A tiny SE-CNN checkpoint and a 3-class folder dataset of 15 noise clips (3 per fold)."""
    import soundfile as sf

    from core.models.checkpoint import load_checkpoint, save_checkpoint
    from core.data.datasets import ClipRecord

    loaded = load_checkpoint(save_checkpoint(tmp_path / "ckpt", real_secnn, real_audio_cfg, ["a", "b", "c"]))
    rng = np.random.default_rng(0)
    records = []
    for i in range(15):
        path = tmp_path / f"{i}.wav"
        label = i % 3
        tone = np.sin(2 * np.pi * (500 + 1000 * label) * np.arange(8000) / 8000)
        sf.write(path, (0.1 * rng.standard_normal(8000) + 0.2 * tone).astype(np.float32), 8000)
        records.append(ClipRecord(path.name, path, label, "abc"[label], i // 3 + 1))

    class Data:
        root = tmp_path
        classes = ["a", "b", "c"]

        def __init__(self):
            self.records = records

        def select(self, folds=None):
            return [r for r in records if folds is None or r.fold == folds]

        def boxes(self, clip_id):
            return []

    return loaded, Data()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fit_decoders_saves_every_tap_and_the_report_scores_them_again(tiny_setup, tmp_path):
    from core.data.cache import ArrayCache
    from core.interpret import nmf
    from core.interpret.decoder_fit import fit_decoders, format_table, load_tap, saved_taps
    from core.interpret.decoder_report import evaluate_saved

    loaded, data = tiny_setup
    cache = ArrayCache(tmp_path / "cache")
    result = fit_decoders(loaded, data, taps=["block2", "block3"], progress=False, cache=cache, max_steps=40,
                          warmup=10)
    assert (result["test_fold"], result["val_fold"], result["n_train"]) == (5, 4, 9)
    assert saved_taps(loaded.folder) == ["block2", "block3"]
    row = result["taps"]["block2"]
    for flavour in nmf.FLAVOURS:
        f = row["flavours"][flavour]
        assert f["relative_error"]["low"] <= f["relative_error"]["value"] <= f["relative_error"]["high"]
        assert f["beats_mean"] == (f["vs_mean"]["high"] < 0)
    assert row["zeros"]["value"] == 1.0 and row["oracle"]["k"] == 4 and len(row["spread"]) == 4
    sets = load_tap(loaded.folder, "block2")
    assert sets[nmf.ORACLE]["basis"].shape == (32, 4) and sets["report"]["flavours"] == row["flavours"]
    assert json.loads((loaded.folder / "decoders" / "report.json").read_text())["taps"].keys() == {"block2", "block3"}
    # scored again from disk: the same numbers
    again = evaluate_saved(loaded, data, progress=False, cache=cache)
    for flavour in nmf.FLAVOURS:
        assert again["taps"]["block2"]["flavours"][flavour] == row["flavours"][flavour]
    assert again["taps"]["block2"]["mean"] == row["mean"]
    table = format_table(again)
    assert "block2" in table and "mel-gaussian" in table and "oracle" in table
    # refitting one tap keeps the other's row
    fit_decoders(loaded, data, taps=["block3"], progress=False, cache=cache, max_steps=20, warmup=5)
    assert set(json.loads((loaded.folder / "decoders" / "report.json").read_text())["taps"]) == {"block2", "block3"}


def test_a_registered_mel_time_model_gets_its_decoder_targets_too(tiny_setup, tmp_path):
    """The registry offers decoders to a registered model whose input is (1, n_mels, n_frames); their target
    spectrograms come from its own front end (they raised an InputError before), equal to ours for the same one."""
    import dataclasses

    from core.audio.features import log_mel
    from core.data.cache import ArrayCache
    from core.interpret.decoder_fit import tap_data
    from core.interpret.registry import usable

    loaded, data = tiny_setup
    cfg = loaded.audio_cfg
    adapter = dataclasses.replace(loaded, kind="adapter", input_fn=lambda y, sr: log_mel(y, cfg)[None])
    assert usable(adapter, "Decoders") == ["NMF-style decoders"]
    records = data.records[:3]
    _, X = tap_data(adapter, records, ["block2"], cache=ArrayCache(tmp_path / "a"), progress=False)
    _, X_ours = tap_data(loaded, records, ["block2"], cache=ArrayCache(tmp_path / "b"), progress=False)
    assert X.shape == (3, cfg.n_mels, cfg.n_frames)
    np.testing.assert_allclose(X, X_ours)


def test_fit_decoders_refuses_bad_taps_and_folds(tiny_setup):
    from core.interpret.decoder_fit import fit_decoders
    from core.interpret.decoder_report import evaluate_saved

    loaded, data = tiny_setup
    with pytest.raises(InputError, match="not a conv or token tap"):
        fit_decoders(loaded, data, taps=["logits"], progress=False)
    with pytest.raises(InputError, match="must differ"):
        fit_decoders(loaded, data, test_fold=3, val_fold=3, progress=False)
    with pytest.raises(InputError, match="fit-decoders first"):
        evaluate_saved(loaded, data, progress=False)


def test_the_commands_exit_2_on_bad_input(tmp_path, capsys):
    from core.cli import main

    assert main(["fit-decoders", "--checkpoint", str(tmp_path / "nothing"), "--data", str(tmp_path)]) == 2
    assert main(["decoder-report", "--checkpoint", str(tmp_path / "nothing"), "--data", str(tmp_path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error:") for line in lines)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_clip_read_back_is_stored_and_decoders_fitted_again_are_another_entry(tiny_setup, tmp_path):
    """stored_reconstructions: each flavour's error is ||X - X_hat|| / ||X|| of what it returns; a second call reads
    the disk; refitting the decoders is a new entry, not the old read-back."""
    from core.data.cache import ArrayCache
    from core.interpret import nmf
    from core.interpret.decoder_fit import fit_decoders
    from core.interpret.stored import stored_reconstructions

    loaded, data = tiny_setup
    cache = ArrayCache(tmp_path / "cache")
    fit_decoders(loaded, data, taps=["block3"], progress=False, cache=cache, max_steps=20, warmup=5)
    path = str(data.records[0].path)
    misses = cache.stats.misses
    rec = stored_reconstructions(loaded, path, loaded.folder, "block3", cache=cache)
    assert set(rec["recon"]) == set(rec["activity"]) == set(rec["errors"]) == {*nmf.FLAVOURS, nmf.ORACLE}
    X = rec["target"]
    assert X.shape == rec["recon"]["nonneg-linear"].shape and 0 <= X.min() and X.max() <= 1
    assert rec["floor_db"] < rec["peak_db"]
    for flavour, X_hat in rec["recon"].items():
        assert rec["errors"][flavour] == pytest.approx(np.linalg.norm(X - X_hat) / np.linalg.norm(X), rel=1e-5)
    assert cache.stats.misses == misses + 1
    again = stored_reconstructions(loaded, path, loaded.folder, "block3", cache=cache)
    assert cache.stats.misses == misses + 1 and again["errors"] == rec["errors"]
    fit_decoders(loaded, data, taps=["block3"], progress=False, cache=cache, max_steps=5, warmup=2)
    stored_reconstructions(loaded, path, loaded.folder, "block3", cache=cache)
    assert cache.stats.misses == misses + 2
