"""A brain-mask template from training masks, placed on a saliency map by 2D cross-correlation.

:func:`build_template` moves every training mask so that its centroid sits at the centre of the
grid (linear interpolation), averages them and keeps the pixels covered by at least
``threshold`` of the masks: the typical brain-slice shape independent of head position.
:func:`place_template` tries the template at a few ``scales`` and in-plane ``angles`` (brain
slices differ in size along the axis and heads are rotated) and, for each, cross-correlates it
with the enhanced saliency map ``E`` (FFT). The correlation at a shift is ``sum(T * E)`` over the
template, i.e. the template multiplied by the saliency; dividing by ``(sum T + sum E) / 2`` makes
it a soft Dice between template and map, comparable across scales (a larger template would
otherwise always collect more saliency). The best (scale, angle, shift) gives the placed mask.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

log = logging.getLogger(__name__)


@dataclass
class Placement:
    """A placed mask and how it was placed (top-left corner of the template in the slice)."""

    mask: np.ndarray
    scale: float
    angle: float
    top: int
    left: int
    score: float


def build_template(masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary template ``(h, w)`` (cropped to its bounding box) from centroid-aligned masks ``(N, H, W)``."""
    if masks.ndim != 3 or len(masks) == 0:
        raise ValueError(f"expected a non-empty (N, H, W) stack of masks, got shape {masks.shape}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"template threshold must lie in (0, 1], got {threshold!r}")
    centre = (np.array(masks.shape[1:]) - 1) / 2.0
    total = np.zeros(masks.shape[1:], np.float64)
    used = 0
    for mask in masks:
        mask = mask.astype(np.float64)
        if mask.sum() == 0:
            continue
        shift = centre - np.array(ndimage.center_of_mass(mask))
        total += ndimage.shift(mask, shift, order=1, mode="constant")
        used += 1
    if used == 0:
        raise ValueError("all masks are empty")
    template = total / used >= threshold
    if not template.any():
        raise ValueError(f"no pixel is covered by {threshold:.0%} of the aligned masks; lower the threshold")
    rows, cols = np.flatnonzero(template.any(1)), np.flatnonzero(template.any(0))
    log.info("mask template from %d masks: %d pixels", used, int(template.sum()))
    return template[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def transform_template(template: np.ndarray, scale: float = 1.0, angle: float = 0.0) -> np.ndarray:
    """``template`` zoomed by ``scale`` and rotated by ``angle`` degrees (binary, bounding box)."""
    if scale <= 0:
        raise ValueError(f"template scale must be > 0, got {scale!r}")
    out = template.astype(np.float32)
    if scale != 1.0:
        out = ndimage.zoom(out, scale, order=1)
    if angle != 0.0:
        out = ndimage.rotate(out, angle, reshape=True, order=1)
    out = out >= 0.5
    if not out.any():
        raise ValueError(f"template vanishes at scale {scale} / angle {angle}")
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    return out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def paste(template: np.ndarray, shape: tuple[int, int], top: int, left: int) -> np.ndarray:
    """A ``shape`` canvas with ``template`` at (``top``, ``left``), clipped at the borders."""
    canvas = np.zeros(shape, bool)
    h, w = template.shape
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, shape[0]), min(left + w, shape[1])
    if r1 > r0 and c1 > c0:
        canvas[r0:r1, c0:c1] = template[r0 - top : r1 - top, c0 - left : c1 - left]
    return canvas


SCORES = ("dice", "ncc")


def _correlation_score(score_map: np.ndarray, t: np.ndarray, score: str, total: float) -> np.ndarray:
    """Score of every placement of ``t`` (``mode="full"`` layout: index ``i`` puts its top row at ``i - h + 1``)."""
    tf = t.astype(np.float64)
    corr = signal.correlate(score_map, tf, mode="full", method="fft")
    if score == "dice":
        return 2.0 * corr / (tf.sum() + total)
    n = tf.size
    box = np.ones_like(tf)
    win_sum = signal.correlate(score_map, box, mode="full", method="fft")
    win_sq = signal.correlate(score_map**2, box, mode="full", method="fft")
    t_var = tf.sum() - tf.sum() ** 2 / n  # binary template: sum(t^2) = sum(t)
    w_var = np.maximum(win_sq - win_sum**2 / n, 0.0)
    num = corr - tf.sum() * win_sum / n
    den = np.sqrt(t_var * w_var)
    return np.where(den > 1e-12 * max(total, 1.0), num / np.where(den > 0, den, 1.0), -np.inf)


def place_template(
    score_map: np.ndarray,
    template: np.ndarray,
    scales: Sequence[float] = (1.0,),
    angles: Sequence[float] = (0.0,),
    score: str = "dice",
) -> Placement:
    """Place ``template`` on ``score_map`` ``(H, W)`` (non-negative) at the best correlation score.

    ``score`` is ``"dice"`` (soft Dice, see the module docstring) or ``"ncc"`` (normalised
    cross-correlation of the template's bounding box with the map window under it, zero outside
    the slice: rewards saliency inside the template *and* its absence in the box around it).

    A map without any positive value gives the template (scale 1, angle 0) at the centre, score 0.
    """
    if score_map.ndim != 2:
        raise ValueError(f"score_map must be 2D, got shape {score_map.shape}")
    if template.ndim != 2 or not template.any():
        raise ValueError(f"template must be a non-empty 2D mask, got shape {template.shape}")
    if len(scales) == 0 or len(angles) == 0:
        raise ValueError(f"need at least one scale and one angle, got {scales!r}, {angles!r}")
    if score not in SCORES:
        raise ValueError(f"placement score must be one of {SCORES}, got {score!r}")
    if (score_map < 0).any():
        raise ValueError(f"score_map must be non-negative, got minimum {score_map.min()}")
    shape = score_map.shape
    total = float(score_map.sum())
    if total <= 0:
        top, left = (np.array(shape) - template.shape) // 2
        return Placement(paste(template, shape, int(top), int(left)), 1.0, 0.0, int(top), int(left), 0.0)
    best = None
    for scale in scales:
        for angle in angles:
            t = transform_template(template, float(scale), float(angle))
            values = _correlation_score(score_map, t, score, total)
            i, j = np.unravel_index(int(np.argmax(values)), values.shape)
            value = float(values[i, j])
            if best is None or value > best[0]:
                best = (value, float(scale), float(angle), t, int(i) - t.shape[0] + 1, int(j) - t.shape[1] + 1)
    score, scale, angle, t, top, left = best
    return Placement(paste(t, shape, top, left), scale, angle, top, left, score)
