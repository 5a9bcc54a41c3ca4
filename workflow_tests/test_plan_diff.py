"""benchmarks/plan_diff.py: a dry run's job blocks become comparable lines, and a comparison finds
every difference except a declared rule rename."""

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("plan_diff", REPO / "benchmarks" / "plan_diff.py")
plan_diff = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plan_diff)

DRY_RUN = """Building DAG of jobs...
Job stats:
job      count
total        2

[Mon Dec  7 04:46:26 2026]
rule test_x:
    input: /repo/src/mrixai/io.py, b.tsv, a.tsv
    output: out/x.tsv
    log: results/logs/test_x.log
    jobid: 7
    reason: Missing output files: out/x.tsv
    resources: tmpdir=/tmp, runtime=5
PARAMS\ttest_x\tout/x.tsv\t[('seed', '7')]
[Mon Dec  7 04:46:26 2026]
localrule all:
    input: out/x.tsv
    jobid: 0
"""


def test_job_blocks_become_sorted_lines_without_ids_reasons_or_the_repo_path():
    lines = plan_diff.parse_dry_run(DRY_RUN, Path("/repo"))
    assert lines == [
        "PARAMS\ttest_x\tout/x.tsv\t[('seed', '7')]",
        "all\tinput=out/x.tsv\toutput=\tlog=\tbenchmark=\twildcards=\tthreads=\tresources=",
        "test_x\tinput=<repo>/src/mrixai/io.py, a.tsv, b.tsv\toutput=out/x.tsv\tlog=results/logs/test_x.log"
        "\tbenchmark=\twildcards=\tthreads=\tresources=runtime=5, tmpdir=/tmp",
    ]


def test_compare_allows_only_declared_renames(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    old = plan_diff.parse_dry_run(DRY_RUN, Path("/repo"))
    (before / "default.tsv").write_text("\n".join(old) + "\n")
    renamed = plan_diff.parse_dry_run(DRY_RUN.replace("test_x", "compare_x"), Path("/repo"))
    (after / "default.tsv").write_text("\n".join(renamed) + "\n")
    assert plan_diff.compare(before, after, {"test_x": "compare_x"}) == 0
    # without the rename: the job line and its params line differ, before and after
    assert plan_diff.compare(before, after, {}) == 4
    changed = plan_diff.parse_dry_run(DRY_RUN.replace("runtime=5", "runtime=6"), Path("/repo"))
    (after / "default.tsv").write_text("\n".join(changed) + "\n")
    assert plan_diff.compare(before, after, {}) == 2


def test_output_diff_finds_a_changed_byte_and_a_missing_file_but_not_a_log(tmp_path):
    spec = importlib.util.spec_from_file_location("output_diff", REPO / "benchmarks" / "output_diff.py")
    output_diff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(output_diff)
    for run, last, extra in (("a", b"\x00", True), ("b", b"\x01", False)):
        pre = tmp_path / run / "results" / "preproc" / "sub-01" / "anat"
        pre.mkdir(parents=True)
        (pre / "same.nii.gz").write_bytes(b"identical bytes")
        (pre / "changed.nii.gz").write_bytes(b"almost the same" + last)
        if extra:
            (pre / "extra.json").write_text("{}")
        logs = tmp_path / run / "results" / "preproc" / "logs"
        logs.mkdir()
        (logs / "x.log").write_text(f"took {len(run)} s in run {run}")
    result = output_diff.compare(tmp_path / "a", tmp_path / "b", ["results/preproc"])
    assert result["identical"] == ["results/preproc/sub-01/anat/same.nii.gz"]
    assert result["different"] == ["results/preproc/sub-01/anat/changed.nii.gz"]
    assert result["only_a"] == ["results/preproc/sub-01/anat/extra.json"] and result["only_b"] == []
    assert output_diff.main([str(tmp_path / "a"), str(tmp_path / "b"), "--under", "results/preproc"]) == 1
    assert output_diff.main([str(tmp_path / "a"), str(tmp_path / "a"), "--under", "results/preproc"]) == 0
