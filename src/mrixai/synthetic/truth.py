"""Ground truth of the planted effect in template space: the planted regions, the brain voxels
whose intensity the planted effect changes, and the effect mask written from them."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from mrixai.io import save_nifti
from mrixai.synthetic.cohort import _check_params, _check_resolution
from mrixai.synthetic.deformation import (
    _calibrated_atrophy,
    _COARSE_MM,
    _coarse_shape,
    _exp_velocity,
    _signal_factors,
)
from mrixai.synthetic.head import _embed, _load_head_model, _model_grid, _require
from mrixai.templates import TemplateFiles

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- atlas


def _atlas_table(template: TemplateFiles) -> dict[str, int]:
    table = pd.read_csv(template.atlas_labels, sep="\t")
    return {str(name): int(index) for index, name in zip(table["index"], table["name"])}


def _region_indices(names: Sequence[str], table: Mapping[str, int]) -> dict[str, int]:
    unknown = [n for n in names if n not in table]
    if unknown:
        raise ValueError(
            f"unknown atlas regions {unknown}; valid Neuromorphometrics names are: {', '.join(sorted(table))}"
        )
    return {n: table[n] for n in names}


# Patients' severity is drawn from U(0.5, 1) (make_participants): the effect mask is drawn at its mean.
MEAN_PATIENT_SEVERITY = 0.75


def planted_regions_mask(template_dir: str | Path, resolution_mm: float, params: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """The union of the shrink and grow regions on the template grid, and the grid's affine.

    Unknown region names raise ValueError listing the valid ones.
    """
    res = _check_resolution(resolution_mm)
    p = _check_params(params)
    template = TemplateFiles(Path(template_dir), res)
    _require(template.atlas, template.atlas_labels)
    indices = _region_indices(p["shrink_regions"] + p["grow_regions"], _atlas_table(template))
    img = nib.load(template.atlas)
    return np.isin(np.asanyarray(img.dataobj), list(indices.values())), img.affine


def planted_image_change(
    template_dir: str | Path,
    head_model_dir: str | Path,
    resolution_mm: float,
    params: Mapping,
    severity: float = MEAN_PATIENT_SEVERITY,
) -> np.ndarray:
    """|T1w change| the planted effect alone makes at ``severity``, on the template grid (0 outside the brain).

    The head model's T1w, with the shrink regions' signal change (``intensity_change``) applied,
    warped by the planted deformation (no pose, no random anatomy, no age effect, no scanner
    effects) minus the model itself, relative to the model's median brain intensity: where a
    patient's image differs from a control's because of the planted effect. Most of the
    deformation's part lies outside the planted regions themselves: an enlarged ventricle pushes
    the surrounding tissue away, and the deformation reaches ``_BUMP_INNER_MM +
    _BUMP_FALLOFF_MM`` beyond each region.
    """
    res = _check_resolution(resolution_mm)
    p = _check_params(params)
    if not 0 <= severity <= 1:
        raise ValueError(f"severity must lie in [0, 1], got {severity!r}")
    template = TemplateFiles(Path(template_dir), res)
    _require(template.atlas, template.atlas_labels, template.mask)
    model = _load_head_model(head_model_dir, res)
    _, tpl_affine, pad = _model_grid(template)
    if not np.allclose(tpl_affine, model["affine"], atol=1e-3):
        raise ValueError(f"the head model in {head_model_dir} is not on the grid of the template in {template_dir}")
    table = _atlas_table(template)
    atlas = _embed(np.asanyarray(nib.load(template.atlas).dataobj).astype(np.int16), pad)
    regions = {}
    shrink = _region_indices(p["shrink_regions"], table)
    for name, index in shrink.items():
        regions[name] = (index, -severity * p["atrophy"])
    for name, index in _region_indices(p["grow_regions"], table).items():
        change = severity * p["atrophy"]
        regions[name] = (index, regions.get(name, (index, 0.0))[1] + change)
    shape = model["t1"].shape
    factor = max(1, int(round(_COARSE_MM / res)))
    coarse = _coarse_shape(shape, factor)
    u = _exp_velocity(_calibrated_atrophy(atlas, regions, res, factor, coarse))
    x = np.indices(shape, dtype=np.float32)
    disp = np.stack([ndimage.map_coordinates(c, x / factor, order=1, mode="nearest") for c in u])
    source = model["t1"]
    signal = _signal_factors(atlas, list(shrink.values()), severity * p["intensity_change"], res)
    if signal is not None:
        source = source * signal[0]
    warped = ndimage.map_coordinates(source, x + factor * disp, order=1, mode="nearest")
    brain = np.asanyarray(nib.load(template.mask).dataobj) > 0
    change = np.where(brain, np.abs(warped - model["t1"])[..., pad:], 0.0)
    return (change / float(np.median(model["t1"][..., pad:][brain]))).astype(np.float32)


def write_effect_mask(
    template_dir: str | Path,
    resolution_mm: float,
    params: Mapping,
    out_path: str | Path,
    *,
    head_model_dir: str | Path | None = None,
    threshold: float = 0.1,
    out_regions: str | Path | None = None,
) -> None:
    """Write the template-space ground truth of the planted effect (binary uint8 on the template grid).

    With ``head_model_dir`` the mask holds the brain voxels whose T1w the planted atrophy changes
    by at least ``threshold`` (relative to the median brain intensity) in a patient of mean
    severity (:func:`planted_image_change`): where the effect can be seen. Without it, or in
    ``out_regions``, the union of the shrink and grow regions (:func:`planted_regions_mask`).
    """
    regions, affine = planted_regions_mask(template_dir, resolution_mm, params)
    if out_regions is not None:
        save_nifti(regions.astype(np.uint8), affine, out_regions, dtype=np.uint8)
    res = float(resolution_mm)
    if head_model_dir is None:
        mask = regions
    else:
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
        mask = planted_image_change(template_dir, head_model_dir, res, params) >= threshold
        if not mask.any():
            raise ValueError(f"the planted atrophy changes no brain voxel by {threshold:g} or more (atrophy {params.get('atrophy')})")
        log.info(
            "planted effect: %.1f ml of brain changed by >= %g (%.0f %% of it inside the planted regions, "
            "which cover %.1f ml)", mask.sum() * res**3 / 1000, threshold,
            100 * (mask & regions).sum() / mask.sum(), regions.sum() * res**3 / 1000,
        )  # fmt: skip
    save_nifti(mask.astype(np.uint8), affine, out_path, dtype=np.uint8)
    log.info("effect mask: %.1f ml, %s", mask.sum() * res**3 / 1000, out_path)
