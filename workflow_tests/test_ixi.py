"""Preprocessing on real data: the IXI sample against its DLMUSE reference labels.

The segmentation defaults were chosen on IXI012, IXI039, IXI105, IXI211 and IXI566; this test
runs on four other subjects, so it measures the defaults on data they were not tuned on.
benchmarks/evaluate_ixi.py runs all 60 subjects and prints the full table.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import IXI_SUBJECTS
from mrixai.evaluation import mean_pairwise_dice, reference_tissues, score_segmentation

SUBJECTS = IXI_SUBJECTS  # young and old, both sexes, none used for tuning


@pytest.fixture(scope="module")
def ixi_run(ixi_participant_run):
    """The preprocessing outputs of the BIDS-App participant run on IXI_SUBJECTS (conftest.py)."""
    return ixi_participant_run["out"]


def test_native_space_dice_against_dlmuse(ixi_run, ixi_sample):
    scores = []
    for sub in SUBJECTS:
        ref = reference_tissues(
            ixi_sample / "derivatives" / "dlmuse" / f"sub-{sub}" / "anat" / f"sub-{sub}_seg-dlmuse_dseg.nii.gz",
            ixi_sample / "derivatives" / "dlmuse" / "dseg.tsv",
        )
        pre = ixi_run / "results" / "preproc" / f"sub-{sub}" / "anat" / f"sub-{sub}"
        scores.append(score_segmentation(f"{pre}_desc-brain_mask.nii.gz", f"{pre}_dseg.nii.gz", ref))
    median = {k: float(np.median([s[k] for s in scores])) for k in scores[0]}
    assert median["dice_brain"] >= 0.96, median
    assert median["dice_gm"] >= 0.75, median
    assert median["dice_wm"] >= 0.82, median


def test_template_space_overlap_grows_with_registration(ixi_run):
    pre = ixi_run / "results" / "preproc"
    overlap = {
        arm: mean_pairwise_dice(sorted(pre.glob(f"sub-*/anat/*_space-template_reg-{arm}_desc-brain_mask.nii.gz")))
        for arm in ("none", "linear", "syn")
    }
    assert overlap["syn"] > overlap["linear"] > overlap["none"], overlap


def test_group_qc_table_covers_every_subject(ixi_run):
    table = (ixi_run / "results" / "qc" / "group_qc.tsv").read_text().splitlines()
    assert len(table) == 1 + len(SUBJECTS)
    assert "dice_template_syn" in table[0] and "outlier" in table[0]
