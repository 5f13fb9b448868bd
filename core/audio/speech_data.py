"""``python -m core make-speech-data``: spoken digits from espeak-ng voices, a small real-shaped dataset.

    python -m core make-speech-data --out .cache/speech-digits

Ten digits ("zero" to "nine") said by six espeak-ng voices (one fold each: a held-out fold is an
unseen speaker), each take at its own speed and pitch, trimmed of silence, given a random level and
background noise at 10-30 dB SNR, and written at 8 kHz (16-bit WAV) like the spoken-digit sets
recorded on phones. The folder is in the CSV layout (:mod:`core.data.datasets`): ``labels.csv`` with
``path, label, fold, speaker, speed_wpm, pitch`` beside ``audio/``. It needs the ``espeak-ng``
program (Debian: ``apt-get install espeak-ng``); without it the command says so and stops.
The same seed gives the same set on the same espeak-ng.
"""

from __future__ import annotations

import argparse
import csv
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from core.errors import InputError

__all__ = ["DIGITS", "VOICES", "SR", "make_speech_data", "configure", "run"]

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
# fold -> espeak-ng voice (an accent and a voice variant): six speakers
VOICES = {1: "en-us+m3", 2: "en-gb+f2", 3: "en-gb-scotland+m1", 4: "en-029+f4", 5: "en-gb-x-rp+m7",
          6: "en-us-nyc+f1"}
SR = 8000


def _speak(word: str, voice: str, speed_wpm: int, pitch: int) -> tuple[np.ndarray, int]:
    """One word from espeak-ng as (samples, sample rate)."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(speed_wpm), "-p", str(pitch), "--stdout", word]
    try:
        wav = subprocess.run(cmd, check=True, capture_output=True, timeout=30).stdout
    except subprocess.CalledProcessError as error:
        raise InputError("espeak-ng", f"failed for voice {voice!r}: {error.stderr.decode(errors='replace')[:160]}")
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    return y, int(sr)


def make_speech_data(out: str | Path, *, takes: int = 10, seed: int = 0, progress: bool = True) -> Path:
    """Write the spoken-digit set into ``out`` (see the module docstring).

    Parameters
    ----------
    out : str or Path
        A new or empty folder.
    takes : int > 0
        Takes of each digit by each voice (600 clips at 10).
    seed : int

    Returns
    -------
    Path
        ``out``, which opens with :func:`core.data.datasets.open_dataset`.
    """
    import librosa

    if shutil.which("espeak-ng") is None:
        raise InputError("espeak-ng", "the espeak-ng program is not installed (Debian: apt-get install espeak-ng)")
    if takes < 1:
        raise InputError("--takes", f"need at least 1, got {takes}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise InputError(out, "exists and is not empty; choose a new folder")
    (out / "audio").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    jobs = [(fold, voice, digit, take) for fold, voice in VOICES.items() for digit in DIGITS for take in range(takes)]
    for fold, voice, digit, take in tqdm(jobs, desc="speaking", unit="clip", disable=not progress):
        speed, pitch = int(rng.integers(120, 220)), int(rng.integers(25, 75))
        y, sr = _speak(digit, voice, speed, pitch)
        y, _ = librosa.effects.trim(y, top_db=35)
        y = librosa.resample(y, orig_sr=sr, target_sr=SR, res_type="soxr_hq")
        y = y / (np.max(np.abs(y)) + 1e-9) * 10 ** (rng.uniform(-20, -3) / 20)  # a level -20 to -3 dBFS
        snr_db = rng.uniform(10, 30)
        noise = np.cumsum(rng.standard_normal(len(y))) if rng.random() < 0.5 else rng.standard_normal(len(y))
        noise = noise - noise.mean()
        noise *= np.sqrt(np.mean(y ** 2) / (np.mean(noise ** 2) + 1e-12)) * 10 ** (-snr_db / 20)
        name = f"audio/{fold}_{voice.replace('+', '-')}_{digit}_{take}.wav"
        sf.write(out / name, np.clip(y + noise, -1, 1).astype(np.float32), SR, subtype="PCM_16")
        rows.append({"path": name, "label": digit, "fold": fold, "speaker": voice, "speed_wpm": speed,
                     "pitch": pitch})
    with open(out / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path(".cache") / "speech-digits",
                        help="new folder to write (default .cache/speech-digits)")
    parser.add_argument("--takes", type=int, default=10, help="takes of each digit by each of the 6 voices")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from core.data.datasets import open_dataset

    out = make_speech_data(args.out, takes=args.takes, seed=args.seed, progress=not args.no_progress)
    print(f"{out}: {open_dataset(out).describe()}", file=sys.stderr)
    return 0
