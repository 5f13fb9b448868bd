"""Dataset folders: ESC-50's layout and a plain folder of class folders.

ESC-50 layout (the reference; our demo set uses it too)::

    ROOT/audio/*.wav
    ROOT/meta/esc50.csv      filename, fold, target, category[, ...]
    ROOT/meta/boxes.csv      filename, t0_s, t1_s, f0_hz, f1_hz[, kind, source]   (optional ground truth;
                             kind is "event" (the labelled evidence, the default) or "distractor")

Folder-of-classes layout::

    ROOT/<class name>/*.{wav,flac,ogg,mp3}

A wrong layout raises :class:`~core.errors.InputError` naming what is missing.
Files that are listed but absent are reported in ``Dataset.skipped`` and the
rest still loads.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.audio import AudioConfig, fit_duration, load_audio, log_mel, probe_audio
from core.errors import InputError

__all__ = ["AUDIO_EXTENSIONS", "Box", "ClipRecord", "Dataset", "open_dataset", "load_mono", "load_features",
           "read_scene", "read_label_truth"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
N_FOLDS = 5
_REQUIRED_COLUMNS = ("filename", "fold", "target", "category")
_BOX_COLUMNS = ("filename", "t0_s", "t1_s", "f0_hz", "f1_hz")


@dataclass(frozen=True)
class Box:
    """A ground-truth time-frequency box: of a clip's defining event, or of a distractor."""

    t0_s: float
    t1_s: float
    f0_hz: float
    f1_hz: float
    kind: str = "event"  # "event" or "distractor"
    source: str = ""  # the sound's name, where the metadata gives it

    def contains(self, t_s: float, f_hz: float) -> bool:
        return self.t0_s <= t_s <= self.t1_s and self.f0_hz <= f_hz <= self.f1_hz


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a dataset.

    Attributes
    ----------
    clip_id : str
        Path relative to the dataset root's audio folder (ESC-50) or root (folders).
    path : Path
    label : int
        Index into ``Dataset.classes``.
    category : str
    fold : int
        1 to 5.
    labels : tuple of str
        Every class of a multi-label clip (a ``labels`` column, ``;``-separated,
        as FSD50K's); empty for a single-label dataset.
    """

    clip_id: str
    path: Path
    label: int
    category: str
    fold: int
    labels: tuple[str, ...] = ()

    @property
    def label_set(self) -> tuple[str, ...]:
        """The clip's classes: ``labels`` when given, else its one ``category``."""
        return self.labels or (self.category,)


@dataclass
class Dataset:
    """A dataset folder, read and checked.

    Attributes
    ----------
    root : Path
    layout : {"esc50", "folders"}
    classes : list of str
        Class names; a record's ``label`` indexes this list.
    records : list of ClipRecord
    skipped : list of (str, str)
        Files left out, each with the reason.
    """

    root: Path
    layout: str
    classes: list[str]
    records: list[ClipRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    _boxes: dict[str, list[Box]] = field(default_factory=dict, repr=False)

    @property
    def has_boxes(self) -> bool:
        return bool(self._boxes)

    def boxes(self, clip_id: str) -> list[Box]:
        """Ground-truth boxes of a clip's defining event (empty when the dataset has none)."""
        return [b for b in self._boxes.get(clip_id, []) if b.kind == "event"]

    def distractor_boxes(self, clip_id: str) -> list[Box]:
        """Boxes of a clip's distractors: sounds of no class (empty when the metadata has none)."""
        return [b for b in self._boxes.get(clip_id, []) if b.kind == "distractor"]

    def select(self, folds=None) -> list[ClipRecord]:
        """Records in the given folds (all when ``folds`` is None)."""
        if folds is None:
            return list(self.records)
        wanted = {int(f) for f in ([folds] if isinstance(folds, int) else folds)}
        return [r for r in self.records if r.fold in wanted]

    def record(self, clip_id: str) -> ClipRecord:
        for r in self.records:
            if r.clip_id == clip_id:
                return r
        raise InputError(clip_id, f"no such clip in {self.root}")

    def fingerprint(self) -> str:
        """A short hash of the file list, labels, folds, sizes and times: a cache key."""
        h = hashlib.sha1(str(self.root.resolve()).encode())
        for r in self.records:
            stat = r.path.stat()
            h.update(f"{r.clip_id}|{r.label}|{r.fold}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]


def open_dataset(root: str | Path, *, check_files: bool = True) -> Dataset:
    """Read a dataset folder in ESC-50's layout or as a folder of class folders.

    Parameters
    ----------
    root : str or Path
    check_files : bool
        Read every file's header (about 0.1 ms a file) and skip, with the
        reason, those that are empty, not audio, or out of the limits of
        :class:`~core.audio.AudioConfig`.

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        When ``root`` is missing, is not a folder, or matches neither layout;
        or when no clip could be loaded.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(root, "folder not found")
    if not root.is_dir():
        raise InputError(root, "not a folder")
    if (root / "meta").is_dir() or (root / "audio").is_dir():
        dataset = _open_esc50(root)
    else:
        dataset = _open_folders(root)
    if check_files:
        kept = []
        for r in dataset.records:
            try:
                probe_audio(r.path)
            except InputError as error:
                dataset.skipped.append((r.clip_id, error.problem))
                continue
            kept.append(r)
        dataset.records = kept
    if not dataset.records:
        reasons = "; ".join(f"{name}: {why}" for name, why in dataset.skipped[:3])
        raise InputError(root, "no audio clips could be listed" + (f" ({reasons})" if reasons else ""))
    return dataset


def _meta_csv(root: Path) -> Path:
    meta = root / "meta"
    if not (root / "audio").is_dir():
        raise InputError(root, "ESC-50 layout needs an 'audio' folder beside 'meta'")
    if not meta.is_dir():
        raise InputError(root, "ESC-50 layout needs a 'meta' folder with esc50.csv")
    if (meta / "esc50.csv").is_file():
        return meta / "esc50.csv"
    candidates = [p for p in sorted(meta.glob("*.csv")) if p.name != "boxes.csv" and _has_columns(p)]
    if len(candidates) != 1:
        raise InputError(meta, "expected esc50.csv (or one CSV with columns filename, fold, target, category)")
    return candidates[0]


def _has_columns(path: Path, columns=_REQUIRED_COLUMNS) -> bool:
    with open(path, newline="") as f:
        header = next(csv.reader(f), [])
    return all(c in header for c in columns)


def _open_esc50(root: Path) -> Dataset:
    csv_path = _meta_csv(root)
    try:
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(csv_path, f"not a readable CSV ({error})") from None
    if not rows or any(c not in rows[0] for c in _REQUIRED_COLUMNS):
        raise InputError(csv_path, f"needs the columns {', '.join(_REQUIRED_COLUMNS)}")

    names: dict[int, str] = {}
    records, skipped = [], []
    for line, row in enumerate(rows, start=2):
        try:
            target, fold = int(row["target"]), int(row["fold"])
        except (TypeError, ValueError):
            skipped.append((f"{csv_path.name}:{line}", "target or fold is not an integer"))
            continue
        name = row["filename"]
        if names.setdefault(target, row["category"]) != row["category"]:
            raise InputError(csv_path, f"target {target} names two categories: {names[target]!r} and {row['category']!r}")
        path = root / "audio" / name
        if not path.is_file():
            skipped.append((name, "listed in the meta file but absent"))
            continue
        labels = tuple(dict.fromkeys(x.strip() for x in (row.get("labels") or "").split(";") if x.strip()))
        records.append(ClipRecord(name, path, target, row["category"], fold, labels))
    if sorted(names) != list(range(len(names))):
        raise InputError(csv_path, f"targets must be 0..{len(names) - 1} without gaps, got {sorted(names)}")
    classes = [names[i] for i in range(len(names))]
    return Dataset(root, "esc50", classes, records, skipped, _read_boxes(root / "meta" / "boxes.csv"))


def _read_boxes(path: Path) -> dict[str, list[Box]]:
    if not path.is_file():
        return {}
    boxes: dict[str, list[Box]] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if any(c not in (reader.fieldnames or []) for c in _BOX_COLUMNS):
            raise InputError(path, f"needs the columns {', '.join(_BOX_COLUMNS)}")
        for line, row in enumerate(reader, start=2):
            kind = row.get("kind") or "event"
            if kind not in ("event", "distractor"):
                raise InputError(path, f"line {line}: kind must be 'event' or 'distractor', got {kind!r}")
            boxes.setdefault(row["filename"], []).append(
                Box(float(row["t0_s"]), float(row["t1_s"]), float(row["f0_hz"]), float(row["f1_hz"]),
                    kind, row.get("source") or ""))
    return boxes


def _open_folders(root: Path) -> Dataset:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise InputError(root, "expected ESC-50's layout (audio/ and meta/esc50.csv) or one sub-folder per class")
    classes, records, skipped = [], [], []
    loose = [p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS]
    skipped += [(name, "audio file outside any class folder") for name in loose]
    for class_dir in class_dirs:
        files = sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            skipped.append((class_dir.name + "/", "class folder holds no audio files"))
            continue
        label = len(classes)
        classes.append(class_dir.name)
        # Folds 1..5 dealt in turn within each class, so every fold holds every class.
        records += [ClipRecord(f"{class_dir.name}/{p.name}", p, label, class_dir.name, i % N_FOLDS + 1)
                    for i, p in enumerate(files)]
    return Dataset(root, "folders", classes, records, skipped)


def load_mono(source: ClipRecord | str | Path, cfg: AudioConfig = AudioConfig()) -> np.ndarray:
    """Load a clip as the model hears it: mono, at ``cfg.sr``, cut or zero-padded to the clip length.

    Returns
    -------
    np.ndarray [shape=(hop_length * (n_frames - 1),)], float32
    """
    path = source.path if isinstance(source, ClipRecord) else source
    clip = load_audio(path, cfg, resample_to=cfg.sr)
    return fit_duration(clip.mono, cfg.hop_length * (cfg.n_frames - 1))


def load_features(records: list[ClipRecord], cfg: AudioConfig = AudioConfig(), *,
                  progress: bool = True) -> np.ndarray:
    """Log-mel features of many clips, the models' input.

    Returns
    -------
    np.ndarray [shape=(len(records), n_mels, n_frames)], float32
    """
    out = np.empty((len(records), cfg.n_mels, cfg.n_frames), dtype=np.float32)
    for i, r in enumerate(tqdm(records, desc="features", unit="clip", disable=not progress)):
        out[i] = log_mel(load_mono(r, cfg), cfg)
    return out


def read_scene(root: str | Path) -> dict[str, dict]:
    """``meta/scene.csv`` of a demo set: filename -> channels, pans, levels, SNR, RT60 (empty if absent)."""
    path = Path(root) / "meta" / "scene.csv"
    if not path.is_file():
        return {}
    with open(path, newline="") as f:
        return {row.pop("filename"): {k: (int(v) if k == "channels" else float(v)) for k, v in row.items()}
                for row in csv.DictReader(f)}


def read_label_truth(root: str | Path) -> dict[str, int]:
    """The planted label errors: filename -> true target. Only for scoring a label-error finder.

    Raises
    ------
    InputError
        When the folder has no ``meta/label_truth.csv`` (it is not a demo set v2).
    """
    path = Path(root) / "meta" / "label_truth.csv"
    if not path.is_file():
        raise InputError(path, "no planted label errors here (only the demo set v2 has them)")
    with open(path, newline="") as f:
        return {row["filename"]: int(row["true_target"]) for row in csv.DictReader(f)}
