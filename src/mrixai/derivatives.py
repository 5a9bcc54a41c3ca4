"""BIDS-derivatives datasets of the pipeline's outputs (the derivatives sink, as in fMRIPrep).

The rules write their outputs under working paths of their own (``results/preproc``, the
synthetic truth, ``results/attribution``); this module maps those files onto valid
BIDS-derivatives datasets under ``results/derivatives/``:

- ``mrixai-preproc``: per unit, native space (no ``space-``): the bias-corrected image
  (``desc-preproc_<contrast>``), the skull-stripped image (``desc-brain_<contrast>``), the brain
  mask (``desc-brain_mask``), the tissue map (``dseg``, 1=GM 2=WM 3=CSF, described in the
  top-level ``dseg.tsv``) and the tissue probability maps (``label-<GM|WM|CSF>_probseg``); per
  registration arm, template space (``space-<template ID>_res-<grid>``, the arm as ``desc-<arm>``):
  the brain image, brain mask (``label-brain``), dseg and probsegs; and the transforms
  (``from-<contrast>_to-<template ID>_mode-image_desc-<arm>_xfm``, fMRIPrep's naming; BIDS has no
  transform files yet, so ``.bidsignore`` lists them).
- ``mrixai-truth``: the synthetic cohort's native true dseg and brain mask; the template-space
  planted effect and planted regions masks are group-level files BIDS has no place for, so they
  sit at the top level under names with ``space-``/``res-``/``desc-`` and are listed in
  ``.bidsignore``.
- ``mrixai-attribution``: each explained variant's group mean maps, in ``group/`` (listed in
  ``.bidsignore``: BIDS has no attribution-map suffix and no group-level files).

Sessions are nested as ``sub-<label>/ses-<session>/anat/``. Files are hardlinked from the working
paths (copied where a hardlink is impossible), sidecars carry ``Sources`` (BIDS URIs), the
software and parameters that made them, ``SkullStripped``, ``Resolution`` and, for native files,
``SpatialReference`` (the raw image). Nothing here reads image data.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from mrixai import __version__
from mrixai.bids import LABEL_PATTERN
from mrixai.templates import TISSUES

#: BIDS version the derivatives datasets follow.
BIDS_VERSION = "1.10.0"
#: Registration arms and what each template-space file went through.
ARM_DESCRIPTIONS = {
    "none": "no registration: the native image centred and padded/cropped onto the template grid",
    "linear": "affine registration to the template (ANTs)",
    "syn": "affine then nonlinear SyN registration to the template (ANTs)",
}
#: Entity order of BIDS file names (the subset this pipeline writes).
ENTITY_ORDER = ("sub", "ses", "from", "to", "mode", "space", "res", "label", "desc")
#: The ``dseg`` labels (fMRIPrep order), written as the top-level ``dseg.tsv``.
DSEG_LABELS = ((1, "GM", "Gray matter"), (2, "WM", "White matter"), (3, "CSF", "Cerebrospinal fluid"))
#: Transforms: BIDS has no transform files yet (BEP014), so they are named as fMRIPrep names them
#: and listed in ``.bidsignore``.
XFM_BIDSIGNORE = "*_xfm.*"

_UNIT = re.compile(rf"^(?P<sub>{LABEL_PATTERN})(?:_ses-(?P<ses>{LABEL_PATTERN}))?$")
_LABEL = re.compile(r"^[A-Za-z0-9]+$")


@dataclass(frozen=True)
class Export:
    """One file of a derivatives dataset: the working file it comes from, its path in the
    dataset, and its JSON sidecar (None: no sidecar)."""

    source: Path
    target: str
    sidecar: dict | None = field(default=None, hash=False, compare=False)


def unit_entities(unit: str) -> dict[str, str]:
    """``{"sub": ..., "ses": ...}`` of a unit ID (``01`` or ``01_ses-2``); no ``ses`` without sessions."""
    match = _UNIT.match(str(unit))
    if not match:
        raise ValueError(f"unit ID {unit!r} is neither <label> nor <label>_ses-<label> (letters and digits)")
    return {k: v for k, v in match.groupdict().items() if v is not None}


def bids_name(entities: dict[str, str], suffix: str, extension: str = ".nii.gz") -> str:
    """A BIDS file name from entities (written in :data:`ENTITY_ORDER`), a suffix and an extension."""
    unknown = sorted(set(entities) - set(ENTITY_ORDER))
    if unknown:
        raise ValueError(f"unknown BIDS entities {unknown}; known: {ENTITY_ORDER}")
    parts = []
    for key in ENTITY_ORDER:
        if key in entities:
            value = str(entities[key])
            if not _LABEL.match(value):
                raise ValueError(f"BIDS entity {key}-{value!r}: a label must be letters and digits only")
            parts.append(f"{key}-{value}")
    return "_".join([*parts, suffix]) + extension


def bids_path(entities: dict[str, str], suffix: str, extension: str = ".nii.gz", datatype: str = "anat") -> str:
    """The path of a subject file in a BIDS dataset: ``sub-X/[ses-Y/]<datatype>/<name>``."""
    if "sub" not in entities:
        raise ValueError(f"a subject file needs the sub entity, got {entities}")
    folders = [f"sub-{entities['sub']}"] + ([f"ses-{entities['ses']}"] if "ses" in entities else [])
    return "/".join([*folders, datatype, bids_name(entities, suffix, extension)])


def res_label(resolution_mm: float) -> str:
    """The ``res-`` label of the template grid: ``2mm``, ``1p5mm`` (as the template files' names)."""
    resolution_mm = float(resolution_mm)
    if not resolution_mm > 0:
        raise ValueError(f"resolution_mm must be positive, got {resolution_mm!r}")
    return f"{resolution_mm:g}".replace(".", "p") + "mm"


def resolution_text(resolution_mm: float) -> str:
    """What the ``res-`` label means (the ``Resolution`` sidecar field)."""
    return (
        f"{float(resolution_mm):g} mm isotropic grid covering the field of view of the 1 mm template, "
        "with the 1 mm template's origin (not TemplateFlow's res-0N grid)"
    )


def raw_uri(path: str) -> str:
    """BIDS URI of a file of the raw dataset (``DatasetLinks`` key ``raw``)."""
    return f"bids:raw:{path}"


def own_uri(path: str) -> str:
    """BIDS URI of a file of the dataset itself."""
    return f"bids::{path}"


def preproc_exports(
    unit: str,
    internal_prefix: str | Path,
    raw_path: str,
    contrast: str,
    arms: list[str],
    template_id: str,
    resolution_mm: float,
    parameters: dict | None = None,
) -> list[Export]:
    """Every file one unit contributes to ``mrixai-preproc``.

    Args:
        unit: the unit ID (``01`` or ``01_ses-2``).
        internal_prefix: working path prefix of the unit's files (``results/preproc/sub-<unit>/anat/sub-<unit>``).
        raw_path: the raw image's path inside the raw BIDS dataset (for ``Sources``).
        contrast: ``T1w`` or ``T2w``.
        arms: registration arms produced (any of none, linear, syn).
        template_id: TemplateFlow ID of the template the images were registered to.
        resolution_mm: voxel size of the template grid.
        parameters: config sections recorded in the sidecars (bias_correction, skullstrip,
            segmentation, registration_params); missing ones are left out.
    """
    if contrast not in ("T1w", "T2w"):
        raise ValueError(f"contrast must be T1w or T2w, got {contrast!r}")
    unknown = sorted(set(arms) - set(ARM_DESCRIPTIONS))
    if unknown or not arms:
        raise ValueError(f"registration arms must be a non-empty subset of {list(ARM_DESCRIPTIONS)}, got {arms}")
    params = parameters or {}
    pre = str(internal_prefix)
    ent = unit_entities(unit)
    raw = raw_uri(raw_path)
    res = res_label(resolution_mm)

    def native(suffix, **extra):
        return bids_path({**ent, **extra}, suffix)

    head = native(contrast, desc="preproc")
    brain = native(contrast, desc="brain")
    mask = native("mask", desc="brain")
    dseg = native("dseg")
    probs = {t: native("probseg", label=t) for t in TISSUES}

    def step(name):
        return {"Parameters": params[name]} if name in params else {}

    out = [
        Export(f"{pre}_desc-n4_{contrast}.nii.gz", head, {
            "Description": "Reoriented to RAS and bias-corrected (ANTs N4); skull, scalp and "
            "extra-parenchymal space kept.",
            "Sources": [raw], "SpatialReference": raw, "SkullStripped": False,
            "Software": "ANTs N4BiasFieldCorrection (antspyx)", **step("bias_correction"),
        }),
        Export(f"{pre}_desc-brain_mask.nii.gz", mask, {
            "Description": "Brain mask from skull stripping of the bias-corrected image.",
            "Type": "Brain", "Sources": [own_uri(head)], "RawSources": [raw], "SpatialReference": raw,
            **step("skullstrip"),
        }),
        Export(f"{pre}_desc-brain_{contrast}.nii.gz", brain, {
            "Description": "The bias-corrected image with non-brain voxels set to zero.",
            "Sources": [own_uri(head), own_uri(mask)], "SpatialReference": raw, "SkullStripped": True,
            **step("skullstrip"),
        }),
        Export(f"{pre}_dseg.nii.gz", dseg, {
            "Description": "Tissue segmentation (ANTs Atropos with template priors): 1=GM 2=WM 3=CSF, "
            "0 outside the brain (see dseg.tsv).",
            "Sources": [own_uri(brain), own_uri(mask)], "SpatialReference": raw,
            "Software": "ANTs Atropos (antspyx)", **step("segmentation"),
        }),
    ]
    for tissue in TISSUES:
        out.append(Export(f"{pre}_label-{tissue}_probseg.nii.gz", probs[tissue], {
            "Description": f"Posterior probability of {tissue} (ANTs Atropos with template priors).",
            "Sources": [own_uri(brain), own_uri(mask)], "SpatialReference": raw,
            "Software": "ANTs Atropos (antspyx)", **step("segmentation"),
        }))

    xfm = {"from": contrast, "to": template_id, "mode": "image"}
    inverse = {"from": template_id, "to": contrast, "mode": "image"}
    xfms: dict[str, list[str]] = {}
    reg = step("registration_params")
    made_affine = "linear" in arms or "syn" in arms
    if "none" in arms:
        centre = bids_path({**ent, **xfm, "desc": "none"}, "xfm", ".mat")
        out.append(Export(f"{pre}_from-{contrast}_to-template_mode-image_reg-none_xfm.mat", centre))
        xfms["none"] = [centre]
    if made_affine:
        affine = bids_path({**ent, **xfm, "desc": "linear"}, "xfm", ".mat")
        out.append(Export(f"{pre}_from-{contrast}_to-template_mode-image_reg-linear_xfm.mat", affine))
        xfms["linear"] = [affine]
    if "syn" in arms:
        warp = bids_path({**ent, **xfm, "desc": "syn"}, "xfm")
        inv = bids_path({**ent, **inverse, "desc": "syn"}, "xfm")
        out += [
            Export(f"{pre}_from-{contrast}_to-template_mode-image_reg-syn_xfm.nii.gz", warp),
            Export(f"{pre}_from-template_to-{contrast}_mode-image_reg-syn_xfm.nii.gz", inv),
        ]
        xfms["syn"] = [xfms["linear"][0], warp]

    for arm in arms:
        tpl = {**ent, "space": template_id, "res": res}
        common = {
            "Resolution": resolution_text(resolution_mm),
            "RegistrationArm": arm,
            "RegistrationDescription": ARM_DESCRIPTIONS[arm],
            "Software": "ANTs (antspyx)",
            **({} if arm == "none" else reg),
        }
        transforms = [own_uri(x) for x in xfms[arm]]
        t_brain = bids_path({**tpl, "desc": arm}, contrast)
        out.append(Export(f"{pre}_space-template_reg-{arm}_desc-brain_{contrast}.nii.gz", t_brain, {
            "Description": f"Skull-stripped image in template space ({arm} arm).",
            "Sources": [own_uri(brain), *transforms], "SkullStripped": True, **common,
        }))
        out.append(Export(
            f"{pre}_space-template_reg-{arm}_desc-brain_mask.nii.gz",
            bids_path({**tpl, "label": "brain", "desc": arm}, "mask"),
            {"Description": f"Brain mask in template space ({arm} arm).", "Type": "Brain",
             "Sources": [own_uri(mask), *transforms], **common},
        ))
        out.append(Export(
            f"{pre}_space-template_reg-{arm}_dseg.nii.gz",
            bids_path({**tpl, "desc": arm}, "dseg"),
            {"Description": f"Tissue segmentation in template space ({arm} arm; nearest neighbour), "
             "1=GM 2=WM 3=CSF.", "Sources": [own_uri(dseg), *transforms], **common},
        ))
        for tissue in TISSUES:
            out.append(Export(
                f"{pre}_space-template_reg-{arm}_label-{tissue}_probseg.nii.gz",
                bids_path({**tpl, "label": tissue, "desc": arm}, "probseg"),
                {"Description": f"{tissue} probability in template space ({arm} arm).",
                 "Sources": [own_uri(probs[tissue]), *transforms], **common},
            ))
    return out


def truth_exports(unit: str, truth_dir: str | Path) -> list[Export]:
    """The native ground truth of one synthetic subject, for ``mrixai-truth``."""
    ent = unit_entities(unit)
    src = Path(truth_dir) / f"sub-{unit}" / "anat" / f"sub-{unit}"
    raw = raw_uri(bids_path(ent, "T1w"))
    return [
        Export(f"{src}_dseg.nii.gz", bids_path(ent, "dseg"), {
            "Description": "True tissue labels the synthetic image was generated from: 1=GM 2=WM 3=CSF "
            "(see dseg.tsv), in the raw image's space.",
            "SpatialReference": raw, "Sources": [raw],
        }),
        Export(f"{src}_desc-brain_mask.nii.gz", bids_path({**ent, "desc": "brain"}, "mask"), {
            "Description": "True intracranial brain mask (labels > 0) of the synthetic subject.",
            "Type": "Brain", "SpatialReference": raw, "Sources": [raw],
        }),
    ]


def truth_group_exports(effect_mask: str | Path, regions_mask: str | Path, template_id: str,
                        resolution_mm: float) -> list[Export]:
    """The template-space planted effect and planted-regions masks (group level, ``.bidsignore``d)."""
    res = res_label(resolution_mm)
    common = {"Resolution": resolution_text(resolution_mm), "Space": template_id}
    return [
        Export(effect_mask, f"space-{template_id}_res-{res}_desc-effect_mask.nii.gz", {
            "Description": "Voxels where the synthetic cohort's planted group effect exceeds the threshold.",
            **common,
        }),
        Export(regions_mask, f"space-{template_id}_res-{res}_desc-plantedregions_mask.nii.gz", {
            "Description": "Atlas regions in which the synthetic cohort's group effect was planted.",
            **common,
        }),
    ]


def attribution_exports(means_dir: str | Path, study: str, variant: str, template_id: str,
                        resolution_mm: float) -> list[Export]:
    """A variant's group mean maps (``<study>/<variant>_means/*.nii.gz``) for ``mrixai-attribution``.

    The maps lie on the volume store's grid: a crop of the template grid, block-averaged when
    ``samples.volumes.downsample`` says so, hence ``res-`` is read from each map's voxel size
    (``resolution_mm`` is the template grid's, named in ``Resolution``).
    """
    import nibabel as nib

    means_dir = Path(means_dir)
    # what each map averages (method, kind, name, number of maps), from the folder's index.tsv
    index = {}
    if (means_dir / "index.tsv").is_file():
        with open(means_dir / "index.tsv", newline="") as f:
            index = {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}
    out = []
    for path in sorted(means_dir.glob("*.nii.gz")):
        zooms = {round(float(z), 4) for z in nib.load(path).header.get_zooms()[:3]}
        if len(zooms) != 1:
            raise ValueError(f"{path}: the attribution map's voxels are not isotropic ({sorted(zooms)} mm)")
        voxel = zooms.pop()
        res = res_label(voxel)
        target = f"group/{study}/{variant}/space-{template_id}_res-{res}_{path.name}"
        row = index.get(path.name, {})
        about = {k.capitalize(): row[k] for k in ("method", "kind", "name") if k in row}
        if "n" in row:
            about["NumberOfMaps"] = int(row["n"])
        out.append(Export(path, target, {
            "Description": f"Mean attribution map of the {study} study's {variant} variant "
            f"({path.name.removesuffix('_mean.nii.gz')}), on the volume store's crop of the template grid.",
            "Space": template_id, **about,
            "Resolution": f"{voxel:g} mm isotropic voxels of the volume store's grid: a crop of the "
            f"{float(resolution_mm):g} mm template grid" + (", block-averaged" if voxel != float(resolution_mm) else ""),
        }))
    return out


def dataset_description(name: str, description: str, raw_link: str | None, sources: list[str],
                        commit: str | None = None, url: str | None = None) -> dict:
    """``dataset_description.json`` of a derivatives dataset made by mrixai.

    ``raw_link`` is the raw dataset's location relative to the derivatives dataset (its
    ``DatasetLinks`` key ``raw``, which the sidecars' ``bids:raw:`` URIs refer to); ``sources`` go
    to ``SourceDatasets``. The code's git ``commit`` is appended to the version as a local version
    label (``0.1.0+g<commit>``); ``url`` (the checkout's remote) becomes ``CodeURL``.
    """
    version = f"{__version__}+g{commit}" if commit else __version__
    generated = {"Name": "mrixai", "Version": version, "Description": description}
    if url:
        generated["CodeURL"] = url
    out = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
        "SourceDatasets": [{"URL": s} for s in sources],
    }
    if raw_link:
        out["DatasetLinks"] = {"raw": raw_link}
    return out


def _place(source: Path, target: Path) -> None:
    """Hardlink ``source`` to ``target`` (a copy where hardlinks are impossible)."""
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def write_dataset(
    root: str | Path,
    exports: list[Export],
    description: dict,
    readme: str,
    bidsignore: list[str] = (),
    dseg_table: bool = False,
) -> Path:
    """Write one derivatives dataset: every export (hardlink, else copy) with its sidecar, the
    README, ``.bidsignore``, ``dseg.tsv`` (when asked) and, last, ``dataset_description.json``.

    Raises FileNotFoundError naming a missing source file, ValueError for two exports to one path.
    """
    root = Path(root)
    targets = [e.target for e in exports]
    twice = sorted({t for t in targets if targets.count(t) > 1})
    if twice:
        raise ValueError(f"several files map to the same derivatives path: {twice}")
    missing = [str(e.source) for e in exports if not Path(e.source).is_file()]
    if missing:
        raise FileNotFoundError(f"derivatives export: {len(missing)} source file(s) missing, e.g. {missing[:3]}")
    root.mkdir(parents=True, exist_ok=True)
    for export in exports:
        target = root / export.target
        target.parent.mkdir(parents=True, exist_ok=True)
        _place(Path(export.source), target)
        if export.sidecar is not None:
            sidecar = target.with_name(target.name.removesuffix(".nii.gz").removesuffix(".mat") + ".json")
            sidecar.write_text(json.dumps(export.sidecar, indent=2) + "\n")
    (root / "README.md").write_text(readme.rstrip() + "\n")
    if bidsignore:
        (root / ".bidsignore").write_text("".join(f"{p}\n" for p in bidsignore))
    if dseg_table:
        rows = ["index\tname\tabbreviation"] + [f"{i}\t{full}\t{abbr}" for i, abbr, full in DSEG_LABELS]
        (root / "dseg.tsv").write_text("\n".join(rows) + "\n")
    path = root / "dataset_description.json"
    path.write_text(json.dumps(description, indent=2) + "\n")
    return path


# ---- the three datasets ---------------------------------------------------------------------------
def _readme(title: str, body: str) -> str:
    return f"# {title}\n\n{body}\n\nWritten by mrixai {__version__} from its working files (hardlinks).\n"


def export_preproc(
    root: str | Path,
    prefixes: dict[str, str],
    raw_paths: dict[str, str],
    raw_link: str,
    contrast: str,
    arms: list[str],
    template_id: str,
    resolution_mm: float,
    parameters: dict | None = None,
    commit: str | None = None,
    url: str | None = None,
) -> Path:
    """Write ``mrixai-preproc``: every unit's native and template-space preprocessing outputs.

    ``prefixes`` maps each unit ID to the working path prefix of its files
    (``results/preproc/sub-<unit>/anat/sub-<unit>``); ``raw_paths`` maps each unit to its raw image's path inside the raw dataset at ``raw_link``
    (relative to ``root``).
    """
    exports = []
    for unit, prefix in prefixes.items():
        if unit not in raw_paths:
            raise ValueError(f"export_preproc: no raw image path for unit {unit!r}")
        exports += preproc_exports(
            unit, prefix, raw_paths[unit], contrast, arms,
            template_id, resolution_mm, parameters,
        )
    description = dataset_description(
        "mrixai preprocessing", "Reorientation, N4 bias correction, skull stripping, tissue segmentation "
        "and registration to the template (arms: " + ", ".join(arms) + ").", raw_link, ["bids:raw:"], commit, url,
    )
    readme = _readme("mrixai preprocessing derivatives", (
        "Native-space bias-corrected and skull-stripped images, brain masks, tissue segmentations "
        f"(dseg.tsv) and probability maps; template-space (space-{template_id}, res-{res_label(resolution_mm)}) "
        "images per registration arm (desc-<arm>); transforms as in fMRIPrep (from-/to-/mode-image, "
        "desc-<arm>; listed in .bidsignore as BIDS has no transform files yet)."
    ))
    return write_dataset(root, exports, description, readme, [XFM_BIDSIGNORE], dseg_table=True)


def export_truth(
    root: str | Path,
    units: list[str],
    truth_dir: str | Path,
    effect_mask: str | Path,
    regions_mask: str | Path,
    raw_link: str,
    template_id: str,
    resolution_mm: float,
    commit: str | None = None,
    url: str | None = None,
) -> Path:
    """Write ``mrixai-truth``: the synthetic cohort's ground truth (native dseg and brain masks,
    template-space planted effect and regions at the top level, listed in ``.bidsignore``)."""
    exports = [e for unit in units for e in truth_exports(unit, truth_dir)]
    group = truth_group_exports(effect_mask, regions_mask, template_id, resolution_mm)
    description = dataset_description(
        "mrixai synthetic ground truth", "The tissue labels, brain masks and planted group effect the "
        "synthetic cohort was generated with.", raw_link, ["bids:raw:"], commit, url,
    )
    readme = _readme("mrixai synthetic ground truth", (
        "Per subject: the true tissue labels (dseg, see dseg.tsv) and brain mask in the raw image's space. "
        "Top level: the template-space planted effect and planted regions masks (group-level files, "
        "which BIDS has no place for: listed in .bidsignore)."
    ))
    ignore = [g.target.removesuffix(".nii.gz") + ".*" for g in group]  # images and sidecars
    return write_dataset(root, exports + group, description, readme, ignore, dseg_table=True)


def export_attribution(
    root: str | Path,
    means: dict[str, str | Path],
    template_id: str,
    resolution_mm: float,
    commit: str | None = None,
    url: str | None = None,
) -> Path:
    """Write ``mrixai-attribution``: each explained variant's group mean maps under ``group/``.

    ``means`` maps ``<study>/<variant>`` to that variant's ``_means`` folder.
    """
    exports = []
    for key, folder in means.items():
        study, _, variant = key.partition("/")
        if not variant:
            raise ValueError(f"export_attribution: key {key!r} is not <study>/<variant>")
        exports += attribution_exports(folder, study, variant, template_id, resolution_mm)
    description = dataset_description(
        "mrixai attribution maps", "Group mean attribution maps of the CNNs, in template space.",
        None, ["bids:preproc:"], commit, url,
    )
    description["DatasetLinks"] = {"preproc": "../mrixai-preproc"}
    readme = _readme("mrixai attribution maps", (
        "group/<study>/<variant>/: mean attribution maps per method over groups, outcomes (TP/FP/TN/FN) "
        "and runs, on the volume store's crop of the template grid. BIDS has no attribution-map "
        "suffix and no group-level files, so group/ is listed in .bidsignore. Per-subject, per-run maps "
        "stay in results/attribution/ (one per training run and method: not BIDS files either)."
    ))
    return write_dataset(root, exports, description, readme, ["group"])
