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

Input selection
---------------
``participant_label`` keeps only the named subjects and ``exclude_participant_label`` drops
named subjects (either naming an unknown subject is an error). ``filters`` choose the structural
image by its BIDS entities (``ses``, ``acq``, ``run``, ``rec``; None = any), as fMRIPrep's
``--bids-filter-file`` does: a file matches when it carries the entity with that value. When
several images of one unit still match, indexing stops with a :class:`BidsError` naming the
unit, every candidate and the filter that would decide; it never picks one silently.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
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
#: BIDS entities that ``filters`` (config ``bids_filters``) may constrain.
FILTER_ENTITIES = ("ses", "acq", "run", "rec")


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


def _check_labels(raw_labels: Sequence[object], key: str) -> list[str]:
    """Subject labels from a config list, ``sub-`` removed; BidsError naming ``key`` if unusable."""
    labels = []
    for raw in raw_labels:
        if not isinstance(raw, str):
            raise BidsError(
                f"{key} {raw!r} must be text; quote it in YAML ('01', not 01, "
                "which YAML reads as the number 1)"
            )
        lab = raw[len("sub-") :] if raw.startswith("sub-") else raw
        if not is_safe_label(lab):
            raise BidsError(f"{key} {raw!r} is not a valid subject label: {_unsafe_reason(lab)}")
        labels.append(lab)
    return labels


def check_filters(filters: Mapping[str, object] | None) -> dict[str, str]:
    """The set entity filters as text (``run`` as a number without leading zeros).

    Raises ValueError naming ``bids_filters.<key>`` for an unknown entity, or a value that is not
    a BIDS label (letters and digits) or, for ``run``, not a non-negative integer.
    """
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError(f"bids_filters must be a mapping of entity to value, got {filters!r}")
    out = {}
    for key, value in filters.items():
        if key not in FILTER_ENTITIES:
            raise ValueError(
                f"bids_filters.{key}: unknown entity; use {', '.join(FILTER_ENTITIES)}"
            )
        if value is None:
            continue
        if key == "run":
            if isinstance(value, bool) or not re.fullmatch(r"[0-9]+", str(value)):
                raise ValueError(
                    f"bids_filters.run must be a non-negative integer (run-<index>), got {value!r}"
                )
            out[key] = str(int(value))
        else:
            text = str(value)
            text = text[len(key) + 1 :] if text.startswith(f"{key}-") else text
            if isinstance(value, bool) or not is_safe_label(text):
                raise ValueError(
                    f"bids_filters.{key} must be a BIDS label (letters and digits), got {value!r}"
                )
            out[key] = text
    return out


def entities(name: str) -> dict[str, str]:
    """The ``key-value`` entities of a BIDS file name, e.g. ``sub-01_run-2_T1w.nii.gz``."""
    stem = name.split(".", 1)[0]
    return dict(part.split("-", 1) for part in stem.split("_") if "-" in part)


def _matches(name: str, filters: Mapping[str, str]) -> bool:
    """True if the file name carries every filtered entity with the filtered value."""
    ents = entities(name)
    for key, value in filters.items():
        if key == "ses":
            continue  # sessions are chosen by folder
        have = ents.get(key)
        if have is None:
            return False
        if key == "run":
            if not have.isdigit() or int(have) != int(value):
                return False
        elif have != value:
            return False
    return True


def _describe_filters(filters: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in filters.items()) or "none"


def _ambiguity(
    prefix: str, contrast: str, found: Sequence[Path], filters: Mapping[str, str]
) -> str:
    """Say which images of one unit compete and which filter would choose between them."""
    ents = [entities(p.name) for p in found]
    keys = sorted({k for e in ents for k in e} - {"sub", "ses"})
    differ = [k for k in keys if len({e.get(k) for e in ents}) > 1]
    deciding = [k for k in differ if k in FILTER_ENTITIES]
    if deciding:
        hint = "; set " + " or ".join(
            f"bids_filters.{k} (values here: "
            f"{', '.join(sorted({e[k] for e in ents if k in e}))})"
            for k in deciding
        )
        if any(any(k not in e for k in deciding) for e in ents):
            hint += " or remove the files that lack that entity"
    else:
        hint = (
            f"; they differ in {', '.join(differ) or 'nothing but the extension'}, which no "
            "bids_filters key selects: remove or move the images not to use"
        )
    return (
        f"{prefix}: {len(found)} {contrast} images match (bids_filters: "
        f"{_describe_filters(filters)}): {', '.join(str(p) for p in found)}{hint}"
    )


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
    bids_dir: str | Path,
    contrast: str,
    participant_label: Sequence[str] = (),
    exclude_participant_label: Sequence[str] = (),
    filters: Mapping[str, object] | None = None,
) -> BidsIndex:
    """Find the ``contrast`` image of every subject (and session) of a BIDS dataset.

    Looks for ``sub-<label>/[ses-<session>/]anat/sub-<label>[_ses-<session>][_<key>-<value>...]
    _<contrast>.nii[.gz]``. Only lists folders and reads ``participants.tsv``; images are not opened.

    Args:
        bids_dir: the dataset root.
        contrast: image suffix to use, e.g. ``T1w`` or ``T2w``.
        participant_label: subject labels to keep (with or without ``sub-``); empty keeps all.
        exclude_participant_label: subject labels to leave out (with or without ``sub-``).
        filters: entity -> value for ``ses``, ``acq``, ``run``, ``rec`` (None or missing = any);
            ``run`` compares as a number (``run: 1`` matches ``run-01``).

    Returns:
        A :class:`BidsIndex`. Subject-level problems are in ``.problems``: no image of the
        contrast (or none matching ``filters``), a ``participants.tsv`` row without a folder or a
        folder without a row, unsafe IDs (path separators, ``..``, whitespace, anything but
        letters and digits), IDs listed twice or differing only in letter case (errors).

    Raises:
        BidsError: ``bids_dir`` is not a folder; ``participants.tsv`` is missing, empty or lacks
            ``participant_id``; a requested or excluded label is unsafe or names no subject; no
            subject is left; several images of one unit match ``filters`` (the message names the
            unit, every candidate, and which filter would decide).
        ValueError: ``contrast`` is not a plain suffix; ``filters`` has an unknown key or a value
            that is not a BIDS label.
    """
    if not isinstance(contrast, str) or not is_safe_label(contrast):
        raise ValueError(f"contrast must be a BIDS suffix such as 'T1w' or 'T2w', got {contrast!r}")
    if isinstance(participant_label, str):
        participant_label = [participant_label]
    if isinstance(exclude_participant_label, str):
        exclude_participant_label = [exclude_participant_label]
    filters = check_filters(filters)
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise BidsError(f"{bids_dir}: BIDS directory not found (bids_dir in the configuration)")
    tsv_path = bids_dir / "participants.tsv"
    table = read_participants(bids_dir)
    problems: list[Problem] = []
    ambiguous: list[str] = []

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
        wanted = _check_labels(participant_label, "participant_label")
        missing = sorted(set(wanted) - set(labels))
        if missing:
            raise BidsError(
                f"{bids_dir}: participant_label names subjects that are neither a sub-<label> "
                f"folder nor a participants.tsv row: {', '.join(missing)}"
            )
        labels = sorted(set(wanted))
    if exclude_participant_label:
        unwanted = _check_labels(exclude_participant_label, "exclude_participant_label")
        missing = sorted(set(unwanted) - set(folders) - set(rows))
        if missing:
            raise BidsError(
                f"{bids_dir}: exclude_participant_label names subjects that are neither a "
                f"sub-<label> folder nor a participants.tsv row: {', '.join(missing)}"
            )
        labels = [lab for lab in labels if lab not in set(unwanted)]
        if not labels:
            raise BidsError(f"{bids_dir}: exclude_participant_label leaves no subject to process")
        log.info(
            "exclude_participant_label leaves out %d subject(s): %s",
            len(set(unwanted)),
            ", ".join(sorted(set(unwanted))),
        )
    if participant_label or exclude_participant_label:
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
        _index_subject(folder, lab, contrast, images, problems, filters, ambiguous)

    if ambiguous:
        raise BidsError(
            f"{bids_dir}: several {contrast} images match for {len(ambiguous)} unit(s), and "
            "mrixai does not pick one silently:\n  " + "\n  ".join(ambiguous)
        )
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
    folder: Path,
    lab: str,
    contrast: str,
    images: dict[str, ImageRecord],
    problems: list[Problem],
    filters: Mapping[str, str] | None = None,
    ambiguous: list[str] | None = None,
) -> None:
    """Add the units of one subject folder to ``images``; record its problems and ambiguities."""
    filters = filters or {}
    ambiguous = [] if ambiguous is None else ambiguous
    pid = f"sub-{lab}"
    sessions = sorted(
        e.name[len("ses-") :]
        for e in os.scandir(folder)
        if e.name.startswith("ses-") and e.is_dir()
    )
    args = (contrast, images, problems, filters, ambiguous)
    if "ses" in filters:
        ses = filters["ses"]
        if ses not in sessions:
            found = ", ".join(f"ses-{s}" for s in sessions) or "none"
            problems.append(
                Problem(
                    lab,
                    str(folder),
                    (f"{folder}: no session ses-{ses} (bids_filters.ses); sessions found: {found}"),
                )
            )
            return
        _add_unit(folder / f"ses-{ses}" / "anat", lab, pid, ses, *args, missing_is_error=True)
        return
    if not sessions:
        _add_unit(folder / "anat", lab, pid, None, *args, missing_is_error=True)
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
        _filtered(folder / f"ses-{s}" / "anat", f"{pid}_ses-{s}", contrast, filters) for s in safe
    )
    for ses in safe:
        _add_unit(
            folder / f"ses-{ses}" / "anat", lab, pid, ses, *args, missing_is_error=not has_any
        )


def _filtered(anat: Path, prefix: str, contrast: str, filters: Mapping[str, str]) -> list[Path]:
    """Images of ``contrast`` in ``anat`` that match ``filters``."""
    return [p for p in _list_images(anat, prefix, contrast)[0] if _matches(p.name, filters)]


def _add_unit(
    anat: Path,
    lab: str,
    pid: str,
    ses: str | None,
    contrast: str,
    images: dict[str, ImageRecord],
    problems: list[Problem],
    filters: Mapping[str, str],
    ambiguous: list[str],
    missing_is_error: bool,
) -> None:
    """Add the unit whose images lie in ``anat``; record a missing contrast or an ambiguity."""
    unit = lab if ses is None else f"{lab}_ses-{ses}"
    prefix = pid if ses is None else f"{pid}_ses-{ses}"
    candidates, misnamed = _list_images(anat, prefix, contrast)
    found = [p for p in candidates if _matches(p.name, filters)]
    if candidates and not found:
        problems.append(
            Problem(
                unit,
                str(anat),
                (
                    f"{anat}: no {contrast} image of {prefix} matches bids_filters "
                    f"{_describe_filters(filters)}; found {', '.join(p.name for p in candidates)}"
                ),
                severity="error" if missing_is_error else "warning",
            )
        )
        return
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
        ambiguous.append(_ambiguity(prefix, contrast, found, filters))
        return
    images[unit] = ImageRecord(subject=unit, participant_id=pid, session=ses, path=found[0])
