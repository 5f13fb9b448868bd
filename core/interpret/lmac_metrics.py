"""The metrics L-MAC reports for a mask: AI, AD, AG, FF and Fid-In.

As SpeechBrain's ESC-50 interpretability recipe computes them
(``recipes/ESC50/interpret/interpreter_brain.py``, used by ``train_lmac.py``;
Paissan et al., "Listenable Maps for Audio Classifiers", ICML 2024). For a clip
``x``, its masked-in part ``x_in`` and masked-out part ``x_out``
(:mod:`core.interpret.listen`), the model's probabilities ``p = f(x)``,
``o = f(x_in)``, ``q = f(x_out)``, and ``c = argmax p`` (the predicted class):

* **AI**, average increase: ``100 * [o_c > p_c]``; higher is better;
* **AD**, average drop: ``100 * max(0, p_c - o_c) / p_c``; lower is better;
* **AG**, average gain: ``100 * max(0, o_c - p_c) / (1 - p_c)``; higher is better;
* **FF**, faithfulness: ``p_c - q_c``, the drop when the mask's cells are
  removed; higher is better;
* **Fid-In**, input fidelity: ``[argmax o == c]``, the masked-in part keeps the
  prediction; higher is better.

Each is a mean over clips. One difference from the recipe, on purpose: its
``compute_AD`` applies a softmax to its inputs, which are already
probabilities, so its AD is computed on ``softmax(p)``; here AD uses ``p`` and
``o`` as the paper's formula does. ``eps`` (1e-10) guards the divisions as there.

L-MAC's published figures (:data:`LMAC_ESC50`, its CNN14 on ESC-50, out-of-domain
evaluation) are a different model, data and mask (a trained decoder's soft mask,
not a thresholded map): they give the scale, not a bar to clear.
"""

from __future__ import annotations

import numpy as np

from core.errors import InputError

__all__ = ["METRICS", "HIGHER_IS_BETTER", "LMAC_ESC50", "lmac_scores"]

METRICS = ("AI", "AD", "AG", "FF", "Fid-In")
HIGHER_IS_BETTER = {"AI": True, "AD": False, "AG": True, "FF": True, "Fid-In": True}
# L-MAC on ESC-50 (SpeechBrain's recipe README and the paper's Table 1, out-of-domain mixtures).
LMAC_ESC50 = {"AI": 61.62, "AD": 3.83, "AG": 33.48, "FF": 0.40, "Fid-In": 0.82}
EPS = 1e-10


def lmac_scores(p: np.ndarray, p_in: np.ndarray, p_out: np.ndarray) -> dict[str, np.ndarray]:
    """Per-clip AI, AD, AG, FF and Fid-In from the three sets of class probabilities.

    Parameters
    ----------
    p, p_in, p_out : np.ndarray [shape=(N, n_classes)]
        Probabilities of the clips, of their masked-in parts and of their
        masked-out parts.

    Returns
    -------
    dict
        Metric name -> np.ndarray [shape=(N,)]; AI, AD, AG in %, FF in
        probability, Fid-In 0 or 1. Their means are the recipe's figures.

    Examples
    --------
    >>> p = np.array([[0.6, 0.4]]); o = np.array([[0.8, 0.2]]); q = np.array([[0.3, 0.7]])
    >>> {k: round(float(v[0]), 3) for k, v in lmac_scores(p, o, q).items()}
    {'AI': 100.0, 'AD': 0.0, 'AG': 50.0, 'FF': 0.3, 'Fid-In': 1.0}
    """
    p, p_in, p_out = (np.asarray(a, dtype=np.float64) for a in (p, p_in, p_out))
    if p.ndim != 2 or p.shape != p_in.shape or p.shape != p_out.shape:
        raise InputError("probabilities", f"need three (N, n_classes) arrays of one shape, got "
                                          f"{p.shape}, {p_in.shape}, {p_out.shape}")
    rows = np.arange(len(p))
    c = p.argmax(axis=1)
    pc, oc, qc = p[rows, c], p_in[rows, c], p_out[rows, c]
    return {
        "AI": 100.0 * (oc > pc),
        "AD": 100.0 * np.maximum(0.0, pc - oc) / (pc + EPS),
        "AG": 100.0 * np.maximum(0.0, oc - pc) / (1.0 - pc + EPS),
        "FF": pc - qc,
        "Fid-In": (p_in.argmax(axis=1) == c).astype(np.float64),
    }
