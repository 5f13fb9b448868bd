"""An upload is checked and kept by the hash of its bytes; a bad one leaves nothing behind."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from core.errors import InputError
from core.data.uploads import MAX_UPLOAD_MB, save_upload


def wav_bytes(y: np.ndarray, sr: int) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, y, sr, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def test_a_good_upload_is_kept_once_by_its_hash(tmp_path):
    data = wav_bytes(0.1 * np.sin(np.arange(8000) / 5.0), 16000)
    first = save_upload("mine.WAV", data, folder=tmp_path)
    again = save_upload("other-name.wav", data, folder=tmp_path)
    assert first == again and first.suffix == ".wav" and first.read_bytes() == data
    other = save_upload("mine.wav", wav_bytes(np.zeros(8000), 16000), folder=tmp_path)
    assert other != first and len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("name, data, words", [
    ("notes.txt", b"hello", "not an audio file type"),
    ("huge.wav", b"RIFF" + bytes(MAX_UPLOAD_MB * 2**20), f"the limit is {MAX_UPLOAD_MB} MB"),
    ("broken.wav", b"RIFF not really", "broken.wav"),
])
def test_a_bad_upload_names_the_file_and_leaves_nothing(tmp_path, name, data, words):
    with pytest.raises(InputError) as caught:
        save_upload(name, data, folder=tmp_path)
    assert str(caught.value).startswith(f"{name}:") and words in str(caught.value)
    assert list(tmp_path.iterdir()) == []
