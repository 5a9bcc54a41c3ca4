"""Loading and geometry of the images the QC montages and metrics read.

Images are loaded as float32 (a trailing length-1 4th axis dropped, non-finite voxels set to 0),
reoriented to RAS unless asked not to, and resampled onto another image's grid when needed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

log = logging.getLogger(__name__)

PathLike = str | Path

#: Labels of a tissue segmentation (fMRIPrep order) and their names in the QC tables.
TISSUE_LABELS = {1: "gm", 2: "wm", 3: "csf"}


@dataclass(frozen=True)
class Volume:
    """A 3D image in RAS voxel order."""

    data: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def zooms(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))


def check_path(path: PathLike, name: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise ValueError(f"{name} must be a str or Path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} does not exist: {path}")
    return path


def load(path: PathLike, name: str, canonical: bool = True) -> Volume:
    """Load a 3D NIfTI (a trailing length-1 4th axis is dropped), reoriented to RAS if asked."""
    path = check_path(path, name)
    img = nib.load(path)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise ValueError(f"{name} must be a 3D image, got shape {img.shape} in {path}")
    if canonical:
        img = nib.as_closest_canonical(img)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    if not np.all(np.isfinite(data)):
        log.warning(
            "%s has %d non-finite voxels; they are treated as 0", path, int((~np.isfinite(data)).sum())
        )
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return Volume(data, img.affine.copy(), path)


def same_grid(a: Volume, b: Volume, atol: float = 1e-3) -> bool:
    return a.data.shape == b.data.shape and np.allclose(a.affine, b.affine, atol=atol)


def resample_like(src: Volume, ref: Volume, order: int) -> Volume:
    """``src`` resampled onto ``ref``'s grid by world coordinates (order 0 for labels)."""
    if same_grid(src, ref):
        return src
    log.warning("%s is not on the grid of %s; resampling it for display", src.path.name, ref.path.name)
    vox = np.linalg.inv(src.affine) @ ref.affine
    data = ndimage.affine_transform(
        src.data, vox[:3, :3], vox[:3, 3], output_shape=ref.data.shape, order=order, mode="constant", cval=0.0
    )
    return Volume(data.astype(np.float32), ref.affine, src.path)


def bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive voxel bounds (lo, hi) of the non-zero voxels of ``mask``; None if empty."""
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return None
    return np.array([i.min() for i in idx]), np.array([i.max() for i in idx])


def foreground(data: np.ndarray) -> np.ndarray:
    """Head/brain voxels: above a quarter of Otsu's threshold on non-zero voxels, largest blob, filled."""
    values = data[data > 0]
    if values.size == 0:
        return np.zeros(data.shape, bool)
    fg = data > 0.25 * otsu(values)
    labels, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum(fg, labels, range(1, n + 1))
        fg = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(fg)


def otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1D sample (between-class variance maximised over ``bins`` levels)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size > 100 else (values.min(), values.max())
    if hi <= lo:
        return float(lo)
    hist, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def full_box(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(3, int), np.array(shape) - 1


def check_dseg(dseg: Volume) -> np.ndarray:
    """Integer labels of a 1=GM 2=WM 3=CSF segmentation; ValueError naming any other value."""
    labels = np.rint(dseg.data)
    if not np.allclose(labels, dseg.data, atol=1e-3):
        raise ValueError(f"dseg must hold integer labels, {dseg.path} has non-integer values")
    labels = labels.astype(np.int16)
    bad = sorted(set(np.unique(labels).tolist()) - {0, *TISSUE_LABELS})
    if bad:
        raise ValueError(f"dseg must hold only 0 and 1=GM 2=WM 3=CSF, {dseg.path} also holds {bad}")
    return labels
