"""Paired comparisons: does a method beat a baseline, clip for clip, beyond chance?

Two methods scored on the same clips are compared by the per-clip
differences ``d_i = a_i - b_i``, not by two means side by side: the clips'
own difficulty cancels. The mean difference gets a bootstrap 95 % interval
(:func:`core.interpret.baselines.bootstrap_interval`), and the word follows
the interval only:

* **beats**: the interval excludes zero on the better side;
* **loses**: it excludes zero on the worse side;
* **ties**: it holds zero (no difference shown; not "equal").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InputError

__all__ = ["WORDS", "Comparison", "compare"]

WORDS = ("beats", "ties", "loses")


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of a method with a baseline.

    Attributes
    ----------
    word : {"beats", "ties", "loses"}
    difference : tuple (mean, low, high)
        Mean of ``a_i - b_i`` with its bootstrap 95 % interval.
    n_clips : int
        Clips where both have a value.
    """

    word: str
    difference: tuple[float, float, float]
    n_clips: int

    def text(self, digits: int = 3) -> str:
        """``"beats (-0.031 [-0.05, -0.01])"``."""
        mean, low, high = self.difference
        return f"{self.word} ({mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}])"


def compare(a, b, *, lower_is_better: bool) -> Comparison:
    """Paired comparison of per-clip scores ``a`` (a method) with ``b`` (a baseline).

    Parameters
    ----------
    a, b : sequence of float [shape=(n_clips,)]
        The same clips in the same order; NaN pairs are left out.
    lower_is_better : bool
        True for deletion AUC, False for insertion AUC or the pointing game.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> compare([0.10, 0.12, 0.09, 0.11], [0.20, 0.25, 0.18, 0.22], lower_is_better=True).word
    'beats'
    >>> compare([0.097, 0.2, 0.05], [0.117, 0.1, 0.1], lower_is_better=True).word  # a lower mean is not enough
    'ties'
    """
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise InputError("scores", f"a paired comparison needs the same clips: {a.size} and {b.size} values")
    from core.interpret.baselines import bootstrap_interval

    keep = ~(np.isnan(a) | np.isnan(b))
    d = a[keep] - b[keep]
    if d.size == 0:
        return Comparison("ties", (float("nan"),) * 3, 0)
    mean, low, high = bootstrap_interval(d)
    if d.size < 2 or (low <= 0 <= high):
        word = "ties"
    else:
        better = high < 0 if lower_is_better else low > 0
        word = "beats" if better else "loses"
    return Comparison(word, (mean, low, high), int(d.size))
