"""One synthetic subject: ``subject(x) = model(phi(pose^-1(x)))``.

The pose is a random rotation/translation/scale about the head centre, and ``phi`` is the
exponential (scaling and squaring) of one stationary velocity field: a smooth random field that
gives the subject its own anatomy, plus a radial field around each atrophy region that changes the
region's volume by ``severity * atrophy`` (shrink or grow), plus a mild age effect on the lateral
ventricles; optionally (``intensity_change``) a patient's shrink regions also change their T1w
signal, on the model grid so that it moves with the tissue (no registration undoes it). Males get a
slightly bigger head. The scan is written in a non-RAS, slightly oblique voxel orientation, with a
smooth multiplicative bias field and Rician noise, as int16; the native-space truth (tissue labels
and brain mask) is written beside it. The same inputs give byte-identical files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from mrixai.io import save_nifti
from mrixai.synthetic.cohort import _check_params, _check_resolution, _check_row, _check_seed, _rng
from mrixai.synthetic.deformation import (
    _calibrated_atrophy,
    _COARSE_MM,
    _coarse_shape,
    _exp_velocity,
    _native_grid,
    _random_velocity,
    _rotation,
    _signal_factors,
    _upsample,
    _volume_changes,
)
from mrixai.synthetic.head import _embed, _load_head_model, _model_grid, _require, T2W_TISSUE
from mrixai.synthetic.truth import _atlas_table, _region_indices
from mrixai.templates import TemplateFiles

log = logging.getLogger(__name__)

# The MNI152 2009 head is larger than an average adult's (about 1.9 L inside our template brain
# mask, against about 1.4-1.5 L): a linear 0.9 (0.73 in volume) brings the cohort's intracranial
# volumes to an adult range before the per-subject scale and the sex difference apply.
_ADULT_SCALE = 0.9
_SEX_SCALE = {"M": _ADULT_SCALE * 1.02, "F": _ADULT_SCALE * 0.98}
# Centre of the field of view relative to the brain's centre (head frame, RAS mm): the face
# reaches further forward than the occiput backwards, and the neck fills the bottom.
_FOV_OFFSET_MM = np.array([0.0, 10.0, -5.0])
#: Regions that grow mildly with age in everybody.
VENTRICLES = ("Left_Lateral_Ventricle", "Right_Lateral_Ventricle")


def _bias_field(rng: np.random.Generator, shape: Sequence[int], strength: float) -> np.ndarray:
    """Smooth multiplicative field exp(strength * b), b a random quadratic polynomial scaled to max |b| = 1."""
    coeffs = rng.standard_normal(9)
    if strength == 0:
        return np.ones(shape, np.float32)
    u = [
        np.linspace(-1, 1, n, dtype=np.float32).reshape([n if a == i else 1 for a in range(3)])
        for i, n in enumerate(shape)
    ]
    p2 = [(3 * x**2 - 1) / 2 for x in u]
    terms = [u[0], u[1], u[2], p2[0], p2[1], p2[2], u[0] * u[1], u[0] * u[2], u[1] * u[2]]
    field = np.zeros(shape, np.float32)
    for c, term in zip(coeffs, terms):
        field += np.float32(c) * term
    field /= max(float(np.abs(field).max()), 1e-6)
    return np.exp(np.float32(strength) * field)


def _rician(rng: np.random.Generator, signal: np.ndarray, sigma: float) -> np.ndarray:
    n1 = rng.standard_normal(signal.shape, dtype=np.float32)
    n2 = rng.standard_normal(signal.shape, dtype=np.float32)
    if sigma == 0:
        return signal
    return np.sqrt((signal + np.float32(sigma) * n1) ** 2 + (np.float32(sigma) * n2) ** 2)


def _to_int16(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, np.iinfo(np.int16).max).astype(np.int16)


def generate_subject(
    row: Mapping,
    head_model_dir: str | Path,
    template_dir: str | Path,
    resolution_mm: float,
    params: Mapping,
    seed: int,
    out_t1w: str | Path,
    out_t2w: str | Path,
    out_dseg: str | Path,
    out_mask: str | Path,
    *,
    orientation: str = "PSR",
    max_oblique_deg: float = 5.0,
    fov_mm: Sequence[float] = (208.0, 256.0, 256.0),
    age_effect_per_year: float = 0.01,
    age_reference: float = 70.0,
) -> dict:
    """Generate one subject's raw T1w and T2w scans and their native-space truth; return what was drawn.

    ``row`` is one participants row (participant_id, and optionally age, sex, severity); ``params``
    is the config's ``synthetic`` section. The scans are whole heads in scanner space: pose, own
    anatomy, planted atrophy (``severity * atrophy`` relative volume change of each shrink/grow
    region), bias field and Rician noise, int16, voxel axes along ``orientation`` tilted by up to
    ``max_oblique_deg`` about each axis, field of view ``fov_mm`` (left-right, anterior-posterior,
    inferior-superior). The lateral ventricles also grow by ``age_effect_per_year`` per year above
    ``age_reference`` (shrink below it), in controls too. ``out_dseg`` (1 GM, 2 WM, 3 CSF) and
    ``out_mask`` share the scans' grid. The returned dict (JSON-serialisable) holds the pose, the
    target and realised (model-space) region volume changes and the intensity settings.
    """
    t0 = time.perf_counter()
    res = _check_resolution(resolution_mm)
    p = _check_params(params)
    subject = _check_row(row)
    seed = _check_seed(seed)
    orientation = str(orientation).upper()
    axes_named = sorted("LRPAIS".index(c) // 2 for c in orientation if c in "LRPAIS")
    if len(orientation) != 3 or axes_named != [0, 1, 2]:
        raise ValueError(f"orientation must name each axis once, like 'PSR' or 'LAS', got {orientation!r}")
    if not 0 <= max_oblique_deg <= 30:
        raise ValueError(f"max_oblique_deg must lie in [0, 30], got {max_oblique_deg!r}")
    if len(fov_mm) != 3 or not all(50 <= float(f) <= 400 for f in fov_mm):
        raise ValueError(f"fov_mm must be three lengths in [50, 400] mm, got {fov_mm!r}")
    if not -0.1 <= age_effect_per_year <= 0.1:
        raise ValueError(f"age_effect_per_year must lie in [-0.1, 0.1], got {age_effect_per_year!r}")

    model = _load_head_model(head_model_dir, res)
    template = TemplateFiles(Path(template_dir), res)
    _require(template.t1w, template.atlas, template.atlas_labels)
    table = _atlas_table(template)
    shrink = _region_indices(p["shrink_regions"], table)
    grow = _region_indices(p["grow_regions"], table)
    ageing = _region_indices([r for r in VENTRICLES if r in table], table)
    shape_model = model["t1"].shape
    _, tpl_affine, pad = _model_grid(template)
    if not np.allclose(tpl_affine, model["affine"], atol=1e-3):
        raise ValueError(f"the head model in {head_model_dir} is not on the grid of the template in {template_dir}")
    atlas = _embed(np.asanyarray(nib.load(template.atlas).dataobj).astype(np.int16), pad)

    # Target relative volume change per region.
    severity = subject["severity"]
    age_change = 0.0 if subject["age"] is None else age_effect_per_year * (subject["age"] - age_reference)
    age_change = float(np.clip(age_change, -0.5, 0.5))
    regions: dict[str, tuple[int, float]] = {}
    for name in dict.fromkeys([*shrink, *grow, *ageing]):
        index = table[name]
        change = 1.0
        if name in shrink:
            change *= 1 - severity * p["atrophy"]
        if name in grow:
            change *= 1 + severity * p["atrophy"]
        if name in ageing:
            change *= 1 + age_change
        regions[name] = (index, change - 1.0)

    # Random draws, always in this order, whatever the subject's group.
    rng = _rng(seed, 1, subject["index"])
    angles = rng.uniform(-1, 1, 3) * p["max_rotation_deg"]
    translation = rng.uniform(-1, 1, 3) * p["max_translation_mm"]
    scale = (1 + rng.uniform(-1, 1) * p["max_scale"]) * _SEX_SCALE.get(subject["sex"], 1.0)
    oblique = rng.uniform(-1, 1, 3) * max_oblique_deg
    factor = max(1, int(round(_COARSE_MM / res)))
    coarse = _coarse_shape(shape_model, factor)
    v_random = _random_velocity(rng, coarse, factor * res, p["warp_mm"])
    gain_t1 = rng.uniform(800, 1200)
    gain_t2 = rng.uniform(1000, 1500)

    # Anatomy: phi = exp(random + atrophy velocity), on the coarse lattice of the model grid.
    v = v_random + _calibrated_atrophy(atlas, regions, res, factor, coarse)
    u = _exp_velocity(v)
    changes = _volume_changes(atlas, regions, u, factor, res)

    # Pose about the brain's centre, and the scanner grid centred on the posed head.
    vox_centre = np.argwhere(model["dseg"] > 0).mean(0)
    centre = model["affine"][:3, :3] @ vox_centre + model["affine"][:3, 3]
    rot = _rotation(angles)
    shape_native, affine_native = _native_grid(
        orientation, oblique, res, fov_mm, centre + translation + rot @ (scale * _FOV_OFFSET_MM)
    )
    inv_pose = np.eye(4)
    inv_pose[:3, :3] = rot.T / scale
    inv_pose[:3, 3] = centre - inv_pose[:3, :3] @ (centre + translation)
    to_model = np.linalg.inv(model["affine"]) @ inv_pose @ affine_native

    # Model coordinates of the scan's voxels, computed on a coarse lattice and upsampled.
    lattice = _coarse_shape(shape_native, factor)
    axes = [np.arange(n, dtype=np.float32) * factor for n in lattice]
    pos = np.stack(
        [
            sum(np.float32(to_model[c, a]) * axes[a].reshape([-1 if b == a else 1 for b in range(3)]) for a in range(3))
            + np.float32(to_model[c, 3])
            for c in range(3)
        ]
    )
    disp = np.stack([ndimage.map_coordinates(c, pos / factor, order=1, mode="nearest") for c in u])
    coords = _upsample(pos + factor * disp, factor, shape_native).astype(np.float32)

    # Planted signal change of the shrink regions (on the model grid: it moves with the tissue).
    signal = _signal_factors(atlas, list(shrink.values()), severity * p["intensity_change"], res)
    src_t1, src_t2 = model["t1"], model["t2"]
    if signal is not None:
        src_t1, src_t2 = src_t1 * signal[0], src_t2 * signal[1]
    t1 = ndimage.map_coordinates(src_t1, coords, order=1, output=np.float32)
    t2 = ndimage.map_coordinates(src_t2, coords, order=1, output=np.float32)
    del src_t1, src_t2, signal
    nearest = np.rint(coords).astype(np.intp)
    inside = np.all((nearest >= 0) & (nearest < np.array(shape_model)[:, None, None, None]), axis=0)
    flat = np.ravel_multi_index(tuple(nearest), shape_model, mode="clip")
    dseg = np.where(inside, model["dseg"].ravel()[flat], 0).astype(np.uint8)
    del coords, nearest, flat, inside

    # Scanner effects: gain, bias field, Rician noise.
    bias_t1 = _bias_field(rng, shape_native, p["bias_strength"])
    bias_t2 = _bias_field(rng, shape_native, p["bias_strength"])
    wm_t2 = gain_t2 * T2W_TISSUE["WM"]
    t1 = _rician(rng, t1 * bias_t1 * np.float32(gain_t1), p["noise"] * gain_t1)
    t2 = _rician(rng, t2 * bias_t2 * np.float32(gain_t2), p["noise"] * wm_t2)

    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", "sec")
    save_nifti(_to_int16(t1), affine_native, out_t1w, dtype=np.int16, header=header)
    save_nifti(_to_int16(t2), affine_native, out_t2w, dtype=np.int16, header=header)
    save_nifti(dseg, affine_native, out_dseg, dtype=np.uint8, header=header)
    save_nifti((dseg > 0).astype(np.uint8), affine_native, out_mask, dtype=np.uint8, header=header)

    disp_mm = float(np.sqrt((u**2).sum(0)).max() * factor * res)
    drawn = {
        "participant_id": subject["participant_id"],
        "index": subject["index"],
        "diagnosis": subject["diagnosis"],
        "age": subject["age"],
        "sex": subject["sex"],
        "severity": severity,
        "rotation_deg": np.round(angles, 3).tolist(),
        "translation_mm": np.round(translation, 3).tolist(),
        "scale": round(float(scale), 4),
        "oblique_deg": np.round(oblique, 3).tolist(),
        "orientation": orientation,
        "shape": list(shape_native),
        "max_displacement_mm": round(disp_mm, 3),
        "target_volume_change": {name: round(change, 4) for name, (_, change) in regions.items()},
        "volume_change": {name: round(change, 4) for name, change in changes.items()},
        "intensity_change": round(severity * p["intensity_change"], 4),
        "t1w_wm_level": round(float(gain_t1), 2),
        "t2w_csf_level": round(float(gain_t2), 2),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    log.info("%s: %s", subject["participant_id"], drawn)
    return drawn
