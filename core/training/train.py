"""``python -m core train``: train a model on a dataset folder and write a checkpoint.

    python -m core train --model secnn --data DIR --test-fold 5 --epochs 40 --out checkpoints/my-secnn

Adam; the learning rate halves when the validation loss stops improving
(``ReduceLROnPlateau``); training stops early when it has not improved for
``patience`` epochs, and the best epoch's weights are kept. The validation split
is carved from the training folds, stratified by class. Each training clip is
augmented on the waveform (coloured noise at an SNR, time shift; see
:mod:`core.audio.augment`), then batches are mixed with mixup.

Made for a few CPU cores: every waveform is loaded once and its plain features
computed once; per batch only the clips an augmentation changed get new
features. The front end (clip length, sample rate, mel range) is fitted to the
recordings unless given (:mod:`core.audio.frontend`). The checkpoint's meta records the
data, folds, epochs run, time, history, the test fold's evaluation and, beside it,
a simple baseline on the same split (:mod:`core.training.baseline`); ``train`` warns when
the model does not beat it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from core.audio.features import AudioConfig, log_mel
from core.audio.augment import AugmentConfig, augment_waveform, mixup, spec_augment
from core.data.datasets import DATA_HELP
from core.errors import InputError
from core.audio.frontend import FRONTENDS
from core.kinds import TRAINABLE_KINDS

__all__ = ["TrainConfig", "Split", "train", "load_split", "distillation_loss", "fit", "describe", "pick_device",
           "stratified_split", "parse_overrides", "save_training_state", "load_training_state", "STATE_FILE",
           "configure", "run"]

# Written into the output folder after every epoch: what `train --resume` continues from.
STATE_FILE = "training-state.pt"


def stratified_split(labels, val_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into training and validation, the same fraction of each class.

    Parameters
    ----------
    labels : array-like [shape=(N,)], int
    val_fraction : float in (0, 1)
    rng : np.random.Generator

    Returns
    -------
    train_idx, val_idx : np.ndarray of int, sorted
        Each class with at least 2 clips gives ``round(val_fraction * n)``
        clips (at least 1, at most n - 1) to validation; a class with a single
        clip stays in training.
    """
    if not 0.0 < val_fraction < 1.0:
        raise InputError("val_fraction", f"need a value in (0, 1), got {val_fraction}")
    labels = np.asarray(labels)
    val = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < 2:
            continue
        k = int(np.clip(round(val_fraction * len(idx)), 1, len(idx) - 1))
        val += rng.choice(idx, size=k, replace=False).tolist()
    val_idx = np.sort(np.array(val, dtype=int))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return train_idx, val_idx


def parse_overrides(items: list[str] | None) -> dict:
    """``["channels=16,32,64", "dropout=0.3"]`` -> ``{"channels": [16, 32, 64], "dropout": 0.3}``.

    Values are read as JSON when they parse, comma lists element by element,
    and as strings otherwise.
    """
    def value(text: str):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text

    out = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise InputError("--config", f"expected key=value, got {item!r}")
        out[key.strip()] = [value(t) for t in text.split(",")] if "," in text and not text.startswith("[") \
            else value(text)
    return out


def _batches(order: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches; a last batch of one clip joins the one before (batch norm needs two)."""
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        batches[-2:] = [np.concatenate(batches[-2:])]
    return batches


def _model_config(kind: str, config: dict, audio_cfg: AudioConfig) -> dict:
    config = dict(config)
    if kind == "ast":  # position embeddings are made for the input size
        config.setdefault("n_mels", audio_cfg.n_mels)
        config.setdefault("n_frames", audio_cfg.n_frames)
    return config


def _loss(model, x, y, device) -> tuple[float, float, int]:
    """Summed cross-entropy, correct count and size over batches, no gradients."""
    import torch
    import torch.nn.functional as F

    total, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), 64):
            xb = torch.from_numpy(x[i:i + 64][:, None]).to(device)
            yb = torch.from_numpy(y[i:i + 64]).to(device)
            logits = model(xb).float()
            total += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    return total, correct, len(x)


MODELS = TRAINABLE_KINDS
# "plateau": LR halved when the validation loss stalls; "cosine": cosine decay from lr to 0 over the epochs.
SCHEDULES = ("plateau", "cosine")


@dataclass
class TrainConfig:
    """Everything one training run depends on (the parameters of :func:`train`)."""

    model: str
    data: str | Path
    test_fold: int
    epochs: int
    out: str | Path
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    seed: int = 0
    val_fraction: float = 0.15
    patience: int = 10
    schedule: str = "plateau"
    config: dict | None = None
    audio_cfg: AudioConfig | None = None  # None: fitted to the data (core.audio.frontend), see ``frontend``
    frontend: str = "fitted"
    frontend_overrides: dict = field(default_factory=dict)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    device: str = "auto"
    progress: bool = True
    teacher: str | Path | None = None
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    init: str | Path | None = None
    download: bool = False
    amp: bool = True
    resume: bool = False

    def check(self) -> None:
        """Raise :class:`InputError` for a value no run can use."""
        if self.model not in MODELS:
            raise InputError("--model", f"unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.model == "hf-ast" and self.init is None:
            raise InputError("--init", "fine-tuning 'hf-ast' starts from a Hugging Face AST folder or hub id")
        if self.model != "hf-ast" and self.init is not None:
            raise InputError("--init", f"--init is for 'hf-ast'; {self.model!r} is trained from scratch")
        for name, value in (("epochs", self.epochs), ("batch_size", self.batch_size), ("patience", self.patience)):
            if not isinstance(value, int) or value < 1:
                raise InputError(name, f"need a positive integer, got {value!r}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise InputError("lr", f"need lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}")
        if self.schedule not in SCHEDULES:
            raise InputError("--schedule", f"use one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError("--device", f"use 'auto', 'cpu' or 'cuda', got {self.device!r}")


def pick_device(device: str) -> str:
    """``"auto"``: CUDA when torch sees a GPU, else the CPU; ``"cuda"`` without a GPU is refused."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device", "cuda was asked for but torch sees no GPU")
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


@dataclass
class Split:
    """The clips of one run: training pool (waveforms and plain features), validation and test features."""

    dataset: object
    folds: list
    pool: list
    test: list
    labels: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray
    waves: list
    plain: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_split(cfg: TrainConfig, rng: np.random.Generator, features=None) -> Split:
    """Open the dataset, split the folds, load every waveform once and compute plain features once.

    Parameters
    ----------
    cfg : TrainConfig
    rng : np.random.Generator
        Draws the stratified validation split.
    features : callable or None
        ``features(y) -> (n_mels, n_frames)``; ``None`` is ``log_mel(y, cfg.audio_cfg)``.

    Returns
    -------
    Split
        Validation waveforms are dropped (``None``): they are never augmented.
    """
    from core.data.datasets import load_mono, open_dataset

    features = features or (lambda y: log_mel(y, cfg.audio_cfg))
    dataset = open_dataset(cfg.data)
    folds = sorted({r.fold for r in dataset.records})
    if cfg.test_fold not in folds:
        raise InputError("--test-fold", f"fold {cfg.test_fold} is not in {cfg.data} (folds {folds})")
    pool = [r for r in dataset.records if r.fold != cfg.test_fold]
    test = dataset.select(cfg.test_fold)
    if not pool:
        raise InputError(cfg.data, f"no clips outside the test fold {cfg.test_fold}")
    labels = np.array([r.label for r in pool], dtype=np.int64)
    train_idx, val_idx = stratified_split(labels, cfg.val_fraction, rng)
    if len(val_idx) == 0:
        raise InputError(cfg.data, "too few clips per class for a validation split")
    waves = [load_mono(r, cfg.audio_cfg) for r in tqdm(pool, desc="loading", unit="clip", disable=not cfg.progress)]
    plain = np.stack([features(w) for w in waves])  # (N, n_mels, n_frames)
    x_test = np.stack([features(load_mono(r, cfg.audio_cfg))
                       for r in tqdm(test, desc="test clips", unit="clip", disable=not cfg.progress)])
    y_test = np.array([r.label for r in test], dtype=np.int64)
    x_val, y_val = plain[val_idx], labels[val_idx]
    for j in val_idx:  # validation clips are never augmented: keep their features only
        waves[j] = None
    return Split(dataset, folds, pool, test, labels, train_idx, val_idx, waves, plain, x_val, y_val, x_test, y_test)


def _front_end(audio_cfg) -> str:
    return f"{audio_cfg.sr} Hz, {audio_cfg.n_mels} mels, hop {audio_cfg.hop_length}, {audio_cfg.n_frames} frames"


def distillation_loss(logits, targets, weights, teacher_logits=None, *, weight: float = 0.5,
                      temperature: float = 2.0):
    """Cross-entropy on (mixed) hard targets, blended with a teacher's soft targets.

    ::

        hard = sum_k w_k * CE(logits, targets_k)          # mixup: two targets, weights lam, 1 - lam
        loss = hard                                        # without a teacher
        loss = (1 - weight) * hard + weight * T**2 * KL(softmax(teacher / T) || softmax(logits / T))

    with the KL divergence averaged over the batch (Hinton et al., 2015; DeiT's soft distillation).

    Parameters
    ----------
    logits : Tensor [shape=(B, n_classes)]
    targets : sequence of Tensor [shape=(B,)], int
    weights : sequence of float, one per target
    teacher_logits : Tensor [shape=(B, n_classes)] or None
    weight : float in [0, 1]
    temperature : float > 0

    Returns
    -------
    Tensor, a scalar
    """
    import torch.nn.functional as F

    hard = sum(w * F.cross_entropy(logits, t) for t, w in zip(targets, weights))
    if teacher_logits is None:
        return hard
    T = temperature
    soft = F.softmax(teacher_logits / T, dim=1)
    kl = F.kl_div(F.log_softmax(logits / T, dim=1), soft, reduction="batchmean") * T * T
    return (1 - weight) * hard + weight * kl


def _settings(cfg: TrainConfig) -> dict:
    """What a resumed run must share with the run it continues: every setting but the bookkeeping ones.

    ``epochs`` may grow on resume with the plateau schedule (the cosine one is laid out over ``epochs``).
    """
    skip = {"out", "progress", "device", "resume", "epochs"} - ({"epochs"} if cfg.schedule == "cosine" else set())
    return {k: json.loads(json.dumps(v, default=str)) for k, v in dataclasses.asdict(cfg).items() if k not in skip}


def save_training_state(out: str | Path, state: dict) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts only) to ``out/training-state.pt``.

    Written to a temporary file and renamed into place, so a run killed while
    saving leaves the previous epoch's state whole.
    """
    import torch

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / STATE_FILE)
    return out / STATE_FILE


def load_training_state(out: str | Path, cfg: TrainConfig) -> dict | None:
    """The state :func:`fit` saved in ``out`` after its last finished epoch, or ``None`` when there is none.

    Read with ``weights_only=True`` (never unpickled beyond tensors and plain
    values). A state saved with other settings is refused with
    :class:`InputError` naming the first setting that differs.
    """
    import torch

    path = Path(out) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 (any unreadable file is the same message)
        raise InputError(path, f"not a readable training state ({type(exc).__name__}: {exc})") from None
    saved, now = state.get("settings", {}), _settings(cfg)
    for key in sorted(set(saved) | set(now)):
        if saved.get(key) != now.get(key):
            raise InputError(path, f"saved by a run with {key}={saved.get(key)!r}, this one has "
                                   f"{now.get(key)!r}; resume with the same settings or write to another --out")
    return state


def fit(net, split: Split, cfg: TrainConfig, rng: np.random.Generator, device: str, *, teacher_net=None,
        features=None, state: dict | None = None) -> tuple[list[dict], dict]:
    """The training loop: Adam, LR halved on plateau, early stopping, augmentation and mixup.

    On CUDA with ``cfg.amp`` the forward passes run in bfloat16 autocast
    (mixed precision); on the CPU in float32, as always. After every epoch the
    whole state (weights, best weights, optimiser, schedule, random generators,
    history) is saved with :func:`save_training_state`; ``state``, as
    :func:`load_training_state` returns it, continues from there, so a resumed
    run ends with the weights an uninterrupted one would have.

    Returns
    -------
    history : list of dict
        One row per epoch: losses, validation accuracy, learning rate, time.
    best : dict
        ``epoch`` and ``state`` (the state dict of the best validation loss),
        already loaded into ``net``, which is left in eval mode.
    """
    import torch

    features = features or (lambda y: log_mel(y, cfg.audio_cfg))
    augment, labels, waves, plain = cfg.augment, split.labels, split.waves, split.plain
    optimiser = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=cfg.epochs)
        end_of_epoch = lambda val_loss: scheduler.step()  # noqa: E731 (the rate follows the epoch count alone)
    else:
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="min", factor=0.5,
                                                               patience=max(1, cfg.patience // 3))
        end_of_epoch = scheduler.step
    amp = cfg.amp and device == "cuda"

    def autocast():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()

    def objective(xb, targets, weights):
        with autocast():
            logits = net(xb).float()
            teacher = None
            if teacher_net is not None:
                with torch.no_grad():
                    teacher = teacher_net(xb).float()
        return distillation_loss(logits, targets, weights, teacher, weight=cfg.distill_weight,
                                 temperature=cfg.distill_temperature)

    history, best, best_loss, since_best, first = [], None, float("inf"), 0, 1
    if state is not None:
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        rng.bit_generator.state = state["numpy_rng"]
        history, best_loss, since_best = state["history"], state["best_loss"], state["since_best"]
        best = {"epoch": state["best_epoch"], "state": state["best_state"]} if state["best_state"] else None
        first = len(history) + 1
        if cfg.progress:
            tqdm.write(f"resuming after epoch {len(history)} (best so far: epoch {state['best_epoch']})")
    for epoch in range(first, cfg.epochs + 1):
        if since_best >= cfg.patience:  # a resumed run that had already stopped early
            break
        t0 = time.perf_counter()
        net.train()
        order = rng.permutation(split.train_idx)
        train_loss, seen = 0.0, 0
        bar = tqdm(_batches(order, cfg.batch_size), desc=f"epoch {epoch}/{cfg.epochs}", unit="batch",
                   disable=not cfg.progress, leave=False)
        for idx in bar:
            feats = []
            for j in idx:
                y = augment_waveform(waves[j], rng, augment)
                x = plain[j] if y is waves[j] or np.array_equal(y, waves[j]) else features(y)
                feats.append(spec_augment(x, rng, augment))
            xb = torch.from_numpy(np.stack(feats)[:, None]).to(device)  # (B, 1, n_mels, n_frames)
            yb = torch.from_numpy(labels[idx]).to(device)
            if augment.mixup_alpha > 0 and len(idx) > 1:
                lam = float(rng.beta(augment.mixup_alpha, augment.mixup_alpha))
                perm = torch.from_numpy(rng.permutation(len(idx))).to(device)
                xb = mixup(xb, xb[perm], lam)
                loss = objective(xb, (yb, yb[perm]), (lam, 1 - lam))
            else:
                loss = objective(xb, (yb,), (1.0,))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            train_loss += float(loss.detach()) * len(idx)
            seen += len(idx)
            bar.set_postfix(loss=f"{train_loss / seen:.3f}")
        net.eval()
        with autocast():
            val_sum, val_correct, n_val = _loss(net, split.x_val, split.y_val, device)
        val_loss = val_sum / n_val
        end_of_epoch(val_loss)
        row = {"epoch": epoch, "train_loss": train_loss / max(seen, 1), "val_loss": val_loss,
               "val_accuracy": val_correct / n_val, "lr": optimiser.param_groups[0]["lr"],
               "time_s": round(time.perf_counter() - t0, 2)}
        history.append(row)
        if cfg.progress:
            tqdm.write(f"epoch {epoch}: train loss {row['train_loss']:.3f}  val loss {val_loss:.3f}  "
                       f"val acc {row['val_accuracy']:.3f}  lr {row['lr']:.2g}  {row['time_s']:.0f} s")
        if val_loss < best_loss - 1e-4:
            best_loss, since_best = val_loss, 0
            best = {"epoch": epoch, "state": copy.deepcopy(net.state_dict())}
        else:
            since_best += 1
        save_training_state(cfg.out, {
            "settings": _settings(cfg), "history": history, "best_loss": best_loss, "since_best": since_best,
            "best_epoch": best["epoch"] if best else 0, "best_state": best["state"] if best else {},
            "model": net.state_dict(), "optimizer": optimiser.state_dict(), "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(), "numpy_rng": rng.bit_generator.state})
        if since_best >= cfg.patience:
            break
    if best is None:  # the validation loss was never finite: keep the last epoch
        best = {"epoch": len(history), "state": copy.deepcopy(net.state_dict())}
    net.load_state_dict(best["state"])
    net.eval()
    return history, best


def describe(cfg: TrainConfig, split: Split, history: list[dict], best: dict, *, device: str, start: float,
             load_s: float, net, evaluation: dict) -> dict:
    """The meta a checkpoint records: data, folds, sizes, epochs, time, machine, settings, history, evaluation."""
    import torch

    from core.models import count_parameters

    return {
        "data": str(Path(cfg.data).resolve()),
        "dataset_layout": split.dataset.layout,
        "dataset_fingerprint": split.dataset.fingerprint(),
        "train_folds": [f for f in split.folds if f != cfg.test_fold],
        "test_fold": cfg.test_fold,
        "n_train": int(len(split.train_idx)), "n_val": int(len(split.val_idx)), "n_test": len(split.test),
        "epochs_requested": cfg.epochs, "epochs_run": len(history), "best_epoch": best["epoch"],
        "time_s": round(time.perf_counter() - start, 3), "load_time_s": round(load_s, 3),
        "device": device, "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "seed": cfg.seed, "batch_size": cfg.batch_size, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
        "val_fraction": cfg.val_fraction, "patience": cfg.patience, "schedule": cfg.schedule,
        "augment": dataclasses.asdict(cfg.augment),
        "teacher": None if cfg.teacher is None else {"checkpoint": Path(cfg.teacher).name, "weight": cfg.distill_weight,
                                                     "temperature": cfg.distill_temperature},
        "parameters": count_parameters(net),
        "history": history,
        "evaluation": evaluation,
    }


def _baseline(split: Split, cfg: TrainConfig, evaluation: dict) -> dict:
    """The MFCC baseline (:mod:`core.training.baseline`) on the same training clips and test fold, paired with the model.

    It hears what the model hears, at the model's rate and cut to its window, but unpadded: the statistics of a
    short clip are not diluted by the silence the model's input is padded with.
    """
    from core.audio.features import load_audio
    from core.training.baseline import compare_to_baseline, fit_baseline

    t0 = time.perf_counter()
    a = cfg.audio_cfg
    n_window = a.n_samples

    def heard(r):
        return load_audio(r.path, a, resample_to=a.sr, first_s=n_window / a.sr + 0.1).mono[:n_window]

    train_waves = [heard(split.pool[j]) for j in split.train_idx]
    test_waves = [heard(r) for r in split.test]
    result = fit_baseline(train_waves, split.labels[split.train_idx], test_waves, split.y_test,
                          sr=cfg.audio_cfg.sr, seed=cfg.seed, progress=cfg.progress)
    model_correct = (np.asarray(evaluation["y_pred"]) == split.y_test).astype(int)
    return {"name": result["name"], "accuracy": result["accuracy"], "model_accuracy": evaluation["accuracy"],
            **compare_to_baseline(model_correct, result["correct"], seed=cfg.seed),
            "time_s": round(time.perf_counter() - t0, 2)}


def baseline_lines(meta: dict) -> list[str]:
    """What ``train`` prints about the baseline: both accuracies, the paired difference, and a warning."""
    b = meta.get("baseline")
    if not b:
        return []
    lines = [f"model accuracy {b['model_accuracy']:.3f} beside the baseline ({b['name']}) {b['accuracy']:.3f}"]
    lines[0] += (f": {100 * b['difference']:+.1f} points, 95 % interval {100 * b['low']:+.1f} to "
                 f"{100 * b['high']:+.1f} (paired bootstrap over the test clips)")
    if not b["beats"]:
        lines.append("warning: the model does not beat the MFCC baseline on this fold (the interval reaches "
                     "zero or below); more epochs, another front end or more data may help")
    return lines


def train(**kwargs) -> dict:
    """Train a model on folds other than ``test_fold``, evaluate on it, save a checkpoint.

    Parameters
    ----------
    model : {"secnn", "ast", "hf-ast"}
        ``"hf-ast"`` fine-tunes a Hugging Face AST (``init``) with a new head
        for the dataset's classes, on its own feature extractor's input, and
        saves it with ``save_pretrained`` (plus ``training.json``).
    data : str or Path
        Dataset folder (see :func:`core.data.datasets.open_dataset`).
    test_fold : int
        Held out for the final evaluation; the other folds train and validate.
    epochs : int > 0
        At most this many; early stopping may end sooner.
    out : str or Path
        Checkpoint folder to write.
    batch_size : int > 0
    lr : float > 0
        Adam's initial learning rate.
    weight_decay : float >= 0
    seed : int
        Seeds the split, the augmentations, mixup, batch order and the weights.
    val_fraction : float in (0, 1)
        Share of each class of the training folds kept for validation.
    patience : int > 0
        Epochs without a better validation loss before stopping; with the
        plateau schedule the learning rate halves after ``max(1, patience // 3)``
        such epochs.
    schedule : {"plateau", "cosine"}
        ``"cosine"`` decays the learning rate from ``lr`` to 0 over ``epochs``
        (Loshchilov and Hutter, 2017).
    config : dict or None
        Model configuration fields (see :func:`core.models.build_model`).
    audio_cfg : AudioConfig or None
        The preprocessing; ``None`` fits it to the data (:func:`core.audio.frontend.fit_frontend`) and records
        how in the meta's ``frontend``.
    frontend : {"fitted", "reference"}
        With ``audio_cfg=None``: fitted to the recordings' durations and sample rates, or the ESC-50
        reference setting.
    frontend_overrides : dict
        ``clip_s``, ``sr``, ``fmax_hz``, ``n_mels`` replacing what the fitted front end proposes.
    augment : AugmentConfig
        ``mixup_alpha=0``, ``p_noise=p_shift=0`` and no masks turn augmentation off.
    device : {"auto", "cpu", "cuda"}
        ``"auto"``: CUDA when present (with bfloat16 mixed precision unless
        ``amp=False``), else the CPU. The meta records which.
    progress : bool
        Show progress bars.
    teacher : str, Path or None
        A checkpoint folder whose model teaches this one (knowledge
        distillation, see :func:`distillation_loss`). The teacher sees the
        same (augmented, mixed) batch. It must share the classes and the
        student's input (front end and its settings).
    distill_weight : float in [0, 1]
    distill_temperature : float > 0
    init : str, Path or None
        For ``"hf-ast"``: a Hugging Face AST folder or hub id (from the local
        cache; ``download=True`` fetches that id when it is not there).
    resume : bool
        Continue from ``out/training-state.pt`` (saved after every epoch) when
        it is there; a run whose epochs are all done only evaluates and saves.

    Returns
    -------
    dict
        The meta written into the checkpoint: data, folds, sizes, epochs run,
        time, history, evaluation, the MFCC baseline on the same split paired with
        the model (``baseline``, see :mod:`core.training.baseline`), the fitted front end's
        card (``frontend``), and, for the SE-CNN, the evaluation with SE
        excitation forced to 1.
    """
    import torch  # imported here so that ``python -m core`` starts fast for other commands

    from core.models.checkpoint import save_checkpoint
    from core.training.evaluate import HEADLINE, metrics, predict_proba
    from core.models import build_model

    cfg = TrainConfig(**kwargs)
    cfg.check()
    device = pick_device(cfg.device)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    features, hf_model = None, None
    if cfg.model == "hf-ast":
        from core.data.datasets import open_dataset
        from core.models.hf_ast import hf_audio_config, hf_features, load_hf_ast, new_head

        classes = open_dataset(cfg.data).classes
        hf_model = new_head(load_hf_ast(cfg.init, download=cfg.download), classes)
        cfg.audio_cfg = hf_audio_config(hf_model)

        def hf_input(y):
            return hf_features(y, cfg.audio_cfg.sr, extractor=hf_model.extractor).numpy()

        features = hf_input

    frontend_card = None
    if cfg.audio_cfg is None:
        from core.data.datasets import open_dataset
        from core.audio.frontend import fit_frontend

        cfg.audio_cfg, frontend_card = fit_frontend(open_dataset(cfg.data).records, frontend=cfg.frontend,
                                                    **cfg.frontend_overrides)

    taught_by = None
    if cfg.teacher is not None:  # checked before any clip is loaded
        from core.models.checkpoint import load_checkpoint

        taught_by = load_checkpoint(cfg.teacher)
        student = "hf-ast" if cfg.model == "hf-ast" else "log-mel"
        teacher = {"secnn": "log-mel", "ast": "log-mel"}.get(taught_by.kind, taught_by.kind)
        if teacher != student or taught_by.audio_cfg != cfg.audio_cfg:
            raise InputError(cfg.teacher, f"the teacher ({taught_by.kind}, {taught_by.layout} input, "
                                          f"{_front_end(taught_by.audio_cfg)}) takes another input than the student "
                                          f"({cfg.model}, {_front_end(cfg.audio_cfg)}); distillation feeds both the "
                                          f"same batch, so they must share their front end")

    if cfg.progress and frontend_card is not None:  # said once the settings are checked: bad input is one line
        a = cfg.audio_cfg
        print(f"front end ({cfg.frontend}): {a.clip_duration_s:.2f} s at {a.sr} Hz, {a.n_mels} mel bands "
              f"{a.fmin_hz:g}-{a.fmax:g} Hz, n_fft {a.n_fft}, hop {a.hop_length}; median padding "
              f"{100 * frontend_card['padding_share_median']:.0f} %", file=sys.stderr)
    split = load_split(cfg, rng, features)
    dataset = split.dataset

    teacher_net = None
    if taught_by is not None:
        if taught_by.classes != dataset.classes:
            raise InputError(cfg.teacher, f"the teacher's classes {taught_by.classes} differ from the data's")
        teacher_net = taught_by.model.to(device).eval()
    if not 0.0 <= cfg.distill_weight <= 1.0 or not cfg.distill_temperature > 0:
        raise InputError("distill_weight", f"need w in [0, 1] and T > 0, got {cfg.distill_weight}, "
                                           f"{cfg.distill_temperature}")

    if hf_model is not None:
        net = hf_model.to(device)
    else:
        net = build_model(cfg.model, _model_config(cfg.model, cfg.config or {}, cfg.audio_cfg),
                          n_classes=len(dataset.classes)).to(device)
    load_s = time.perf_counter() - start
    if cfg.progress:
        amp = " with bfloat16 mixed precision" if device == "cuda" and cfg.amp else ""
        print(f"training {cfg.model} on {device}{amp}", file=sys.stderr)
    state = load_training_state(cfg.out, cfg) if cfg.resume else None
    history, best = fit(net, split, cfg, rng, device, teacher_net=teacher_net, features=features, state=state)
    net_cpu = net.to("cpu")

    evaluation = metrics(split.y_test, predict_proba(net_cpu, split.x_test), dataset.classes)
    evaluation["clip_ids"] = [r.clip_id for r in split.test]
    meta = describe(cfg, split, history, best, device=device, start=start, load_s=load_s, net=net_cpu,
                    evaluation=evaluation)
    if frontend_card is not None:
        meta["frontend"] = frontend_card
    meta["baseline"] = _baseline(split, cfg, evaluation)
    if hasattr(net_cpu, "se_bypassed") and net_cpu.se_blocks():
        with net_cpu.se_bypassed():
            bypassed = metrics(split.y_test, predict_proba(net_cpu, split.x_test), dataset.classes)
        meta["evaluation_se_bypassed"] = {k: bypassed[k] for k in HEADLINE}
    if hf_model is not None:
        from core.models.checkpoint import save_hf_checkpoint

        meta["init"] = str(cfg.init)
        save_hf_checkpoint(cfg.out, net_cpu, meta)
    else:
        save_checkpoint(cfg.out, net_cpu, cfg.audio_cfg, dataset.classes, meta)
    from core.interpret.novelty import fit_after_training

    fit_after_training(cfg.out, net_cpu, split.plain[split.train_idx], split.labels[split.train_idx],
                       split.plain[split.val_idx], data=str(cfg.data))
    return meta


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=list(MODELS))
    parser.add_argument("--data", required=True, type=Path, help=DATA_HELP)
    parser.add_argument("--test-fold", required=True, type=int,
                        help="fold held out for testing (one of the dataset's folds: ESC-50 1-5, UrbanSound8K 1-10, "
                             "a CSV's fold column)")
    parser.add_argument("--epochs", required=True, type=int, help="at most this many epochs")
    parser.add_argument("--out", required=True, type=Path, help="checkpoint folder to write")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.15)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--mixup-alpha", type=float, default=AugmentConfig.mixup_alpha,
                        help="Beta(alpha, alpha) of mixup; 0 turns it off")
    parser.add_argument("--no-augment", action="store_true", help="no noise or shift augmentation")
    parser.add_argument("--time-masks", type=int, default=0, help="SpecAugment time masks per clip (0: off)")
    parser.add_argument("--freq-masks", type=int, default=0, help="SpecAugment frequency masks per clip (0: off)")
    parser.add_argument("--schedule", default="plateau", choices=SCHEDULES,
                        help="plateau: LR halved when validation loss stalls; cosine: decay to 0 over --epochs")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="model config fields, e.g. channels=32,64,128,256,256 dropout=0.3")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--teacher", type=Path, default=None,
                        help="checkpoint folder to distil from (soft targets, DeiT-style)")
    parser.add_argument("--distill-weight", type=float, default=0.5)
    parser.add_argument("--distill-temperature", type=float, default=2.0)
    parser.add_argument("--init", default=None,
                        help="hf-ast: the Hugging Face AST folder or hub id to fine-tune (a new head is made)")
    parser.add_argument("--download", action="store_true",
                        help="hf-ast: download --init's hub id when it is not in the local Hugging Face cache")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    parser.add_argument("--resume", action="store_true",
                        help=f"continue from --out's {STATE_FILE} (saved after every epoch) with the same settings; "
                             "with the plateau schedule --epochs may be raised")
    group = parser.add_argument_group("front end (default: fitted to the data's durations and sample rates)")
    group.add_argument("--frontend", default="fitted", choices=FRONTENDS,
                       help="fitted: clip length, sample rate and mel range read from the recordings; "
                            "reference: 5 s at 44.1 kHz, 128 bands up to 22 kHz (ESC-50's)")
    group.add_argument("--clip-s", type=float, default=None, help="window length in seconds (e.g. 1)")
    group.add_argument("--sr", type=int, default=None, help="sample rate the model hears, in Hz (e.g. 8000)")
    group.add_argument("--fmax-hz", type=float, default=None, help="top of the mel bands, at most sr/2 (e.g. 4000)")
    group.add_argument("--n-mels", type=int, default=None, help="mel bands (default 128 from 32 kHz, else 64)")


def run(args: argparse.Namespace) -> int:
    import torch

    if args.threads is not None:
        if args.threads < 1:
            raise InputError("--threads", f"need >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    augment = AugmentConfig(mixup_alpha=args.mixup_alpha, time_masks=args.time_masks, freq_masks=args.freq_masks)
    if args.no_augment:
        augment = dataclasses.replace(augment, p_noise=0.0, p_shift=0.0)
    meta = train(model=args.model, data=args.data, test_fold=args.test_fold, epochs=args.epochs, out=args.out,
                 batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay, seed=args.seed,
                 val_fraction=args.val_fraction, patience=args.patience, schedule=args.schedule,
                 config=parse_overrides(args.config),
                 augment=augment, device=args.device, progress=not args.no_progress, teacher=args.teacher,
                 distill_weight=args.distill_weight, distill_temperature=args.distill_temperature,
                 init=args.init, download=args.download, amp=not args.no_amp, resume=args.resume,
                 frontend=args.frontend,
                 frontend_overrides={"clip_s": args.clip_s, "sr": args.sr, "fmax_hz": args.fmax_hz,
                                     "n_mels": args.n_mels})
    ev = meta["evaluation"]
    line = (f"saved {args.out}: {meta['epochs_run']} epochs in {meta['time_s']:.0f} s on {meta['device']}; "
            f"fold {args.test_fold} "
            f"accuracy {ev['accuracy']:.3f}, macro F1 {ev['macro_f1']:.3f}")
    if "evaluation_se_bypassed" in meta:
        line += f"; with SE forced to 1: accuracy {meta['evaluation_se_bypassed']['accuracy']:.3f}"
    print(line, file=sys.stderr)
    for text in baseline_lines(meta):
        print(text, file=sys.stderr)
    return 0
