"""Tissue segmentation into GM / WM / CSF with ANTs Atropos, initialised from template priors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np

from mrixai.io import save_image
from mrixai.preproc.antsio import from_ants, private_tempdir
from mrixai.templates import TISSUES, TemplateFiles

log = logging.getLogger(__name__)

LABELS = {"GM": 1, "WM": 2, "CSF": 3}  # fMRIPrep's order


def priors_in_native(brain_path: str | Path, template: TemplateFiles, inverse_transforms: list[str],
                     invert_flags: list[bool]):
    """The template's GM/WM/CSF priors resampled into the subject's native grid (ANTs images)."""
    import ants

    fixed = ants.image_read(str(brain_path))
    priors = []
    for tissue in TISSUES:
        moving = ants.image_read(str(template.probseg(tissue)))
        priors.append(
            ants.apply_transforms(fixed, moving, inverse_transforms, interpolator="linear",
                                  whichtoinvert=invert_flags)
        )
    return priors


def run_atropos(image, mask, priors: list, prior_weight: float, mrf: float, iterations: int) -> dict:
    """ANTs Atropos on ANTs images, initialised from ``priors``, seeded with a constant, leaving no
    file behind."""
    import ants

    radius = "x".join(["1"] * image.dimension)
    with private_tempdir():
        return ants.atropos(
            a=image,
            x=mask,
            i=priors,
            m=f"[{mrf},{radius}]",
            c=f"[{int(iterations)},0]",
            priorweight=float(prior_weight),
            r=0,  # Atropos seeds its random generator from the clock unless told to use a constant seed
        )


def segment_tissue(
    brain_path: str | Path,
    mask_path: str | Path,
    template: TemplateFiles,
    inverse_transforms: list[str],
    invert_flags: list[bool],
    prior_weight: float = 0.3,
    mrf: float = 0.1,
    iterations: int = 3,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Atropos with prior-probability initialisation; returns (label map, probabilities, affine).

    Labels follow fMRIPrep: 1=GM, 2=WM, 3=CSF, 0 outside the brain mask.
    """
    import ants

    if not 0 <= prior_weight <= 1:
        raise ValueError(f"prior_weight must be in [0, 1], got {prior_weight!r}")
    if not 0 <= mrf <= 1:
        raise ValueError(f"mrf must be in [0, 1], got {mrf!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations!r}")
    image = ants.image_read(str(brain_path))
    mask = ants.image_read(str(mask_path))
    priors = priors_in_native(brain_path, template, inverse_transforms, invert_flags)
    mask_np = mask.numpy() > 0
    # Priors must cover the whole mask; give every tissue a floor so no voxel has zero total.
    stacked = np.stack([p.numpy() for p in priors])
    stacked = np.clip(stacked, 0, 1) + 1e-3
    stacked /= stacked.sum(axis=0, keepdims=True)
    priors = [image.new_image_like(stacked[i].astype(np.float32)) for i in range(len(TISSUES))]
    result = run_atropos(image, mask, priors, prior_weight, mrf, iterations)
    seg = result["segmentation"].numpy().astype(np.uint8)
    seg[~mask_np] = 0
    probs = {t: result["probabilityimages"][i].numpy().astype(np.float32) * mask_np for i, t in enumerate(TISSUES)}
    affine = from_ants(result["segmentation"]).affine
    fractions = {t: float((seg == LABELS[t]).sum()) / max(mask_np.sum(), 1) for t in TISSUES}
    log.info("Atropos: prior weight %g, mrf %g; fractions %s", prior_weight, mrf,
             {k: round(v, 3) for k, v in fractions.items()})
    return seg, probs, affine


def run_segment_tissue(
    brain_path: str | Path,
    mask_path: str | Path,
    template: TemplateFiles,
    affine_xfm: str | Path,
    out_dseg: str | Path,
    out_probsegs: Mapping[str, str | Path],
    prior_weight: float,
    mrf: float,
    iterations: int,
) -> None:
    """Segment the skull-stripped image with priors brought in through the inverse affine."""
    seg, probs, _ = segment_tissue(brain_path, mask_path, template, [str(affine_xfm)], [True],
                                   prior_weight, mrf, iterations)
    ref = nib.load(brain_path)
    affine = ref.affine
    save_image(_as_nifti(seg, affine, np.uint8), out_dseg)
    for tissue in TISSUES:
        save_image(_as_nifti(probs[tissue], affine, np.float32), out_probsegs[tissue])


def _as_nifti(data: np.ndarray, affine: np.ndarray, dtype) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data.astype(dtype), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.set_data_dtype(dtype)
    return img
