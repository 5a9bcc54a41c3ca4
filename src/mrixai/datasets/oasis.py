"""Convert the public OASIS-1 cross-sectional archives (oasis-brains.org) into a BIDS dataset.

Each disc archive ``oasis_cross-sectional_disc<N>.tar.gz`` holds, per session,
``disc<N>/OAS1_<nnnn>_MR<k>/RAW/OAS1_<nnnn>_MR<k>_mpr-<r>_anon.hdr/.img`` (Analyze 7.5, 3 or 4
MPRAGE repeats) and processed images. The first MPRAGE (``mpr-1``) of every first session
(``MR1``) becomes ``sub-OAS1<nnnn>/anat/sub-OAS1<nnnn>_T1w.nii.gz`` with the voxel values and
voxel sizes of the Analyze file. Analyze 7.5 headers carry no orientation; the RAW volumes are
stored sagittally in ASL order (first axis to anterior, second to superior, third to left),
as documented for OASIS (A. Winkler, "Converting OASIS brains to NIfTI", brainder.org, 2011),
so the NIfTI affine says so, centred on the volume. ``oasis_cross-sectional.csv`` (ID, M/F,
Hand, Age, Educ, SES, MMSE, CDR, eTIV, nWBV, ASF, Delay) gives ``participants.tsv``, with a
``diagnosis`` column: CDR 0 -> CN, CDR >= 0.5 -> AD, no CDR -> n/a (the young controls).
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.datasets.archive import ConversionError, copy_member, read_archive
from mrixai.datasets.bidsout import bids_dataset, write_description, write_participants
from mrixai.io import save_nifti

log = logging.getLogger(__name__)

#: The first MPRAGE of a first session, anywhere in an archive (under a RAW folder).
OASIS_RAW = re.compile(r"(?:^|/)OAS1_(?P<number>\d{4})_MR1/RAW/OAS1_(?P=number)_MR1_mpr-1_anon\.(?P<ext>hdr|img)$")
#: Voxel axes of the RAW volumes (nibabel axis codes).
RAW_AXCODES = ("A", "S", "L")
CSV_COLUMNS = ["ID", "M/F", "Hand", "Age", "Educ", "SES", "MMSE", "CDR", "eTIV", "nWBV", "ASF", "Delay"]
PARTICIPANT_COLUMNS = {
    "age": "age at scan (years)",
    "sex": "M or F",
    "hand": "handedness (R: right)",
    "educ": "education level, 1 (below high school) to 5 (beyond college)",
    "socioeconomic": "socioeconomic status, 1 (highest) to 5 (lowest)",
    "mmse": "Mini-Mental State Examination score (0-30)",
    "cdr": "Clinical Dementia Rating (0, 0.5, 1, 2)",
    "diagnosis": "CN (CDR 0) or AD (CDR >= 0.5); n/a without a CDR",
    "etiv": "estimated total intracranial volume (mm3)",
    "nwbv": "normalised whole-brain volume",
    "asf": "atlas scaling factor",
}


def subject_label(number: str | int) -> str:
    """BIDS subject label of an OASIS-1 subject number: ``1`` -> ``OAS10001``."""
    return f"OAS1{int(number):04d}"


def raw_affine(shape: tuple[int, ...], zooms: tuple[float, ...], axcodes=RAW_AXCODES) -> np.ndarray:
    """Affine of a volume whose voxel axes point along ``axcodes``, centred on the volume."""
    world = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    affine = np.zeros((4, 4))
    affine[3, 3] = 1
    for axis, code in enumerate(axcodes):
        row, sign = world[code]
        affine[row, axis] = sign * float(zooms[axis])
    centre = (np.array(shape[:3], float) - 1) / 2
    affine[:3, 3] = -affine[:3, :3] @ centre
    return affine


def diagnosis(cdr: float) -> str | None:
    """CN for CDR 0, AD for CDR >= 0.5, None when the CDR is missing."""
    if cdr is None or pd.isna(cdr):
        return None
    return "CN" if float(cdr) == 0 else "AD"


def read_clinical(path: str | Path) -> pd.DataFrame:
    """The MR1 rows of ``oasis_cross-sectional.csv``, indexed by subject number."""
    path = Path(path)
    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise ConversionError(f"{path}: cannot read the OASIS-1 table ({type(exc).__name__}: {exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in CSV_COLUMNS if c not in table.columns]
    if missing:
        raise ConversionError(f"{path}: the OASIS-1 table lacks the columns {missing} (found {list(table.columns)})")
    ids = table["ID"].astype(str).str.extract(r"^OAS1_(\d{4})_MR(\d+)$")
    table = table.assign(number=pd.to_numeric(ids[0]), session=pd.to_numeric(ids[1]))
    table = table[table["session"] == 1].drop_duplicates("number").set_index("number")
    num = lambda c: pd.to_numeric(table[c], errors="coerce")  # noqa: E731
    return pd.DataFrame({
        "age": num("Age"),
        "sex": table["M/F"].astype(str).str.strip().str.upper().where(table["M/F"].notna()),
        "hand": table["Hand"].where(table["Hand"].notna()),
        "educ": num("Educ"),
        "socioeconomic": num("SES"),
        "mmse": num("MMSE"),
        "cdr": num("CDR"),
        "diagnosis": num("CDR").map(diagnosis),
        "etiv": num("eTIV"),
        "nwbv": num("nWBV"),
        "asf": num("ASF"),
    })


def convert_analyze(hdr: Path, dest: Path, axcodes=RAW_AXCODES) -> None:
    """Write an Analyze 7.5 pair as NIfTI: same voxel values and type, affine from ``axcodes``."""
    try:
        img = nib.AnalyzeImage.from_filename(str(hdr))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        raise ConversionError(f"{hdr}: unreadable Analyze image ({type(exc).__name__}: {exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ConversionError(f"{hdr}: expected a 3D volume, got shape {data.shape}")
    dtype = data.dtype.newbyteorder("=")
    save_nifti(data, raw_affine(data.shape, img.header.get_zooms()[:3], axcodes), dest, dtype=dtype)


def convert_oasis1(
    archives: list[str | Path],
    clinical_csv: str | Path,
    out_dir: str | Path,
    sources: list[str] | None = None,
) -> pd.DataFrame:
    """Write the BIDS dataset ``out_dir`` from OASIS-1 disc archives; return its participants table.

    Raises:
        ArchiveError: an archive is damaged (nothing is written).
        ConversionError: an archive holds no MR1 mpr-1 image, or the table is unreadable.
    """
    if not archives:
        raise ValueError("archives must name at least one OASIS-1 disc archive")
    clinical = read_clinical(clinical_csv)
    numbers: set[int] = set()
    with bids_dataset(out_dir) as tmp:
        scratch = tmp / ".analyze"
        for archive in archives:
            found = _convert_archive(Path(archive), tmp, scratch, numbers)
            if not found:
                raise ConversionError(f"{archive}: no OAS1_<nnnn>_MR1/RAW/..._mpr-1_anon.hdr/.img pair in it")
            log.info("%s: %d subjects", archive, found)
        shutil.rmtree(scratch, ignore_errors=True)
        table = _participants(numbers, clinical, clinical_csv)
        write_participants(table, tmp, PARTICIPANT_COLUMNS)
        write_description(
            tmp,
            "OASIS-1 cross-sectional (converted to BIDS by mrixai)",
            "OASIS Data Use Agreement (oasis-brains.org)",
            "Marcus et al. (2007), Open Access Series of Imaging Studies (OASIS): cross-sectional MRI data "
            "in young, middle aged, nondemented, and demented older adults. J Cogn Neurosci 19:1498-1507",
            list(sources or []),
        )
    log.info("wrote %s: %d subjects (%s)", out_dir, len(table), table["diagnosis"].value_counts(dropna=False).to_dict())
    return table


def _convert_archive(archive: Path, root: Path, scratch: Path, numbers: set[int]) -> int:
    pending: dict[int, set[str]] = {}
    count = 0

    def handle(name: str, fileobj) -> None:
        nonlocal count
        match = OASIS_RAW.search(name)
        if not match:
            return
        number = int(match["number"])
        if number in numbers:
            log.warning("%s: OAS1_%04d_MR1 mpr-1 seen again (%s); ignored", archive, number, name)
            return
        base = scratch / f"OAS1_{number:04d}_MR1_mpr-1_anon"
        copy_member(fileobj, base.with_suffix(f".{match['ext']}"))
        pending.setdefault(number, set()).add(match["ext"])
        if pending[number] == {"hdr", "img"}:
            label = subject_label(number)
            convert_analyze(base.with_suffix(".hdr"), root / f"sub-{label}" / "anat" / f"sub-{label}_T1w.nii.gz")
            for ext in ("hdr", "img"):
                base.with_suffix(f".{ext}").unlink()
            del pending[number]
            numbers.add(number)
            count += 1

    read_archive(archive, handle)
    for number, exts in sorted(pending.items()):
        log.warning("%s: OAS1_%04d_MR1 mpr-1 has only its .%s file; subject left out", archive, number, *exts)
    return count


def _participants(numbers: set[int], clinical: pd.DataFrame, clinical_csv: str | Path) -> pd.DataFrame:
    table = clinical.reindex(sorted(numbers))
    table.insert(0, "participant_id", [f"sub-{subject_label(n)}" for n in table.index])
    dropped = sorted(set(clinical.index) - numbers)
    no_row = sorted(numbers - set(clinical.index))
    log.info("%s: %d MR1 rows; %d without an image dropped", clinical_csv, len(clinical), len(dropped))
    if no_row:
        log.warning("%d subjects have an image but no row in %s (kept with n/a): %s", len(no_row), clinical_csv, no_row)
    return table.reset_index(drop=True)
