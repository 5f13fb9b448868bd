"""A simple baseline a trained model must beat: MFCC statistics with logistic regression.

Each clip becomes 20 MFCC means and 20 standard deviations over time (``librosa``), standardised,
then a multinomial logistic regression (``sklearn``) is fitted on the training clips and scored on
the test fold: two minutes of work on any dataset. ``train`` reports it beside the model, with
the paired difference of their accuracies on the same test clips and its bootstrap interval, and
warns when that interval does not lie above zero.
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from core.errors import InputError

__all__ = ["N_MFCC", "mfcc_statistics", "fit_baseline", "compare_to_baseline"]

N_MFCC = 20


def mfcc_statistics(y: np.ndarray, sr: int, *, n_mfcc: int = N_MFCC) -> np.ndarray:
    """Means and standard deviations over time of a clip's MFCCs.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)], mono
    sr : int > 0, in Hz

    Returns
    -------
    np.ndarray [shape=(2 * n_mfcc,)], float64: the means, then the deviations
    """
    import librosa

    n_fft = min(2048, 2 ** int(np.log2(max(len(y), 64))))
    mfcc = librosa.feature.mfcc(y=np.asarray(y, dtype=np.float32), sr=sr, n_mfcc=n_mfcc, n_fft=n_fft,
                                hop_length=n_fft // 4)  # (n_mfcc, n_frames)
    return np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]).astype(np.float64)


def fit_baseline(train_waves, y_train, test_waves, y_test, *, sr: int, seed: int = 0,
                 progress: bool = False) -> dict:
    """Fit the MFCC baseline on training clips and score it on test clips.

    Parameters
    ----------
    train_waves, test_waves : sequence of np.ndarray [shape=(n_samples,)]
        Mono clips at ``sr``.
    y_train, y_test : array-like [shape=(N,)], int
    sr : int > 0
    seed : int

    Returns
    -------
    dict
        ``name``, ``accuracy`` and ``correct`` (one 0/1 per test clip, for pairing).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(np.unique(y_train)) < 2:
        raise InputError("baseline", "the training clips hold fewer than two classes")
    x_train = np.stack([mfcc_statistics(w, sr) for w in tqdm(train_waves, desc="MFCC baseline", unit="clip",
                                                                disable=not progress)])
    x_test = np.stack([mfcc_statistics(w, sr) for w in test_waves])
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(x_train, y_train)
    correct = (model.predict(x_test) == y_test).astype(int)
    return {"name": f"{N_MFCC} MFCC means and deviations + logistic regression",
            "accuracy": float(correct.mean()), "correct": correct.tolist()}


def compare_to_baseline(model_correct, baseline_correct, *, seed: int = 0) -> dict:
    """Paired accuracy difference, model minus baseline, on the same clips, with a 95 % bootstrap interval.

    Parameters
    ----------
    model_correct, baseline_correct : array-like [shape=(N,)], 0 or 1 per clip

    Returns
    -------
    dict
        ``difference``, ``low``, ``high`` (accuracy points as fractions) and ``beats``: True only
        when the interval lies above zero.

    Examples
    --------
    >>> compare_to_baseline([1, 1, 1, 1], [0, 0, 0, 0])
    {'difference': 1.0, 'low': 1.0, 'high': 1.0, 'beats': True}
    >>> compare_to_baseline([1, 0, 1, 0], [0, 1, 0, 1])["beats"]
    False
    """
    from core.interpret.baselines import bootstrap_interval

    a, b = np.asarray(model_correct, dtype=float), np.asarray(baseline_correct, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise InputError("baseline", f"need as many model as baseline results, got {a.size} and {b.size}")
    mean, low, high = bootstrap_interval(a - b, seed=seed)
    return {"difference": mean, "low": low, "high": high, "beats": bool(low > 0)}
