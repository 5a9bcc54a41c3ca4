"""Reference labels of the masking study from a labelled derivatives folder (e.g. DLMUSE).

With ``studies.masking.reference_labels`` set, the study trains on and is scored against these
labels instead of the pipeline's own skull stripping and tissue segmentation:
:func:`find_reference_dseg` finds a unit's label image (``sub-<label>/[ses-<s>/]anat/*_dseg.nii[.gz]``)
and :func:`write_reference_labels` turns it into the study's brain mask (every labelled voxel:
the intracranial mask) and tissue map (1 = GM, 2 = WM, 3 = CSF, fMRIPrep order) with the
folder's ``dseg.tsv`` (columns ``index`` and ``tissue``: GM, WM, CSF_ventricle,
CSF_extracerebral or other; ``other`` stays inside the mask with tissue 0).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.io import atomic_path

#: Tissue names of a reference label table and the tissue-map label each becomes.
TISSUE_CODES = {"GM": 1, "WM": 2, "CSF_ventricle": 3, "CSF_extracerebral": 3, "CSF": 3, "other": 0}


def find_reference_dseg(reference_dir: str | Path, unit: str) -> Path:
    """The one ``*_dseg.nii[.gz]`` of ``unit`` (``<label>`` or ``<label>_ses-<s>``) under
    ``reference_dir``; a clear error when there is none or more than one."""
    root = Path(reference_dir)
    label, _, session = unit.partition("_ses-")
    folder = root / f"sub-{label}" / (f"ses-{session}" if session else "") / "anat"
    found = sorted(p for p in folder.glob(f"sub-{unit}_*dseg.nii*") if p.name.endswith((".nii", ".nii.gz")))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        raise ValueError(
            f"studies.masking.reference_labels: {what} sub-{unit}_*dseg.nii[.gz] in {folder} "
            f"(need exactly one){': ' + ', '.join(p.name for p in found) if found else ''}"
        )
    return found[0]


def reference_lut(lut_tsv: str | Path) -> dict[int, int]:
    """{label index: tissue-map code} from a reference folder's dseg.tsv."""
    path = Path(lut_tsv)
    if not path.is_file():
        raise ValueError(f"studies.masking.reference_labels: label table {path} not found")
    lut = pd.read_csv(path, sep="\t")
    if not {"index", "tissue"} <= set(lut.columns):
        raise ValueError(f"{path}: needs columns 'index' and 'tissue', has {list(lut.columns)}")
    unknown = sorted(set(lut["tissue"].astype(str)) - set(TISSUE_CODES))
    if unknown:
        raise ValueError(f"{path}: unknown tissue name(s) {unknown}; valid: {sorted(TISSUE_CODES)}")
    return {int(i): TISSUE_CODES[str(t)] for i, t in zip(lut["index"], lut["tissue"])}


def write_reference_labels(dseg: str | Path, lut_tsv: str | Path, out_mask: str | Path, out_dseg: str | Path) -> dict:
    """Write the brain mask (labels > 0) and the 0..3 tissue map of a reference label image, on
    its own grid and orientation; returns the voxel count of each output class."""
    img = nib.load(dseg)
    labels = np.asarray(img.dataobj)
    if labels.ndim == 4 and labels.shape[3] == 1:
        labels = labels[..., 0]
    if labels.ndim != 3 or not np.allclose(labels, np.round(labels)):
        raise ValueError(f"{dseg}: a label image must be a 3D volume of integers, got shape {labels.shape}")
    labels = np.round(labels).astype(np.int64)
    codes = reference_lut(lut_tsv)
    present = set(np.unique(labels[labels > 0]).tolist())
    missing = sorted(present - set(codes))
    if missing:
        raise ValueError(f"{dseg}: label(s) {missing[:10]} not in {lut_tsv}")
    tissue = np.zeros(labels.shape, dtype=np.uint8)
    for index, code in codes.items():
        if code and index in present:
            tissue[labels == index] = code
    mask = (labels > 0).astype(np.uint8)
    for data, path in ((mask, out_mask), (tissue, out_dseg)):
        out = nib.Nifti1Image(data, img.affine)
        out.set_data_dtype(np.uint8)
        with atomic_path(path) as tmp:
            nib.save(out, tmp)
    return {"brain": int(mask.sum()), **{name: int((tissue == c).sum()) for name, c in (("GM", 1), ("WM", 2), ("CSF", 3))}}
