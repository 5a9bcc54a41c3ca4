"""Guided-backprop saliency of the segmenter and the study's enhancement of it.

The saliency explains one scalar per slice, the *brain score*, one of ``TARGETS``:
``"brain_logits"`` (default) the sum over all pixels of the tissue-class (GM, WM, CSF) logits;
``"brain_margin"`` the sum of ``logsumexp(tissue logits) - background logit``;
``"brain_softmax"`` the sum of ``1 - p_background`` (the expected brain area). The default was
chosen on the development cohort's validation subjects by the brain-mask Dice of the placed
template (docs/tuned-defaults.md): the softmax saturates inside confidently segmented tissue, so
its saliency sits almost only on the uncertain scalp/skull ring, while the logits keep a gradient
over the whole brain. Guided backpropagation (captum) keeps only
positive gradients at every ``nn.ReLU``.

Enhancement (:func:`enhance_saliency`), per slice: the magnitude ``|s|`` is linearly stretched to
[0, 1], log-compressed as ``log(x + offset)`` (which turns a log-normal magnitude into a normal
one) and z-scored; :func:`smooth_threshold` then maps the z-scores with
``f(z) = exp(-((z - centre) / width)**2)`` (centre 2, width 0.5 in the study). With
``one_sided=True`` values above the centre map to 1 (a smooth step instead of a band).
"""

from __future__ import annotations

import copy
import logging
import warnings

import numpy as np
import torch
from captum.attr import GuidedBackprop
from torch import nn

log = logging.getLogger(__name__)

TARGETS = ("brain_softmax", "brain_logits", "brain_margin")


class BrainScore(nn.Module):
    """Wraps a segmenter: ``(B, 1)`` brain score of a batch (see the module docstring)."""

    def __init__(self, model: nn.Module, target: str = "brain_logits") -> None:
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"saliency target must be one of {TARGETS}, got {target!r}")
        self.model = model
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if self.target == "brain_softmax":
            score = torch.softmax(logits, dim=1)[:, 1:].sum(dim=(1, 2, 3))
        elif self.target == "brain_logits":
            score = logits[:, 1:].sum(dim=(1, 2, 3))
        else:
            score = (torch.logsumexp(logits[:, 1:], dim=1) - logits[:, 0]).sum(dim=(1, 2))
        return score[:, None]


def guided_backprop_saliency(
    model: nn.Module, x: np.ndarray, target: str = "brain_logits", batch_size: int = 8, device: str | torch.device = "cpu"
) -> np.ndarray:
    """Guided-backprop saliency ``(N, H, W)`` of the brain score for normalised slices ``x`` ``(N, H, W)``.

    The model is deep-copied and put in eval mode; the caller's model is not changed.
    """
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) slices, got shape {x.shape}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    device = torch.device(device)
    work = BrainScore(copy.deepcopy(model).to(device).eval(), target)
    for p in work.parameters():
        p.requires_grad_(False)
    gbp = GuidedBackprop(work)
    out = []
    with torch.enable_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU", category=UserWarning)
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size, None], dtype=torch.float32, device=device)
            out.append(gbp.attribute(xb.requires_grad_(True), target=0)[:, 0].detach().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(x.shape, np.float32)


def enhance_saliency(saliency: np.ndarray, log_offset: float = 1e-3) -> np.ndarray:
    """Per slice: ``|s|`` stretched to [0, 1], ``log(x + log_offset)``, z-scored (a constant slice gives 0)."""
    if saliency.ndim not in (2, 3):
        raise ValueError(f"expected a (H, W) slice or (N, H, W) stack, got shape {saliency.shape}")
    if log_offset <= 0:
        raise ValueError(f"log_offset must be > 0, got {log_offset!r}")
    stack = np.abs(saliency if saliency.ndim == 3 else saliency[None]).astype(np.float64)
    out = np.zeros_like(stack)
    for i, mag in enumerate(stack):
        lo, hi = mag.min(), mag.max()
        if hi <= lo:
            continue
        logged = np.log((mag - lo) / (hi - lo) + log_offset)
        sd = logged.std()
        out[i] = (logged - logged.mean()) / sd if sd > 0 else 0.0
    out = out.astype(np.float32)
    return out if saliency.ndim == 3 else out[0]


def smooth_threshold(z: np.ndarray, centre: float = 2.0, width: float = 0.5, one_sided: bool = False) -> np.ndarray:
    """``exp(-((z - centre) / width)**2)``; with ``one_sided`` 1 for ``z >= centre``."""
    if width <= 0:
        raise ValueError(f"threshold width must be > 0, got {width!r}")
    z = np.asarray(z, dtype=np.float64)
    out = np.exp(-(((z - centre) / width) ** 2))
    if one_sided:
        out = np.where(z >= centre, 1.0, out)
    return out.astype(np.float32)
