"""Batches from an in-memory sample array, with augmentation done on the training device.

The whole training set lives in one tensor (on the GPU when it fits), so a batch is an index
into it and augmentation is a few tensor operations: no worker processes, no per-sample Python
file reads, which is what keeps data loading from starving a fast GPU.

Augmentation (training only): a flip of the first spatial axis (left-right, sagittal, in the
RAS-ordered samples) with probability ``flip_p``, and an integer translation of up to
``max_shift`` voxels along every spatial axis, zero-filled.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)


def pick_device(name: str = "auto") -> torch.device:
    """``auto``: CUDA, else Apple MPS, else CPU; or an explicit ``cpu`` / ``cuda`` / ``cuda:1`` / ``mps``."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not (name == "cpu" or name == "mps" or name.startswith("cuda")):
        raise ValueError(f"device must be auto, cpu, cuda[:N] or mps, got {name!r}")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} requested but Apple MPS is not available")
    return device


def to_device_if_fits(array: np.ndarray, device: torch.device, fraction: float = 0.5) -> torch.Tensor:
    """The samples as a tensor on ``device`` when they take under ``fraction`` of its free memory, else on the CPU."""
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if tensor.numel() * 4 < fraction * free:
            log.info("sample store (%.0f MB) kept on %s", tensor.numel() * 4 / 2**20, device)
            return tensor.to(device)
        log.info("sample store (%.0f MB) does not fit on %s; batches are copied from pinned memory",
                 tensor.numel() * 4 / 2**20, device)
        return tensor.pin_memory()
    if device.type == "mps":
        return tensor.to(device)
    return tensor


def augment(x: torch.Tensor, generator: torch.Generator, flip_p: float = 0.5, max_shift: int = 2) -> torch.Tensor:
    """Randomly flip (first spatial axis) and translate (zero-filled) a batch ``(B, C, *spatial)``."""
    if not 0 <= flip_p <= 1:
        raise ValueError(f"flip probability must lie in [0, 1], got {flip_p!r}")
    if max_shift < 0:
        raise ValueError(f"max_shift must be >= 0, got {max_shift!r}")
    n_spatial = x.ndim - 2
    b = x.shape[0]
    if flip_p > 0:
        flip = (torch.rand(b, generator=generator) < flip_p).to(x.device)
        x = torch.where(flip.view(b, *([1] * (x.ndim - 1))), x.flip(2), x)
    if max_shift > 0:
        shifts = torch.randint(-max_shift, max_shift + 1, (b, n_spatial), generator=generator).tolist()
        out = torch.zeros_like(x)
        for i, shift in enumerate(shifts):
            src, dst = [slice(None)] * 2, [slice(None)] * 2
            for s, n in zip(shift, x.shape[2:]):
                src.append(slice(max(0, -s), n - max(0, s)))
                dst.append(slice(max(0, s), n - max(0, -s)))
            out[i][tuple(dst[1:])] = x[i][tuple(src[1:])]
        x = out
    return x


def batches(
    samples: torch.Tensor,
    labels: torch.Tensor,
    indices: np.ndarray,
    batch_size: int,
    device: torch.device,
    generator: torch.Generator | None = None,
    shuffle: bool = False,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(x, y)`` batches of ``samples[indices]`` with a channel axis, on ``device``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
    if shuffle:
        idx = idx[torch.randperm(len(idx), generator=generator)]
    stop = len(idx) - (len(idx) % batch_size if drop_last and len(idx) > batch_size else 0)
    for start in range(0, stop, batch_size):
        b = idx[start : start + batch_size]
        x = samples[b.to(samples.device)] if samples.device.type != "cpu" else samples[b]
        y = labels[b]
        yield x.unsqueeze(1).to(device, non_blocking=True), y.to(device, non_blocking=True)
