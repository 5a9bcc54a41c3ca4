"""Which units reach the learning stages: qc.exclude and QC auto-exclusion of planted failures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrixai.qc.group import summarize_group
from mrixai.selection import (
    auto_exclusions,
    failure_direction,
    manual_exclusions,
    select_learning_units,
)

N = 14


def cohort_rows(seed: int) -> list[dict]:
    """QC rows of a plausible cohort: every metric evenly spread in a narrow band, order shuffled.

    Evenly spread values keep every inlier within about 1.5 robust z of the median whatever the
    seed, so only the planted values below can cross the cut-off of 3.
    """
    rng = np.random.default_rng(seed)

    def band(lo, hi):
        return rng.permutation(np.linspace(lo, hi, N))

    cols = {
        "brain_volume_ml": band(1150, 1250),
        "gm_fraction": band(0.45, 0.50),
        "wm_fraction": band(0.35, 0.40),
        "csf_fraction": band(0.12, 0.16),
        "dice_template_none": band(0.80, 0.84),
        "dice_template_linear": band(0.93, 0.95),
        "dice_template_syn": band(0.96, 0.97),
        "ncc_template_none": band(0.50, 0.60),
        "ncc_template_linear": band(0.85, 0.88),
        "ncc_template_syn": band(0.90, 0.92),
    }
    return [
        {"subject": f"{i + 1:02d}", **{k: float(v[i]) for k, v in cols.items()}} for i in range(N)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2, 12345])
def test_auto_exclusion_of_planted_failures(tmp_path, seed):
    rows = cohort_rows(seed)
    by_id = {r["subject"]: r for r in rows}
    # 01: failed skull strip: a third of the brain cut away
    by_id["01"]["brain_volume_ml"] = 400.0
    # 02: head far off-centre: the none arm's (pad/crop only) overlap collapses; not a failure
    by_id["02"]["dice_template_none"] = 0.30
    by_id["02"]["ncc_template_none"] = 0.05
    # 03: much more CSF than the others (atrophy, the studied effect); not a failure
    by_id["03"]["csf_fraction"] = 0.40
    # 04: failed nonlinear registration: poor correlation with the template after SyN
    by_id["04"]["ncc_template_syn"] = 0.40
    # 05: registers unusually well; a high Dice is no defect
    by_id["05"]["dice_template_linear"] = 0.999
    # 06: under-stripped head: scalp left in the mask
    by_id["06"]["brain_volume_ml"] = 2600.0
    table = summarize_group(rows, 3.0, tmp_path / "qc.tsv", tmp_path / "qc.png")
    # the group table flags all six; only real failures may be excluded
    assert set(table.loc[table["outlier"], "subject"]) >= {"01", "02", "03", "04", "05", "06"}

    out = auto_exclusions(pd.read_csv(tmp_path / "qc.tsv", sep="\t", dtype={"subject": str}), 3.0)
    assert list(out["unit"]) == ["01", "04", "06"]
    reason = dict(zip(out["unit"], out["reason"]))
    assert "brain_volume_ml" in reason["01"] and "below" in reason["01"]
    assert "ncc_template_syn" in reason["04"]
    assert "brain_volume_ml" in reason["06"] and "above" in reason["06"]
    assert not any("none" in r for r in reason.values())
    assert set(out["source"]) == {"qc.auto_exclude"}

    # through the pipeline's entry point: excluded.tsv lists them, the rest go on
    kept = select_learning_units(
        [r["subject"] for r in rows], ["sub-09"], tmp_path / "qc.tsv", 3.0, tmp_path / "ex.tsv"
    )
    assert kept == [f"{i:02d}" for i in range(1, N + 1) if i not in (1, 4, 6, 9)]
    written = pd.read_csv(tmp_path / "ex.tsv", sep="\t", dtype=str)
    assert list(written["unit"]) == ["01", "04", "06", "09"]
    assert written.set_index("unit").loc["09", "source"] == "qc.exclude"


def test_failure_direction_covers_registered_arms_only():
    assert failure_direction("brain_volume_ml") == "both"
    for arm in ("linear", "syn"):
        assert failure_direction(f"dice_template_{arm}") == "low"
        assert failure_direction(f"ncc_template_{arm}") == "low"
    for metric in ("dice_template_none", "ncc_template_none", "gm_fraction", "csf_fraction"):
        assert failure_direction(metric) is None


def test_auto_exclusion_off_and_nothing_flagged(tmp_path):
    rows = cohort_rows(7)
    summarize_group(rows, 3.0, tmp_path / "qc.tsv", tmp_path / "qc.png")
    units = [r["subject"] for r in rows]
    assert select_learning_units(units, [], tmp_path / "qc.tsv", 3.0, tmp_path / "ex.tsv") == units
    assert pd.read_csv(tmp_path / "ex.tsv", sep="\t").empty
    # without the QC table (auto_exclude off) a failure is not looked for
    assert select_learning_units(units) == units
    with pytest.raises(ValueError, match="qc.outlier_z must be a positive number"):
        auto_exclusions(pd.read_csv(tmp_path / "qc.tsv", sep="\t"), 0)


def test_manual_exclusion_subjects_and_sessions():
    units = ["01_ses-1", "01_ses-2", "02_ses-1", "03"]
    out = manual_exclusions(["01", "02_ses-1"], units)
    assert list(out["unit"]) == ["01_ses-1", "01_ses-2", "02_ses-1"]
    assert list(out["subject"]) == ["01", "01", "02"]
    with pytest.raises(
        ValueError, match="qc.exclude names subjects or units that are not processed: 07, 02_ses-9"
    ):
        manual_exclusions(["03", "07", "02_ses-9"], units)
    with pytest.raises(ValueError, match="qc.exclude 3 must be text"):
        manual_exclusions([3], units)
    with pytest.raises(ValueError, match="leave no unit"):
        select_learning_units(units, ["01", "02", "03"])


# --- the workflow's wiring (dry runs of the synthetic cohort) ---------------------------------


def dry_run(tmp_path, target, **config):
    from conftest import run_snakemake

    base = {"synthetic": {"n_subjects": 6}}
    return run_snakemake(
        tmp_path / "w", "-n", "--cores", "1", target, config={**base, **config}, check=False
    )


def planned(proc) -> dict[str, int]:
    import re

    table = proc.stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow
def test_workflow_selection_and_qc_input(tmp_path):
    # exclude_participant_label drops a synthetic subject before anything is generated
    proc = dry_run(tmp_path, "preprocess", exclude_participant_label=["002"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert planned(proc)["correct_bias"] == 5 and "sub-002_" not in proc.stdout
    proc = dry_run(tmp_path, "preprocess", exclude_participant_label=["999"])
    text = proc.stdout + proc.stderr  # a dry run prints its errors on stdout
    assert proc.returncode != 0 and "exclude_participant_label" in text and "'999'" in text
    # qc.exclude of an unknown subject stops the run while planning, naming it
    proc = dry_run(tmp_path, "results/samples/labels.tsv", qc={"exclude": ["077"]})
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "qc.exclude names" in text and "077" in text
    # labels wait for the group QC table only when auto_exclude is on
    off = planned(dry_run(tmp_path, "results/samples/labels.tsv", qc={"exclude": ["003"]}))
    on = planned(dry_run(tmp_path, "results/samples/labels.tsv", qc={"auto_exclude": True}))
    assert "summarize_qc" not in off and off["make_labels"] == 1
    assert on["summarize_qc"] == 1 and on["plot_subject_qc"] == 6 and on["make_labels"] == 1
