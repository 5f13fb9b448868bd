"""The front end fitted to the data: read from real file headers, checked against the rules it states."""

import numpy as np
import pytest
import soundfile as sf

from core.audio.features import AudioConfig, log_mel
from core.data.datasets import open_dataset
from core.errors import InputError
from core.audio.frontend import Survey, empty_bands, fit_frontend, padding_share, propose_frontend, survey_recordings


def _write(path, seconds, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, (0.1 * np.sin(np.arange(int(seconds * sr)) * 0.3)).astype(np.float32), sr)


def test_survey_reads_durations_and_rates_and_the_proposal_fits_them(tmp_path):
    # 19 words at 8 kHz of 0.2-1.1 s and one 16 kHz clip of 3 s
    for i in range(19):
        _write(tmp_path / "word" / f"{i}.wav", 0.2 + 0.05 * i, 8000)
    _write(tmp_path / "long" / "0.wav", 3.0, 16000)
    records = open_dataset(tmp_path).records
    survey = survey_recordings(records)
    assert sorted(np.round(survey.durations_s, 2))[:2] == [0.2, 0.25] and survey.sample_rates.max() == 16000
    assert survey.summary()["sample_rates"] == {"8000": 19, "16000": 1}
    cfg = propose_frontend(survey)
    p95 = np.quantile(survey.durations_s, 0.95)
    assert cfg.sr == 8000 and cfg.fmax <= 4000 and cfg.n_mels == 64
    assert p95 <= cfg.clip_duration_s + cfg.hop_length / cfg.sr and cfg.clip_duration_s <= np.ceil(p95 * 2) / 2
    # the features a clip gets are the model's input size
    assert log_mel(np.zeros(4000, np.float32) + 1e-3, cfg).shape == (cfg.n_mels, cfg.n_frames)
    # overrides win: the 1 s at 8 kHz with bands up to 4 kHz
    one = propose_frontend(survey, clip_s=1.0, sr=8000, fmax_hz=3000, n_mels=40)
    assert (one.sr, one.fmax, one.n_mels, one.n_frames) == (8000, 3000.0, 40, 63)
    with pytest.raises(InputError, match="fmax"):
        propose_frontend(survey, sr=8000, fmax_hz=6000)
    cfg_card = fit_frontend(records)
    assert cfg_card[0] == cfg and cfg_card[1]["overrides"] == {} and 0 < cfg_card[1]["padding_share_median"] < 1
    assert fit_frontend(records, frontend="reference")[0] == AudioConfig()


def test_mixed_rates_keep_the_bands_below_most_recordings_nyquist():
    survey = Survey(np.full(20, 1.0), np.array([16000] * 10 + [8000] * 10))
    cfg = propose_frontend(survey)
    assert cfg.sr == 16000 and cfg.fmax == 4000.0  # half the clips hold nothing above 4 kHz


def test_padding_share_counts_the_frames_a_clip_does_not_fill():
    cfg = AudioConfig(sr=8000, n_fft=512, hop_length=128, n_frames=63, n_mels=32)
    y = np.random.default_rng(0).standard_normal(4000).astype(np.float32)  # 0.5 s
    X = log_mel(y, cfg)
    padded = np.all(X == X.min(), axis=0)  # log_mel pads with the clip's minimum
    share = padding_share(len(y), cfg)
    assert share == pytest.approx(padded.mean(), abs=1 / cfg.n_frames)
    assert share == pytest.approx(0.5, abs=0.02)


def test_empty_bands_are_those_above_the_recordings_nyquist():
    cfg = AudioConfig()
    mask = empty_bands(8000, cfg)
    from core.audio.features import mel_frequencies_hz

    f = mel_frequencies_hz(cfg)
    assert mask.any() and np.all(f[mask] > 4000) and np.all(f[~mask] <= 4000)


def test_deletion_orders_only_the_cells_that_hold_sound():
    from core.audio.frontend import clip_limits, sound_cells
    from core.interpret.faithfulness import deletion_curve, insertion_curve, perturbed_inputs

    cfg = AudioConfig(sr=8000, n_fft=512, hop_length=128, n_frames=16, n_mels=8)
    sound = sound_cells(clip_limits(1024, 4000, cfg), cfg)  # 9 frames of sound; bands above 2 kHz empty
    assert sound.sum() == sound[:, :9].sum() and not sound[:, 9:].any() and not sound[-1].any()
    x = np.arange(8 * 16, dtype=np.float32).reshape(8, 16)
    heat = np.zeros_like(x)
    heat[:, 9:] = 10.0  # a map that loves the padding
    heat[0, 0] = 5.0
    inputs, fractions = perturbed_inputs(x, heat, mode="deletion", n_steps=sound.sum(), fill=-1.0, sound=sound)
    assert fractions[1] == 1 / sound.sum()
    assert np.argwhere(inputs[1] != x).tolist() == [[0, 0]]  # its best cell holding sound goes first
    assert np.array_equal(inputs[-1][~sound], x[~sound]) and np.all(inputs[-1][sound] == -1.0)
    plain, _ = perturbed_inputs(x, heat, mode="deletion", n_steps=x.size, fill=-1.0)
    first = plain[1] != x
    assert first.sum() == 1 and not sound[first].any()  # without the mask, a padding cell goes first

    def predict(X):  # the probability of class 1 is the share of sound cells left at their value
        p = np.array([np.mean(X_i[sound] == x[sound]) for X_i in X])
        return np.stack([1 - p, p], axis=1)

    assert deletion_curve(predict, x, heat, target=1, n_steps=4, fill=-1.0, sound=sound).auc == pytest.approx(0.5)
    assert insertion_curve(predict, x, heat, target=1, n_steps=4, fill=-1.0, sound=sound).auc == pytest.approx(0.5)
