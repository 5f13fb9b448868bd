
import librosa
import numpy as np
import pytest
import soundfile as sf

from core.audio.features import (AudioConfig, check_audio, feature_steps, fix_frames, load_audio, log_mel,
                        mel_db_to_audio, mel_power, power_to_db, standardise)
from core.errors import InputError

SR = 22050


def tone(duration_s=1.0, sr=SR, f=440.0, channels=1):
    t = np.arange(int(duration_s * sr)) / sr
    y = 0.5 * np.sin(2 * np.pi * f * t).astype(np.float32)
    return y if channels == 1 else np.stack([y * (k + 1) / channels for k in range(channels)])


def write(path, y, sr=SR, subtype="PCM_16"):
    sf.write(path, y.T if y.ndim == 2 else y, sr, subtype=subtype)
    return path


def test_mel_equals_librosa():
    cfg = AudioConfig(sr=SR)
    y = np.random.default_rng(0).standard_normal(SR * 2).astype(np.float32) * 0.1
    ours = mel_power(y, cfg)
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=2048, hop_length=512, n_mels=128,
                                         fmin=20.0, fmax=SR / 2, power=2.0)
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-5 * ref.max())


def test_log_mel_steps_and_shape():
    cfg = AudioConfig()
    y = tone(5.0, sr=cfg.sr)
    steps = feature_steps(y, cfg)
    X = log_mel(y, cfg)
    assert X.shape == (128, 431) and X.dtype == np.float32
    np.testing.assert_array_equal(steps["fixed"], X)
    assert steps["db"].max() == pytest.approx(0.0) and steps["db"].min() >= -80.0 - 1e-4
    assert abs(X.mean()) < 1e-4 and X.std() == pytest.approx(1.0, abs=1e-3)


def test_fix_frames_pads_with_minimum_and_truncates():
    X = np.arange(12, dtype=np.float32).reshape(3, 4) - 5
    padded = fix_frames(X, 6)
    assert padded.shape == (3, 6) and np.all(padded[:, 4:] == X.min())
    np.testing.assert_array_equal(fix_frames(X, 2), X[:, :2])


def test_standardise_formula():
    X = np.random.default_rng(1).normal(3, 2, (8, 10)).astype(np.float32)
    np.testing.assert_allclose(standardise(X), (X - X.mean()) / (X.std() + 1e-6), rtol=1e-5)


def test_griffin_lim_round_trip_keeps_the_pitch():
    cfg = AudioConfig(sr=SR)
    y = tone(1.0, f=1000.0)
    back = mel_db_to_audio(power_to_db(mel_power(y, cfg), cfg), cfg, n_iter=16)
    spectrum = np.abs(np.fft.rfft(back))
    peak_hz = np.fft.rfftfreq(len(back), 1 / SR)[np.argmax(spectrum)]
    assert abs(peak_hz - 1000.0) < 60  # within one mel band at 1 kHz


@pytest.mark.parametrize("fmt,subtype", [("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")])
def test_loads_common_formats_and_keeps_channels(tmp_path, fmt, subtype):
    path = write(tmp_path / f"a.{fmt}", tone(channels=2), subtype=subtype)
    clip = load_audio(path, AudioConfig())
    assert clip.n_channels == 2 and clip.sr == SR and not clip.is_silent
    assert clip.mono.shape == (SR,)
    resampled = load_audio(path, AudioConfig(), resample_to=44100)
    assert resampled.samples.shape == (2, 44100) and resampled.native_sr == SR


def test_mp3_loads(tmp_path):
    path = tmp_path / "a.mp3"
    try:
        sf.write(path, tone(), SR, format="MP3")
    except Exception:
        pytest.skip("this libsndfile cannot write mp3")
    assert load_audio(path).samples.shape[0] == 1


def test_silent_clip_loads_flagged(tmp_path):
    clip = load_audio(write(tmp_path / "s.wav", np.zeros(SR, np.float32)))
    assert clip.is_silent


# Every bad input gets the documented error, naming the file.
def bad_files(tmp_path):
    cases = {}
    cases["missing"] = (tmp_path / "nope.wav", "not found")
    (tmp_path / "text.wav").write_text("this is not audio at all\n" * 20)
    cases["not audio"] = (tmp_path / "text.wav", "not a readable audio file")
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty"] = (tmp_path / "empty.wav", "empty")
    cases["zero samples"] = (write(tmp_path / "zero.wav", np.zeros(0, np.float32)), "zero samples")
    nan = tone(); nan[100] = np.nan
    cases["nan"] = (write(tmp_path / "nan.wav", nan, subtype="FLOAT"), "NaN or infinite")
    inf = tone(); inf[5] = np.inf
    cases["inf"] = (write(tmp_path / "inf.wav", inf, subtype="FLOAT"), "NaN or infinite")
    cases["3 channels"] = (write(tmp_path / "three.wav", tone(channels=3)), "3 channels")
    cases["too long"] = (write(tmp_path / "long.wav", np.zeros(4000 * 61, np.float32), sr=4000), "limit is 60 s")
    cases["low sr"] = (write(tmp_path / "low.wav", tone(sr=3000), sr=3000), "below the minimum")
    cases["too short"] = (write(tmp_path / "short.wav", np.ones(1, np.float32) * 0.1), "minimum")
    full = write(tmp_path / "full.wav", tone())
    (tmp_path / "trunc.wav").write_bytes(full.read_bytes()[:30])
    cases["truncated header"] = (tmp_path / "trunc.wav", "")
    return cases


@pytest.mark.parametrize("case", ["missing", "not audio", "empty", "zero samples", "nan", "inf", "3 channels",
                                  "too long", "low sr", "too short", "truncated header"])
def test_bad_input_raises_documented_error(tmp_path, case):
    path, words = bad_files(tmp_path)[case]
    with pytest.raises(InputError) as info:
        load_audio(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value) and words in str(info.value)


def test_check_audio_refuses_arrays():
    with pytest.raises(InputError, match="zero samples"):
        check_audio(np.zeros(0, np.float32))
    with pytest.raises(InputError, match="float"):
        check_audio(np.zeros(10, np.int16))
    with pytest.raises(InputError, match="channels"):
        check_audio(np.zeros((4, 10), np.float32))
