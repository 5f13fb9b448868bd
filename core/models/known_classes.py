"""Does a model know a dataset's classes? Said before anything is computed.

A model can only be scored on the classes it was trained on. When a dataset's
labels are others (spoken digits under a model of sound events), accuracy,
confusion matrices and the model's own mistakes mean nothing, while its
embedding (coloured by the dataset's own labels), the novelty share and
listening still do. :func:`class_coverage` compares the two lists of names;
:func:`checkpoint_classes` reads a checkpoint's classes from its JSON without
loading the weights, so a page can say this at once.

>>> cov = class_coverage(["dog", "rain"], ["one", "two", "rain"])
>>> cov.unknown, cov.all_unknown
(['one', 'two'], False)
>>> cov.sentence("secnn")
'secnn does not know 2 of the 3 classes of this dataset (one, two): it cannot be right on their clips.'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["Coverage", "class_coverage", "checkpoint_classes"]


@dataclass(frozen=True)
class Coverage:
    """The dataset's classes that a model does not know.

    Attributes
    ----------
    unknown : list of str
        In the dataset's order.
    n_dataset : int
        The dataset's classes.
    """

    unknown: list[str]
    n_dataset: int

    @property
    def all_unknown(self) -> bool:
        """None of the dataset's classes is the model's: accuracy has no meaning at all."""
        return len(self.unknown) == self.n_dataset

    def sentence(self, model_name: str, *, listed: int = 4) -> str:
        """One sentence naming the model and the number of unknown classes ("" when it knows them all)."""
        if not self.unknown:
            return ""
        names = ", ".join(self.unknown[:listed]) + (", ..." if len(self.unknown) > listed else "")
        if self.all_unknown:
            return (f"{model_name} knows none of the {self.n_dataset} classes of this dataset ({names}): its "
                    "predictions and accuracy mean nothing here.")
        return (f"{model_name} does not know {len(self.unknown)} of the {self.n_dataset} classes of this dataset "
                f"({names}): it cannot be right on their clips.")


def class_coverage(model_classes: Sequence[str], dataset_classes: Sequence[str]) -> Coverage:
    """Which of ``dataset_classes`` are not among ``model_classes`` (exact names)."""
    known = set(model_classes)
    return Coverage([c for c in dataset_classes if c not in known], len(dataset_classes))


def checkpoint_classes(folder: str | Path) -> list[str] | None:
    """A checkpoint's class names from ``checkpoint.json`` or a Hugging Face ``config.json``, without loading it.

    Returns ``None`` where only loading tells (a registered adapter) or the file is unreadable.
    """
    folder = Path(folder)
    try:
        if (folder / "checkpoint.json").is_file():
            classes = json.loads((folder / "checkpoint.json").read_text()).get("classes")
            return [str(c) for c in classes] if isinstance(classes, list) else None
        if (folder / "config.json").is_file():
            id2label = json.loads((folder / "config.json").read_text()).get("id2label")
            if isinstance(id2label, dict):
                return [str(id2label[k]) for k in sorted(id2label, key=lambda k: int(k))]
    except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None
    return None
