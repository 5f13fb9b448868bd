"""One clip's scorecard for one map: its deletion curve beside the baselines, and its sanity verdict, in words.

What the Attribution and Attention pages show beside a map, computed with the
same pieces ``explain-report`` scores with: the deletion curve of the map, the
mean deletion curve of smooth random maps (with the spread of their AUC), the
deletion curve of the energy map (the input itself), and the cascading
randomisation check (:mod:`core.interpret.sanity`) for this clip.

One clip decides nothing: the sentences say how this clip's numbers compare
and leave "beats" to ``explain-report``'s paired intervals over many clips
(:mod:`core.interpret.paired`); the sanity check on one clip is "inconclusive"
by construction (:data:`core.interpret.sanity.MIN_CLIPS`). A class picked by
hand whose probability is under chance gets a note (:func:`class_note`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from core.interpret.baselines import energy_map, random_curves
from core.interpret.faithfulness import deletion_curve, model_predictor
from core.interpret.sanity import cascading_randomisation, layer_groups, verdict

__all__ = ["ON_REQUEST_PARAMETERS", "starts_on_request", "clip_scorecard", "scorecard_steps", "deletion_sentence",
           "class_note"]

ON_REQUEST_PARAMETERS = 20_000_000  # above this, a page runs a scorecard on request, not on opening


def starts_on_request(model) -> bool:
    """Whether a page should wait for a click before scoring this model's maps: over :data:`ON_REQUEST_PARAMETERS`.

    A scorecard runs the model about 60 times (deletion curves of 10 steps for the map, 3 random draws and the
    energy map, then one map per randomised layer group); at 86.6 M parameters (MIT's AudioSet AST) that is
    minutes on 2 cores.
    """
    return sum(p.numel() for p in model.parameters()) > ON_REQUEST_PARAMETERS


def scorecard_steps(model, *, draws: int, sanity: bool = True) -> int:
    """How many steps :func:`clip_scorecard` reports to its ``progress``: the map, its deletion curve, each
    random draw, the energy curve, and the sanity check's maps (the trained one, then one per layer group)."""
    return 3 + draws + ((1 + len(layer_groups(model))) if sanity else 0)


def clip_scorecard(
    model,
    explain: Callable,
    x: np.ndarray,
    target: int,
    *,
    n_steps: int = 20,
    draws: int = 4,
    seed: int = 0,
    sanity: bool = True,
    sound: np.ndarray | None = None,
    fill: str = "blur",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Score one map of one clip against the smooth random and energy baselines.

    Parameters
    ----------
    model : nn.Module
        In eval mode.
    explain : callable
        ``explain(model, x, target) -> (n_mels, n_frames)``, a
        :meth:`core.interpret.registry.MethodSpec.bind`'s result.
    x : np.ndarray [shape=(n_mels, n_frames)]
    target : int
    n_steps, draws, seed
        As in ``explain-report``.
    sanity : bool
        Also run the cascading randomisation check.
    sound : np.ndarray [shape=(n_mels, n_frames)], bool, or None
        The cells that hold sound (:func:`core.audio.frontend.sound_cells`): the map's, the random maps' and
        the energy map's curves order only them. ``None``: every cell.
    progress : callable or None
        ``progress(done, total)`` after each step (:func:`scorecard_steps`);
        whatever it raises stops the scorecard there (a page that is left
        raises Streamlit's stop in its progress bar).

    Returns
    -------
    dict
        ``heat`` (the map), ``fractions``, ``probabilities`` and ``auc`` of its
        deletion curve; ``random_probabilities`` (the mean curve),
        ``random_auc``, ``random_spread``; ``energy_probabilities``,
        ``energy_auc``; ``sanity_layers``, ``sanity_correlations`` (signed, NaN
        where the map vanished), ``sanity_passed``, ``sanity_outcome``,
        ``sanity_verdict`` (None without ``sanity``); ``summary``
        (:func:`deletion_sentence`).
    """
    x = np.asarray(x, dtype=np.float32)
    xt = torch.as_tensor(x)[None, None]
    total = scorecard_steps(model, draws=draws, sanity=sanity)
    step = progress if progress is not None else (lambda done, total: None)
    predict = model_predictor(model, batch_size=n_steps + 1)
    heat = np.asarray(explain(model, xt, int(target)), dtype=np.float32)
    step(1, total)
    curve = deletion_curve(predict, x, heat, target=int(target), n_steps=n_steps, fill=fill, seed=seed, sound=sound)
    step(2, total)
    rc = random_curves(predict, x, target=int(target), draws=draws, n_steps=n_steps, fill=fill, seed=seed,
                       insertion=False, sound=sound)
    step(2 + draws, total)
    energy = deletion_curve(predict, x, energy_map(x), target=int(target), n_steps=n_steps, fill=fill, seed=seed,
                            sound=sound)
    step(3 + draws, total)
    out = {
        "heat": heat, "fractions": curve.fractions, "probabilities": curve.probabilities, "auc": curve.auc,
        "random_probabilities": rc.deletion_mean, "random_auc": rc.deletion_auc, "random_spread": rc.deletion_spread,
        "energy_probabilities": energy.probabilities, "energy_auc": energy.auc, "fill": fill,
        "sanity_layers": None, "sanity_correlations": None, "sanity_passed": None, "sanity_outcome": None,
        "sanity_verdict": None,
    }
    if sanity:
        result = cascading_randomisation(model, explain, xt, int(target), seed=seed,
                                         progress=lambda done, n: step(3 + draws + done, total))
        found = verdict([result.all_random])
        out.update(sanity_layers=result.layers, sanity_correlations=result.correlations, sanity_passed=found.passed,
                   sanity_outcome=found.outcome, sanity_verdict=found.sentence)
    out["summary"] = deletion_sentence(out["auc"], out["random_auc"], out["random_spread"], out["energy_auc"],
                                       fill=fill)
    return out


FILL_WORDS = {"blur": "the clip blurred (RISE's fill)", "min": "the clip's minimum (silence)",
              "mean": "the clip's mean"}


def deletion_sentence(auc: float, random_auc: float, random_spread: float, energy_auc: float, *,
                      fill: str = "blur") -> str:
    """One clip's deletion scores in words a student understands, claiming no win from one clip.

    Examples
    --------
    >>> deletion_sentence(0.10, 0.36, 0.04, 0.15)  # doctest: +ELLIPSIS
    "Blanking the cells this map ranks highest first (each becomes the clip blurred ...) ... lower than smooth ..."
    """
    def versus(name: str, other: float) -> str:
        return f"lower than {name}" if auc < other else f"not lower than {name}"

    return (f"Blanking the cells this map ranks highest first (each becomes {FILL_WORDS.get(fill, fill)}) leaves an "
            f"area of {auc:.2f} under the probability "
            f"curve (lower means the map found what the model relies on). Blanking smooth random blobs leaves "
            f"{random_auc:.2f} (± {random_spread:.2f} between draws); blanking the loudest cells of the spectrogram "
            f"leaves {energy_auc:.2f}. On this clip the map is {versus('smooth random blobs', random_auc)} and "
            f"{versus('the loudness map', energy_auc)}; one clip cannot show a method is better: that takes a paired "
            f"interval over many clips (python -m core explain-report).")


def class_note(probabilities, target: int, classes) -> str | None:
    """A note when the class explained is not the prediction and sits under chance probability, else None.

    Parameters
    ----------
    probabilities : np.ndarray [shape=(n_classes,)]
    target : int
    classes : sequence of str

    Examples
    --------
    >>> class_note(np.array([0.9, 0.06, 0.04]), 1, ["a", "b", "c"])  # doctest: +ELLIPSIS
    "'b' has probability 6% here, under chance (33%): ..."
    >>> class_note(np.array([0.9, 0.06, 0.04]), 0, ["a", "b", "c"]) is None
    True
    """
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    chance = 1.0 / p.size
    if int(target) == int(p.argmax()) or p[int(target)] >= chance:
        return None
    return (f"'{classes[int(target)]}' has probability {p[int(target)]:.0%} here, under chance ({chance:.0%}): "
            f"the model does not think this clip is '{classes[int(target)]}', so the map shows what would speak "
            f"for it, not why the model decided. The scores in the report are for the predicted class.")
