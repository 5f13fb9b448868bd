"""Attention over time steps: what a model's attention module looks at when it has no patch grid.

A CRNN or a conformer attends over its own time steps (frames after pooling),
not over spectrogram patches. Such tokens are read as equally spaced over the
clip: token ``k`` of ``T`` covers ``[k, k + 1) * duration / T`` seconds. That is
an assumption about the model (true for conv pooling over a clip's frames), and
pages say so beside the picture.

Evidence beside the picture: the share of a query's attention that lands on
the clip's event, against the event's share of the time steps, which is what
uniform attention would give.

A query attending 0.7 to the first of 4 steps over 5 s, 0.1 to each other one,
with an event from 1 to 2 s (steps 0 and 1):

>>> edges = token_edges(4, 5.0)
>>> on_event = event_tokens(edges, [(1.0, 2.0)])
>>> edges.tolist(), on_event.tolist()
([0.0, 1.25, 2.5, 3.75, 5.0], [True, True, False, False])
>>> event_share(np.array([[[0.7, 0.1, 0.1, 0.1]]]), on_event)  # (heads, queries, keys)
{'share': array([0.8]), 'chance': 0.5, 'ratio': array([1.6])}

:func:`time_attention` reads the weights from a model's attention tap:
``(heads or 1, T queries, T keys)``, rows summing to 1.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from core.errors import InputError

__all__ = ["time_attention", "token_edges", "event_tokens", "event_share"]


def time_attention(model, x: torch.Tensor, tap: str) -> np.ndarray:
    """The attention weights an attention tap gives for one clip.

    Parameters
    ----------
    model : nn.Module with ``taps()``
    x : Tensor [shape=(1, ...)]
        The model's input for one clip.
    tap : str
        An ``"attention"`` tap whose module returns ``(values, weights)``.

    Returns
    -------
    np.ndarray [shape=(H, T, S)], float64
        ``H`` heads (1 when the module averages them, as ``nn.MultiheadAttention``
        does by default), ``T`` queries, ``S`` keys; each row sums to 1.

    Raises
    ------
    InputError
        Not an attention tap, no weights returned (``need_weights=False``), or
        rows that are not distributions.
    """
    from core.models import find_tap
    from core.models.taps import extract

    if find_tap(model, tap).kind != "attention":
        raise InputError(tap, "is not an attention tap")
    with torch.no_grad():
        weights = extract(model, x[:1], [tap]).get(tap)
    if weights is None or not torch.is_tensor(weights):
        raise InputError(tap, "the module returned no attention weights (is it called with need_weights=False?)")
    w = weights.detach().double().numpy()[0]
    if w.ndim == 2:
        w = w[None]
    if w.ndim != 3:
        raise InputError(tap, f"attention weights should be (heads, queries, keys) per clip, got {w.shape}")
    if not np.allclose(w.sum(axis=-1), 1.0, atol=1e-3):
        raise InputError(tap, "its attention rows do not sum to 1: not softmax weights")
    return w


def token_edges(n_tokens: int, duration_s: float) -> np.ndarray:
    """np.ndarray [shape=(n_tokens + 1,)]: the time edges (s) of equally spaced tokens over the clip.

    >>> token_edges(4, 2.0).tolist()
    [0.0, 0.5, 1.0, 1.5, 2.0]
    """
    if n_tokens < 1:
        raise InputError("tokens", f"need at least one, got {n_tokens}")
    return np.linspace(0.0, float(duration_s), int(n_tokens) + 1)


def event_tokens(edges: np.ndarray, events: Sequence[tuple[float, float]]) -> np.ndarray:
    """np.ndarray [shape=(T,)], bool: tokens whose time span overlaps any ``(t0_s, t1_s)`` event.

    >>> event_tokens(token_edges(4, 2.0), [(0.6, 0.7)]).tolist()
    [False, True, False, False]
    """
    edges = np.asarray(edges, dtype=np.float64)
    out = np.zeros(len(edges) - 1, dtype=bool)
    for t0, t1 in events:
        out |= (edges[:-1] < t1) & (edges[1:] > t0)
    return out


def event_share(weights: np.ndarray, on_event: np.ndarray) -> dict:
    """How much attention lands on the event, against uniform attention.

    Parameters
    ----------
    weights : np.ndarray [shape=(H, T, S)]
        From :func:`time_attention`.
    on_event : np.ndarray [shape=(S,)], bool
        From :func:`event_tokens`.

    Returns
    -------
    dict
        ``share``: attention mass on event keys, per head, averaged over the
        queries (H,); ``chance``: the event's share of the keys (what uniform
        attention gives); ``ratio``: ``share / chance`` (H,), NaN without an event.

    >>> w = np.full((1, 2, 4), 0.25); w[0, :, 1] = 0.7; w[0, :, [0, 2, 3]] = 0.1
    >>> r = event_share(w, np.array([False, True, False, False]))
    >>> round(float(r["share"][0]), 2), r["chance"], round(float(r["ratio"][0]), 2)
    (0.7, 0.25, 2.8)
    """
    weights = np.asarray(weights, dtype=np.float64)
    on_event = np.asarray(on_event, dtype=bool)
    if weights.ndim != 3 or weights.shape[-1] != on_event.shape[0]:
        raise InputError("attention", f"weights {weights.shape} do not match {on_event.shape[0]} key tokens")
    share = weights[..., on_event].sum(axis=-1).mean(axis=-1)
    chance = float(on_event.mean())
    ratio = share / chance if chance > 0 else np.full_like(share, np.nan)
    return {"share": share, "chance": chance, "ratio": ratio}
