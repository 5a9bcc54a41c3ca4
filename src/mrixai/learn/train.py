"""Training one CNN: Adam, class-weighted cross-entropy, early stopping on validation balanced accuracy.

On CUDA the forward pass runs under bf16 autocast and 3D models use the channels-last-3d memory
format (``precision: auto``); on the CPU everything is fp32, seeded and deterministic, so a rerun
of a run gives the same weights. Checkpoints carry weights, optimizer state, epoch, the training
config, the seed and library versions, and are read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import logging
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mrixai.io import atomic_path
from mrixai.learn.data import augment, batches, pick_device, to_device_if_fits
from mrixai.learn.metrics import classification_metrics
from mrixai.learn.networks import build_model, freeze_blocks, set_frozen_eval

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
# Balanced accuracy of a classifier that guesses (or always predicts one class).
CHANCE = 0.5


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (all from the config file).

    Every training setting comes from config.yaml's `training` block (merged with the study's
    `studies.<study>.training`); only ``model_options`` (set by the study, e.g. the PIF layer) and
    ``freeze_blocks`` (set only when fine-tuning; 0 freezes nothing) have defaults.
    """

    model: str
    batch_size: int
    learning_rate: float
    weight_decay: float
    max_epochs: int
    min_epochs: int
    patience: int
    flip_p: float
    max_shift: int
    device: str
    precision: str
    threads: int
    model_options: dict = field(default_factory=dict)
    freeze_blocks: int = 0

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_epochs", "min_epochs", "patience", "threads"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"training.{name} must be an integer >= 1, got {value!r}")
        if self.learning_rate <= 0:
            raise ValueError(f"training.learning_rate must be > 0, got {self.learning_rate!r}")
        if self.weight_decay < 0:
            raise ValueError(f"training.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"training.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.freeze_blocks < 0:
            raise ValueError(f"freeze_blocks must be >= 0, got {self.freeze_blocks!r}")


def library_versions() -> dict[str, str]:
    """Versions recorded in every checkpoint."""
    import mrixai

    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "mrixai": getattr(mrixai, "__version__", "unknown"),
    }


def seed_everything(seed: int, threads: int) -> torch.Generator:
    """Seed torch and numpy, fix CPU threads, ask for deterministic kernels; return a data generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = False
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen


def _use_bf16(device: torch.device, precision: str) -> bool:
    if precision == "bf16" and device.type != "cuda":
        raise ValueError(f"precision bf16 needs a CUDA device, got {device}")
    return device.type == "cuda" and precision in ("auto", "bf16")


def memory_format(n_spatial: int, device: torch.device) -> torch.memory_format:
    """Channels-last layout on CUDA and CPU, where the convolution kernels run faster on it
    (benchmarks/train_throughput.py measures both); contiguous elsewhere (e.g. Apple MPS)."""
    if device.type not in ("cuda", "cpu"):
        return torch.contiguous_format
    return torch.channels_last_3d if n_spatial == 3 else torch.channels_last


def _class_weights(y: np.ndarray) -> torch.Tensor:
    counts = np.bincount(y.astype(int), minlength=2).astype(float)
    if (counts == 0).any():
        raise ValueError(f"the training set lacks a class (counts {counts.tolist()})")
    return torch.tensor(counts.sum() / (2 * counts), dtype=torch.float32)


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module,
    samples: torch.Tensor,
    indices: np.ndarray,
    device: torch.device,
    batch_size: int = 16,
    precision: str = "auto",
) -> np.ndarray:
    """Positive-class probabilities of ``samples[indices]``."""
    model.eval()
    bf16 = _use_bf16(device, precision)
    fmt = memory_format(samples.ndim - 1, device)
    dummy = torch.zeros(len(samples), dtype=torch.long)
    out = []
    for x, _ in batches(samples, dummy, indices, batch_size, device):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x.contiguous(memory_format=fmt))
        out.append(torch.softmax(logits.float(), dim=1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def train_epoch(
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    train_idx: np.ndarray,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
) -> tuple[float, int]:
    """One pass over ``train_idx`` in shuffled batches with augmentation; returns (loss sum, samples)."""
    bf16 = _use_bf16(device, cfg.precision)
    fmt = memory_format(x_all.ndim - 1, device)
    model.train()
    if cfg.freeze_blocks:
        set_frozen_eval(model)
    total, seen = 0.0, 0
    for x, y in batches(x_all, y_all, train_idx, cfg.batch_size, device, gen, shuffle=True, drop_last=True):
        x = augment(x, gen, cfg.flip_p, cfg.max_shift).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, weight=class_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * len(y)
        seen += len(y)
    return total, seen


def fit(
    samples: np.ndarray,
    labels: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    cfg: TrainConfig,
    seed: int,
    init_state: dict | None = None,
    desc: str = "train",
) -> tuple[torch.nn.Module, pd.DataFrame, dict]:
    """Train ``cfg.model`` on ``samples[train_idx]``; early-stop on the validation balanced accuracy.

    Training stops after ``cfg.patience`` epochs without a better validation balanced accuracy
    (ties broken by the validation loss), once ``cfg.min_epochs`` have run and some epoch has been
    above chance (0.5); a run that never gets there trains for ``cfg.max_epochs``.

    Returns the model with the best validation weights, the per-epoch history and a summary
    (best epoch, epochs run, wall time, device, precision, optimizer state).
    """
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise ValueError(f"empty partition: {len(train_idx)} training and {len(val_idx)} validation samples")
    gen = seed_everything(seed, cfg.threads)
    device = pick_device(cfg.device)
    bf16 = _use_bf16(device, cfg.precision)
    fmt = memory_format(samples.ndim - 1, device)
    x_all = to_device_if_fits(samples, device)
    y_all = torch.as_tensor(labels.astype(np.int64))
    model = build_model(cfg.model, tuple(samples.shape[1:]), 2, **cfg.model_options)
    if init_state is not None:
        model.load_state_dict(init_state)
    if cfg.freeze_blocks:
        freeze_blocks(model, cfg.freeze_blocks)
    model = model.to(device=device, memory_format=fmt)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    weights = _class_weights(labels[train_idx]).to(device)
    y_val = labels[val_idx]
    best = {"score": -np.inf, "loss": np.inf, "epoch": 0, "state": None}
    history = []
    start = time.perf_counter()
    bar = tqdm(range(1, cfg.max_epochs + 1), desc=desc, unit="epoch", mininterval=5)
    stale = 0
    at_chance_logged = False
    for epoch in bar:
        t0 = time.perf_counter()
        total, seen = train_epoch(model, opt, x_all, y_all, train_idx, cfg, gen, device, weights)
        prob = predict_proba(model, x_all, val_idx, device, cfg.batch_size * 2, cfg.precision)
        val_loss = float(F.binary_cross_entropy(torch.tensor(prob).clamp(1e-6, 1 - 1e-6), torch.tensor(y_val, dtype=torch.float32)))
        score = classification_metrics(y_val, prob)["balanced_accuracy"]
        history.append({"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss,
                        "val_balanced_accuracy": score, "seconds": time.perf_counter() - t0})
        better = score > best["score"] or (score == best["score"] and val_loss < best["loss"])
        if better:
            best.update(score=score, loss=val_loss, epoch=epoch, state=copy.deepcopy(model.state_dict()),
                        optimizer=copy.deepcopy(opt.state_dict()))
            stale = 0
        else:
            stale += 1
        bar.set_postfix(loss=f"{total / max(seen, 1):.3f}", val_bacc=f"{score:.2f}", best=best["epoch"])
        log.info("%s epoch %d: train loss %.4f, val loss %.4f, val balanced accuracy %.3f (%.1f s)",
                 desc, epoch, total / max(seen, 1), val_loss, score, history[-1]["seconds"])
        if stale >= cfg.patience and epoch >= cfg.min_epochs:
            if best["score"] <= CHANCE:
                # Early stopping guards against overfitting; a run that has not yet beaten chance on
                # the validation subjects has not started to learn (e.g. it still predicts one class
                # for all of them), so it goes on, up to max_epochs.
                if not at_chance_logged:
                    log.info("%s: no epoch above chance on validation after %d epochs; not stopping early",
                             desc, epoch)
                    at_chance_logged = True
                continue
            log.info("%s: early stop after epoch %d (best %d, patience %d)", desc, epoch, best["epoch"], cfg.patience)
            break
    wall = time.perf_counter() - start
    model.load_state_dict(best["state"])
    summary = {
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "best_val_balanced_accuracy": float(best["score"]),
        "wall_time_s": wall,
        "device": str(device),
        "bf16": bf16,
        "optimizer": best["optimizer"],
    }
    return model, pd.DataFrame(history), summary


def save_checkpoint(path: str | Path, model: torch.nn.Module, summary: dict, cfg: TrainConfig, seed: int,
                    extra: dict | None = None) -> None:
    """Write weights, optimizer state, epoch, config, seed and library versions (atomically)."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    ckpt = {
        "state_dict": state,
        "optimizer": summary["optimizer"],
        "epoch": int(summary["best_epoch"]),
        "config": asdict(cfg),
        "seed": int(seed),
        "versions": library_versions(),
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code runs on load)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable mrixai checkpoint ({err})") from err


def model_from_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model of a checkpoint and load its weights."""
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    model = build_model(cfg["model"], tuple(ckpt["input_shape"]), 2, **cfg.get("model_options", {}))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model, ckpt
