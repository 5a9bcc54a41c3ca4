"""Convert the public IXI archives (brain-development.org) into a BIDS dataset.

``IXI-T1.tar`` and ``IXI-T2.tar`` hold one NIfTI file per subject, named
``IXI<number>-<site>-<scan>-<contrast>.nii.gz`` (e.g. ``IXI002-Guys-0828-T1.nii.gz``; sites
Guys, HH, IOP). Each becomes ``sub-IXI<number>/anat/sub-IXI<number>_<T1w|T2w>.nii.gz``, byte for
byte (so voxels, affine and header are the archive's). ``IXI.xls`` (or a CSV/TSV export of it)
gives ``IXI_ID``, ``SEX_ID`` (1 male, 2 female) and ``AGE``; ``participants.tsv`` gets
``participant_id``, ``age``, ``sex`` (M/F), ``site`` and ``ixi_id`` (the image's own name, as in
the shared IXI sample). Spreadsheet rows without an image are dropped and counted; subjects
with an image but no age (or no row at all) are kept with ``n/a``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from mrixai.datasets.archive import ConversionError, copy_member, read_archive
from mrixai.datasets.bidsout import bids_dataset, write_description, write_participants

log = logging.getLogger(__name__)

#: IXI image file names: number, site, scan number, contrast code.
IXI_IMAGE = re.compile(r"^IXI(?P<number>\d+)-(?P<site>[A-Za-z]+)-(?P<scan>\d+)-(?P<code>[A-Za-z0-9-]+)\.nii\.gz$")
#: IXI contrast codes of the supported archives, by BIDS suffix.
IXI_CODES = {"T1w": "T1", "T2w": "T2"}
SEX_CODES = {1: "M", 2: "F"}
PARTICIPANT_COLUMNS = {
    "age": "age at scan (years), from IXI.xls AGE",
    "sex": "M or F, from IXI.xls SEX_ID (1 male, 2 female)",
    "site": "acquisition site: Guys (Guy's Hospital), HH (Hammersmith Hospital), IOP (Institute of Psychiatry)",
    "ixi_id": "the IXI image name: IXI<number>-<site>-<scan>",
}


def subject_label(number: str | int) -> str:
    """BIDS subject label of an IXI number: ``2`` -> ``IXI002`` (letters and digits only)."""
    return f"IXI{int(number):03d}"


def read_demographics(path: str | Path) -> pd.DataFrame:
    """IXI_ID, SEX_ID and AGE of ``IXI.xls`` (read with xlrd) or of a CSV/TSV export of it.

    Returns one row per IXI number (int index ``ixi_number``) with columns ``age`` and ``sex``;
    where a number appears more than once, the first row that has an age is kept.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".xls":
            table = pd.read_excel(path, sheet_name=0, engine="xlrd")
        elif path.suffix.lower() == ".xlsx":
            table = pd.read_excel(path, sheet_name=0)
        else:
            table = pd.read_csv(path, sep=None, engine="python")
    except ConversionError:
        raise
    except Exception as exc:  # xlrd, csv and zip errors have no common base
        raise ConversionError(f"{path}: cannot read the IXI demographics ({type(exc).__name__}: {exc})") from exc
    table.columns = [str(c).strip().upper() for c in table.columns]
    missing = [c for c in ("IXI_ID", "SEX_ID", "AGE") if c not in table.columns]
    if missing:
        raise ConversionError(f"{path}: IXI demographics lack the columns {missing} (found {list(table.columns)})")
    ids = pd.to_numeric(table["IXI_ID"], errors="coerce")
    table = table.loc[ids.notna()].assign(ixi_number=ids[ids.notna()].astype(int))
    age = pd.to_numeric(table["AGE"], errors="coerce")
    sex = pd.to_numeric(table["SEX_ID"], errors="coerce").map(SEX_CODES)
    out = pd.DataFrame({"ixi_number": table["ixi_number"], "age": age.round(2), "sex": sex})
    out = out.sort_values("age", na_position="last", kind="stable")
    duplicated = int(out["ixi_number"].duplicated().sum())
    if duplicated:
        log.warning("%s: %d duplicated IXI_ID rows; the first row with an age is kept", path, duplicated)
    out = out.drop_duplicates("ixi_number", keep="first").set_index("ixi_number").sort_index()
    return out


def convert_ixi(
    archives: dict[str, str | Path],
    demographics: str | Path,
    out_dir: str | Path,
    sources: list[str] | None = None,
) -> pd.DataFrame:
    """Write the BIDS dataset ``out_dir`` from IXI archives; return its participants table.

    Args:
        archives: tar archive per BIDS contrast, e.g. ``{"T1w": "IXI-T1.tar", "T2w": "IXI-T2.tar"}``.
        demographics: ``IXI.xls`` or a CSV/TSV export of it.
        out_dir: the dataset root to create; it appears only when the conversion is complete.
        sources: URLs recorded in ``dataset_description.json``.

    Raises:
        ArchiveError: an archive is damaged (nothing is written).
        ConversionError: no image in an archive, or unreadable demographics.
    """
    unknown = sorted(set(archives) - set(IXI_CODES))
    if not archives or unknown:
        raise ValueError(f"archives must be keyed by contrasts among {sorted(IXI_CODES)}, got {sorted(archives)}")
    demo = read_demographics(demographics)
    images: dict[str, dict] = {}
    with bids_dataset(out_dir) as tmp:
        for contrast, archive in archives.items():
            found = _extract_contrast(Path(archive), contrast, tmp, images)
            if not found:
                raise ConversionError(
                    f"{archive}: no IXI {IXI_CODES[contrast]} image (IXI<n>-<site>-<scan>-{IXI_CODES[contrast]}.nii.gz) in it"
                )
            log.info("%s: %d %s images", archive, found, contrast)
        table = _participants(images, demo, demographics)
        write_participants(table, tmp, PARTICIPANT_COLUMNS)
        write_description(
            tmp,
            "IXI (converted to BIDS by mrixai)",
            "CC BY-SA 3.0 (IXI dataset, brain-development.org/ixi-dataset)",
            "IXI dataset, https://brain-development.org/ixi-dataset/",
            list(sources or []),
        )
    log.info("wrote %s: %d subjects", out_dir, len(table))
    return table


def _extract_contrast(archive: Path, contrast: str, root: Path, images: dict[str, dict]) -> int:
    code = IXI_CODES[contrast]
    count = 0

    def handle(name: str, fileobj) -> None:
        nonlocal count
        match = IXI_IMAGE.match(Path(name).name)
        if not match or match["code"] != code:
            return
        label = subject_label(match["number"])
        dest = root / f"sub-{label}" / "anat" / f"sub-{label}_{contrast}.nii.gz"
        if dest.exists():
            log.warning("%s: a second %s image of %s (%s) is ignored", archive, contrast, label, name)
            return
        copy_member(fileobj, dest)
        count += 1
        images.setdefault(
            label,
            {"number": int(match["number"]), "site": match["site"],
             "ixi_id": f"IXI{match['number']}-{match['site']}-{match['scan']}"},
        )

    read_archive(archive, handle)
    return count


def _participants(images: dict[str, dict], demo: pd.DataFrame, demographics: str | Path) -> pd.DataFrame:
    rows = []
    for label, info in sorted(images.items()):
        row = demo.loc[info["number"]] if info["number"] in demo.index else None
        rows.append({
            "participant_id": f"sub-{label}",
            "age": None if row is None else row["age"],
            "sex": None if row is None else row["sex"],
            "site": info["site"],
            "ixi_id": info["ixi_id"],
        })
    table = pd.DataFrame(rows, columns=["participant_id", *PARTICIPANT_COLUMNS])
    numbers = {info["number"] for info in images.values()}
    dropped = sorted(set(demo.index) - numbers)
    no_row = sorted(info["number"] for info in images.values() if info["number"] not in demo.index)
    log.info(
        "%s: %d rows; %d without an image dropped%s", demographics, len(demo), len(dropped),
        f" (IXI_ID {', '.join(map(str, dropped[:20]))}{' ...' if len(dropped) > 20 else ''})" if dropped else "",
    )
    if no_row:
        log.warning("%d subjects have images but no demographics row (kept, age and sex n/a): %s", len(no_row), no_row)
    no_age = int(table["age"].isna().sum())
    if no_age:
        log.info("%d subjects have no age (kept, age n/a)", no_age)
    return table
