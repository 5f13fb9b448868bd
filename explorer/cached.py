"""Everything slow the pages need, computed once and cached.

Streamlit reruns a page on every interaction, so each function here wraps a
core computation in a cache:

- ``st.cache_resource`` holds the checkpoints (one shared model per folder;
  never mutated outside :func:`model_lock`), dataset listings and large
  read-only tensors;
- ``st.cache_data`` holds arrays, keyed on the arguments: always plain strings
  and numbers (a checkpoint *folder*, an audio *path*, an audio config as
  JSON), never a model or an array (see the Streamlit caching docs on why a
  model must not be a hashed argument).

A clip is identified by its audio file's path: a dataset file, or the saved
copy of an upload (named by a hash of its bytes, so a different upload is a
different key). ``channel`` is "mix" (what the models see), "left" or "right".
"""

from __future__ import annotations

import json
import os
import threading
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from core.audio.features import AudioConfig, feature_steps, fit_duration, load_audio
from core.data.datasets import Dataset, open_dataset
from core.errors import InputError
from core.interpret.registry import method
from core.interpret.stored import CHANNELS
from core.paths import CHECKPOINTS_DIR

if TYPE_CHECKING:  # torch (seconds to import) waits for the first model: the first page draws its clip before
    import torch

__all__ = [
    "CHANNELS", "ENV_CHECKPOINTS", "checkpoint_folders", "checkpoint", "model_lock", "audio_cfg",
    "cfg_key", "input_key", "dataset", "clip_samples", "steps", "model_input", "probabilities", "tap_outputs",
    "feature_maps", "attentions", "query_weights", "patch_boxes", "rollout", "stereo_rollout", "default_query",
    "params_key", "method_map", "method_note", "gradcam", "scorecard", "scorecard_done", "listened", "time_attention",
    "spectrogram_db", "augmented", "model_x", "registered_models", "registry_problem", "kind_label", "augmented_db",
    "augmented_probabilities", "recording_duration_s", "windows", "clip_limits", "warm_up", "warm_up_started",
]

ENV_CHECKPOINTS = "EXPLORER_CHECKPOINTS"


# ---------------------------------------------------------------------------
# the bundled set's warm-up


@st.cache_resource(show_spinner=False)
def warm_up(cache_root: str, demo_root: str):
    """Once per server and cache folder: ``python -m core warm-cache --background`` started, unless it is switched
    off (``$EXPLORER_WARM_CACHE=0``) or the last one finished the same work. Returns the process, or ``None``."""
    from core import warm_background
    from core.warm_cache import shipped_checkpoints

    if not warm_background.enabled() or not warm_background.needed(shipped_checkpoints(), demo_root, cache_root):
        return None
    _WARM_UPS[cache_root] = process = warm_background.start(cache_root)
    return process


_WARM_UPS: dict = {}  # cache folder -> the warm-up process this server started


def warm_up_started(cache_root: str):
    """The warm-up process this server started for ``cache_root`` (:func:`warm_up`), running or not, or ``None``."""
    return _WARM_UPS.get(cache_root)


# ---------------------------------------------------------------------------
# checkpoints


def checkpoint_folders() -> dict[str, str]:
    """Checkpoints the app can open: name -> folder.

    Every folder under ``checkpoints/`` that holds ``checkpoint.json`` (or a
    saved Hugging Face ``ASTForAudioClassification``), then
    those named in ``$EXPLORER_CHECKPOINTS`` (``dir1:dir2``; each a checkpoint
    folder or a folder of them), then those opened in the sidebar and remembered
    (:mod:`core.data.settings`). Names are folder names, with the parent's
    name prepended when two would clash. Cheap (a directory listing), so not
    cached: a checkpoint saved while the app runs shows up on the next rerun.
    """
    from core.data.settings import load_settings

    roots = [CHECKPOINTS_DIR] + [Path(p) for p in os.environ.get(ENV_CHECKPOINTS, "").split(os.pathsep) if p]
    roots += [Path(p) for p in load_settings()[0]["checkpoint_folders"]]
    # An adapter.json found in these folders is not listed: only registered models run code.
    folders: list[Path] = []
    for root in roots:
        if (root / "checkpoint.json").is_file() or is_hf_ast_folder(root):
            folders.append(root)
        elif root.is_dir():
            folders += sorted(p for p in root.iterdir()
                              if p.is_dir() and ((p / "checkpoint.json").is_file() or is_hf_ast_folder(p)))
    found: dict[str, str] = {}
    for folder in folders:
        name = folder.name
        if name in found and found[name] != str(folder.resolve()):
            name = f"{folder.parent.name}/{folder.name}"
        found.setdefault(name, str(folder.resolve()))
    for name, entry in registered_models().items():
        found.setdefault(name if name not in found else f"registered/{name}", str(Path(entry["folder"]).resolve()))
    return found


def default_models(found: dict[str, str]) -> list[str]:
    """The sidebar's default models, by name: one checkpoint of each kind (SE-CNN first), at most two; the user's
    own (opened in the sidebar) first. ``found`` is :func:`checkpoint_folders`."""
    from core.data.settings import load_settings

    own = [str(Path(f)) for f in load_settings()[0]["checkpoint_folders"]]

    def is_own(folder: str) -> bool:
        return any(folder == f or folder.startswith(f + "/") for f in own)

    picks, kinds = [], set()
    for name, folder in sorted(found.items(), key=lambda item: not is_own(item[1])):
        kind = kind_label(folder)
        if kind not in kinds:
            picks.append(name)
            kinds.add(kind)
    order = {"secnn": 0, "ast": 1, "hf-ast": 2}
    picks.sort(key=lambda n: order.get(kind_label(found[n]), 9))
    return picks[:2]


def registered_models() -> dict[str, dict]:
    """Models registered with ``python -m core add-model`` (an unreadable registry lists none:
    :func:`registry_problem` says why)."""
    from core.models.user_models import registered

    try:
        return registered()
    except InputError:
        return {}


def registry_problem() -> str | None:
    """Why the model registry cannot be read (file and problem), or ``None`` when it can."""
    from core.models.user_models import registered

    try:
        registered()
    except InputError as error:
        return str(error)
    return None


def kind_label(folder: str) -> str:
    """What a model folder holds, for the sidebar, without loading it.

    ``secnn`` or ``ast`` (from ``checkpoint.json``), ``hf-ast`` (a Hugging
    Face AST folder), ``adapter: FILE.py`` (a registered model and the file
    it runs), ``?`` when unknown.
    """
    from core.models.user_models import ENTRY_FILE

    path = Path(folder)
    try:
        if (path / "checkpoint.json").is_file():
            return str(json.loads((path / "checkpoint.json").read_text()).get("kind", "?"))
        if is_hf_ast_folder(path):
            return "hf-ast"
        if (path / ENTRY_FILE).is_file():
            return f"adapter: {Path(json.loads((path / ENTRY_FILE).read_text())['adapter']).name}"
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    return "?"


def _unchanged(loaded) -> bool:
    """A registered model stays loaded only while its adapter, modules and weights are the registered bytes."""
    if loaded.kind != "adapter":
        return True
    from core.models.user_models import entry_for_folder

    try:
        entry_for_folder(loaded.folder)
    except InputError:
        return False  # loaded again, which raises the one-line message the page shows
    return True


@st.cache_resource(max_entries=6, show_spinner="Loading the checkpoint…", validate=_unchanged)
def checkpoint(folder: str):
    """The loaded checkpoint of a folder (model in eval mode), shared by every session.

    Returns
    -------
    core.models.checkpoint.Loaded
        ``.model``, ``.audio_cfg``, ``.classes``, ``.meta``, ``.kind``, ``.folder``.

    Raises
    ------
    InputError
        When the folder is not a checkpoint this code can load.
    """
    from core.models.checkpoint import load_checkpoint

    loaded = load_checkpoint(folder)
    loaded.model.eval()
    return loaded


@st.cache_resource
def model_lock(folder: str) -> threading.Lock:
    """Held while a session hooks or runs the shared model of ``folder``."""
    return threading.Lock()


def audio_cfg(folder: str | None) -> AudioConfig:
    """The checkpoint's preprocessing, or the default one when no checkpoint is given.

    Read from ``checkpoint.json`` where there is one, so a page can draw the
    clip before the model (and torch) has loaded.
    """
    if not folder:
        return AudioConfig()
    from core.models.checkpoint import checkpoint_audio_config

    return checkpoint_audio_config(folder) or checkpoint(folder).audio_cfg


def is_hf_ast_folder(folder) -> bool:
    """:func:`core.models.hf_ast.is_hf_ast_folder`, imported (with torch) only for a folder with a ``config.json``."""
    if not (Path(folder) / "config.json").is_file():
        return False
    from core.models.hf_ast import is_hf_ast_folder as check

    return check(folder)


def cfg_key(cfg: AudioConfig) -> str:
    """An audio config as a JSON string: a cache key that hashes the same in every session."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def input_key(folder: str) -> str:
    """What a checkpoint's model sees, as a cache key: its audio config, and its front end.

    The front end is the checkpoint's own (:meth:`core.models.checkpoint.Loaded.input`:
    log-mel for ours, the feature extractor of a Hugging Face AST, the
    adapter's function for a registered model), so the key names the checkpoint.
    """
    d = checkpoint(folder).audio_cfg.to_dict()
    d["frontend"] = folder
    return json.dumps(d, sort_keys=True)


def _cfg(key: str) -> AudioConfig:
    d = json.loads(key)
    d.pop("frontend", None)
    return AudioConfig.from_dict(d)


# ---------------------------------------------------------------------------
# data and clips


@st.cache_resource(max_entries=8, show_spinner="Reading the dataset folder…")
def dataset(root: str) -> Dataset:
    """The dataset listing of a folder (:func:`core.data.datasets.open_dataset`), shared and read-only.

    A resource rather than data: ``st.cache_data`` would unpickle a copy of every
    record on each call, several calls per rerun.
    """
    return open_dataset(root)


@st.cache_data(max_entries=32, show_spinner=False)
def clip_samples(path: str, sr: int) -> tuple[np.ndarray, int, bool]:
    """A clip's channels at ``sr``.

    Returns
    -------
    samples : np.ndarray [shape=(n_channels, n_samples)], float32
    native_sr : int
        The file's own rate, in Hz.
    is_silent : bool

    Raises
    ------
    InputError
        For anything :func:`core.audio.features.load_audio` refuses.
    """
    clip = load_audio(path, AudioConfig(sr=sr), resample_to=sr)
    return clip.samples, clip.native_sr, clip.is_silent


def recording_duration_s(path: str) -> float | None:
    """A file's duration from its header (cheap, not cached: a file may change); ``None`` when unreadable."""
    from core.audio.windows import recording_info

    try:
        return recording_info(path)[0]
    except InputError:
        return None


@st.cache_data(max_entries=16, show_spinner="Classifying the recording window by window…")
def windows(folder: str, path: str, hop_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window of a recording through a checkpoint (:func:`core.training.predict.predict_windows`).

    Returns
    -------
    starts_s, ends_s : np.ndarray [shape=(n_windows,)]
    proba : np.ndarray [shape=(n_windows, n_classes)]
    """
    from core.training.predict import predict_windows

    with model_lock(folder):
        found, proba = predict_windows(checkpoint(folder), path, hop_s=hop_s)
    return (np.array([w.start_s for w in found]), np.array([w.end_s for w in found]), proba)


def clip_limits(path: str, cfg: AudioConfig):
    """Padding and empty bands of a clip in a model's input (:func:`core.audio.frontend.clip_limits`)."""
    from core.audio.frontend import clip_limits as limits

    samples, native_sr, _ = clip_samples(path, cfg.sr)
    return limits(samples.shape[1], native_sr, cfg)


def _channel(samples: np.ndarray, channel: str) -> np.ndarray:
    from core.interpret.stored import channel_of

    return channel_of(samples, channel)


@st.cache_data(max_entries=16, show_spinner=False)
def steps(path: str, cfg_json: str) -> dict[str, np.ndarray]:
    """:func:`core.audio.features.feature_steps` of the clip's mix-down at its own length."""
    cfg = _cfg(cfg_json)
    samples, _, _ = clip_samples(path, cfg.sr)
    return feature_steps(_channel(samples, "mix"), cfg)


@st.cache_data(max_entries=64, show_spinner=False)
def model_x(path: str, input_json: str, channel: str = "mix") -> np.ndarray:
    """The model's own input for a clip (:meth:`core.models.checkpoint.Loaded.input`), without the batch axis.

    ``input_json`` is :func:`input_key`.
    """
    loaded = checkpoint(json.loads(input_json)["frontend"])
    samples, _, _ = clip_samples(path, loaded.audio_cfg.sr)
    return loaded.input(_channel(samples, channel), loaded.audio_cfg.sr)


@st.cache_data(max_entries=64, show_spinner=False)
def model_input(path: str, input_json: str, channel: str = "mix") -> np.ndarray:
    """The spectrogram the model sees, on our axes: :meth:`core.models.checkpoint.Loaded.spectrogram`."""
    loaded = checkpoint(json.loads(input_json)["frontend"])
    samples, _, _ = clip_samples(path, loaded.audio_cfg.sr)
    return loaded.spectrogram(_channel(samples, channel), loaded.audio_cfg.sr)


@st.cache_data(max_entries=64, show_spinner=False)
def spectrogram_db(path: str, cfg_json: str, channel: str = "mix") -> np.ndarray:
    """The clip in dB on the model's grid (for listening back): np.ndarray [shape=(n_mels, n_frames)]."""
    cfg = _cfg(cfg_json)
    samples, _, _ = clip_samples(path, cfg.sr)
    y = fit_duration(_channel(samples, channel), cfg.n_samples)
    return feature_steps(y, cfg)["db"][:, : cfg.n_frames]


def _x(folder: str, path: str, channel: str) -> torch.Tensor:
    import torch

    return torch.from_numpy(model_x(path, input_key(folder), channel))[None]  # (1, ...): e.g. (1, 1, n_mels, n_frames)


@st.cache_data(max_entries=16, show_spinner=False)
def augmented(path: str, sr: int, colour: str, snr_db: float, max_shift: float, seed: int = 0) -> np.ndarray:
    """The clip with a random time shift (up to ``max_shift`` of its length) and coloured noise at ``snr_db``.

    Uses :func:`core.audio.augment.time_shift` and :func:`core.audio.augment.add_noise`
    with ``np.random.default_rng(seed)``, so the same settings give the same sound.

    Returns
    -------
    np.ndarray [shape=(n_channels, n_samples)], float32, at ``sr``
    """
    from core.audio.augment import add_noise, time_shift

    samples, _, _ = clip_samples(path, sr)
    rng = np.random.default_rng(seed)
    y = time_shift(samples, max_fraction=max_shift, rng=rng) if max_shift > 0 else samples
    return add_noise(y, snr_db=snr_db, colour=colour, rng=rng)


def _augmented_mix(path: str, cfg: AudioConfig, colour: str, snr_db: float, max_shift: float) -> np.ndarray:
    samples = augmented(path, cfg.sr, colour, snr_db, max_shift)
    return fit_duration(_channel(samples, "mix"), cfg.n_samples)


@st.cache_data(max_entries=16, show_spinner=False)
def augmented_db(path: str, cfg_json: str, colour: str, snr_db: float, max_shift: float) -> np.ndarray:
    """The augmented mix-down in dB on the model's grid: np.ndarray [shape=(n_mels, n_frames)]."""
    cfg = _cfg(cfg_json)
    return feature_steps(_augmented_mix(path, cfg, colour, snr_db, max_shift), cfg)["db"][:, : cfg.n_frames]


# ---------------------------------------------------------------------------
# model outputs


def _probabilities(folder: str, x: np.ndarray) -> np.ndarray:
    """:func:`core.training.evaluate.predict_proba` of one model input: softmax, or sigmoid for multi-label."""
    from core.training.evaluate import predict_proba

    loaded = checkpoint(folder)
    with model_lock(folder):
        return predict_proba(loaded, x[None])[0]


@st.cache_data(max_entries=256, show_spinner=False)
def probabilities(folder: str, path: str, channel: str = "mix") -> np.ndarray:
    """Class probabilities of a clip: np.ndarray [shape=(n_classes,)] (independent when multi-label)."""
    return _probabilities(folder, model_x(path, input_key(folder), channel))


@st.cache_data(max_entries=64, show_spinner=False)
def augmented_probabilities(folder: str, path: str, colour: str, snr_db: float, max_shift: float) -> np.ndarray:
    """Class probabilities of the augmented clip (see :func:`augmented`), through the model's own front end."""
    loaded = checkpoint(folder)
    cfg = loaded.audio_cfg
    return _probabilities(folder, loaded.input(_augmented_mix(path, cfg, colour, snr_db, max_shift), cfg.sr))


@st.cache_data(max_entries=32, show_spinner="Running the model…")
def tap_outputs(folder: str, path: str, names: tuple[str, ...], channel: str = "mix") -> dict[str, np.ndarray]:
    """Outputs of the named taps for one clip, batch axis dropped.

    Returns
    -------
    dict
        Tap name -> np.ndarray: (C, F, T) for conv taps, (C,) for SE taps,
        (S, D) for token taps, (H, S, S) for attention taps.
    """
    from core.models.taps import extract

    loaded = checkpoint(folder)
    with model_lock(folder):
        out = extract(loaded.model, _x(folder, path, channel), list(names))
    return {name: value[0].float().numpy() for name, value in out.items()}


@st.cache_data(max_entries=32, show_spinner=False)
def feature_maps(folder: str, path: str, tap: str, channel: str = "mix") -> np.ndarray:
    """A tap's output for one clip, as the Layers page draws it.

    Returns
    -------
    np.ndarray
        (C, F, T) for a conv tap; (D, n_freq_patches, n_time_patches) for a
        token tap (special tokens dropped, patches on their grid); (C,) for an
        SE tap (the excitation weights).
    """
    value = tap_outputs(folder, path, (tap,), channel)[tap]
    if value.ndim == 2:  # tokens (S, D)
        import torch

        from core.interpret.maps import tokens_to_grid

        model = checkpoint(folder).model
        grid = tokens_to_grid(torch.from_numpy(value)[None], grid=model.grid, n_special=model.n_special)
        return grid[0].numpy()
    return value


@st.cache_resource(max_entries=8, show_spinner="Collecting attention…")
def attentions(folder: str, path: str, channel: str = "mix"):
    """Every layer's attention for one clip (shared, read-only).

    For a model that records its attention inputs (our AST, a Hugging Face AST), a
    :class:`core.interpret.attention.LayerAttentions` holding each layer's input in
    float16 (MIT's AudioSet AST: 12 x 1214 x 768, 22 MB, where its full matrices
    take 850 MB in float32), which forms only the rows asked for; else the tuple
    of ``output_attentions=True``.

    Returns
    -------
    LayerAttentions or tuple of Tensor [shape=(1, H, S, S)], one per layer
    """
    loaded = checkpoint(folder)
    import torch

    with model_lock(folder), torch.no_grad():
        if hasattr(loaded.model, "attention_input_taps"):
            from core.interpret.attention import record_attention

            return record_attention(loaded.model, _x(folder, path, channel), dtype=torch.float16)
        _, att = loaded.model(_x(folder, path, channel), output_attentions=True)
    return tuple(a.detach().float() for a in att)


def query_weights(folder: str, path: str, *, layers: tuple[int, ...], heads: tuple[int, ...],
                  query, channel: str = "mix") -> np.ndarray:
    """Attention from a query to each patch: np.ndarray [shape=(len(layers), len(heads), P)].

    ``layers`` and ``heads`` count from 1; ``query`` is a patch index or "cls".
    Cheap (only the shown rows are formed from :func:`attentions`), so not cached itself.
    """
    from core.interpret.attention import LayerAttentions, query_weights as weights_of, shown_weights

    att = attentions(folder, path, channel)
    n_special = getattr(checkpoint(folder).model, "n_special", 1)
    if isinstance(att, LayerAttentions):
        with model_lock(folder):
            return shown_weights(att, layers=layers, heads=heads, query=query, n_special=n_special)
    return np.stack([np.stack([weights_of(att, layer=l, head=h, query=query, n_special=n_special)
                               for h in heads]) for l in layers])


@st.cache_data(max_entries=4, show_spinner=False)
def patch_boxes(folder: str) -> np.ndarray:
    """np.ndarray [shape=(P, 4)]: (t0_s, t1_s, f0_hz, f1_hz) of each patch of an AST checkpoint."""
    loaded = checkpoint(folder)
    return loaded.model.patch_boxes(loaded.audio_cfg)


def params_key(params: dict) -> tuple:
    """A method's parameters as a cache key: ``((name, value), ...)``, sorted."""
    return tuple(sorted(params.items()))


@st.cache_data(max_entries=64, show_spinner="Computing the map…")
def signed_map(folder: str, path: str, method_id: str, params: tuple, target: int,
               channel: str = "mix") -> tuple[np.ndarray, float]:
    """A method's map of one clip for class ``target`` and where the method's 0 lies on its [0, 1] scale (0.0
    unless the method is signed): :func:`core.interpret.stored.stored_map`, the registry's
    :meth:`~core.interpret.registry.MethodSpec.explain_signed` of the model's own input (the map the report
    scores), kept on disk; one read of the stored entry for both.

    ``params`` is :func:`params_key` of the method's parameters (missing ones take their defaults).

    Returns
    -------
    tuple of (np.ndarray [shape=(n_mels, n_frames)] in [0, 1], NaN where the method covers no cell; float)
    """
    from core.interpret.stored import stored_map

    loaded = checkpoint(folder)
    with model_lock(folder):
        return stored_map(loaded, path, method_id, dict(params), int(target), channel, zero=True)


def method_map(folder: str, path: str, method_id: str, params: tuple, target: int, channel: str = "mix") -> np.ndarray:
    """:func:`signed_map`'s map: np.ndarray [shape=(n_mels, n_frames)], in [0, 1], NaN where the method covers no
    cell."""
    return signed_map(folder, path, method_id, params, target, channel)[0]


def map_zero(folder: str, path: str, method_id: str, params: tuple, target: int, channel: str = "mix") -> float:
    """:func:`signed_map`'s 0: where the method's 0 lies on :func:`method_map`'s [0, 1] scale."""
    return signed_map(folder, path, method_id, params, target, channel)[1]


@st.cache_data(max_entries=32, show_spinner=False)
def method_note(folder: str, path: str, method_id: str, params: tuple, target: int) -> str | None:
    """:meth:`core.interpret.registry.MethodSpec.note`: the method's own warning about this map of this clip."""
    loaded = checkpoint(folder)
    with model_lock(folder):
        return method(method_id).note(loaded, _x(folder, path, "mix"), int(target), dict(params))


@st.cache_data(max_entries=16, show_spinner="Computing the stereo rollout…")
def stereo_rollout(folder: str, path: str, *, head_fusion: str = "mean",
                   discard_ratio: float = 0.0) -> dict[str, np.ndarray]:
    """:func:`core.interpret.rollout.stereo_rollout` of a clip: left and right on one shared scale, and the mix."""
    from core.interpret.rollout import stereo_rollout as core_stereo_rollout

    loaded = checkpoint(folder)
    samples, _, _ = clip_samples(path, loaded.audio_cfg.sr)  # cut or padded by the model's own front end
    with model_lock(folder):
        return core_stereo_rollout(loaded, samples, head_fusion=head_fusion, discard_ratio=discard_ratio)


@st.cache_data(max_entries=64, show_spinner="Computing the rollout…")
def rollout(folder: str, path: str, *, head_fusion: str = "mean", discard_ratio: float = 0.0,
            channel: str = "mix") -> np.ndarray:
    """Attention rollout on the spectrogram's grid: np.ndarray [shape=(n_mels, n_frames)] in [0, 1].

    The mix-down's map is the registry's ``"rollout"`` (:func:`method_map`, the
    map ``explain-report`` scores);
    left and right come from :func:`stereo_rollout`, on one shared scale.
    """
    if channel != "mix":
        return stereo_rollout(folder, path, head_fusion=head_fusion, discard_ratio=discard_ratio)[channel]
    return method_map(folder, path, "rollout", params_key({"head_fusion": head_fusion,
                                                           "discard_ratio": float(discard_ratio)}), 0, "mix")


@st.cache_data(max_entries=32, show_spinner="Reading the attention weights…")
def time_attention(folder: str, path: str, tap: str, channel: str = "mix") -> np.ndarray:
    """An attention tap's weights for one clip, (H, T, S): :func:`core.interpret.sequence_attention.time_attention`."""
    from core.interpret.sequence_attention import time_attention as core_time_attention

    loaded = checkpoint(folder)
    with model_lock(folder):
        return core_time_attention(loaded.model, _x(folder, path, channel), tap)


@st.cache_data(max_entries=32, show_spinner=False)
def default_query(folder: str, path: str, event_boxes: tuple = ()) -> int:
    """The patch the attention grid opens on: :func:`core.interpret.attention.strongest_patch` of the rollout.

    ``event_boxes`` are ``(t0_s, t1_s, f0_hz, f1_hz)`` tuples (empty: the strongest patch of the whole clip).
    """
    from core.interpret.attention import strongest_patch
    from core.interpret.faithfulness import box_cells
    from core.interpret.maps import patch_geometry

    loaded = checkpoint(folder)
    heat = rollout(folder, path)
    cells = None
    if event_boxes:
        cells = np.zeros(heat.shape, dtype=bool)
        for box in event_boxes:
            bands, frames = box_cells(box, shape=heat.shape, cfg=loaded.audio_cfg)
            cells[bands, frames] = True
    return strongest_patch(heat, grid=loaded.model.grid, geometry=patch_geometry(loaded.model), event_cells=cells)


def gradcam(folder: str, path: str, tap: str, target: int, channel: str = "mix") -> np.ndarray:
    """Grad-CAM of class ``target`` at ``tap``: :func:`method_map` of ``"gradcam"``."""
    return method_map(folder, path, "gradcam", params_key({"tap": tap}), int(target), channel)


@st.cache_resource
def _scorecards() -> dict:
    """Finished scorecards, shared by every session: key -> card, the oldest dropped past :data:`SCORECARDS_KEPT`.

    A store rather than ``st.cache_data``: a scorecard reports progress to a bar the page drew, which a cached
    function may not touch.
    """
    return {}


SCORECARDS_KEPT = 32


def scorecard_done(folder: str, path: str, method_id: str, params: tuple, target: int) -> bool:
    """Whether :func:`scorecard` of these arguments has finished (and is kept)."""
    return (folder, path, method_id, params, int(target)) in _scorecards()


def scorecard(folder: str, path: str, method_id: str, params: tuple, target: int, *, progress=None) -> dict:
    """:func:`core.interpret.scorecard.clip_scorecard` of a method's map of one clip (the mix-down), kept once done:
    in memory for every session, and on disk (:func:`core.interpret.stored.stored_scorecard`).

    Coarser than ``explain-report``'s default (10 deletion steps, not 20; 3 random draws, not 4), so a page stays
    quick; the report's table is the measurement. ``params`` as in :func:`method_map`. ``progress(done, total)``
    is called after each step; without it a spinner shows. Whatever ``progress`` raises (Streamlit's stop when
    the page is left) ends the work there, and nothing is kept.
    """
    from core.interpret.stored import stored_scorecard

    key = (folder, path, method_id, params, int(target))
    done = _scorecards()
    if key in done:
        return done[key]
    loaded = checkpoint(folder)
    with st.spinner("Scoring the map against its baselines (deletion curves, sanity check)…",
                    show_time=True) if progress is None else nullcontext(), model_lock(folder):
        card = stored_scorecard(loaded, path, method_id, dict(params), int(target), n_steps=10, draws=3,
                                progress=progress)
    done[key] = card
    while len(done) > SCORECARDS_KEPT:
        done.pop(next(iter(done)))
    return card


@st.cache_data(max_entries=16, show_spinner="Turning the kept and the removed cells back into sound…")
def listened(folder: str, path: str, method_id: str, params: tuple, target: int, top_percent: float,
             channel: str = "mix") -> dict:
    """The clip split by a method's map's top cells, as sound, with the model's probabilities for each part.

    :func:`core.interpret.listen.listen`: the STFT masked (mel cells mapped to linear bins), resynthesised
    with the clip's own phase, each part run through the model's front end. ``params`` as in :func:`method_map`.

    Returns
    -------
    dict
        ``masked_in``, ``masked_out`` (np.ndarray [shape=(n_samples,)], at the checkpoint's rate);
        ``p``, ``p_in``, ``p_out`` (np.ndarray [shape=(n_classes,)]).
    """
    from core.interpret.listen import listen

    loaded = checkpoint(folder)
    samples, _, _ = clip_samples(path, loaded.audio_cfg.sr)
    y = fit_duration(_channel(samples, channel), loaded.n_samples)
    heat = method_map(folder, path, method_id, params, int(target), channel)
    with model_lock(folder):
        heard = listen(loaded, y, heat, top_percent=top_percent)
    return {"masked_in": heard.audio.masked_in, "masked_out": heard.audio.masked_out, "p": heard.p,
            "p_in": heard.p_in, "p_out": heard.p_out}
