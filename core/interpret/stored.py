"""One clip's map, scorecard and decoder read-back, kept in the on-disk cache, so a restarted app reads them.

The explorer's cached functions (``explorer/cached.py``: ``method_map``,
``scorecard``, and ``cached_dataset.reconstructions``) and ``python -m core warm-cache`` call these, so what the
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
           "stored_map", "stored_scorecard", "stored_reconstructions"]

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
               cache=None, zero: bool = False):
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
    zero : bool
        Also return where the method's 0 lies on the map's [0, 1] scale
        (:meth:`~core.interpret.registry.MethodSpec.explain_signed`; stored with the map).

    Returns
    -------
    np.ndarray [shape=(n_mels, n_frames)], float32 in [0, 1], NaN where the method covers no cell; with ``zero``,
    the tuple (map, float)
    """
    import torch

    from core.data.cache import default_cache
    from core.interpret.registry import method

    spec = method(method_id)
    resolved = spec.resolve(loaded, params)
    cache = default_cache() if cache is None else cache
    key = _key(cache, loaded, path, {"what": "map", "method": method_id, "params": resolved, "target": int(target),
                                     "channel": channel, **({"signed": True} if spec.signed else {})})

    def compute() -> dict[str, np.ndarray]:
        x = torch.from_numpy(clip_input(loaded, path, channel))[None]  # (1, ...): e.g. (1, 1, n_mels, n_frames)
        heat, zero_at = spec.explain_signed(loaded, x, int(target), resolved)
        return {"heat": heat, "zero": np.float32(zero_at)}

    entry = cache.get_or_compute(key=key, compute=compute)
    if not zero:
        return entry["heat"]
    return entry["heat"], float(entry["zero"]) if "zero" in entry else 0.0  # stored before: a map that is unsigned


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


def stored_reconstructions(loaded, path: str | Path, source: str | Path, tap: str, *, cache=None) -> dict:
    """One clip (the mix-down) read back through the decoders of ``tap`` saved under ``source``, stored.

    ``source`` is the folder whose ``decoders/`` holds them (:func:`core.interpret.decoder_fit.load_tap`): the
    checkpoint's own, or one the Decoders page trained; the key holds every file there (name, size, time), so
    decoders fitted again are another entry.

    Returns
    -------
    dict
        ``"target"``: np.ndarray [shape=(n_mels, n_frames)], the clip on the decoders' [0, 1] scale;
        ``"floor_db"``, ``"peak_db"``: the clip's dB range (0 on the scale is ``floor_db``, 1 is ``peak_db``);
        and :func:`core.interpret.decoder_fit.read_back`'s ``"recon"``, ``"activity"`` and ``"errors"``.
    """
    from core.audio.features import feature_steps, fit_duration
    from core.data.cache import default_cache
    from core.interpret import nmf
    from core.interpret.decoder_fit import load_tap, read_back
    from core.models.taps import extract

    files = sorted(Path(source, nmf.DECODER_FOLDER).glob("*"))
    cache = default_cache() if cache is None else cache
    key = _key(cache, loaded, path, {"what": "reconstructions", "tap": tap, "decoders": [
        [f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]})
    parts = ("recon", "activity", "errors")

    def compute() -> dict[str, np.ndarray]:
        import torch

        cfg, model = loaded.audio_cfg, loaded.model
        mix = channel_of(clip_samples(path, cfg.sr), "mix")
        with torch.no_grad():
            value = extract(model, torch.from_numpy(loaded.input(mix, cfg.sr))[None], [tap])[tap][0].float().numpy()
        H = nmf.activation_matrix(nmf.time_activations(value[None], grid=getattr(model, "grid", None),
                                                       n_special=getattr(model, "n_special", 1)),
                                  n_frames=cfg.n_frames)  # (1, K, n_frames)
        X = nmf.nonnegative_target(loaded.spectrogram(mix, cfg.sr)[None])  # (1, n_mels, n_frames)
        S_db = feature_steps(fit_duration(mix, cfg.n_samples), cfg)["db"][:, : cfg.n_frames]
        back = read_back(load_tap(source, tap), tap, H, X)
        return {"target": X[0], "floor_db": np.float64(S_db.min()), "peak_db": np.float64(S_db.max()),
                **{f"{part}.{flavour}": value for part in parts for flavour, value in back[part].items()}}

    stored = cache.get_or_compute(key=key, compute=compute)
    out = {"target": stored["target"], "floor_db": float(stored["floor_db"]), "peak_db": float(stored["peak_db"]),
           **{part: {} for part in parts}}
    for name, value in stored.items():
        part, _, flavour = name.partition(".")
        if part in parts:
            out[part][flavour] = float(value) if part == "errors" else value
    return out


def _plain(value):
    """numpy scalars and arrays as JSON values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
