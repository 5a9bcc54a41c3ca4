"""Indexing BIDS datasets: which image belongs to which unit, and what is wrong with a subject.

The trees are built on disk by each test; image files are empty placeholders, because indexing
must never open them (it runs while Snakemake builds the DAG).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from mrixai.bids import UNIT_ID_PATTERN, BidsError, index_bids

IXI_SAMPLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ixi_sample"


def make_tree(root: Path, files: list[str], participants: list[str] | None) -> Path:
    """Create ``root`` with empty ``files`` (relative paths) and a participants.tsv of those IDs."""
    root.mkdir(parents=True, exist_ok=True)
    for rel in files:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    if participants is not None:
        lines = ["participant_id\tage\tsex"] + [
            f"{p}\t{30 + i}\tF" for i, p in enumerate(participants)
        ]
        (root / "participants.tsv").write_text("\n".join(lines) + "\n")
    return root


def messages(index, unit=None, severity="error"):
    return [
        p.message
        for p in index.problems
        if p.severity == severity and (unit is None or p.unit == unit)
    ]


def test_plain_dataset_is_indexed(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_T1w.nii.gz",
            "sub-02/anat/sub-02_T1w.nii",  # uncompressed is fine
            "sub-02/anat/sub-02_T1w.json",  # sidecars are ignored
            "sub-03/anat/sub-03_acq-mprage_T1w.nii.gz",  # entities before the suffix are allowed
            "sub-03/anat/sub-03_T2w.nii.gz",
        ],
        ["sub-01", "sub-02", "sub-03"],
    )
    index = index_bids(root, "T1w")
    assert index.problems == []
    assert list(index.images) == ["01", "02", "03"]
    rec = index.images["03"]
    assert rec.participant_id == "sub-03" and rec.session is None
    assert rec.path == root / "sub-03/anat/sub-03_acq-mprage_T1w.nii.gz"
    assert index.images["02"].path.name == "sub-02_T1w.nii"
    assert list(index.participants["participant_id"]) == ["sub-01", "sub-02", "sub-03"]
    assert pd.api.types.is_numeric_dtype(index.participants["age"])
    # the T2w index is another set of files
    t2 = index_bids(root, "T2w")
    assert list(t2.images) == ["03"]
    assert {p.unit for p in t2.errors} == {"01", "02"}


def test_sessions_are_separate_units(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
            "sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz",
            "sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz",
            "sub-02/ses-2/func/sub-02_ses-2_task-rest_bold.nii.gz",  # no T1w in this session
            "sub-03/ses-1/anat/sub-03_ses-1_T2w.nii.gz",  # no T1w in any session
        ],
        ["sub-01", "sub-02", "sub-03"],
    )
    index = index_bids(root, "T1w")
    assert list(index.images) == ["01_ses-1", "01_ses-2", "02_ses-1"]
    rec = index.images["01_ses-2"]
    assert (rec.subject, rec.participant_id, rec.session) == ("01_ses-2", "sub-01", "2")
    assert all(re.fullmatch(UNIT_ID_PATTERN, u) for u in index.images)
    # a session without the contrast is left out with a warning when another session has it
    (warn,) = messages(index, "02_ses-2", "warning")
    assert str(root / "sub-02/ses-2/anat") in warn and "T1w" in warn
    # a subject with no T1w at all is an error
    (err,) = messages(index, "03_ses-1")
    assert str(root / "sub-03/ses-1/anat") in err and "no T1w image" in err


def test_missing_participants_tsv_raises_naming_it(tmp_path):
    root = make_tree(tmp_path / "ds", ["sub-01/anat/sub-01_T1w.nii.gz"], None)
    with pytest.raises(BidsError, match=re.escape(str(root / "participants.tsv")) + ".*not found"):
        index_bids(root, "T1w")


def test_empty_participants_tsv_raises(tmp_path):
    root = make_tree(tmp_path / "ds", ["sub-01/anat/sub-01_T1w.nii.gz"], None)
    tsv = root / "participants.tsv"
    tsv.write_bytes(b"")
    with pytest.raises(BidsError, match=re.escape(str(tsv)) + r".*empty \(0 bytes\)"):
        index_bids(root, "T1w")
    tsv.write_text("participant_id\tage\tsex\n")
    with pytest.raises(BidsError, match=re.escape(str(tsv)) + ".*header but no rows"):
        index_bids(root, "T1w")
    tsv.write_text("participant_id,age\nsub-01,30\n")
    with pytest.raises(BidsError, match="no participant_id column.*comma"):
        index_bids(root, "T1w")


def test_missing_bids_dir_raises(tmp_path):
    with pytest.raises(BidsError, match=re.escape(str(tmp_path / "nope")) + ".*not found"):
        index_bids(tmp_path / "nope", "T1w")
    with pytest.raises(ValueError, match="'T1w/..'"):
        index_bids(tmp_path, "T1w/..")


def test_subject_without_contrast(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_T1w.nii.gz",
            "sub-02/anat/sub-02_T2w.nii.gz",
            "sub-03/func/sub-03_task-rest_bold.nii.gz",
            "sub-04/anat/sub-4_T1w.nii.gz",  # misnamed: wrong subject label in the file name
        ],
        ["sub-01", "sub-02", "sub-03", "sub-04"],
    )
    index = index_bids(root, "T1w")
    assert list(index.images) == ["01"]
    (m2,) = messages(index, "02")
    assert m2.startswith(str(root / "sub-02/anat")) and "no T1w image" in m2
    (m3,) = messages(index, "03")
    assert str(root / "sub-03/anat") in m3 and "folder not found" in m3 and "T1w" in m3
    (m4,) = messages(index, "04")
    assert "sub-4_T1w.nii.gz" in m4 and "does not start with sub-04_" in m4


def test_rows_and_folders_must_match(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_T1w.nii.gz",
            "sub-02/anat/sub-02_T1w.nii.gz",  # no row
        ],
        ["sub-01", "sub-03"],
    )  # sub-03 has no folder
    index = index_bids(root, "T1w")
    (m2,) = messages(index, "02")
    assert str(root / "sub-02") in m2 and "no row in" in m2 and "participants.tsv" in m2
    (m3,) = messages(index, "03")
    assert str(root / "sub-03") in m3 and "folder not found" in m3
    # the image of sub-02 is still indexed, so validation can check and report it too
    assert set(index.images) == {"01", "02"}


@pytest.mark.parametrize(
    "bad_id, reason",
    [
        ("sub-a/b", "path separator"),
        ("sub-..", "'..'"),
        ("sub-a b", "whitespace"),
        ("sub-01 ", "whitespace"),
        ("sub-a_b", "only letters and digits"),
        ("sub-", "empty"),
    ],
)
def test_unsafe_ids_in_participants_tsv(tmp_path, bad_id, reason):
    root = make_tree(tmp_path / "ds", ["sub-01/anat/sub-01_T1w.nii.gz"], ["sub-01", bad_id])
    index = index_bids(root, "T1w")
    errs = [p for p in index.errors if p.unit == bad_id[len("sub-") :]]
    assert len(errs) == 1, index.problems
    assert str(root / "participants.tsv") in errs[0].message
    assert repr(bad_id) in errs[0].message and reason in errs[0].message
    assert list(index.images) == ["01"]


def test_unsafe_folder_name(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_T1w.nii.gz",
            "sub-0 2/anat/sub-0 2_T1w.nii.gz",
            "sub-03/ses-a.b/anat/sub-03_ses-a.b_T1w.nii.gz",
        ],
        ["sub-01", "sub-0 2", "sub-03"],
    )
    index = index_bids(root, "T1w")
    (m,) = messages(index, "0 2")
    assert str(root / "sub-0 2") in m and "whitespace" in m
    (s,) = messages(index, "03_ses-a.b")
    assert str(root / "sub-03/ses-a.b") in s and "'ses-a.b' is unusable" in s
    assert list(index.images) == ["01"]


def test_duplicate_ids(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_T1w.nii.gz",
            "sub-ab/anat/sub-ab_T1w.nii.gz",
            "sub-AB/anat/sub-AB_T1w.nii.gz",
        ],
        ["sub-01", "sub-ab", "sub-01", "sub-AB"],
    )
    index = index_bids(root, "T1w")
    (dup,) = messages(index, "01")
    assert str(root / "participants.tsv") in dup and "listed 2 times (lines 2, 4)" in dup
    assert "only in letter case" in messages(index, "ab")[0]
    assert "only in letter case" in messages(index, "AB")[0]


def test_two_runs_without_a_deciding_filter_stop_indexing(tmp_path):
    """Two T1w runs of one subject: no silent choice; the error names the subject and both files.

    (Taking the first run, as an earlier version did, hid from the user which image was analysed.)
    """
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_run-2_T1w.nii.gz",
            "sub-01/anat/sub-01_run-1_T1w.nii.gz",
            "sub-02/anat/sub-02_T1w.nii.gz",
        ],
        ["sub-01", "sub-02"],
    )
    with pytest.raises(BidsError) as err:
        index_bids(root, "T1w")
    msg = str(err.value)
    assert "sub-01" in msg and "sub-02" not in msg
    assert str(root / "sub-01/anat/sub-01_run-1_T1w.nii.gz") in msg
    assert str(root / "sub-01/anat/sub-01_run-2_T1w.nii.gz") in msg
    assert "bids_filters.run" in msg
    # the filter decides; run compares as a number, so 1 matches run-1 and "01" too
    for run in (2, "2", "02"):
        index = index_bids(root, "T1w", filters={"run": run})
        assert index.images["01"].path.name == "sub-01_run-2_T1w.nii.gz"
        # sub-02 has no run entity at all, so it has no image matching run=2
        (msg02,) = messages(index, "02")
        assert "bids_filters run=2" in msg02 and "sub-02_T1w.nii.gz" in msg02


def test_filters_acq_and_rec(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/anat/sub-01_acq-mprage_T1w.nii.gz",
            "sub-01/anat/sub-01_acq-spgr_T1w.nii.gz",
            "sub-02/anat/sub-02_acq-mprage_rec-norm_T1w.nii.gz",
            "sub-02/anat/sub-02_acq-mprage_rec-raw_T1w.nii.gz",
        ],
        ["sub-01", "sub-02"],
    )
    with pytest.raises(BidsError) as err:
        index_bids(root, "T1w")
    msg = str(err.value)
    # both subjects are ambiguous, and both are listed at once, each with what would decide
    assert "2 unit(s)" in msg
    assert "sub-01_acq-spgr_T1w.nii.gz" in msg and "bids_filters.acq" in msg
    assert "sub-02_acq-mprage_rec-raw_T1w.nii.gz" in msg and "bids_filters.rec" in msg
    with pytest.raises(BidsError, match="sub-02: 2 T1w images match.*bids_filters.rec"):
        index_bids(root, "T1w", filters={"acq": "mprage"})
    index = index_bids(root, "T1w", filters={"acq": "mprage", "rec": "norm"})
    assert index.images["02"].path.name == "sub-02_acq-mprage_rec-norm_T1w.nii.gz"
    assert messages(index, "01") and "rec=norm" in messages(index, "01")[0]
    index = index_bids(root, "T1w", filters={"acq": "spgr", "rec": None}, participant_label=["01"])
    assert index.problems == []
    assert index.images["01"].path.name == "sub-01_acq-spgr_T1w.nii.gz"
    with pytest.raises(ValueError, match="bids_filters.echo: unknown entity"):
        index_bids(root, "T1w", filters={"echo": "1"})
    with pytest.raises(ValueError, match="bids_filters.acq must be a BIDS label"):
        index_bids(root, "T1w", filters={"acq": "mp rage"})
    with pytest.raises(ValueError, match="bids_filters.run must be a non-negative integer"):
        index_bids(root, "T1w", filters={"run": "a"})


def test_filter_ses_keeps_one_session(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [
            "sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz",
            "sub-01/ses-2/anat/sub-01_ses-2_T1w.nii.gz",
            "sub-02/ses-2/anat/sub-02_ses-2_T1w.nii.gz",
        ],
        ["sub-01", "sub-02"],
    )
    assert list(index_bids(root, "T1w").images) == ["01_ses-1", "01_ses-2", "02_ses-2"]
    index = index_bids(root, "T1w", filters={"ses": "2"})
    assert list(index.images) == ["01_ses-2", "02_ses-2"]
    assert index.problems == []
    index = index_bids(root, "T1w", filters={"ses": "ses-1"})  # the prefix is tolerated
    assert list(index.images) == ["01_ses-1"]
    (msg,) = messages(index, "02")
    assert str(root / "sub-02") in msg and "no session ses-1" in msg and "ses-2" in msg


def test_exclude_participant_label(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [f"sub-{s}/anat/sub-{s}_T1w.nii.gz" for s in ("01", "02", "03")]
        # sub-04 has two runs: excluding it must also stop its ambiguity from mattering
        + ["sub-04/anat/sub-04_run-1_T1w.nii.gz", "sub-04/anat/sub-04_run-2_T1w.nii.gz"],
        ["sub-01", "sub-02", "sub-03", "sub-04"],
    )
    index = index_bids(root, "T1w", exclude_participant_label=["02", "sub-04"])
    assert list(index.images) == ["01", "03"]
    assert index.problems == []
    assert list(index.participants["participant_id"]) == ["sub-01", "sub-03"]
    # with participant_label, exclusion applies to what is left
    index = index_bids(
        root, "T1w", participant_label=["01", "02"], exclude_participant_label=["02"]
    )
    assert list(index.images) == ["01"]
    with pytest.raises(BidsError, match="exclude_participant_label names subjects .*: 07, 09"):
        index_bids(root, "T1w", exclude_participant_label=["09", "01", "07"])
    with pytest.raises(BidsError, match="exclude_participant_label leaves no subject"):
        index_bids(root, "T1w", exclude_participant_label=["01", "02", "03", "04"])
    with pytest.raises(BidsError, match="exclude_participant_label 2 must be text"):
        index_bids(root, "T1w", exclude_participant_label=[2])


def test_participant_label_restricts(tmp_path):
    root = make_tree(
        tmp_path / "ds",
        [f"sub-{s}/anat/sub-{s}_T1w.nii.gz" for s in ("01", "02", "03")]
        + ["sub-04/anat/sub-04_T2w.nii.gz"],
        ["sub-01", "sub-02", "sub-03", "sub-04"],
    )
    index = index_bids(root, "T1w", participant_label=["03", "sub-01"])
    assert list(index.images) == ["01", "03"]
    assert index.problems == []  # sub-04's missing T1w is not reported: it was not requested
    assert list(index.participants["participant_id"]) == ["sub-01", "sub-03"]
    with pytest.raises(
        BidsError, match="neither a sub-<label> folder nor a participants.tsv row: 05, 07"
    ):
        index_bids(root, "T1w", participant_label=["01", "07", "05"])
    with pytest.raises(BidsError, match=r"'\.\./x'.*path separator"):
        index_bids(root, "T1w", participant_label=["../x"])
    with pytest.raises(BidsError, match="participant_label 1 must be text"):
        index_bids(root, "T1w", participant_label=[1])  # YAML reads an unquoted 01 as 1


def test_indexing_never_opens_images(tmp_path):
    """The placeholders are 0-byte files: indexing must succeed without reading them."""
    root = make_tree(tmp_path / "ds", ["sub-01/anat/sub-01_T1w.nii.gz"], ["sub-01"])
    (root / "sub-01/anat/sub-01_T1w.nii.gz").chmod(0)
    assert list(index_bids(root, "T1w").images) == ["01"]


@pytest.mark.shared
def test_ixi_sample():
    if not IXI_SAMPLE.is_dir():
        pytest.skip(f"../shared/data/ixi_sample not found: {IXI_SAMPLE} is absent")
    index = index_bids(IXI_SAMPLE, "T1w")
    assert len(index.images) == 60
    assert index.problems == []
    assert len(index.participants) == 60
    assert set(index.participants["participant_id"]) == {
        r.participant_id for r in index.images.values()
    }
    assert all(
        r.path.is_file() and r.path.name.endswith("_T1w.nii.gz") for r in index.images.values()
    )
