"""Writing files so that a killed job never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the file's suffixes (``.nii.gz``), so writers that look at the
    extension behave the same.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name.split('.')[0]}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_nifti(
    data: np.ndarray,
    affine: np.ndarray,
    path: str | Path,
    dtype: type | np.dtype = np.float32,
    header: nib.Nifti1Header | None = None,
) -> Path:
    """Save ``data`` as NIfTI-1 with ``affine`` as both sform and qform (code 1, scanner), atomically."""
    img = nib.Nifti1Image(np.asarray(data).astype(dtype), affine, header=header)
    img.set_data_dtype(dtype)
    img.header.set_xyzt_units("mm", "sec")
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def save_image(img: nib.Nifti1Image, path: str | Path) -> Path:
    """Save an existing image atomically (spatial units set to mm when the header has none)."""
    if isinstance(img, nib.Nifti1Image) and img.header.get_xyzt_units()[0] == "unknown":
        img.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(img, tmp)
    return Path(path)


def write_text(text: str, path: str | Path) -> Path:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
