"""Benchmarks that write pages: run_time.py (job seconds per stage, wall time of a run's
invocations) and randomisation_draws.py (k-draw verdicts), on inputs written here with known numbers."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import run_time  # noqa: E402


def _bench(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"s\th:m:s\tmax_rss\n{seconds}\t0:00:00\t1.0\n")


def _log(workdir: Path, start: str, seconds: float, text: str) -> None:
    path = workdir / ".snakemake" / "log" / f"{start}.snakemake.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t0 = datetime.strptime(start, "%Y-%m-%dT%H%M%S.%f").timestamp()
    os.utime(path, (t0 + seconds, t0 + seconds))


def test_stage_shares_and_wall_time_of_a_resumed_run(tmp_path):
    res = tmp_path / "results"
    _bench(res / "benchmarks" / "correct_bias" / "sub-01.tsv", 10)
    _bench(res / "benchmarks" / "correct_bias" / "sub-02.tsv", 20)
    _bench(res / "benchmarks" / "train_volume_model" / "registration" / "reg-syn" / "split-0_seed-0.tsv", 30)
    _bench(res / "transfer-source" / "results" / "benchmarks" / "transfer_source_train_volume_model" / "r.tsv", 40)
    # two invocations that ran jobs (stopped, then resumed) and a dry run that ran none
    _log(tmp_path, "2026-01-01T100000.000000", 100, "1 of 4 steps (25%) done\n")
    _log(tmp_path, "2026-01-01T120000.000000", 50, "4 of 4 steps (100%) done\n")
    _log(tmp_path, "2026-01-01T130000.000000", 500, "Building DAG of jobs...\nNothing to be done.\n")
    table, invocations = run_time.run_time(tmp_path)
    rows = table.set_index("stage")
    # by hand: preprocess 10 + 20 of 100 job seconds, learn 30, the transfer source 40
    assert rows.loc["preprocess", "jobs"] == 2 and rows.loc["preprocess", "job_seconds"] == pytest.approx(30)
    assert rows.loc["learn", "job_seconds"] == pytest.approx(30)
    assert rows.loc[run_time.SOURCE_STAGE, "job_seconds"] == pytest.approx(40)
    assert list(table["stage"])[0] == run_time.SOURCE_STAGE
    assert rows["share"].to_dict() == pytest.approx({"preprocess": 0.3, "learn": 0.3, run_time.SOURCE_STAGE: 0.4})
    assert sorted(invocations) == pytest.approx([50, 100])
    text = run_time.page(table, invocations, tmp_path)
    assert "**Snakemake invocations that ran jobs**: 2" in text and "0.04 h" in text  # 150 s


def test_every_rule_of_the_workflow_has_a_stage():
    stages = run_time.rule_stages()
    for rule in ("correct_bias", "register_syn", "train_volume_model", "attribute_model", "write_results_page"):
        assert rule in stages, rule
    assert stages["register_syn"] == "register" and stages["train_volume_model"] == "learn"


def test_randomisation_draw_subsets_by_hand():
    """Two draws of three subjects: draw 0 medians 0.2, draw 1 medians 0.8 (bound 0.5); all six
    values pooled have median 0.5 (0.2, 0.2, 0.3 | 0.7, 0.8, 0.9 -> (0.3 + 0.7) / 2), not below."""
    import pandas as pd
    from randomisation_draws import subset_agreement

    table = pd.DataFrame({"method": "gbp", "unit": [1, 2, 3, 1, 2, 3], "seed": [0, 0, 0, 1, 1, 1],
                          "spearman_abs": [0.2, 0.2, 0.3, 0.7, 0.8, 0.9]})
    row = subset_agreement(table, 0.5, sizes=(1, 2)).set_index("draws")
    assert row.loc[1, "subsets"] == 2 and row.loc[1, "agree"] == 1  # draw 1 (0.8) agrees, draw 0 does not
    assert row.loc[1, "median_min"] == pytest.approx(0.2) and row.loc[1, "median_max"] == pytest.approx(0.8)
    assert row.loc[2, "subsets"] == 1 and row.loc[2, "agree"] == 1


DRY_RUN = """Building DAG of jobs...
Job stats:
job                   count
------------------  -------
correct_bias              2
train_volume_model        3
attribute_model           1
total                     6

Reasons:
"""


def test_projection_of_the_pending_jobs_by_hand(tmp_path):
    """Finished: correct_bias 10 s and 20 s, train_volume_model 30 s (60 job seconds in 50 s of wall
    on 2 cores: efficiency 0.6). Pending: 2 x 15 + 3 x 30 = 120 job seconds, attribute_model not
    measured; remaining wall 120 / (2 x 0.6) = 100 s."""
    res = tmp_path / "results"
    _bench(res / "benchmarks" / "correct_bias" / "sub-01.tsv", 10)
    _bench(res / "benchmarks" / "correct_bias" / "sub-02.tsv", 20)
    _bench(res / "benchmarks" / "train_volume_model" / "registration" / "reg-syn" / "split-0_seed-0.tsv", 30)
    counts = run_time.pending_counts(DRY_RUN)
    assert counts == {"correct_bias": 2, "train_volume_model": 3, "attribute_model": 1}
    proj = run_time.projection(run_time.all_jobs(tmp_path), counts, wall_s=50, cores=2)
    assert proj["pending_s"] == pytest.approx(120)
    assert proj["per_rule_s"] == pytest.approx({"correct_bias": 30, "train_volume_model": 90})
    assert proj["unmeasured"] == {"attribute_model": 1}
    assert proj["efficiency"] == pytest.approx(0.6)
    assert proj["remaining_wall_s"] == pytest.approx(100)
