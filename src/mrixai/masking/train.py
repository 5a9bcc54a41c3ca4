"""Training the 2D U-Net: soft Dice loss, SGD with momentum, early stopping on validation Dice.

Runs are seeded (:func:`mrixai.learn.train.seed_everything`) and, on the CPU, deterministic. The
validation score is the mean hard Dice of the tissue classes (all but class 0) pooled over the
validation slices; the weights of the best epoch are kept.
"""

from __future__ import annotations

import copy
import logging
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mrixai.learn.data import pick_device
from mrixai.learn.train import seed_everything
from mrixai.masking.unet import UNet2d

log = logging.getLogger(__name__)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``1 - mean_c soft Dice_c`` of ``softmax(logits)`` and one-hot ``target`` pooled over the batch.

    Args:
        logits: ``(B, C, H, W)`` class scores.
        target: ``(B, H, W)`` integer labels in ``0..C-1``.
        eps: smoothing added to numerator and denominator (a class absent from both counts as Dice 1).
    """
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits (B, C, H, W) and target (B, H, W) expected, got {tuple(logits.shape)}, {tuple(target.shape)}")
    prob = torch.softmax(logits, dim=1)
    onehot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).to(prob.dtype)
    dims = (0, 2, 3)
    inter = (prob * onehot).sum(dims)
    denom = prob.sum(dims) + onehot.sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


def hard_dice(pred: np.ndarray, truth: np.ndarray, classes: tuple[int, ...] = (1, 2, 3)) -> float:
    """Mean Dice of ``classes`` between two label arrays (a class absent from both counts as 1)."""
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    scores = []
    for c in classes:
        p, t = pred == c, truth == c
        total = p.sum() + t.sum()
        scores.append(1.0 if total == 0 else 2.0 * (p & t).sum() / total)
    return float(np.mean(scores))


@torch.no_grad()
def predict_labels(model: torch.nn.Module, x: np.ndarray, batch_size: int = 16, device: str | torch.device = "cpu") -> np.ndarray:
    """Arg-max labels ``(N, H, W)`` of normalised slices ``x`` ``(N, H, W)``."""
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) slices, got shape {x.shape}")
    device = torch.device(device)
    model.eval()
    out = []
    for start in range(0, len(x), batch_size):
        xb = torch.as_tensor(x[start : start + batch_size, None], dtype=torch.float32, device=device)
        out.append(model(xb).argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(x.shape, np.uint8)


def train_segmenter(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    seed: int = 0,
    n_classes: int = 4,
    base_channels: int = 8,
    depth: int = 3,
    max_epochs: int = 30,
    min_epochs: int = 3,
    patience: int = 5,
    batch_size: int = 16,
    learning_rate: float = 0.05,
    momentum: float = 0.9,
    flip_p: float = 0.5,
    device: str = "cpu",
    threads: int = 1,
) -> tuple[UNet2d, pd.DataFrame, dict]:
    """Train a :class:`UNet2d` on ``(N, H, W)`` slices and labels; early-stop on the validation Dice.

    Returns the model with the best validation weights (in eval mode), the per-epoch history
    (epoch, train_loss, val_dice, seconds) and a summary (best_epoch, best_val_dice, epochs, seconds,
    device, optimizer state).
    """
    for name, xs, ys in (("train", x_train, y_train), ("validation", x_val, y_val)):
        if xs.ndim != 3 or xs.shape != ys.shape:
            raise ValueError(f"{name} slices {xs.shape} and labels {ys.shape} must be (N, H, W) of one shape")
        if len(xs) == 0:
            raise ValueError(f"the {name} set is empty")
    for name, value in (("max_epochs", max_epochs), ("min_epochs", min_epochs), ("patience", patience), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {momentum!r}")
    if not 0.0 <= flip_p <= 1.0:
        raise ValueError(f"flip_p must lie in [0, 1], got {flip_p!r}")
    gen = seed_everything(seed, threads)
    dev = pick_device(device)
    model = UNet2d(1, n_classes, base_channels, depth).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=momentum)
    xt = torch.as_tensor(x_train[:, None], dtype=torch.float32)
    yt = torch.as_tensor(y_train, dtype=torch.long)
    best = {"score": -np.inf, "epoch": 0, "state": None}
    history = []
    start = time.perf_counter()
    for epoch in range(1, max_epochs + 1):
        tick = time.perf_counter()
        model.train()
        order = torch.randperm(len(xt), generator=gen)
        total, seen = 0.0, 0
        for first in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[first : first + batch_size]
            xb, yb = xt[idx], yt[idx]
            flip = torch.rand(len(idx), generator=gen) < flip_p
            xb = torch.where(flip[:, None, None, None], xb.flip(-2), xb)  # left-right (RAS axis 0)
            yb = torch.where(flip[:, None, None], yb.flip(-2), yb)
            loss = dice_loss(model(xb.to(dev)), yb.to(dev))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        score = hard_dice(predict_labels(model, x_val, batch_size, dev), y_val, tuple(range(1, n_classes)))
        history.append(
            {"epoch": epoch, "train_loss": total / max(seen, 1), "val_dice": score, "seconds": time.perf_counter() - tick}
        )
        log.info("epoch %d: train Dice loss %.4f, validation Dice %.4f", epoch, history[-1]["train_loss"], score)
        if score > best["score"]:
            best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
        elif epoch >= min_epochs and epoch - best["epoch"] >= patience:
            log.info("early stop at epoch %d (best %d, Dice %.4f)", epoch, best["epoch"], best["score"])
            break
    model.load_state_dict(best["state"])
    model.eval()
    summary = {
        "best_epoch": best["epoch"],
        "best_val_dice": float(best["score"]),
        "epochs": len(history),
        "seconds": time.perf_counter() - start,
        "device": str(dev),
        "optimizer_state": opt.state_dict(),
    }
    return model, pd.DataFrame(history), summary
