"""Input validation: every kind of bad input is a real malformed file on disk, and the message
must name the file and the problem."""

from __future__ import annotations

import gzip
import logging
import os
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from helpers import write_nifti
from mrixai.bids import BidsError, index_bids
from mrixai.validate import InputValidationError, check_image, load_checked, validate_dataset

IXI_SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ixi_sample"
RES = 2.0

# Byte offsets in a NIfTI-1 header (little-endian as nibabel writes it here)
DIM, DATATYPE, PIXDIM, QFORM_CODE, SFORM_CODE, SROW_X, MAGIC = 40, 70, 76, 252, 254, 280, 344


def volume(shape=(16, 16, 16), seed=0) -> np.ndarray:
    """A blob on a noisy background: a plausible, non-constant image."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape[:3]).astype(np.float32)
    centre = (np.array(shape[:3], dtype=np.float32) - 1) / 2
    blob = np.exp(-(((grid - centre[:, None, None, None]) ** 2).sum(0)) / 20.0)
    data = 100 * blob + rng.normal(0, 1, shape[:3])
    return np.broadcast_to(data.reshape(shape[:3] + (1,) * (len(shape) - 3)), shape).astype(
        np.float32
    )


def write(path: Path, data=None, zooms=(RES, RES, RES), klass=nib.Nifti1Image, dtype=None) -> Path:
    """Save a valid image (sform and qform code 1) at ``path`` (.nii or .nii.gz)."""
    data = volume() if data is None else data
    affine = np.diag([*zooms, 1.0])
    img = klass(data, affine)
    if dtype is not None:
        img.set_data_dtype(dtype)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, path)
    return path


def patch(path: Path, offset: int, fmt: str, *values) -> Path:
    """Overwrite header bytes of an uncompressed .nii in place (struct format, little-endian)."""
    raw = bytearray(path.read_bytes())
    struct.pack_into("<" + fmt, raw, offset, *values)
    path.write_bytes(bytes(raw))
    return path


def gzip_to(src: Path, dst: Path) -> Path:
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def only(problems: list[str]) -> str:
    assert len(problems) == 1, problems
    return problems[0]


def assert_names(msg: str, path: Path, *phrases: str) -> None:
    assert msg.startswith(f"{path}: "), msg
    for phrase in phrases:
        assert phrase in msg, f"{phrase!r} not in {msg!r}"


# --- files that are fine -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ok.nii", "ok.nii.gz"])
def test_valid_image_passes_and_loads(tmp_path, name):
    data = volume()
    path = write(tmp_path / name, data)
    assert check_image(path, RES) == []
    img = load_checked(path, RES)
    np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)
    np.testing.assert_allclose(img.affine, np.diag([RES, RES, RES, 1]))


def test_scaled_integer_nifti2_and_singleton_4d_pass(tmp_path):
    scaled = write(tmp_path / "u8.nii.gz", volume() * 1.7, dtype=np.uint8)  # stored like IXI
    assert check_image(scaled, RES) == []
    assert check_image(write(tmp_path / "n2.nii.gz", klass=nib.Nifti2Image), RES) == []
    single = write(tmp_path / "single.nii.gz", volume((16, 16, 16, 1)))
    assert check_image(single, RES) == []
    assert load_checked(single, RES).shape == (16, 16, 16)


def test_voxels_up_to_the_ratio_pass(tmp_path):
    path = write(tmp_path / "coarse.nii.gz", zooms=(1, 1, 3 * RES))
    assert check_image(path, RES, max_voxel_ratio=3.0) == []


# --- the file itself ---------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "sub-01_T1w.nii.gz"
    assert_names(only(check_image(path, RES)), path, "file not found")


def test_directory_and_broken_link(tmp_path):
    folder = tmp_path / "dir.nii.gz"
    folder.mkdir()
    assert_names(only(check_image(folder, RES)), folder, "not a regular file")
    link = tmp_path / "annexed.nii.gz"
    link.symlink_to(tmp_path / ".git/annex/objects/xyz")
    assert_names(only(check_image(link, RES)), link, "broken symbolic link", "datalad get")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = write(tmp_path / "locked.nii.gz")
    path.chmod(0)
    assert_names(only(check_image(path, RES)), path, "cannot be read", "permission denied")


@pytest.mark.parametrize("size", [0, 100, 347])
def test_file_smaller_than_a_header(tmp_path, size):
    path = tmp_path / "tiny.nii"
    path.write_bytes(write(tmp_path / "src.nii").read_bytes()[:size])
    assert_names(only(check_image(path, RES)), path, f"only {size} bytes", "348 bytes")


def test_gzip_smaller_than_a_header(tmp_path):
    path = tmp_path / "tiny.nii.gz"
    path.write_bytes(write(tmp_path / "src.nii.gz").read_bytes()[:100])
    assert_names(only(check_image(path, RES)), path, "truncated", "after 100 bytes")
    path.write_bytes(gzip.compress(b"\0" * 200))  # a complete gzip stream of 200 bytes
    assert_names(only(check_image(path, RES)), path, "decompresses to only 200 bytes", "348 bytes")


def test_not_a_gzip_file(tmp_path):
    path = tmp_path / "fake.nii.gz"
    path.write_text("<html>404 Not Found</html>\n" * 40)
    assert_names(only(check_image(path, RES)), path, "not a gzip file")
    misnamed = gzip_to(write(tmp_path / "plain.nii"), tmp_path / "misnamed.nii")
    assert_names(only(check_image(misnamed, RES)), misnamed, "gzip-compressed", "rename")


def test_not_a_nifti_file(tmp_path):
    path = tmp_path / "noise.nii"
    path.write_bytes(np.random.default_rng(1).integers(0, 255, 2000, dtype=np.uint8).tobytes())
    assert_names(only(check_image(path, RES)), path, "not a NIfTI file")
    gz = gzip_to(path, tmp_path / "noise.nii.gz")
    assert_names(only(check_image(gz, RES)), gz, "not a NIfTI file")


def test_analyze_and_pair_headers(tmp_path):
    analyze = patch(write(tmp_path / "analyze.nii"), MAGIC, "4s", b"\0\0\0\0")
    assert_names(only(check_image(analyze, RES)), analyze, "no NIfTI magic", "ANALYZE")
    pair = patch(write(tmp_path / "pair.nii"), MAGIC, "4s", b"ni1\0")
    assert_names(only(check_image(pair, RES)), pair, "two-file NIfTI pair")


def test_corrupt_gzip_is_caught_although_nibabel_would_load_it(tmp_path):
    path = write(tmp_path / "crc.nii.gz")
    raw = bytearray(path.read_bytes())
    raw[-8] ^= 0xFF  # damage the CRC32 in the gzip trailer; the deflate stream is intact
    path.write_bytes(bytes(raw))
    np.asanyarray(nib.load(path).dataobj)  # nibabel alone does not notice
    assert_names(only(check_image(path, RES)), path, "corrupt gzip", "CRC")


def test_truncated_gzip(tmp_path):
    path = write(tmp_path / "cut.nii.gz")
    full = path.read_bytes()
    for keep in (400, len(full) // 2, len(full) - 1):
        path.write_bytes(full[:keep])
        assert_names(only(check_image(path, RES)), path, "truncated")
        with pytest.raises(InputValidationError, match="truncated"):
            load_checked(path, RES)


def test_truncated_uncompressed(tmp_path):
    path = write(tmp_path / "cut.nii")
    full = path.read_bytes()
    path.write_bytes(full[:-100])
    need = 16**3 * 4
    assert_names(
        only(check_image(path, RES)),
        path,
        "truncated",
        f"promises {need} bytes",
        f"holds only {need - 100} bytes",
    )
    path.write_bytes(full[:350])  # the header only
    assert_names(only(check_image(path, RES)), path, "truncated", "holds only 0 bytes")


# --- shape and values ------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, phrase",
    [
        ((16, 16, 16, 3), "4D image (shape 16x16x16x3)"),
        ((16, 16, 16, 2, 2), "5D image (shape 16x16x16x2x2)"),
        ((16, 16, 1, 1, 3), "5D image"),
    ],
)
def test_4d_and_5d_images(tmp_path, shape, phrase):
    path = write(tmp_path / "multi.nii.gz", volume(shape))
    assert_names(only(check_image(path, RES)), path, phrase, "single 3D volume")


def test_2d_image(tmp_path):
    path = tmp_path / "slice.nii.gz"
    write_nifti(volume()[:, :, 0], np.diag([RES, RES, RES, 1]), path)
    assert_names(only(check_image(path, RES)), path, "2D image", "3D volume is needed")


def test_nan_and_inf(tmp_path):
    data = volume()
    data[0, 0, :3] = np.nan
    data[1, 1, 1] = np.inf
    data[2, 2, 2] = -np.inf
    path = write(tmp_path / "nan.nii.gz", data)
    assert_names(only(check_image(path, RES)), path, "3 NaN and 2 infinite voxel values")
    only_nan = volume()
    only_nan[5, 5, 5] = np.nan
    path2 = write(tmp_path / "nan2.nii", only_nan)
    assert_names(only(check_image(path2, RES)), path2, "contains 1 NaN voxel values")


def test_all_zero_and_constant(tmp_path):
    zero = write(tmp_path / "zero.nii.gz", np.zeros((16, 16, 16), np.float32))
    assert_names(only(check_image(zero, RES)), zero, "all zero")
    const = write(tmp_path / "const.nii.gz", np.full((16, 16, 16), 7, np.int16))
    assert_names(only(check_image(const, RES)), const, "constant (every voxel is 7)")


def test_complex_data_type(tmp_path):
    path = write(tmp_path / "complex.nii.gz", volume().astype(np.complex64))
    assert_names(only(check_image(path, RES)), path, "complex64", "real-valued")


# --- geometry --------------------------------------------------------------------------


@pytest.mark.parametrize("value, shown", [(0.0, "0"), (-2.0, "-2"), (float("nan"), "nan")])
def test_bad_pixdim(tmp_path, value, shown):
    path = patch(write(tmp_path / "pixdim.nii"), PIXDIM + 4 * 2, "f", value)  # pixdim[2]
    problems = check_image(path, RES)
    msg = next(m for m in problems if "voxel sizes" in m)
    assert_names(msg, path, f"pixdim[1:4] = 2, {shown}, 2", "must be positive")
    gz = gzip_to(path, tmp_path / "pixdim.nii.gz")
    assert any("invalid voxel sizes" in m and m.startswith(str(gz)) for m in check_image(gz, RES))


def test_zero_pixdim_alone_with_valid_sform(tmp_path):
    path = write(tmp_path / "p0.nii")
    patch(path, QFORM_CODE, "h", 0)  # sform still code 1 and valid
    patch(path, PIXDIM + 4, "3f", 0.0, 0.0, 0.0)
    assert_names(only(check_image(path, RES)), path, "pixdim[1:4] = 0, 0, 0")


def test_no_sform_no_qform(tmp_path):
    path = write(tmp_path / "nocode.nii")
    patch(path, QFORM_CODE, "hh", 0, 0)
    assert_names(
        only(check_image(path, RES)),
        path,
        "neither an sform nor a qform",
        "sform_code = qform_code = 0",
    )


@pytest.mark.parametrize(
    "srow, phrase",
    [
        ((2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0), "singular"),  # srow_z all zero
        ((2, 0, 0, 0, 4, 0, 0, 0, 0, 2, 0, 0), "singular"),  # two parallel axes
        ((0,) * 12, "all zero"),
        ((float("nan"),) + (0,) * 11, "NaN or infinite"),
    ],
)
def test_bad_sform(tmp_path, srow, phrase):
    path = write(tmp_path / "sform.nii")
    patch(path, QFORM_CODE, "h", 0)
    patch(path, SROW_X, "12f", *srow)
    assert_names(only(check_image(path, RES)), path, "sform (code 1)", phrase)


def test_bad_sform_is_reported_even_with_a_good_qform(tmp_path):
    path = patch(write(tmp_path / "both.nii"), SROW_X, "12f", *(0,) * 12)
    assert_names(only(check_image(path, RES)), path, "sform (code 1) is all zero")


@pytest.mark.parametrize("zooms, largest", [((8, 8, 8), "8 mm"), ((1, 1, 7), "7 mm")])
def test_voxels_too_large(tmp_path, zooms, largest):
    path = write(tmp_path / "coarse.nii.gz", zooms=zooms)
    assert_names(
        only(check_image(path, RES)),
        path,
        f"largest edge, {largest}",
        "more than 3x the target resolution of 2 mm",
        "limit 6 mm",
    )
    assert check_image(path, 4.0) == []  # the same file is fine for a 4 mm template


# --- API -------------------------------------------------------------------------------


def test_load_checked_lists_every_problem(tmp_path):
    data = volume((16, 16, 16, 3))
    data[0, 0, 0, 0] = np.nan
    path = write(tmp_path / "bad.nii.gz", data, zooms=(8, 8, 8))
    with pytest.raises(InputValidationError) as err:
        load_checked(path, RES)
    lines = str(err.value).splitlines()
    assert len(lines) == 3 and all(line.startswith(f"{path}: ") for line in lines)
    assert isinstance(err.value, ValueError)


def test_bad_arguments(tmp_path):
    path = write(tmp_path / "ok.nii.gz")
    with pytest.raises(ValueError, match="resolution_mm.*-1"):
        check_image(path, -1)
    with pytest.raises(ValueError, match="max_voxel_ratio.*0"):
        check_image(path, RES, 0)


# --- whole datasets --------------------------------------------------------------------


def make_dataset(root: Path) -> Path:
    """sub-01 and sub-06 are fine; the others each have one kind of problem."""
    write(root / "sub-01/anat/sub-01_T1w.nii.gz")
    nan = volume()
    nan[3, 3, 3] = np.nan
    write(root / "sub-02/anat/sub-02_T1w.nii.gz", nan)
    cut = write(root / "sub-03/anat/sub-03_T1w.nii.gz")
    cut.write_bytes(cut.read_bytes()[:500])
    write(root / "sub-04/anat/sub-04_T2w.nii.gz")  # no T1w
    write(root / "sub-05/anat/sub-05_T1w.nii.gz")  # no participants.tsv row
    write(root / "sub-06/anat/sub-06_T1w.nii")
    write(root / "sub-07/anat/sub-07_T1w.nii.gz", zooms=(RES, RES, 8))  # too coarse
    rows = ["participant_id\tage"] + [f"sub-0{i}\t{20 + i}" for i in (1, 2, 3, 4, 6, 7)]
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    return root


EXPECTED_BAD = {
    "02": ("sub-02/anat/sub-02_T1w.nii.gz", "1 NaN"),
    "03": ("sub-03/anat/sub-03_T1w.nii.gz", "truncated"),
    "04": ("sub-04/anat", "no T1w image"),
    "05": ("sub-05", "no row in"),
    "07": ("sub-07/anat/sub-07_T1w.nii.gz", "more than 3x"),
}


def test_fail_mode_lists_every_problem_and_writes_no_accepted_list(tmp_path):
    root = make_dataset(tmp_path / "bids")
    out = tmp_path / "qc"
    out.mkdir()
    accepted = out / "accepted.tsv"
    accepted.write_text("stale from an earlier run\n")
    with pytest.raises(InputValidationError) as err:
        validate_dataset(index_bids(root, "T1w"), RES, 3.0, "fail", out / "report.tsv", accepted)
    lines = str(err.value).splitlines()
    assert "5 of 7 units" in lines[0] and str(out / "report.tsv") in lines[0]
    for unit, (rel, phrase) in EXPECTED_BAD.items():
        assert any(
            line.startswith(f"{root / rel}: ") and phrase in line for line in lines[1:]
        ), unit
    assert not any("sub-01" in line or "sub-06" in line for line in lines)
    assert not accepted.exists()
    report = pd.read_csv(out / "report.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert dict(zip(report.unit, report.status)) == {
        "01": "ok",
        "02": "failed",
        "03": "failed",
        "04": "failed",
        "05": "failed",
        "06": "ok",
        "07": "failed",
    }
    assert sorted(os.listdir(out)) == ["report.tsv"]  # nothing half-written


def test_skip_mode_lists_every_skipped_unit_and_why(tmp_path, caplog):
    root = make_dataset(tmp_path / "bids")
    out = tmp_path / "qc"
    with caplog.at_level(logging.WARNING, logger="mrixai"):
        report = validate_dataset(
            index_bids(root, "T1w"),
            RES,
            3.0,
            "skip",
            out / "report.tsv",
            out / "accepted.tsv",
            threads=2,
        )
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping ")]
    assert len(skipped) == len(EXPECTED_BAD)
    for unit, (rel, phrase) in EXPECTED_BAD.items():
        (msg,) = [m for m in skipped if m.startswith(f"skipping {unit}: ")]
        assert str(root / rel) in msg and phrase in msg
    assert set(report.unit[report.status == "skipped"]) == set(EXPECTED_BAD)
    assert all(report.reason[report.status == "skipped"] != "")
    accepted = pd.read_csv(out / "accepted.tsv", sep="\t", dtype=str, keep_default_na=False)
    assert list(accepted.columns) == ["unit", "participant_id", "session", "path"]
    assert list(accepted.unit) == ["01", "06"]
    assert list(accepted.participant_id) == ["sub-01", "sub-06"]
    assert accepted.path[1] == str(root / "sub-06/anat/sub-06_T1w.nii")
    on_disk = pd.read_csv(out / "report.tsv", sep="\t", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(on_disk, report.astype(str))
    assert sorted(os.listdir(out)) == ["accepted.tsv", "report.tsv"]


def test_skip_mode_with_sessions_and_warnings(tmp_path, caplog):
    root = tmp_path / "bids"
    write(root / "sub-01/ses-1/anat/sub-01_ses-1_run-1_T1w.nii.gz")
    write(root / "sub-01/ses-1/anat/sub-01_ses-1_run-2_T1w.nii.gz")
    write(
        root / "sub-01/ses-2/anat/sub-01_ses-2_run-1_T1w.nii.gz", np.zeros((16, 16, 16), np.float32)
    )
    write(root / "sub-01/anat/sub-01_T1w.nii.gz")  # outside the session folders: a warning
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    # two runs in ses-1 and no run filter: indexing refuses to choose (see test_bids.py)
    with pytest.raises(BidsError, match="sub-01_ses-1: 2 T1w images"):
        index_bids(root, "T1w")
    with caplog.at_level(logging.WARNING, logger="mrixai"):
        report = validate_dataset(
            index_bids(root, "T1w", filters={"run": 1}),
            RES,
            3.0,
            "skip",
            tmp_path / "r.tsv",
            tmp_path / "a.tsv",
        )
    # the report also lists the subject-level warning (unit "01"), which stops nothing
    status = dict(zip(report.unit, report.status))
    assert status == {"01": "ok", "01_ses-1": "ok", "01_ses-2": "skipped"}
    reason = dict(zip(report.unit, report.reason))
    assert "warning:" in reason["01"] and "outside the session folders" in reason["01"]
    assert any(
        "all zero" in r.getMessage() and "01_ses-2" in r.getMessage() for r in caplog.records
    )
    accepted = pd.read_csv(tmp_path / "a.tsv", sep="\t", dtype=str)
    assert list(accepted.session) == ["1"]


def test_skip_mode_with_nothing_left_raises(tmp_path):
    root = tmp_path / "bids"
    write(root / "sub-01/anat/sub-01_T1w.nii.gz", np.zeros((16, 16, 16), np.float32))
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    with pytest.raises(InputValidationError, match="no unit passed") as err:
        validate_dataset(
            index_bids(root, "T1w"), RES, 3.0, "skip", tmp_path / "r.tsv", tmp_path / "a.tsv"
        )
    assert str(root / "sub-01/anat/sub-01_T1w.nii.gz") in str(err.value)
    assert (tmp_path / "r.tsv").exists() and not (tmp_path / "a.tsv").exists()


def test_on_error_must_be_fail_or_skip(tmp_path):
    root = make_dataset(tmp_path / "bids")
    with pytest.raises(ValueError, match="'ignore'"):
        validate_dataset(
            index_bids(root, "T1w"), RES, 3.0, "ignore", tmp_path / "r", tmp_path / "a"
        )


@pytest.mark.shared
def test_ixi_sample_is_valid(tmp_path):
    if not IXI_SAMPLE.is_dir():
        pytest.skip(f"../shared/data/ixi_sample not found: {IXI_SAMPLE} is absent")
    report = validate_dataset(
        index_bids(IXI_SAMPLE, "T1w"),
        RES,
        3.0,
        "fail",
        tmp_path / "report.tsv",
        tmp_path / "accepted.tsv",
        threads=2,
    )
    assert len(report) == 60 and set(report.status) == {"ok"}
    assert len(pd.read_csv(tmp_path / "accepted.tsv", sep="\t")) == 60


def test_cache_reads_only_new_or_changed_files(tmp_path, monkeypatch):
    import mrixai.validate as validate

    root = tmp_path / "bids"
    for sub in ("01", "02"):
        write(root / f"sub-{sub}/anat/sub-{sub}_T1w.nii.gz")
    (root / "participants.tsv").write_text("participant_id\nsub-01\nsub-02\n")
    calls = []
    real = validate.check_image
    monkeypatch.setattr(validate, "check_image", lambda p, *a: calls.append(Path(p).name) or real(p, *a))
    cache = tmp_path / "cache.tsv"

    def run():
        return validate_dataset(
            index_bids(root, "T1w"), RES, 3.0, "skip", tmp_path / "r.tsv", tmp_path / "a.tsv",
            cache_tsv=cache,
        )

    run()
    assert sorted(calls) == ["sub-01_T1w.nii.gz", "sub-02_T1w.nii.gz"]
    calls.clear()
    run()
    assert calls == []  # nothing changed: nothing read again
    # break one file: it must be read again and now fail; the other stays cached
    bad = root / "sub-02/anat/sub-02_T1w.nii.gz"
    write(bad, np.zeros((16, 16, 16), np.float32))
    os.utime(bad, ns=(os.stat(bad).st_atime_ns, os.stat(bad).st_mtime_ns + 10**9))
    report = run()
    assert calls == ["sub-02_T1w.nii.gz"]
    assert dict(zip(report.unit, report.status)) == {"01": "ok", "02": "skipped"}
    # a different resolution is a different check: everything is read again
    calls.clear()
    validate_dataset(index_bids(root, "T1w"), 1.0, 3.0, "skip", tmp_path / "r.tsv", tmp_path / "a.tsv",
                     cache_tsv=cache)
    assert sorted(calls) == ["sub-01_T1w.nii.gz", "sub-02_T1w.nii.gz"]
