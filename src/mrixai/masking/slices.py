"""Axial slices for the masking study: loading, slice selection and per-slice normalisation.

Volumes are read in RAS orientation (``nibabel.as_closest_canonical``), so the axial slices are
the last axis. A slice is kept when its brain area reaches ``min_brain_fraction`` of the
subject's largest axial brain area (tiny caps and the skull base carry little tissue), taking
every ``step``-th such slice. Intensities are normalised per slice by a high percentile of the
slice's non-zero voxels, the same rule for masked, unmasked and re-masked slices, so the
segmenter sees the scale it was trained on once the background is removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)

#: Keys every subject record must carry (paths to NIfTI files on one grid).
SUBJECT_KEYS = ("subject", "image", "mask", "dseg")


@dataclass
class SliceSet:
    """Axial slices of some subjects: raw image, brain mask, tissue labels and where they came from."""

    image: np.ndarray  # (N, H, W) float32, raw intensities (head with skull and scalp)
    mask: np.ndarray  # (N, H, W) bool, brain mask
    dseg: np.ndarray  # (N, H, W) uint8, 0 background, 1 GM, 2 WM, 3 CSF
    subject: np.ndarray  # (N,) subject id of each slice
    index: np.ndarray  # (N,) axial slice index in the subject's volume

    def __len__(self) -> int:
        return len(self.image)


def load_subject(record: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Image, brain mask and tissue labels of one subject record, all in RAS on one grid."""
    missing = [key for key in SUBJECT_KEYS if key not in record]
    if missing:
        raise ValueError(f"subject record lacks {missing}: {record!r}")
    arrays = []
    for key in ("image", "mask", "dseg"):
        path = Path(record[key])
        if not path.is_file():
            raise ValueError(f"{key} file of subject {record['subject']} not found: {path}")
        arrays.append(np.asarray(nib.as_closest_canonical(nib.load(path)).dataobj))
    image, mask, dseg = arrays
    if not image.shape == mask.shape == dseg.shape or image.ndim != 3:
        raise ValueError(
            f"subject {record['subject']}: image {image.shape}, mask {mask.shape} and dseg {dseg.shape} "
            "must be 3D volumes on one grid"
        )
    labels = np.unique(dseg)
    if labels.min() < 0 or labels.max() > 3:
        raise ValueError(f"subject {record['subject']}: dseg labels must lie in 0..3, got {labels.tolist()}")
    return image.astype(np.float32), mask > 0, dseg.astype(np.uint8)


def select_slices(mask: np.ndarray, min_brain_fraction: float = 0.5, step: int = 1) -> np.ndarray:
    """Axial (last-axis) slice indices whose brain area is >= ``min_brain_fraction`` of the largest, every ``step``-th."""
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {mask.shape}")
    if not 0.0 < min_brain_fraction <= 1.0:
        raise ValueError(f"min_brain_fraction must lie in (0, 1], got {min_brain_fraction!r}")
    if not isinstance(step, int) or step < 1:
        raise ValueError(f"step must be an integer >= 1, got {step!r}")
    area = mask.reshape(-1, mask.shape[-1]).sum(axis=0)
    if area.max() == 0:
        raise ValueError("the brain mask is empty")
    keep = np.flatnonzero(area >= min_brain_fraction * area.max())
    return keep[::step]


def normalise_slice(x: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """``x`` divided by the ``percentile`` of its non-zero voxels (unchanged if all zero)."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile!r}")
    values = x[x != 0]
    if values.size == 0:
        return x.astype(np.float32)
    scale = float(np.percentile(np.abs(values), percentile))
    return (x / scale).astype(np.float32) if scale > 0 else x.astype(np.float32)


def normalise_slices(x: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """:func:`normalise_slice` applied to each slice of a ``(N, H, W)`` stack."""
    if x.ndim != 3:
        raise ValueError(f"expected a (N, H, W) stack, got shape {x.shape}")
    return np.stack([normalise_slice(s, percentile) for s in x]) if len(x) else x.astype(np.float32)


def extract_slices(records: list[dict], min_brain_fraction: float = 0.5, step: int = 1) -> SliceSet:
    """The selected axial slices of ``records`` (see :func:`select_slices`), stacked."""
    if not records:
        raise ValueError("no subject records given")
    parts: dict[str, list] = {"image": [], "mask": [], "dseg": [], "subject": [], "index": []}
    shape = None
    for record in records:
        image, mask, dseg = load_subject(record)
        if shape is None:
            shape = image.shape[:2]
        elif image.shape[:2] != shape:
            raise ValueError(f"subject {record['subject']}: in-plane shape {image.shape[:2]} differs from {shape}")
        keep = select_slices(mask, min_brain_fraction, step)
        parts["image"].append(np.moveaxis(image[..., keep], -1, 0))
        parts["mask"].append(np.moveaxis(mask[..., keep], -1, 0))
        parts["dseg"].append(np.moveaxis(dseg[..., keep], -1, 0))
        parts["subject"].append(np.full(len(keep), str(record["subject"]), dtype=object))
        parts["index"].append(keep)
    out = SliceSet(**{key: np.concatenate(value) for key, value in parts.items()})
    log.info("extracted %d axial slices of %d subject(s)", len(out), len(records))
    return out
