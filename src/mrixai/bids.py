"""Index a BIDS dataset: which structural image belongs to which subject (and session).

:func:`index_bids` runs while Snakemake builds its DAG, so it only lists directories and reads
``participants.tsv``; it never opens an image. What it cannot accept at the level of the whole
dataset (no ``participants.tsv``, a requested subject that does not exist) raises
:class:`BidsError` at once. What concerns one subject (no image of the requested contrast, an
unsafe or duplicated ID, a folder without a ``participants.tsv`` row) is collected as a
:class:`Problem`, so that :func:`mrixai.validate.validate_dataset` can list every one of them
together, or skip those subjects when the configuration asks for it.

Units
-----
The pipeline processes *units*: one structural image each. Without sessions a unit is a
subject and its ID is the subject label (``sub-01`` -> ``01``). With sessions
(``sub-01/ses-2/anat/...``) every session is its own unit, ``01_ses-2``, so ``sub-{unit}``
reads ``sub-01_ses-2`` as in BIDS file names. Labels must be letters and digits only (as BIDS
requires), which keeps unit IDs safe in file names and Snakemake wildcards; use
:data:`UNIT_ID_PATTERN` as the wildcard constraint.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

#: Regular expression of a BIDS label (subject or session): letters and digits only.
LABEL_PATTERN = r"[A-Za-z0-9]+"
#: Regular expression of a unit ID: ``<subject>`` or ``<subject>_ses-<session>``.
UNIT_ID_PATTERN = rf"{LABEL_PATTERN}(?:_ses-{LABEL_PATTERN})?"

_LABEL_RE = re.compile(rf"^{LABEL_PATTERN}$")
_NIFTI_SUFFIXES = (".nii.gz", ".nii")


class BidsError(ValueError):
    """The dataset as a whole cannot be used (e.g. no ``participants.tsv``); names the path."""


@dataclass(frozen=True)
class ImageRecord:
    """One structural image to process.

    Attributes:
        subject: the unit ID, ``<label>`` or ``<label>_ses-<session>`` (see the module docstring).
        participant_id: the ``participants.tsv`` key, with its ``sub-`` prefix.
        session: the session label without ``ses-``, or None for a dataset without sessions.
        path: the image file.
    """

    subject: str
    participant_id: str
    session: str | None
    path: Path

    @property
    def unit(self) -> str:
        """Same as :attr:`subject`: the ID used in output file names (``sub-{unit}``)."""
        return self.subject


@dataclass
class Problem:
    """Something wrong with one unit, found while indexing or validating.

    Attributes:
        unit: the unit ID (or, for an unusable ID, the ID as written in the dataset).
        path: the file or folder concerned.
        message: what is wrong, in words; it starts with the path.
        severity: ``"error"`` (the unit cannot be used) or ``"warning"`` (used, but worth a look).
    """

    unit: str
    path: str
    message: str
    severity: str = "error"

    def __post_init__(self) -> None:
        if self.severity not in ("error", "warning"):
            raise ValueError(f"severity must be 'error' or 'warning', got {self.severity!r}")


@dataclass
class BidsIndex:
    """Result of :func:`index_bids`.

    Attributes:
        bids_dir: the dataset root.
        contrast: the structural contrast indexed (``T1w`` or ``T2w``).
        participants: ``participants.tsv`` as read (``n/a`` and empty cells are missing values),
            restricted to the requested participants when ``participant_label`` was given;
            ``participant_id`` keeps its ``sub-`` prefix.
        images: unit ID -> :class:`ImageRecord`, sorted by unit ID; includes units that have
            problems, so that their files can still be checked and reported.
        problems: subject-level problems, errors and warnings.
    """

    bids_dir: Path
    contrast: str
    participants: pd.DataFrame
    images: dict[str, ImageRecord] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        """Problems that make a unit unusable."""
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        """Problems worth reporting that do not stop a unit."""
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def units(self) -> list[str]:
        """IDs of every unit with an image, sorted."""
        return sorted(self.images)


def is_safe_label(label: str) -> bool:
    """True if ``label`` is a BIDS label (letters and digits only), hence safe in any file name."""
    return bool(_LABEL_RE.match(label))


def _unsafe_reason(label: str) -> str:
    """Say in words why ``label`` is not a usable BIDS label."""
    if label == "":
        return "the label is empty"
    if "/" in label or "\\" in label:
        return "it contains a path separator"
    if ".." in label:
        return "it contains '..'"
    if any(ch.isspace() for ch in label):
        return "it contains whitespace"
    return "BIDS labels may hold only letters and digits"


def read_participants(bids_dir: str | Path) -> pd.DataFrame:
    """Read ``participants.tsv`` of ``bids_dir``; raise :class:`BidsError` if missing, empty or malformed.

    ``n/a`` and empty cells become missing values; other columns get pandas' type inference, so
    ``age`` is numeric. ``participant_id`` is read as text and keeps its ``sub-`` prefix.
    """
    path = Path(bids_dir) / "participants.tsv"
    if not path.is_file():
        raise BidsError(
            f"{path}: participants.tsv not found; a BIDS dataset needs one, with a participant_id "
            "column listing every sub-<label> folder"
        )
    if path.stat().st_size == 0:
        raise BidsError(
            f"{path}: participants.tsv is empty (0 bytes); it needs a header line "
            "with a participant_id column and one row per subject"
        )
    try:
        table = pd.read_csv(
            path,
            sep="\t",
            dtype={"participant_id": str},
            na_values=["n/a", ""],
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise BidsError(
            f"{path}: participants.tsv cannot be parsed as tab-separated text: {exc}"
        ) from exc
    table.columns = [str(c).strip() for c in table.columns]
    if "participant_id" not in table.columns:
        hint = ""
        if len(table.columns) == 1 and ("," in table.columns[0] or ";" in table.columns[0]):
            hint = "; it looks comma- or semicolon-separated, but BIDS needs tabs"
        raise BidsError(
            f"{path}: participants.tsv has no participant_id column "
            f"(columns found: {', '.join(map(repr, table.columns))}){hint}"
        )
    if table.empty:
        raise BidsError(
            f"{path}: participants.tsv has a header but no rows; list one row per subject"
        )
    return table


def index_bids(
    bids_dir: str | Path, contrast: str, participant_label: Sequence[str] = ()
) -> BidsIndex:
    """Find the ``contrast`` image of every subject (and session) of a BIDS dataset.

    Looks for ``sub-<label>/[ses-<session>/]anat/sub-<label>[_ses-<session>][_<key>-<value>...]
    _<contrast>.nii[.gz]``. Only lists folders and reads ``participants.tsv``; images are not opened.

    Args:
        bids_dir: the dataset root.
        contrast: image suffix to use, e.g. ``T1w`` or ``T2w``.
        participant_label: subject labels to keep (with or without ``sub-``); empty keeps all.

    Returns:
        A :class:`BidsIndex`. Subject-level problems are in ``.problems``: no image of the
        contrast, a ``participants.tsv`` row without a folder or a folder without a row, unsafe
        IDs (path separators, ``..``, whitespace, anything but letters and digits), IDs listed
        twice or differing only in letter case (errors); several images of the contrast for one
        unit (a warning: the first in sorted order is used).

    Raises:
        BidsError: ``bids_dir`` is not a folder; ``participants.tsv`` is missing, empty or lacks
            ``participant_id``; a requested label is unsafe or names no subject; no subject is left.
        ValueError: ``contrast`` is not a plain suffix.
    """
    if not isinstance(contrast, str) or not is_safe_label(contrast):
        raise ValueError(f"contrast must be a BIDS suffix such as 'T1w' or 'T2w', got {contrast!r}")
    if isinstance(participant_label, str):
        participant_label = [participant_label]
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise BidsError(f"{bids_dir}: BIDS directory not found (bids_dir in the configuration)")
    tsv_path = bids_dir / "participants.tsv"
    table = read_participants(bids_dir)
    problems: list[Problem] = []

    # participants.tsv rows: id -> list of line numbers (header is line 1)
    rows: dict[str, list[int]] = {}
    for i, pid in enumerate(table["participant_id"]):
        line = i + 2
        if not isinstance(pid, str) or pid.strip() == "":
            problems.append(
                Problem(
                    f"<row {line}>",
                    str(tsv_path),
                    f"{tsv_path}: line {line} has an empty participant_id",
                )
            )
            continue
        if not pid.startswith("sub-"):
            problems.append(
                Problem(
                    pid,
                    str(tsv_path),
                    (
                        f"{tsv_path}: participant_id {pid!r} on line {line} lacks the 'sub-' prefix; "
                        f"BIDS writes it as 'sub-{pid}'"
                    ),
                    severity="warning",
                )
            )
            table.loc[table.index[i], "participant_id"] = f"sub-{pid}"
            pid = f"sub-{pid}"
        rows.setdefault(pid[len("sub-") :], []).append(line)

    folders = sorted(
        entry.name[len("sub-") :]
        for entry in os.scandir(bids_dir)
        if entry.name.startswith("sub-") and entry.is_dir()
    )
    if not folders:
        raise BidsError(f"{bids_dir}: no sub-<label> folders found; is this a BIDS dataset?")

    labels = sorted(set(folders) | set(rows))
    if participant_label:
        wanted = []
        for raw in participant_label:
            if not isinstance(raw, str):
                raise BidsError(
                    f"participant_label {raw!r} must be text; quote it in YAML ('01', not 01, "
                    "which YAML reads as the number 1)"
                )
            lab = raw[len("sub-") :] if raw.startswith("sub-") else raw
            if not is_safe_label(lab):
                raise BidsError(
                    f"participant_label {raw!r} is not a valid subject label: "
                    f"{_unsafe_reason(lab)}"
                )
            wanted.append(lab)
        missing = sorted(set(wanted) - set(labels))
        if missing:
            raise BidsError(
                f"{bids_dir}: participant_label names subjects that are neither a sub-<label> "
                f"folder nor a participants.tsv row: {', '.join(missing)}"
            )
        labels = sorted(set(wanted))
        keep = table["participant_id"].isin([f"sub-{lab}" for lab in labels])
        table = table[keep].reset_index(drop=True)

    by_case: dict[str, list[str]] = {}
    for lab in labels:
        by_case.setdefault(lab.lower(), []).append(lab)

    images: dict[str, ImageRecord] = {}
    for lab in labels:
        pid = f"sub-{lab}"
        folder = bids_dir / pid
        if not is_safe_label(lab):
            where = folder if lab in folders else tsv_path
            problems.append(
                Problem(
                    lab,
                    str(where),
                    (
                        f"{where}: subject ID {pid!r} is unusable: {_unsafe_reason(lab)}; rename it "
                        "(BIDS labels hold only letters and digits)"
                    ),
                )
            )
            continue
        if len(rows.get(lab, [])) > 1:
            problems.append(
                Problem(
                    lab,
                    str(tsv_path),
                    (
                        f"{tsv_path}: {pid} is listed {len(rows[lab])} times (lines "
                        f"{', '.join(map(str, rows[lab]))}); each participant needs exactly one row"
                    ),
                )
            )
        if len(by_case[lab.lower()]) > 1:
            others = [f"sub-{o}" for o in by_case[lab.lower()] if o != lab]
            problems.append(
                Problem(
                    lab,
                    str(folder if lab in folders else tsv_path),
                    (
                        f"{folder if lab in folders else tsv_path}: subject ID {pid!r} differs from "
                        f"{', '.join(others)} only in letter case; their outputs would collide on "
                        "case-insensitive file systems (macOS, Windows)"
                    ),
                )
            )
        if lab not in folders:
            problems.append(
                Problem(
                    lab,
                    str(folder),
                    (
                        f"{folder}: folder not found, but {tsv_path} lists {pid} "
                        f"(line {rows[lab][0]})"
                    ),
                )
            )
            continue
        if lab not in rows:
            problems.append(
                Problem(
                    lab,
                    str(folder),
                    (
                        f"{folder}: subject has no row in {tsv_path}; add one (its age, sex and "
                        "group come from there)"
                    ),
                )
            )
        _index_subject(folder, lab, contrast, images, problems)

    if not images and not problems:
        raise BidsError(f"{bids_dir}: no subject left to process")
    problems.sort(key=lambda p: (p.unit, p.severity != "error", p.path))
    log.debug("indexed %s: %d units, %d problems", bids_dir, len(images), len(problems))
    return BidsIndex(
        bids_dir=bids_dir,
        contrast=contrast,
        participants=table,
        images=dict(sorted(images.items())),
        problems=problems,
    )


def _list_images(anat: Path, prefix: str, contrast: str) -> tuple[list[Path], list[str]]:
    """Images of ``contrast`` in ``anat`` named ``<prefix>[_key-value...]_<contrast>.nii[.gz]``.

    Returns the matching paths (sorted) and the names of other ``*_<contrast>.nii[.gz]`` files
    there whose name does not start with ``prefix`` (misnamed files, reported to the user).
    """
    if not anat.is_dir():
        return [], []
    pattern = re.compile(
        rf"^{re.escape(prefix)}(?:_[A-Za-z0-9]+-[A-Za-z0-9]+)*_{re.escape(contrast)}\.nii(?:\.gz)?$"
    )
    found, misnamed = [], []
    for name in sorted(os.listdir(anat)):
        if not name.endswith(tuple(f"_{contrast}{s}" for s in _NIFTI_SUFFIXES)):
            continue
        (found if pattern.match(name) else misnamed).append(name)
    return [anat / n for n in found], misnamed


def _index_subject(
    folder: Path, lab: str, contrast: str, images: dict[str, ImageRecord], problems: list[Problem]
) -> None:
    """Add the units of one subject folder to ``images``; record its problems."""
    pid = f"sub-{lab}"
    sessions = sorted(
        e.name[len("ses-") :]
        for e in os.scandir(folder)
        if e.name.startswith("ses-") and e.is_dir()
    )
    if not sessions:
        _add_unit(
            folder / "anat", lab, pid, None, contrast, images, problems, missing_is_error=True
        )
        return
    stray, _ = _list_images(folder / "anat", pid, contrast)
    if stray:
        problems.append(
            Problem(
                lab,
                str(folder / "anat"),
                (
                    f"{folder / 'anat'}: {len(stray)} {contrast} image(s) outside the session folders are "
                    f"ignored, because {pid} has sessions ({', '.join('ses-' + s for s in sessions)})"
                ),
                severity="warning",
            )
        )
    safe = [s for s in sessions if is_safe_label(s)]
    for ses in sessions:
        if ses not in safe:
            unit = f"{lab}_ses-{ses}"
            problems.append(
                Problem(
                    unit,
                    str(folder / f"ses-{ses}"),
                    (
                        f"{folder / f'ses-{ses}'}: session ID 'ses-{ses}' is unusable: "
                        f"{_unsafe_reason(ses)}; rename it (BIDS labels hold only letters and digits)"
                    ),
                )
            )
    has_any = any(
        _list_images(folder / f"ses-{s}" / "anat", f"{pid}_ses-{s}", contrast)[0] for s in safe
    )
    for ses in safe:
        _add_unit(
            folder / f"ses-{ses}" / "anat",
            lab,
            pid,
            ses,
            contrast,
            images,
            problems,
            missing_is_error=not has_any,
        )


def _add_unit(
    anat: Path,
    lab: str,
    pid: str,
    ses: str | None,
    contrast: str,
    images: dict[str, ImageRecord],
    problems: list[Problem],
    missing_is_error: bool,
) -> None:
    """Add the unit whose images lie in ``anat``; record a missing contrast or extra runs."""
    unit = lab if ses is None else f"{lab}_ses-{ses}"
    prefix = pid if ses is None else f"{pid}_ses-{ses}"
    found, misnamed = _list_images(anat, prefix, contrast)
    if not found:
        if not anat.is_dir():
            what = f"{anat}: folder not found, so {prefix} has no {contrast} image"
        else:
            what = (
                f"{anat}: no {contrast} image "
                f"(expected {prefix}[_<key>-<value>...]_{contrast}.nii[.gz])"
            )
        if misnamed:
            what += f"; found {', '.join(misnamed)}, whose name does not start with {prefix}_"
        if not missing_is_error:
            what += " (this session is left out; other sessions of the subject have one)"
        problems.append(
            Problem(unit, str(anat), what, severity="error" if missing_is_error else "warning")
        )
        return
    if len(found) > 1:
        problems.append(
            Problem(
                unit,
                str(anat),
                (
                    f"{anat}: {len(found)} {contrast} images for {prefix} "
                    f"({', '.join(p.name for p in found)}); using the first, {found[0].name}"
                ),
                severity="warning",
            )
        )
    images[unit] = ImageRecord(subject=unit, participant_id=pid, session=ses, path=found[0])
