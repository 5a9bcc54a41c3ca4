"""Small helpers shared by the test files: writing test images and drawing simple shapes."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np


def write_nifti(data, affine, path: str | Path, dtype=None) -> Path:
    """Write ``data`` (cast to ``dtype`` if given) with ``affine`` as a NIfTI-1 file; return its path."""
    array = np.asarray(data) if dtype is None else np.asarray(data).astype(dtype)
    nib.save(nib.Nifti1Image(array, affine), path)
    return Path(path)


def ellipsoid(shape, centre, radii) -> np.ndarray:
    """Boolean mask of the voxels whose index lies inside the axis-aligned ellipsoid (inclusive)."""
    grid = np.indices(shape, dtype=np.float32)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1
