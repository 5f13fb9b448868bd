"""Property test: whatever bytes arrive, loading either works or raises the documented error."""

import io

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.audio.features import AudioConfig, load_audio
from core.errors import InputError

SUFFIXES = [".wav", ".flac", ".ogg", ".mp3", ".bin"]


def _real_file(fmt: str, subtype: str, channels: int) -> bytes:
    t = np.arange(8000) / 8000
    y = np.stack([0.3 * np.sin(2 * np.pi * 440 * (k + 1) * t) for k in range(channels)], axis=1)
    buf = io.BytesIO()
    sf.write(buf, y, 8000, format=fmt, subtype=subtype)
    return buf.getvalue()


REAL = {
    ".wav": _real_file("WAV", "PCM_16", 2),
    ".flac": _real_file("FLAC", "PCM_16", 1),
    ".ogg": _real_file("OGG", "VORBIS", 1),
}


def _load(tmp_path_factory, data: bytes, suffix: str):
    path = tmp_path_factory.mktemp("fuzz") / f"clip{suffix}"
    path.write_bytes(data)
    try:
        clip = load_audio(path, AudioConfig())
    except InputError as error:
        assert str(path) in str(error)
        return None
    assert clip.samples.ndim == 2 and clip.samples.shape[0] in (1, 2)
    assert np.isfinite(clip.samples).all()
    return clip


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(min_size=0, max_size=4096), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_never_raise_anything_else(tmp_path_factory, data, suffix):
    _load(tmp_path_factory, data, suffix)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from(sorted(REAL)), cut=st.floats(0.0, 1.0), flip=st.integers(0, 10_000))
def test_truncated_or_corrupted_real_files(tmp_path_factory, suffix, cut, flip):
    data = bytearray(REAL[suffix][: int(len(REAL[suffix]) * cut)])
    if data and flip % 3 == 0:  # corrupt one byte as well, a third of the time
        data[flip % len(data)] ^= 0xFF
    _load(tmp_path_factory, bytes(data), suffix)
