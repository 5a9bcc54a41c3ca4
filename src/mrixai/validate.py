"""Check input images before any heavy work, and say which file is wrong and why.

:func:`check_image` reads one NIfTI file once (decompressing a ``.nii.gz`` completely, so a
corrupt or truncated stream is noticed: nibabel alone reads only as far as the voxel data ends
and misses a damaged gzip trailer) and returns every problem it finds. :func:`validate_dataset`
checks a whole :class:`~mrixai.bids.BidsIndex` in one Snakemake job and either stops with every
problem listed (``on_error: fail``) or leaves bad units out and lists them (``on_error: skip``).
:func:`load_checked` is the first step of each preprocessing script: the same checks, then the
image, already in memory.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.bids import BidsIndex, ImageRecord
from mrixai.io import atomic_path

log = logging.getLogger(__name__)

#: Size in bytes of a NIfTI-1 header; no NIfTI file can be smaller.
NIFTI1_HEADER_SIZE = 348
NIFTI2_HEADER_SIZE = 540

REPORT_COLUMNS = ["unit", "participant_id", "path", "status", "reason"]
ACCEPTED_COLUMNS = ["unit", "participant_id", "session", "path"]


class InputValidationError(ValueError):
    """One or more input files cannot be used; the message names each file and its problem."""


def _check_parameters(resolution_mm: float, max_voxel_ratio: float) -> None:
    for name, value in (("resolution_mm", resolution_mm), ("max_voxel_ratio", max_voxel_ratio)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.number))
            or not np.isfinite(value)
            or value <= 0
        ):
            raise ValueError(f"{name} must be a positive number, got {value!r}")


def _read_bytes(path: Path) -> tuple[bytes | None, list[str]]:
    """Read the file completely, decompressing gzip; return (bytes, []) or (None, [problem])."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except PermissionError:
        return None, [f"{path}: cannot be read: permission denied"]
    except OSError as exc:
        return None, [f"{path}: cannot be read: {exc.strerror or exc}"]
    is_gzip = raw[:2] == b"\x1f\x8b"
    if not is_gzip and len(raw) < NIFTI1_HEADER_SIZE:
        # (a gzip file may be smaller than a header: its decompressed size is checked instead)
        return None, [
            f"{path}: is only {len(raw)} bytes, too small to be a NIfTI image (the "
            f"NIfTI-1 header alone is {NIFTI1_HEADER_SIZE} bytes): empty or truncated"
        ]
    if path.name.endswith(".gz") and not is_gzip:
        return None, [
            f"{path}: is not a gzip file although its name ends in .gz "
            "(corrupt, or an uncompressed file under the wrong name)"
        ]
    if not is_gzip:
        return raw, []
    if not path.name.endswith(".gz"):
        return None, [
            f"{path}: is gzip-compressed although its name does not end in .gz; "
            "rename it to .nii.gz"
        ]
    try:
        return gzip.decompress(raw), []
    except EOFError:
        return None, [
            f"{path}: is truncated: the gzip stream ends early after {len(raw)} "
            "bytes (incomplete download or copy?)"
        ]
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        return None, [f"{path}: is a corrupt gzip file ({exc}); download or copy it again"]


def _parse_header(path: Path, raw: bytes) -> tuple[nib.Nifti1Header | None, list[str]]:
    """Parse the NIfTI-1 or NIfTI-2 header at the start of ``raw`` without nibabel's fix-ups."""
    if len(raw) < NIFTI1_HEADER_SIZE:
        return None, [
            f"{path}: decompresses to only {len(raw)} bytes, less than a NIfTI-1 "
            f"header ({NIFTI1_HEADER_SIZE} bytes): truncated or not a NIfTI file"
        ]
    sizes = {int.from_bytes(raw[:4], "little"), int.from_bytes(raw[:4], "big")}
    if NIFTI1_HEADER_SIZE in sizes:
        klass = nib.Nifti1Header
    elif NIFTI2_HEADER_SIZE in sizes:
        if len(raw) < NIFTI2_HEADER_SIZE:
            return None, [f"{path}: is truncated inside its NIfTI-2 header ({len(raw)} bytes)"]
        klass = nib.Nifti2Header
    else:
        return None, [
            f"{path}: is not a NIfTI file (its first 4 bytes do not give the NIfTI "
            f"header size {NIFTI1_HEADER_SIZE} or {NIFTI2_HEADER_SIZE})"
        ]
    try:
        hdr = klass.from_fileobj(io.BytesIO(raw), check=False)
    except Exception as exc:  # nibabel raises assorted types on garbage headers
        return None, [f"{path}: has an unreadable NIfTI header ({type(exc).__name__}: {exc})"]
    magic = bytes(hdr["magic"]).rstrip(b"\x00")
    if magic in (b"ni1", b"ni2"):
        return None, [
            f"{path}: is the header of a two-file NIfTI pair (.hdr/.img); convert it "
            "to a single .nii or .nii.gz file"
        ]
    if magic not in (b"n+1", b"n+2"):
        return None, [
            f"{path}: has no NIfTI magic string ('n+1'); it may be an ANALYZE 7.5 file, "
            "which does not record orientation; convert it to NIfTI"
        ]
    return hdr, []


def _affine_problem(name: str, code: int, affine: np.ndarray) -> str | None:
    """Why ``affine`` cannot map voxels to space, or None if it can."""
    m = np.asarray(affine, dtype=float)[:3, :]
    if not np.all(np.isfinite(m)):
        return f"its {name} (code {code}) holds NaN or infinite values"
    lin = m[:, :3]
    if not np.any(lin):
        return f"its {name} (code {code}) is all zero"
    norms = np.linalg.norm(lin, axis=0)
    det = float(np.linalg.det(lin))
    if np.any(norms == 0) or abs(det) <= 1e-6 * float(np.prod(norms)):
        return (
            f"its {name} (code {code}) is singular (determinant {det:.3g}): the voxel axes "
            "do not span 3D space, so the image cannot be placed in the world"
        )
    return None


def _check_header(
    path: Path, hdr: nib.Nifti1Header, resolution_mm: float, max_voxel_ratio: float
) -> tuple[list[str], bool]:
    """Header checks; returns (problems, whether the voxel data can be read at all)."""
    problems: list[str] = []
    dim = [int(d) for d in hdr["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7 or any(d < 1 for d in dim[1 : ndim + 1]):
        return [f"{path}: has an invalid image shape in its header (dim = {dim})"], False
    shape = tuple(dim[1 : ndim + 1])
    shape_txt = "x".join(map(str, shape))
    if ndim < 3:
        problems.append(f"{path}: is a {ndim}D image (shape {shape_txt}); a 3D volume is needed")
    elif any(d != 1 for d in shape[3:]):
        problems.append(
            f"{path}: is a {ndim}D image (shape {shape_txt}); a single 3D volume is needed, not a "
            "time series or a stack of volumes (extract one volume first)"
        )
    try:
        dtype = hdr.get_data_dtype()
    except Exception:
        return problems + [f"{path}: has an unknown data type code {int(hdr['datatype'])}"], False
    if dtype.kind not in "iuf" or dtype.fields is not None:
        problems.append(
            f"{path}: has data type {dtype} (code {int(hdr['datatype'])}); "
            "only real-valued integer or floating-point images are supported"
        )
        readable = False
    else:
        readable = True

    pixdim = np.asarray(hdr["pixdim"][1:4], dtype=float)
    bad = [f"{v:g}" for v in pixdim if not np.isfinite(v) or v <= 0]
    if bad:
        problems.append(
            f"{path}: has invalid voxel sizes (pixdim[1:4] = {', '.join(f'{v:g}' for v in pixdim)}); "
            "voxel sizes must be positive numbers"
        )

    sform_code, qform_code = int(hdr["sform_code"]), int(hdr["qform_code"])
    chosen = None
    if sform_code == 0 and qform_code == 0:
        problems.append(
            f"{path}: has neither an sform nor a qform (sform_code = qform_code = 0), so its "
            "orientation and voxel-to-world mapping are unknown"
        )
    forms = []
    if sform_code > 0:
        forms.append(("sform", sform_code, hdr.get_sform))
    if qform_code > 0:
        forms.append(("qform", qform_code, hdr.get_qform))
    for name, code, getter in forms:
        try:
            with np.errstate(all="ignore"):
                affine = getter()
        except Exception as exc:
            problems.append(f"{path}: its {name} (code {code}) cannot be computed ({exc})")
            continue
        why = _affine_problem(name, code, affine)
        if why:
            problems.append(f"{path}: {why}")
        elif chosen is None:  # nibabel (and this pipeline) prefers the sform
            chosen = affine

    if chosen is not None:
        voxel = np.linalg.norm(np.asarray(chosen, dtype=float)[:3, :3], axis=0)
    elif not bad:
        voxel = pixdim
    else:
        voxel = None
    if voxel is not None:
        limit = max_voxel_ratio * resolution_mm
        if float(voxel.max()) > limit * (1 + 1e-6):
            problems.append(
                f"{path}: has voxels of {' x '.join(f'{v:.3g}' for v in voxel)} mm; the largest "
                f"edge, {voxel.max():.3g} mm, is more than {max_voxel_ratio:g}x the target "
                f"resolution of {resolution_mm:g} mm (limit {limit:.3g} mm, "
                "validation.max_voxel_ratio), too coarse to resample meaningfully"
            )
    return problems, readable


def _check_data(path: Path, data: np.ndarray) -> list[str]:
    """Value checks: NaN/inf, and an empty (all-zero) or constant image."""
    problems = []
    values = data
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        n_bad = data.size - int(np.count_nonzero(finite))
        if n_bad:
            n_nan = int(np.count_nonzero(np.isnan(data)))
            parts = []
            if n_nan:
                parts.append(f"{n_nan} NaN")
            if n_bad - n_nan:
                parts.append(f"{n_bad - n_nan} infinite")
            problems.append(
                f"{path}: contains {' and '.join(parts)} voxel values "
                f"(of {data.size}); every voxel must be a finite number"
            )
            values = data[finite]
        del finite
    if values.size == 0:
        return problems
    lo, hi = values.min(), values.max()
    if lo == hi:
        if hi == 0:
            problems.append(f"{path}: is all zero (every voxel is 0): an empty image")
        else:
            problems.append(f"{path}: is constant (every voxel is {hi:g}): it holds no image")
    return problems


def _inspect(
    path: str | Path, resolution_mm: float, max_voxel_ratio: float, want_image: bool = False
) -> tuple[list[str], nib.Nifti1Image | None]:
    """Run every check on one file; optionally build the image from the data already read."""
    _check_parameters(resolution_mm, max_voxel_ratio)
    path = Path(path)
    if not path.exists():
        if path.is_symlink():
            return [
                f"{path}: is a broken symbolic link (to {os.readlink(path)}); with DataLad or "
                "git-annex, fetch the content first ('datalad get')"
            ], None
        return [f"{path}: file not found"], None
    if not path.is_file():
        return [f"{path}: is not a regular file"], None
    raw, problems = _read_bytes(path)
    if raw is None:
        return problems, None
    hdr, problems = _parse_header(path, raw)
    if hdr is None:
        return problems, None
    problems, readable = _check_header(path, hdr, resolution_mm, max_voxel_ratio)
    if not readable:
        return problems, None
    offset = int(hdr.get_data_offset())
    shape = hdr.get_data_shape()
    need = math.prod(int(d) for d in shape) * hdr.get_data_dtype().itemsize  # no overflow
    have = len(raw) - offset
    if have < need:
        compressed = " (decompressed)" if path.name.endswith(".gz") else ""
        return (
            problems
            + [
                f"{path}: is truncated: its header promises {need} bytes of voxel data from byte "
                f"{offset}, but the file{compressed} holds only {max(have, 0)} bytes there"
            ],
            None,
        )
    try:
        data = np.asanyarray(hdr.data_from_fileobj(io.BytesIO(raw)))
    except Exception as exc:
        return problems + [f"{path}: voxel data cannot be read ({type(exc).__name__}: {exc})"], None
    del raw
    problems += _check_data(path, data)
    if problems or not want_image:
        return problems, None
    klass = nib.Nifti2Image if isinstance(hdr, nib.Nifti2Header) else nib.Nifti1Image
    hdr = hdr.copy()
    data = data.reshape(shape[:3])
    hdr.set_data_shape(data.shape)
    img = klass(data, hdr.get_best_affine(), hdr)
    return [], img


def check_image(path: str | Path, resolution_mm: float, max_voxel_ratio: float = 3.0) -> list[str]:
    """Return every problem that makes ``path`` unusable as a structural input; empty if fine.

    Each message starts with the path and says what is wrong: missing or unreadable file,
    smaller than a NIfTI header (348 bytes), not NIfTI, corrupt or truncated gzip or data,
    not 3D (a 4D image with a single volume is accepted), NaN or infinite values, all-zero or
    constant data, zero, negative or NaN voxel sizes (pixdim), no sform or qform (both codes 0),
    a singular, all-zero or non-finite sform/qform, a voxel edge larger than
    ``max_voxel_ratio * resolution_mm``. The file is read once.

    Raises:
        ValueError: ``resolution_mm`` or ``max_voxel_ratio`` is not a positive number.
    """
    return _inspect(path, resolution_mm, max_voxel_ratio)[0]


def load_checked(
    path: str | Path, resolution_mm: float, max_voxel_ratio: float = 3.0
) -> nib.Nifti1Image:
    """Load ``path`` after the checks of :func:`check_image`; the file is read once.

    Returns an in-memory image (Nifti1Image, or Nifti2Image for NIfTI-2 input) with the file's
    header and affine (sform if set, else qform); a 4D image with one volume is returned as 3D.
    The data array keeps the file's type, or float64 when the file scales its values.

    Raises:
        InputValidationError: naming the file and listing every problem found.
    """
    problems, img = _inspect(path, resolution_mm, max_voxel_ratio, want_image=True)
    if problems:
        raise InputValidationError("\n".join(problems))
    assert img is not None
    return img


def _participant_of(unit: str, index: BidsIndex) -> str:
    if unit in index.images:
        return index.images[unit].participant_id
    return "sub-" + unit.split("_ses-")[0]


def validate_dataset(
    index: BidsIndex,
    resolution_mm: float,
    max_voxel_ratio: float,
    on_error: str,
    report_tsv: str | Path,
    accepted_tsv: str | Path,
    threads: int = 1,
    cache_tsv: str | Path | None = None,
) -> pd.DataFrame:
    """Check every image of ``index`` and its indexing problems; write the report and accepted list.

    Args:
        index: from :func:`mrixai.bids.index_bids`.
        resolution_mm, max_voxel_ratio: as in :func:`check_image`.
        on_error: ``"fail"`` stops when any unit has a problem; ``"skip"`` leaves such units out.
        report_tsv: written in every case, atomically: one row per unit with columns
            unit, participant_id, path, status (ok | skipped | failed) and reason (every problem
            and warning, separated by ``"; "``).
        accepted_tsv: the usable units (unit, participant_id, session, path), written
            atomically only when the run goes on; an older copy is removed when it does not.
        threads: files checked in parallel (decompression and numpy release the GIL).
        cache_tsv: optional cache of earlier checks, keyed by path, size, modification time and
            the check parameters, so that only new or changed files are read again (the workflow
            validates when it builds its DAG, which happens on every invocation).

    Returns:
        The report as a DataFrame.

    Raises:
        InputValidationError: with ``on_error="fail"`` if any unit has a problem (the message
            lists every problem, one per line, each with its file); with ``"skip"`` if no unit is
            left.
        ValueError: ``on_error`` is not ``fail`` or ``skip``, or a number is invalid.
    """
    if on_error not in ("fail", "skip"):
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
    _check_parameters(resolution_mm, max_voxel_ratio)
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    report_tsv, accepted_tsv = Path(report_tsv), Path(accepted_tsv)

    records = list(index.images.values())

    cache = _CheckCache(cache_tsv, resolution_mm, max_voxel_ratio)

    def check(rec: ImageRecord) -> list[str]:
        hit = cache.get(rec.path)
        if hit is not None:
            return hit
        msgs = check_image(rec.path, resolution_mm, max_voxel_ratio)
        cache.put(rec.path, msgs)
        return msgs

    if threads > 1 and len(records) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            image_problems = list(pool.map(check, records))
    else:
        image_problems = [check(rec) for rec in records]
    cache.save()

    errors: dict[str, list[str]] = {}
    warnings: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for p in index.problems:
        (errors if p.severity == "error" else warnings).setdefault(p.unit, []).append(p.message)
        paths.setdefault(p.unit, p.path)
    for rec, msgs in zip(records, image_problems):
        paths[rec.subject] = str(rec.path)
        if msgs:
            errors.setdefault(rec.subject, []).extend(msgs)

    bad_status = "failed" if on_error == "fail" else "skipped"
    rows = []
    for unit in sorted(set(paths)):
        reasons = errors.get(unit, []) + [f"warning: {m}" for m in warnings.get(unit, [])]
        rows.append(
            {
                "unit": unit,
                "participant_id": _participant_of(unit, index),
                "path": paths[unit],
                "status": bad_status if unit in errors else "ok",
                "reason": "; ".join(reasons),
            }
        )
    report = pd.DataFrame(rows, columns=REPORT_COLUMNS)
    with atomic_path(report_tsv) as tmp:
        report.to_csv(tmp, sep="\t", index=False)

    for unit, msgs in sorted(warnings.items()):
        for m in msgs:
            log.warning("%s: %s", unit, m)
    n_bad = len(errors)
    all_msgs = [m for unit in sorted(errors) for m in errors[unit]]
    if n_bad and on_error == "fail":
        _remove_stale(accepted_tsv)
        raise InputValidationError(
            f"input validation failed for {n_bad} of {len(report)} units "
            f"(report: {report_tsv}; set validation.on_error: skip to leave them out):\n"
            + "\n".join(all_msgs)
        )
    for unit in sorted(errors):
        log.warning("skipping %s: %s", unit, "; ".join(errors[unit]))
    accepted = [rec for rec in records if rec.subject not in errors]
    if not accepted:
        _remove_stale(accepted_tsv)
        raise InputValidationError(
            f"no unit passed input validation ({n_bad} skipped; report: {report_tsv}):\n"
            + "\n".join(all_msgs)
        )
    table = pd.DataFrame(
        [
            {
                "unit": r.subject,
                "participant_id": r.participant_id,
                "session": r.session if r.session is not None else "",
                "path": str(r.path),
            }
            for r in accepted
        ],
        columns=ACCEPTED_COLUMNS,
    )
    with atomic_path(accepted_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
    log.info("input validation: %d units ok, %d skipped", len(accepted), n_bad)
    if n_bad:
        log.warning(
            "input validation skipped %d of %d units; see %s", n_bad, len(report), report_tsv
        )
    return report


class _CheckCache:
    """Results of :func:`check_image`, keyed by (path, size, mtime_ns, resolution, ratio)."""

    columns = ["path", "size", "mtime_ns", "resolution_mm", "max_voxel_ratio", "problems"]

    def __init__(self, path: str | Path | None, resolution_mm: float, max_voxel_ratio: float):
        self.path = Path(path) if path else None
        self.params = (float(resolution_mm), float(max_voxel_ratio))
        self.entries: dict[tuple, str] = {}
        self.dirty = False
        if self.path is not None and self.path.is_file():
            try:
                table = pd.read_csv(self.path, sep="\t", dtype=str, keep_default_na=False)
                for row in table.itertuples(index=False):
                    key = (row.path, int(row.size), int(row.mtime_ns), float(row.resolution_mm),
                           float(row.max_voxel_ratio))
                    self.entries[key] = row.problems
            except (ValueError, KeyError, AttributeError, pd.errors.ParserError) as exc:
                log.warning("ignoring unreadable validation cache %s: %s", self.path, exc)
                self.entries = {}

    def _key(self, path: Path) -> tuple | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (str(path), st.st_size, st.st_mtime_ns, *self.params)

    def get(self, path: Path) -> list[str] | None:
        if self.path is None:
            return None
        key = self._key(path)
        if key is None or key not in self.entries:
            return None
        text = self.entries[key]
        return [m for m in text.split("\x1f") if m]

    def put(self, path: Path, msgs: list[str]) -> None:
        if self.path is None:
            return
        key = self._key(path)
        if key is not None:
            self.entries[key] = "\x1f".join(msgs)
            self.dirty = True

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        rows = [[*key, problems] for key, problems in self.entries.items()]
        with atomic_path(self.path) as tmp:
            pd.DataFrame(rows, columns=self.columns).to_csv(tmp, sep="\t", index=False)


def _remove_stale(path: Path) -> None:
    """Remove an accepted list left by an earlier run, so no one mistakes it for this run's."""
    if path.exists():
        log.info("removing %s from an earlier run", path)
        path.unlink()
