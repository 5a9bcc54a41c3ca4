"""Per-subject QC metrics: brain volume, tissue fractions, and each registration arm's overlap
and correlation with the template."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

import numpy as np

from mrixai.qc.volumes import TISSUE_LABELS, PathLike, Volume, check_dseg, load

log = logging.getLogger(__name__)

ID_COLUMN = "subject"


def _check_arms(mapping: Mapping[str, PathLike] | None, name: str) -> dict[str, PathLike]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{name} must map arm name -> path, got {mapping!r}")
    for arm in mapping:
        if not isinstance(arm, str) or not arm or any(c.isspace() for c in arm):
            raise ValueError(f"{name} has an invalid arm name {arm!r} (non-empty, no spaces)")
    return dict(mapping)


def _check_same_grid(a: Volume, b: Volume, what: str) -> None:
    if a.data.shape != b.data.shape:
        raise ValueError(f"{what}: {a.path.name} has shape {a.data.shape}, {b.path.name} has {b.data.shape}")
    if not np.allclose(a.affine, b.affine, atol=1e-3):
        raise ValueError(f"{what}: {a.path.name} and {b.path.name} have different affines")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A&B| / (|A| + |B|) of two boolean arrays (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"dice needs arrays of one shape, got {a.shape} and {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def normalized_cross_correlation(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``region`` (all voxels if None); NaN if flat."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"normalized_cross_correlation needs arrays of one shape, got {a.shape} and {b.shape}"
        )
    if region is not None:
        a, b = a[region], b[region]
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def subject_metrics(
    unit: str,
    mask_path: PathLike,
    dseg_path: PathLike,
    template_mask_path: PathLike,
    warped_masks: Mapping[str, PathLike],
    warped_images: Mapping[str, PathLike] | None = None,
    template_image_path: PathLike | None = None,
) -> dict:
    """QC metrics of one subject, as one row of the group table.

    Returns a dict with
      - ``subject``: ``unit``;
      - ``brain_volume_ml``: native brain-mask voxels times the voxel volume (|det| of the affine);
      - ``gm_fraction``, ``wm_fraction``, ``csf_fraction``: share of each label among the labelled
        (non-zero) voxels of the native dseg (1=GM, 2=WM, 3=CSF), summing to 1;
      - ``dice_template_<arm>``: Dice of the arm's brain mask in template space with the template mask;
      - ``ncc_template_<arm>`` (when ``warped_images`` is given): Pearson correlation of the arm's
        warped brain image with ``template_image_path`` inside the template mask.

    Masks are binarised at 0.5, so interpolated masks work. Native mask and dseg must share a grid,
    and every template-space image must lie on the template mask's grid (ValueError otherwise).
    """
    if not isinstance(unit, str) or not unit:
        raise ValueError(f"unit must be a non-empty subject id, got {unit!r}")
    warped_masks = _check_arms(warped_masks, "warped_masks")
    warped_images = _check_arms(warped_images, "warped_images")
    if warped_images and template_image_path is None:
        raise ValueError("warped_images given without template_image_path to compare them with")

    mask = load(mask_path, "mask_path", canonical=False)
    dseg = load(dseg_path, "dseg_path", canonical=False)
    _check_same_grid(mask, dseg, "native brain mask and dseg must share a grid")
    brain = mask.data > 0.5
    labels = check_dseg(dseg)
    row: dict[str, object] = {
        ID_COLUMN: unit,
        "brain_volume_ml": float(brain.sum()) * mask.voxel_volume_mm3 / 1000.0,
    }
    labelled = int((labels > 0).sum())
    if labelled == 0:
        log.warning("%s: dseg %s is empty; tissue fractions are NaN", unit, dseg.path)
    outside = int(((labels > 0) & ~brain).sum())
    if outside:
        log.warning("%s: %d labelled voxels lie outside the brain mask", unit, outside)
    for value, name in TISSUE_LABELS.items():
        row[f"{name}_fraction"] = float((labels == value).sum()) / labelled if labelled else float("nan")

    template_mask = load(template_mask_path, "template_mask_path", canonical=False)
    tbrain = template_mask.data > 0.5
    for arm, path in warped_masks.items():
        warped = load(path, f"warped_masks[{arm!r}]", canonical=False)
        _check_same_grid(warped, template_mask, f"warped mask of arm {arm!r} must lie on the template grid")
        row[f"dice_template_{arm}"] = dice(warped.data > 0.5, tbrain)
    if warped_images:
        template_image = load(template_image_path, "template_image_path", canonical=False)
        _check_same_grid(template_image, template_mask, "template image and template mask must share a grid")
        for arm, path in warped_images.items():
            warped = load(path, f"warped_images[{arm!r}]", canonical=False)
            _check_same_grid(
                warped, template_mask, f"warped image of arm {arm!r} must lie on the template grid"
            )
            row[f"ncc_template_{arm}"] = normalized_cross_correlation(
                warped.data, template_image.data, tbrain
            )
    log.info("%s: %s", unit, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != ID_COLUMN))
    return row


# --------------------------------------------------------------------------------------------
# Group table
