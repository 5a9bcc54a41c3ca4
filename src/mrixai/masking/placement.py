"""A brain-mask template from training masks, placed on a saliency map by 2D cross-correlation.

:func:`build_template` moves every training mask so that its centroid sits at the centre of the
grid (linear interpolation), averages them and keeps the pixels covered by at least
``threshold`` of the masks: the typical brain-slice shape independent of head position.
:func:`place_template` tries the template at a few ``scales`` and in-plane ``angles`` (brain
slices differ in size along the axis and heads are rotated) and, for each, cross-correlates it
with the enhanced saliency map ``E`` (FFT). The correlation at a shift is ``sum(T * E)`` over the
template, i.e. the template multiplied by the saliency; dividing by
``w * sum T + (1 - w) * sum E`` makes it a soft Tversky index between template and map (``w``, the
``area_weight``, weighs template pixels without saliency, ``1 - w`` saliency left outside), which
is comparable across scales (a larger template would otherwise always collect more saliency);
``w = 0.5`` is the soft Dice. A weight above 0.5 keeps the template from stretching over the
bright scalp ring, which a segmenter trained on brain-only slices also finds salient (on the
synthetic cohort it sits just outside the brain, beyond the dark skull). The best (scale, angle,
shift) gives the placed mask. :func:`place_template_weights` returns the best placement for each
of several weights from one set of correlations (the weights are tuned on validation slices).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
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


@dataclass
class TemplateBank:
    """The template at every scale and angle, with its spectra for maps of one ``shape``.

    Built once (:func:`template_bank`) and used for every slice, so a placement costs one FFT of
    the map plus one product and inverse FFT per variant.
    """

    variants: list[tuple[float, float, np.ndarray]]  # (scale, angle, binary template)
    shape: tuple[int, int]
    fft_shape: tuple[int, int]
    spectra: list[np.ndarray]  # rfft2 of each flipped variant, zero-padded to fft_shape


def template_bank(
    template: np.ndarray,
    shape: tuple[int, int],
    scales: Sequence[float] = (1.0,),
    angles: Sequence[float] = (0.0,),
) -> TemplateBank:
    """:class:`TemplateBank` of ``template`` at every ``scales`` x ``angles`` for maps of ``shape``."""
    if template.ndim != 2 or not template.any():
        raise ValueError(f"template must be a non-empty 2D mask, got shape {template.shape}")
    if len(scales) == 0 or len(angles) == 0:
        raise ValueError(f"need at least one scale and one angle, got {scales!r}, {angles!r}")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape must be a 2D slice shape, got {shape!r}")
    variants = [(float(s), float(a), transform_template(template, float(s), float(a))) for s in scales for a in angles]
    h_max = max(t.shape[0] for _, _, t in variants)
    w_max = max(t.shape[1] for _, _, t in variants)
    fft_shape = (sp_fft.next_fast_len(shape[0] + h_max - 1, True), sp_fft.next_fast_len(shape[1] + w_max - 1, True))
    spectra = [sp_fft.rfft2(t[::-1, ::-1].astype(np.float64), s=fft_shape) for _, _, t in variants]
    return TemplateBank(variants, (int(shape[0]), int(shape[1])), fft_shape, spectra)


def _check_weight(area_weight: float) -> None:
    if not 0.0 < area_weight < 1.0:
        raise ValueError(f"area_weight must lie in (0, 1), got {area_weight!r}")


def _ncc(score_map: np.ndarray, t: np.ndarray, corr: np.ndarray, total: float) -> np.ndarray:
    """Normalised cross-correlation of ``t``'s bounding box with the map window under it."""
    tf = t.astype(np.float64)
    n = tf.size
    box = np.ones_like(tf)
    win_sum = signal.correlate(score_map, box, mode="full", method="fft")
    win_sq = signal.correlate(score_map**2, box, mode="full", method="fft")
    t_var = tf.sum() - tf.sum() ** 2 / n  # binary template: sum(t^2) = sum(t)
    w_var = np.maximum(win_sq - win_sum**2 / n, 0.0)
    num = corr - tf.sum() * win_sum / n
    den = np.sqrt(t_var * w_var)
    return np.where(den > 1e-12 * max(total, 1.0), num / np.where(den > 0, den, 1.0), -np.inf)


def place_template_weights(
    score_map: np.ndarray,
    bank: TemplateBank,
    area_weights: Sequence[float] = (0.5,),
    score: str = "dice",
) -> list[Placement]:
    """The best placement of the template ``bank`` on ``score_map`` for each of ``area_weights``
    (see :func:`place_template`; ``ncc`` ignores the weights). The correlation map of a variant
    of shape ``(h, w)`` has the ``mode="full"`` layout: index ``i`` puts its top row at ``i - h + 1``.
    """
    if score_map.shape != bank.shape:
        raise ValueError(f"score_map has shape {score_map.shape}, the template bank was built for {bank.shape}")
    if len(area_weights) == 0:
        raise ValueError("no area weights given")
    for w in area_weights:
        _check_weight(w)
    if score not in SCORES:
        raise ValueError(f"placement score must be one of {SCORES}, got {score!r}")
    if (score_map < 0).any():
        raise ValueError(f"score_map must be non-negative, got minimum {score_map.min()}")
    shape = score_map.shape
    total = float(score_map.sum())
    if total <= 0:
        scale, angle, t = min(bank.variants, key=lambda v: (abs(v[0] - 1.0), abs(v[1])))
        top, left = (np.array(shape) - t.shape) // 2
        centred = Placement(paste(t, shape, int(top), int(left)), scale, angle, int(top), int(left), 0.0)
        return [centred] * len(area_weights)
    spectrum = sp_fft.rfft2(score_map.astype(np.float64), s=bank.fft_shape)
    best: list = [None] * len(area_weights)
    for (scale, angle, t), t_spec in zip(bank.variants, bank.spectra):
        h, w = t.shape
        corr = sp_fft.irfft2(spectrum * t_spec, s=bank.fft_shape)[: shape[0] + h - 1, : shape[1] + w - 1]
        area = float(t.sum())
        for k, weight in enumerate(area_weights):
            values = corr / (weight * area + (1.0 - weight) * total) if score == "dice" else _ncc(score_map, t, corr, total)
            i, j = np.unravel_index(int(np.argmax(values)), values.shape)
            value = float(values[i, j])
            if best[k] is None or value > best[k][0]:
                best[k] = (value, scale, angle, t, int(i) - h + 1, int(j) - w + 1)
    return [Placement(paste(t, shape, top, left), scale, angle, top, left, value) for value, scale, angle, t, top, left in best]


def place_template(
    score_map: np.ndarray,
    template: np.ndarray,
    scales: Sequence[float] = (1.0,),
    angles: Sequence[float] = (0.0,),
    score: str = "dice",
    area_weight: float = 0.5,
) -> Placement:
    """Place ``template`` on ``score_map`` ``(H, W)`` (non-negative) at the best correlation score.

    ``score`` is ``"dice"`` (soft Tversky index with ``area_weight``; 0.5 is the soft Dice, see
    the module docstring) or ``"ncc"`` (normalised cross-correlation of the template's bounding
    box with the map window under it, zero outside the slice: rewards saliency inside the
    template *and* its absence in the box around it).

    A map without any positive value gives the template (the variant nearest scale 1, angle 0) at
    the centre, score 0.
    """
    if score not in SCORES:
        raise ValueError(f"placement score must be one of {SCORES}, got {score!r}")
    _check_weight(area_weight)
    if score_map.ndim != 2:
        raise ValueError(f"score_map must be 2D, got shape {score_map.shape}")
    bank = template_bank(template, score_map.shape, scales, angles)
    return place_template_weights(score_map, bank, (area_weight,), score)[0]
