"""Bridges between nibabel and antspyx, and ANTs' thread and seed settings."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import nibabel as nib
import numpy as np

log = logging.getLogger(__name__)


def configure_ants(threads: int, reproducible: bool, seed: int) -> None:
    """Set ITK's thread count and ANTs' random seed; call before the first ANTs operation.

    ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` when its first filter is built, so this must
    run before any ANTs call in the process. In reproducible mode ITK runs single-threaded and the
    registration's random sampling is seeded, which makes outputs bit-identical between runs.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    n = 1 if reproducible else threads
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(n)
    os.environ["ANTS_RANDOM_SEED"] = str(seed)
    import ants

    ants.config.set_ants_deterministic(True, seed_value=int(seed))
    # set_ants_deterministic forces one thread; restore the requested count when not reproducible.
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(n)
    log.info("ANTs: %d ITK thread(s), seed %d, reproducible=%s", n, seed, reproducible)


def to_ants(img: nib.Nifti1Image):
    """A nibabel image as an ANTsImage (float32), with the same world geometry."""
    import ants

    return ants.from_nibabel_nifti(img)


def from_ants(ants_img, dtype=np.float32) -> nib.Nifti1Image:
    """An ANTsImage as a nibabel image in RAS world coordinates, sform and qform set."""
    import ants

    img = ants.to_nibabel_nifti(ants_img)
    data = np.asanyarray(img.dataobj).astype(dtype)
    out = nib.Nifti1Image(data, img.affine)
    out.set_sform(img.affine, code=1)
    out.set_qform(img.affine, code=1)
    out.set_data_dtype(dtype)
    return out


@contextmanager
def private_tempdir() -> Iterator[str]:
    """Point Python's ``tempfile`` at a fresh folder for the duration, then remove it.

    ANTsPy names the files it hands to ANTs with ``tempfile.mktemp()`` and never removes them:
    ``registration`` its transforms (two full warp fields per SyN), ``atropos`` its prior
    images. Run those calls inside this context and copy what is kept before it ends.
    """
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="mrixai-ants-") as folder:
        tempfile.tempdir = folder
        try:
            yield folder
        finally:
            tempfile.tempdir = previous
