"""One clip's map and scorecard, kept in the on-disk cache, so a restarted app reads them.

The explorer's cached functions (``explorer/cached.py``: ``method_map``,
``scorecard``) and ``python -m core warm-cache`` call these, so what the
warm-up stores is what a page reads. An entry is keyed like every other one
(:mod:`core.data.cache`): the checkpoint, the clip's file (:func:`clip_fingerprint`:
its path, size and modification time), the preprocessing, and what was computed
(method, parameters, class, channel).

>>> CHANNELS
('mix', 'left', 'right')
>>> channel_of(np.array([[1.0, 3.0], [3.0, 5.0]], dtype=np.float32), "mix")
array([2., 4.], dtype=float32)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from core.errors import InputError

__all__ = ["CHANNELS", "clip_fingerprint", "channel_of", "clip_samples", "clip_input", "clip_spectrogram",
           "stored_map", "stored_scorecard"]

CHANNELS = ("mix", "left", "right")  # "mix" is what the models see


def clip_fingerprint(path: str | Path) -> str:
    """A clip file as a cache key: its resolved path, size and modification time (a rewritten file is another key)."""
    stat = os.stat(path)
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def channel_of(samples: np.ndarray, channel: str) -> np.ndarray:
    """One channel of ``(n_channels, n_samples)`` samples: ``"mix"`` (the mean), ``"left"`` or ``"right"``.

    A mono clip gives its one channel for every pick.
    """
    if channel not in CHANNELS:
        raise InputError("channel", f"{channel!r} is not one of {', '.join(CHANNELS)}")
    if channel == "mix" or samples.shape[0] == 1:
        return samples.mean(axis=0, dtype=np.float32)
    return samples[{"left": 0, "right": 1}[channel]]


def clip_samples(path: str | Path, sr: int) -> np.ndarray:
    """A clip's channels at ``sr``: np.ndarray [shape=(n_channels, n_samples)], float32 (what the app plays)."""
    from core.audio.features import AudioConfig, load_audio

    return load_audio(path, AudioConfig(sr=sr), resample_to=sr).samples


def clip_input(loaded, path: str | Path, channel: str = "mix") -> np.ndarray:
    """The model's own input for one clip (:meth:`core.models.checkpoint.Loaded.input`), without the batch axis."""
    sr = loaded.audio_cfg.sr
    return loaded.input(channel_of(clip_samples(path, sr), channel), sr)


def clip_spectrogram(loaded, path: str | Path, channel: str = "mix") -> np.ndarray:
    """The spectrogram the model sees, on our axes (:meth:`core.models.checkpoint.Loaded.spectrogram`)."""
    sr = loaded.audio_cfg.sr
    return loaded.spectrogram(channel_of(clip_samples(path, sr), channel), sr)


def _key(cache, loaded, path, extra: dict) -> str:
    from core.data.cache import checkpoint_fingerprint

    return cache.key(checkpoint=checkpoint_fingerprint(loaded.folder), dataset=clip_fingerprint(path),
                     preprocessing=loaded.audio_cfg.to_dict(), extra=extra)


def stored_map(loaded, path: str | Path, method_id: str, params: dict, target: int, channel: str = "mix", *,
               cache=None) -> np.ndarray:
    """A method's map of one clip for class ``target`` (:meth:`core.interpret.registry.MethodSpec.explain`), stored.

    Parameters
    ----------
    loaded : core.models.checkpoint.Loaded
    path : str or Path
        The clip's audio file.
    method_id : str
        A method of :data:`core.interpret.registry.METHODS`.
    params : dict
        Its parameters; missing ones take their defaults (the key holds them all).
    target : int
    channel : {"mix", "left", "right"}
    cache : core.data.cache.ArrayCache or None
        ``None``: :func:`core.data.cache.default_cache`.

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32 in [0, 1], NaN where the method covers no cell
    """
    import torch

    from core.data.cache import default_cache
    from core.interpret.registry import method

    spec = method(method_id)
    resolved = spec.resolve(loaded, params)
    cache = default_cache() if cache is None else cache
    key = _key(cache, loaded, path, {"what": "map", "method": method_id, "params": resolved, "target": int(target),
                                     "channel": channel})

    def compute() -> dict[str, np.ndarray]:
        x = torch.from_numpy(clip_input(loaded, path, channel))[None]  # (1, ...): e.g. (1, 1, n_mels, n_frames)
        return {"heat": spec.explain(loaded, x, int(target), resolved)}

    return cache.get_or_compute(key=key, compute=compute)["heat"]


def stored_scorecard(loaded, path: str | Path, method_id: str, params: dict, target: int, *, n_steps: int = 10,
                     draws: int = 3, cache=None, progress=None) -> dict:
    """:func:`core.interpret.scorecard.clip_scorecard` of a method's map of one clip (the mix-down), stored.

    Its curves are scored on the cells that hold sound
    (:func:`core.audio.frontend.sound_cells`) when some do not. ``progress(done, total)`` is passed on to
    ``clip_scorecard`` (whatever it raises ends the work, and nothing is stored).

    Returns
    -------
    dict
        As :func:`core.interpret.scorecard.clip_scorecard`: arrays as np.ndarray, the rest (floats, strings,
        lists, None) as JSON gives them back.
    """
    from core.audio.frontend import clip_limits, sound_cells
    from core.data.cache import default_cache
    from core.interpret.registry import method
    from core.interpret.scorecard import clip_scorecard

    spec = method(method_id)
    resolved = spec.resolve(loaded, params)
    cache = default_cache() if cache is None else cache
    key = _key(cache, loaded, path, {"what": "scorecard", "method": method_id, "params": resolved,
                                     "target": int(target), "n_steps": n_steps, "draws": draws})

    def compute() -> dict[str, np.ndarray]:
        from core.audio.features import AudioConfig, load_audio

        cfg = loaded.audio_cfg
        clip = load_audio(path, AudioConfig(sr=cfg.sr), resample_to=cfg.sr)
        x = loaded.spectrogram(channel_of(clip.samples, "mix"), cfg.sr)
        sound = sound_cells(clip_limits(clip.samples.shape[1], clip.native_sr, cfg), cfg)
        card = clip_scorecard(loaded.model, spec.bind(loaded, resolved), x, int(target), n_steps=n_steps, draws=draws,
                              sound=sound if sound.shape == np.shape(x) and not sound.all() else None,
                              progress=progress)
        arrays = {k: v for k, v in card.items() if isinstance(v, np.ndarray)}
        rest = {k: v for k, v in card.items() if k not in arrays}
        return {**arrays, "_json": np.array(json.dumps(rest, default=_plain))}

    stored = cache.get_or_compute(key=key, compute=compute)
    card = {k: v for k, v in stored.items() if k != "_json"}
    card.update(json.loads(str(stored["_json"])))
    return card


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
