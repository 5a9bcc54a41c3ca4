"""Writing files so that a killed job never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)


def _remove(path: Path) -> None:
    """Delete a file or a directory tree, if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The block may write a file or create a directory there (a directory replaces ``path`` whole).

    The temporary name is fixed (``.<name>.partial<suffixes>``, suffixes kept so that writers that
    look at the extension behave the same): a job killed with SIGKILL cannot clean up after
    itself, but its rerun writes to the same temporary name and renames it, so nothing is left.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    stem = path.name[: len(path.name) - len(suffix)] if suffix else path.name
    tmp_path = path.parent / f".{stem}.partial{suffix}"
    _remove(tmp_path)
    try:
        yield tmp_path
        if tmp_path.is_dir():
            _remove(path)  # a directory cannot be renamed onto a non-empty one
        elif tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        _remove(tmp_path)


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
