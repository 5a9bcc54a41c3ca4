"""Registration to the template grid in three arms: none, linear (affine) and syn.

``none`` only pads/crops: the image's field-of-view centre is put on the template grid's centre,
with no rotation or scaling. ``linear`` is an ANTs affine registration of the skull-stripped
image to the skull-stripped template (Mattes mutual information, so T2w works too). ``syn``
starts from that affine and adds ANTs SyN. Every transform is kept as a file, so tissue maps,
masks, the whole-head image (for the tissue study) and later attribution maps follow the same
mapping.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from mrixai.io import atomic_path, save_image
from mrixai.preproc.antsio import from_ants, private_tempdir
from mrixai.templates import TISSUES, TemplateFiles

log = logging.getLogger(__name__)

ARMS = ("none", "linear", "syn")


def _levels(n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shrink factors and smoothing sigmas (voxels) for ``n`` coarse-to-fine levels."""
    shrink = tuple(2 ** (n - 1 - i) for i in range(n))
    sigma = tuple(max(0, n - 1 - i) for i in range(n))
    return shrink, sigma


def register_affine(
    brain_path: str | Path,
    template: TemplateFiles,
    out_xfm: str | Path,
    iterations: Sequence[int] = (1000, 500, 0),
) -> Path:
    """Affine registration of the skull-stripped image to the template; writes the ANTs .mat."""
    import ants

    if not iterations:
        raise ValueError("affine iterations must be a non-empty list")
    fixed = ants.image_read(str(template.t1w))
    moving = ants.image_read(str(brain_path))
    shrink, sigma = _levels(len(iterations))
    with private_tempdir():
        reg = ants.registration(
            fixed,
            moving,
            type_of_transform="Affine",
            aff_metric="mattes",
            aff_iterations=tuple(int(i) for i in iterations),
            aff_shrink_factors=shrink,
            aff_smoothing_sigmas=sigma,
            aff_random_sampling_rate=0.25,
        )
        with atomic_path(out_xfm) as tmp:
            shutil.copyfile(reg["fwdtransforms"][0], tmp)
    log.info("affine: %s levels, iterations %s", len(iterations), list(iterations))
    return Path(out_xfm)


def register_syn(
    brain_path: str | Path,
    template: TemplateFiles,
    affine_xfm: str | Path,
    out_warp: str | Path,
    out_inverse_warp: str | Path,
    iterations: Sequence[int] = (60, 40, 0),
    gradient_step: float = 0.2,
) -> None:
    """SyN registration initialised by ``affine_xfm``; writes forward and inverse warp fields."""
    import ants

    if not iterations:
        raise ValueError("syn iterations must be a non-empty list")
    fixed = ants.image_read(str(template.t1w))
    moving = ants.image_read(str(brain_path))
    with private_tempdir():
        reg = ants.registration(
            fixed,
            moving,
            type_of_transform="SyNOnly",
            initial_transform=str(affine_xfm),
            syn_metric="mattes",
            reg_iterations=tuple(int(i) for i in iterations),
            grad_step=float(gradient_step),
        )
        warp = [t for t in reg["fwdtransforms"] if t.endswith("Warp.nii.gz")]
        inverse = [t for t in reg["invtransforms"] if t.endswith("InverseWarp.nii.gz")]
        if len(warp) != 1 or len(inverse) != 1:
            raise RuntimeError(f"unexpected ANTs SyN outputs: {reg['fwdtransforms']} / {reg['invtransforms']}")
        with atomic_path(out_warp) as tmp:
            shutil.copyfile(warp[0], tmp)
        with atomic_path(out_inverse_warp) as tmp:
            shutil.copyfile(inverse[0], tmp)
    log.info("SyN: iterations %s, gradient step %g", list(iterations), gradient_step)


def write_itk_affine(matrix: np.ndarray, translation: np.ndarray, path: str | Path) -> Path:
    """Write an ITK/ANTs affine transform file (.mat, MATLAB v4), as ``ants.write_transform`` does.

    ``matrix`` and ``translation`` are in ANTs' convention: LPS coordinates, mapping fixed
    (template) points to moving (subject) points. Writing it with scipy spares the job the
    import of antspyx, which costs 2-3 s.
    """
    from scipy.io import savemat

    params = np.concatenate([np.asarray(matrix, float).reshape(9), np.asarray(translation, float).reshape(3)])
    with atomic_path(path) as tmp:
        savemat(tmp, {"AffineTransform_double_3_3": params.reshape(12, 1), "fixed": np.zeros((3, 1))}, format="4")
    return Path(path)


def centering_transform(image_path: str | Path, template: TemplateFiles, out_xfm: str | Path) -> Path:
    """The ``none`` arm: a pure translation putting the image's FOV centre on the template's centre."""
    img = nib.load(image_path)
    tpl = nib.load(template.t1w)

    def centre(i: nib.Nifti1Image) -> np.ndarray:
        return (i.affine @ np.append((np.array(i.shape[:3]) - 1) / 2.0, 1.0))[:3]

    # ANTs transforms map template (fixed) points to image (moving) points, in LPS coordinates.
    shift_ras = centre(img) - centre(tpl)
    shift_lps = shift_ras * np.array([-1.0, -1.0, 1.0])
    write_itk_affine(np.eye(3), shift_lps, out_xfm)
    log.info("none: translation %s mm (RAS)", np.round(shift_ras, 1).tolist())
    return Path(out_xfm)


def transform_list(arm: str, affine_xfm: str | Path | None, warp: str | Path | None, centre_xfm=None) -> list[str]:
    """ANTs transform list (last applied first) that maps template points into the subject image."""
    if arm not in ARMS:
        raise ValueError(f"registration arm must be one of {ARMS}, got {arm!r}")
    if arm == "none":
        return [str(centre_xfm)]
    if arm == "linear":
        return [str(affine_xfm)]
    return [str(warp), str(affine_xfm)]


def _applier(template: TemplateFiles, transforms: Sequence[str]):
    """A function that resamples an image file onto the template grid through ``transforms``."""
    import ants

    fixed = ants.image_read(str(template.t1w))

    def apply(path, interpolator):
        moving = ants.image_read(str(path))
        return ants.apply_transforms(fixed, moving, list(transforms), interpolator=interpolator)

    return apply


def warp_brain_to_template(
    template: TemplateFiles,
    transforms: Sequence[str],
    brain_path: str | Path,
    mask_path: str | Path,
    out_brain: str | Path,
    out_mask: str | Path,
) -> None:
    """Resample the brain image (linear) and its mask (nearest label) onto the template grid."""
    apply = _applier(template, transforms)
    save_image(from_ants(apply(brain_path, "linear")), out_brain)
    save_image(from_ants(apply(mask_path, "genericLabel"), dtype=np.uint8), out_mask)


def warp_head_to_template(
    template: TemplateFiles, transforms: Sequence[str], head_path: str | Path, out_head: str | Path
) -> None:
    """Resample the bias-corrected whole-head image (skull and scalp kept) onto the template grid.

    The head follows the transforms estimated on the skull-stripped brain, so the brain inside it
    lands where the brain image does; outside the scan's field of view the result is 0. Linear
    interpolation, as for the brain image.
    """
    apply = _applier(template, transforms)
    save_image(from_ants(apply(head_path, "linear")), out_head)


def warp_tissue_to_template(
    template: TemplateFiles,
    transforms: Sequence[str],
    dseg_path: str | Path,
    probseg_paths: Mapping[str, str | Path],
    out_dseg: str | Path,
    out_probsegs: Mapping[str, str | Path],
) -> None:
    """Resample the label map (nearest label) and tissue probabilities (linear, clipped to [0, 1])."""
    apply = _applier(template, transforms)
    save_image(from_ants(apply(dseg_path, "genericLabel"), dtype=np.uint8), out_dseg)
    for tissue in TISSUES:
        prob = from_ants(apply(probseg_paths[tissue], "linear"))
        data = np.clip(np.asanyarray(prob.dataobj), 0, 1)
        save_image(nib.Nifti1Image(data.astype(np.float32), prob.affine, prob.header), out_probsegs[tissue])


def warp_to_template(
    template: TemplateFiles,
    transforms: Sequence[str],
    brain_path: str | Path,
    mask_path: str | Path,
    dseg_path: str | Path,
    probseg_paths: Mapping[str, str | Path],
    out_brain: str | Path,
    out_mask: str | Path,
    out_dseg: str | Path,
    out_probsegs: Mapping[str, str | Path],
) -> None:
    """Resample the brain image, mask, label map and tissue probabilities onto the template grid."""
    warp_brain_to_template(template, transforms, brain_path, mask_path, out_brain, out_mask)
    warp_tissue_to_template(template, transforms, dseg_path, probseg_paths, out_dseg, out_probsegs)
