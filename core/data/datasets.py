"""Dataset folders in four layouts, detected in this order.

A generic CSV, ``"csv"`` (ROOT is the CSV file, or a folder holding exactly one
CSV with a ``path`` column, whatever sub-folders it has: ``labels.csv`` beside
``audio/`` is this layout, not ESC-50's)::

    path, label[, fold][, ...]     path relative to the CSV's folder; fold 1, 2, ... (optional)
    path, labels[, fold][, ...]    several labels separated by ";" (as FSD50K)

Without a ``fold`` column, clips are dealt to folds 1 to 5 in turn within each class.
Any other column (speaker, source, split, ...) is kept per clip in
``ClipRecord.metadata``.

ESC-50 layout (the reference; our demo set uses it too), ``"esc50"``::

    ROOT/audio/*.wav
    ROOT/meta/esc50.csv      filename, fold, target, category[, ...]
    ROOT/meta/boxes.csv      filename, t0_s, t1_s, f0_hz, f1_hz[, kind, source]   (optional ground truth;
                             kind is "event" (the labelled evidence, the default) or "distractor")

UrbanSound8K layout, ``"urbansound8k"`` (10 folds)::

    ROOT/metadata/UrbanSound8K.csv   slice_file_name, fold, classID, class[, ...]
    ROOT/audio/fold<k>/<slice_file_name>

Folder-of-classes layout, ``"folders"``::

    ROOT/<class name>/*.{wav,flac,ogg,mp3}

A wrong layout raises :class:`~core.errors.InputError` naming what is missing and
what each layout needs (:data:`LAYOUT_NEEDS`).
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

from core.audio.features import AudioConfig, fit_duration, load_audio, log_mel, probe_audio
from core.errors import InputError

__all__ = ["AUDIO_EXTENSIONS", "N_FOLDS", "DEFAULT_TEST_FOLD", "LAYOUTS", "LAYOUT_NEEDS", "DATA_HELP",
           "checkpoint_test_fold", "Box", "ClipRecord", "Dataset",
           "open_dataset", "load_mono", "load_features", "read_scene", "read_label_truth"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
N_FOLDS = 5  # folds clips are dealt to when a layout gives none (ESC-50 has 5, UrbanSound8K 10)
DEFAULT_TEST_FOLD = 5  # the fold the shipped checkpoints hold out, scored by default everywhere
_REQUIRED_COLUMNS = ("filename", "fold", "target", "category")
_BOX_COLUMNS = ("filename", "t0_s", "t1_s", "f0_hz", "f1_hz")
_US8K_CSV = Path("metadata") / "UrbanSound8K.csv"
_US8K_COLUMNS = ("slice_file_name", "fold", "classID", "class")
LABEL_SEPARATOR = ";"
# layout -> what people call it
LAYOUTS = {"esc50": "ESC-50", "urbansound8k": "UrbanSound8K", "csv": "a CSV of paths and labels",
           "folders": "a folder per class"}
# what each layout needs, in the order they are tried: error messages and --data helps say it
LAYOUT_NEEDS = ("a CSV with columns path and label (or labels), optionally fold (the file, or a folder holding one)",
                "UrbanSound8K's metadata/UrbanSound8K.csv with audio/fold1..10/",
                "ESC-50's audio/ beside meta/esc50.csv",
                "one sub-folder of audio files per class")
DATA_HELP = "dataset: " + "; or ".join(LAYOUT_NEEDS)
_NEEDS_TEXT = "the layouts are, in the order tried: " + "; ".join(LAYOUT_NEEDS)


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
        1 to 5 (1 to 10 in UrbanSound8K; as the CSV says).
    labels : tuple of str
        Every class of a multi-label clip (a ``labels`` column, ``;``-separated,
        as FSD50K's); empty for a single-label dataset.
    metadata : dict of str to str
        The metadata file's other columns for this clip (speaker, source, split, ...).
    """

    clip_id: str
    path: Path
    label: int
    category: str
    fold: int
    labels: tuple[str, ...] = ()
    metadata: dict = field(default_factory=dict, compare=False)

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
    layout : {"esc50", "urbansound8k", "csv", "folders"}
        See :data:`LAYOUTS`.
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

    def describe(self) -> str:
        """What was found, in one line: layout, clips, classes and folds."""
        folds = self.folds
        fold_text = f"folds {folds[0]}-{folds[-1]}" if folds == list(range(folds[0], folds[-1] + 1)) else \
            "folds " + ", ".join(map(str, folds))
        return (f"{LAYOUTS[self.layout]} layout: {len(self.records)} clips, {len(self.classes)} classes, "
                f"{fold_text}" + (f" ({len(self.skipped)} files skipped)" if self.skipped else ""))

    @property
    def metadata_columns(self) -> list[str]:
        """The metadata columns some clip has (speaker, source, ...), in the file's order."""
        return list(dict.fromkeys(k for r in self.records for k in r.metadata))

    @property
    def folds(self) -> list[int]:
        """The folds the clips are in, ascending."""
        return sorted({r.fold for r in self.records})

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


def checkpoint_test_fold(meta: dict | None, fold: int | None = None) -> int:
    """The fold to score: ``fold`` when given, else the checkpoint's own test fold, else :data:`DEFAULT_TEST_FOLD`.

    >>> checkpoint_test_fold({"test_fold": 6}), checkpoint_test_fold({}), checkpoint_test_fold({"test_fold": 6}, 2)
    (6, 5, 2)
    """
    if fold is not None:
        return int(fold)
    return int((meta or {}).get("test_fold") or DEFAULT_TEST_FOLD)


def open_dataset(root: str | Path, *, check_files: bool = True) -> Dataset:
    """Read a dataset in one of the layouts of the module docstring; ``Dataset.layout`` says which.

    Parameters
    ----------
    root : str or Path
    check_files : bool
        Read every file's header (about 0.1 ms a file) and skip, with the
        reason, those that are empty, not audio, or out of the limits of
        :class:`~core.audio.features.AudioConfig`.

    Returns
    -------
    Dataset

    Raises
    ------
    InputError
        When ``root`` is missing or matches no layout; or when no clip could be loaded.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise InputError(root, "folder not found")
    if root.is_file():
        if root.suffix.lower() != ".csv":
            raise InputError(root, "not a folder or a .csv file")
        dataset = _open_csv(root)
    elif (table := _path_csv(root)) is not None:  # a CSV of paths wins, whatever sub-folders there are
        dataset = _open_csv(table)
    elif (root / _US8K_CSV).is_file():
        dataset = _open_urbansound8k(root)
    elif (root / "meta").is_dir() or (root / "audio").is_dir():
        dataset = _open_esc50(root)
    else:
        dataset = _open_folders(root)
    if check_files:
        from core.audio.windows import MAX_RECORDING_S

        listing = AudioConfig(max_duration_s=MAX_RECORDING_S)  # longer clips are windowed, not refused
        kept = []
        for r in dataset.records:
            try:
                probe_audio(r.path, listing)
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
        raise InputError(root, f"has meta/ but no audio/ beside it; {_NEEDS_TEXT}")
    if not meta.is_dir():
        raise InputError(root, f"has audio/ but no meta/esc50.csv and no CSV with a 'path' column; {_NEEDS_TEXT}")
    if (meta / "esc50.csv").is_file():
        return meta / "esc50.csv"
    candidates = [p for p in sorted(meta.glob("*.csv")) if p.name != "boxes.csv" and _has_columns(p)]
    if len(candidates) != 1:
        raise InputError(meta, f"expected esc50.csv (or one CSV with columns filename, fold, target, category); "
                               f"{_NEEDS_TEXT}")
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
        records.append(ClipRecord(name, path, target, row["category"], fold, labels,
                                  _extra(row, _REQUIRED_COLUMNS + ("labels",))))
    if sorted(names) != list(range(len(names))):
        raise InputError(csv_path, f"targets must be 0..{len(names) - 1} without gaps, got {sorted(names)}")
    classes = [names[i] for i in range(len(names))]
    return Dataset(root, "esc50", classes, records, skipped, _read_boxes(root / "meta" / "boxes.csv"))


def _read_rows(path: Path, required: tuple[str, ...]) -> list[dict]:
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, f"not a readable CSV ({error})") from None
    if not rows or any(c not in rows[0] for c in required):
        raise InputError(path, f"needs the columns {', '.join(required)}")
    return rows


def _open_urbansound8k(root: Path) -> Dataset:
    csv_path = root / _US8K_CSV
    rows = _read_rows(csv_path, _US8K_COLUMNS)
    names: dict[int, str] = {}
    records, skipped = [], []
    for line, row in enumerate(rows, start=2):
        try:
            target, fold = int(row["classID"]), int(row["fold"])
        except (TypeError, ValueError):
            skipped.append((f"{csv_path.name}:{line}", "classID or fold is not an integer"))
            continue
        if names.setdefault(target, row["class"]) != row["class"]:
            raise InputError(csv_path, f"classID {target} names two classes: {names[target]!r} and {row['class']!r}")
        clip_id = f"fold{fold}/{row['slice_file_name']}"
        path = root / "audio" / clip_id
        if not path.is_file():
            skipped.append((clip_id, "listed in the metadata but absent"))
            continue
        records.append(ClipRecord(clip_id, path, target, row["class"], fold))
    if sorted(names) != list(range(len(names))):
        raise InputError(csv_path, f"classIDs must be 0..{len(names) - 1} without gaps, got {sorted(names)}")
    return Dataset(root, "urbansound8k", [names[i] for i in range(len(names))], records, skipped)


def _path_csv(root: Path) -> Path | None:
    """The one CSV directly in ``root`` with a ``path`` column, if there is exactly one."""
    found = [p for p in sorted(root.glob("*.csv")) if _has_columns(p, ("path",))]
    if len(found) > 1:
        raise InputError(root, f"holds {len(found)} CSV files with a 'path' column; open one of them")
    return found[0] if found else None


def _open_csv(csv_path: Path) -> Dataset:
    with open(csv_path, newline="") as f:
        header = next(csv.reader(f), [])
    label_column = "labels" if "labels" in header else "label"
    rows = _read_rows(csv_path, ("path", label_column))
    has_fold = "fold" in header
    parsed = []
    for line, row in enumerate(rows, start=2):
        names = [n.strip() for n in (row[label_column] or "").split(LABEL_SEPARATOR) if n.strip()]
        if not names:
            raise InputError(f"{csv_path}:{line}", f"no {label_column}")
        parsed.append((line, row, names))
    classes = sorted({n for _, _, names in parsed for n in names})
    index = {name: i for i, name in enumerate(classes)}
    records, skipped, dealt = [], [], {}
    for line, row, names in parsed:
        if has_fold:
            try:
                fold = int(row["fold"])
            except (TypeError, ValueError):
                skipped.append((f"{csv_path.name}:{line}", "fold is not an integer"))
                continue
        else:  # folds 1..5 dealt in turn within each (first) class
            fold = dealt.get(names[0], 0) % N_FOLDS + 1
            dealt[names[0]] = dealt.get(names[0], 0) + 1
        path = (csv_path.parent / row["path"]).resolve()
        if not path.is_file():
            skipped.append((row["path"], "listed in the CSV but absent"))
            continue
        labels = tuple(names) if label_column == "labels" else ()
        records.append(ClipRecord(row["path"], path, index[names[0]], names[0], fold, labels,
                                  _extra(row, ("path", label_column, "fold"))))
    return Dataset(csv_path.parent, "csv", classes, records, skipped)


def _extra(row: dict, known: tuple[str, ...]) -> dict[str, str]:
    """A CSV row's other columns (speaker, source, ...): the clip's metadata."""
    return {k: (v or "") for k, v in row.items() if k is not None and k not in known}


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
        raise InputError(root, f"matches no dataset layout; {_NEEDS_TEXT}")
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

    Only the first window is read from a longer file (a recording of any length lists and trains on
    its first window; ``predict --windows`` and the Clip page cover the rest).

    Returns
    -------
    np.ndarray [shape=(cfg.n_samples,)], float32
    """
    path = source.path if isinstance(source, ClipRecord) else source
    n_samples = cfg.n_samples
    clip = load_audio(path, cfg, resample_to=cfg.sr, first_s=n_samples / cfg.sr + 0.1)  # a long file: its first window
    return fit_duration(clip.mono, n_samples)


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
