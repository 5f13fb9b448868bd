"""The difficulty card of a dataset with ground-truth boxes: how hard it is, and for whom.

What a benchmark for explanations has to show before any model is trained:

* **Linear probes on hand-made features** (per-band max, per-band mean and
  std, MFCC means of the log-mel in dB), each a standardised logistic
  regression trained on folds 1-4 and tested on fold 5, against the labels as
  given. When a probe scores high, the task does not need a deep model.
* **The loudest cell**: the share of clips whose loudest log-mel cell lies in
  the true class's event boxes (in a distractor box, elsewhere). When it is
  high, "the loudest cells" is already a good explanation, and the boxes
  cannot tell a good method from a bad one.
* **The pointing game's chance level**: the mean share of a clip's cells that
  lie inside its event boxes (what a uniformly random maximum would score).
* **Loud distractors**: the share of clips with a distractor at or above the
  event's level (from ``meta/scene.csv``, when the set has it).

Computed once per dataset fingerprint and saved beside the set as
``meta/difficulty.json``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from core.audio.features import AudioConfig, fix_frames, mel_power, power_to_db
from core.data.datasets import DEFAULT_TEST_FOLD, Dataset, load_mono, open_dataset, read_scene
from core.errors import InputError

__all__ = ["Card", "FEATURE_SETS", "clip_features", "difficulty_card", "ensure_card"]

CARD_FILE = "difficulty.json"
FEATURE_SETS = ("per-band max", "per-band mean + std", "MFCC means (20)")


@dataclass
class Card:
    """The card's numbers (see the module docstring); ``text`` renders them."""

    n_clips: int
    n_classes: int
    probes: dict[str, float]  # feature set -> fold-5 accuracy
    chance_accuracy: float  # the majority class's share of fold 5
    loudest_in_event: float
    loudest_in_distractor: float
    event_cell_share: float  # pointing-game chance
    loud_distractor_share: float | None
    stereo_share: float | None
    fingerprint: str = ""

    @property
    def text(self) -> str:
        lines = [f"Difficulty card: {self.n_clips} clips, {self.n_classes} classes",
                 f"  linear probes, trained on folds 1-4, tested on fold 5 (chance {self.chance_accuracy:.1%}):"]
        lines += [f"    {name:<22} {acc:6.1%}" for name, acc in self.probes.items()]
        lines += [f"  loudest log-mel cell inside the event's boxes: {self.loudest_in_event:6.1%} of clips",
                  f"                       inside a distractor box:  {self.loudest_in_distractor:6.1%}",
                  f"  cells inside event boxes (pointing-game chance): {self.event_cell_share:6.1%}"]
        if self.loud_distractor_share is not None:
            lines.append(f"  clips with a distractor as loud as the event or louder: {self.loud_distractor_share:6.1%}")
        if self.stereo_share is not None:
            lines.append(f"  stereo clips (event and loudest distractor panned apart): {self.stereo_share:6.1%}")
        return "\n".join(lines)


def clip_features(db: np.ndarray, sr: int = 44100) -> dict[str, np.ndarray]:
    """The probes' hand-made features of one log-mel in dB.

    Parameters
    ----------
    db : np.ndarray [shape=(n_mels, n_frames)]
        Log-mel in dB, not standardised (absolute level is information a probe may use).

    Returns
    -------
    dict
        One vector per entry of :data:`FEATURE_SETS`.
    """
    import librosa

    mfcc = librosa.feature.mfcc(S=db, sr=sr, n_mfcc=20)
    return {
        FEATURE_SETS[0]: db.max(axis=1),
        FEATURE_SETS[1]: np.concatenate([db.mean(axis=1), db.std(axis=1)]),
        FEATURE_SETS[2]: mfcc.mean(axis=1),
    }


def _cell_mask(boxes, shape: tuple[int, int], cfg: AudioConfig) -> np.ndarray:
    from core.interpret.faithfulness import box_cells

    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        bands, frames = box_cells(box, shape=shape, cfg=cfg)
        mask[bands, frames] = True
    return mask


def _probe_accuracy(X: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    probe.fit(X[train], y[train])
    return float(probe.score(X[~train], y[~train]))


def difficulty_card(data: Dataset, cfg: AudioConfig = AudioConfig(), *, progress: bool = True) -> Card:
    """Compute the card of a dataset with event boxes and a fold 5 (see the module docstring).

    Raises
    ------
    InputError
        When the dataset has no boxes or no clip in fold 5 or in folds 1-4.
    """
    from tqdm.auto import tqdm

    if not data.has_boxes:
        raise InputError(data.root, "the difficulty card needs ground-truth boxes (meta/boxes.csv)")
    records = data.records
    test = np.array([r.fold == DEFAULT_TEST_FOLD for r in records])
    if test.all() or not test.any():
        raise InputError(data.root, f"the difficulty card needs clips in fold {DEFAULT_TEST_FOLD} and in the "
                                    "other folds")
    feats: dict[str, list] = {name: [] for name in FEATURE_SETS}
    in_event, in_distractor, shares = [], [], []
    for r in tqdm(records, desc="difficulty card", unit="clip", disable=not progress):
        db = fix_frames(power_to_db(mel_power(load_mono(r, cfg), cfg), cfg), cfg.n_frames)
        for name, v in clip_features(db, cfg.sr).items():
            feats[name].append(v)
        event = _cell_mask(data.boxes(r.clip_id), db.shape, cfg)
        distract = _cell_mask(data.distractor_boxes(r.clip_id), db.shape, cfg)
        peak = np.unravel_index(int(np.argmax(db)), db.shape)
        in_event.append(bool(event[peak]))
        in_distractor.append(bool(distract[peak]) and not event[peak])
        shares.append(float(event.mean()))
    y = np.array([r.label for r in records])
    probes = {name: _probe_accuracy(np.array(v), y, ~test) for name, v in feats.items()}
    scene = read_scene(data.root)
    scene_rows = [scene[r.clip_id] for r in records if r.clip_id in scene]
    return Card(
        n_clips=len(records), n_classes=len(data.classes), probes=probes,
        chance_accuracy=float(np.bincount(y[test]).max() / test.sum()),
        loudest_in_event=float(np.mean(in_event)), loudest_in_distractor=float(np.mean(in_distractor)),
        event_cell_share=float(np.mean(shares)),
        loud_distractor_share=float(np.mean([s["loudest_distractor_rel_db"] >= 0 for s in scene_rows]))
        if scene_rows else None,
        stereo_share=float(np.mean([s["channels"] == 2 for s in scene_rows])) if scene_rows else None,
        fingerprint=data.fingerprint(),
    )


def ensure_card(root: str | Path, *, progress: bool = True) -> Card:
    """The card saved beside the set (``meta/difficulty.json``), computed first if missing or stale."""
    data = open_dataset(root)
    path = Path(root) / "meta" / CARD_FILE
    if path.is_file():
        try:
            saved = Card(**json.loads(path.read_text()))
            if saved.fingerprint == data.fingerprint():
                return saved
        except (TypeError, ValueError):
            pass  # an older or damaged card: compute it again
    card = difficulty_card(data, progress=progress)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(card), indent=1))
    tmp.replace(path)
    return card
