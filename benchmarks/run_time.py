"""Where a run's time went: job seconds per stage, and the wall time of its Snakemake invocations.

Usage: .venv/bin/python benchmarks/run_time.py WORKDIR [--out PAGE.md] [--rules RULES_DIR]
       [--pending DRY_RUN.txt --cores N]

WORKDIR is a run's working directory (the one holding results/ and .snakemake/). Each job's wall
seconds come from its benchmark file (results/benchmarks/<rule>/...); a rule's stage is the rule
file under rules/ that defines it (preprocess, register, learn, explain, figures, ...), and the
jobs of the transfer study's synthetic source (results/transfer-source/) form a stage of their
own. The wall time is the sum, over the Snakemake invocations that ran jobs in WORKDIR
(.snakemake/log/), of the time from the log's start (its name) to its last write: a run that was
stopped and resumed counts only the time it ran. Job seconds measured while other work shared the
cores are longer than on a quiet machine; the page says how many invocations there were.

With ``--pending``, the saved output of a dry run of the same run (``snakemake -n ... > DRY_RUN.txt``:
the jobs still to do) is projected: each pending job costs the mean job seconds of its rule in this
run, rules with no finished job yet are listed as unmeasured, and the remaining wall time on N cores
is the pending job seconds over N times the run's own parallel efficiency (job seconds per
wall-second per core so far).
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SOURCE_PREFIX = "transfer_source_"
SOURCE_STAGE = "transfer source (synthetic cohort)"
RULE_LINE = re.compile(r"^(?:local)?rule\s+(\w+)\s*:", re.M)
LOG_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{6}\.\d+)\.snakemake\.log$")


def rule_stages(rules_dir: Path = ROOT / "rules") -> dict[str, str]:
    """Rule name -> the stem of the rule file that defines it."""
    stages = {}
    for path in sorted(rules_dir.rglob("*.smk")):
        for name in RULE_LINE.findall(path.read_text()):
            stages[name] = path.stem
    return stages


def job_seconds(results: Path, stages: dict[str, str], source_stage: str | None = None) -> pd.DataFrame:
    """One row per benchmark file under ``results/benchmarks``: rule, stage, seconds."""
    rows = []
    bench = results / "benchmarks"
    for path in sorted(bench.rglob("*.tsv")) if bench.is_dir() else []:
        rule = path.relative_to(bench).parts[0].removesuffix(".tsv")
        table = pd.read_csv(path, sep="\t")
        if table.empty or "s" not in table.columns:
            continue
        stage = source_stage or stages.get(rule.removeprefix(SOURCE_PREFIX), "other")
        rows.append({"rule": rule, "stage": stage, "s": float(table["s"].iloc[0])})
    return pd.DataFrame(rows, columns=["rule", "stage", "s"])


def invocation_seconds(workdir: Path) -> list[float]:
    """Seconds from start to last write of each Snakemake log in ``workdir`` that ran a job."""
    out = []
    for path in sorted((workdir / ".snakemake" / "log").glob("*.snakemake.log")):
        match = LOG_NAME.match(path.name)
        if not match or "steps" not in path.read_text(errors="replace"):
            continue  # a dry run, --unlock or a run that planned nothing
        start = datetime.strptime(match.group(1), "%Y-%m-%dT%H%M%S.%f").timestamp()
        out.append(max(0.0, path.stat().st_mtime - start))
    return out


def stage_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """Jobs, job seconds and share of all job seconds per stage, largest first."""
    table = jobs.groupby("stage")["s"].agg(jobs="count", job_seconds="sum").reset_index()
    table["share"] = table["job_seconds"] / table["job_seconds"].sum()
    return table.sort_values("job_seconds", ascending=False, ignore_index=True)


def run_time(workdir: Path, rules_dir: Path = ROOT / "rules") -> tuple[pd.DataFrame, list[float]]:
    return stage_table(all_jobs(workdir, rules_dir)), invocation_seconds(workdir)


def pending_counts(dry_run: str) -> dict[str, int]:
    """Rule -> number of jobs, from the "Job stats" table of a dry run's output."""
    counts, table = {}, False
    for line in dry_run.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            table = True
        elif table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def projection(jobs: pd.DataFrame, counts: dict[str, int], wall_s: float, cores: int) -> dict:
    """Pending job seconds (each pending job at its rule's mean so far), the rules not measured yet,
    the run's parallel efficiency so far, and the projected remaining wall seconds on ``cores``."""
    means = jobs.groupby("rule")["s"].mean()
    measured = {rule: n * float(means[rule]) for rule, n in counts.items() if rule in means.index}
    unmeasured = {rule: n for rule, n in counts.items() if rule not in means.index}
    efficiency = float(jobs["s"].sum()) / (wall_s * cores) if wall_s > 0 else float("nan")
    pending = sum(measured.values())
    return {"pending_s": pending, "per_rule_s": measured, "unmeasured": unmeasured,
            "efficiency": efficiency, "remaining_wall_s": pending / (cores * efficiency)}


def all_jobs(workdir: Path, rules_dir: Path = ROOT / "rules") -> pd.DataFrame:
    """Every finished job of the run (the transfer source's too): rule, stage, seconds."""
    stages = rule_stages(rules_dir)
    jobs = job_seconds(workdir / "results", stages)
    source = workdir / "results" / "transfer-source" / "results"
    if source.is_dir():
        jobs = pd.concat([jobs, job_seconds(source, stages, SOURCE_STAGE)], ignore_index=True)
    return jobs


def page(table: pd.DataFrame, invocations: list[float], workdir: Path) -> str:
    from mrixai.results_page import markdown_table

    wall = sum(invocations)
    shown = table.assign(job_hours=[f"{s / 3600:.2f}" for s in table["job_seconds"]],
                         share_percent=[f"{100 * s:.1f}" for s in table["share"]])
    return "\n".join([
        "# Run time\n",
        "_Generated by `benchmarks/run_time.py` from the run's benchmark files and Snakemake logs; "
        "do not edit by hand, rerun instead._\n",
        f"- **run**: `{workdir.name}`",
        f"- **Snakemake invocations that ran jobs**: {len(invocations)}",
        f"- **wall time, summed over those invocations**: {wall / 3600:.2f} h",
        f"- **job time, summed over all jobs**: {table['job_seconds'].sum() / 3600:.2f} h "
        f"({int(table['jobs'].sum())} jobs)\n",
        "Job time per stage (the rule file that defines each rule), largest first:\n",
        markdown_table(shown[["stage", "jobs", "job_hours", "share_percent"]]),
    ])


def main(argv=None) -> int:
    import sys

    sys.path.insert(0, str(ROOT / "src"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="the run's working directory (holds results/ and .snakemake/)")
    parser.add_argument("--out", type=Path, help="write the page here too")
    parser.add_argument("--rules", type=Path, default=ROOT / "rules",
                        help="the rules/ folder of the code that made the run (default: this checkout's)")
    parser.add_argument("--pending", type=Path, help="saved output of a dry run of this run: project the rest")
    parser.add_argument("--cores", type=int, default=2, help="cores the rest will run on (with --pending)")
    args = parser.parse_args(argv)
    table, invocations = run_time(args.workdir, args.rules)
    if table.empty:
        parser.error(f"{args.workdir / 'results' / 'benchmarks'}: no benchmark files")
    text = page(table, invocations, args.workdir)
    print(text)
    if args.out:
        args.out.write_text(text)
    if args.pending:
        counts = pending_counts(args.pending.read_text())
        if not counts:
            parser.error(f"{args.pending}: no 'Job stats' table (save the output of snakemake -n)")
        wall = sum(invocations)
        proj = projection(all_jobs(args.workdir, args.rules), counts, wall, args.cores)
        print(f"\npending: {sum(counts.values())} jobs; measured rules {proj['pending_s'] / 3600:.2f} job-h")
        for rule, s in sorted(proj["per_rule_s"].items(), key=lambda kv: -kv[1]):
            print(f"  {rule}: {counts[rule]} jobs, {s / 3600:.2f} job-h")
        print("not measured yet (no finished job): "
              + (", ".join(f"{r} x{n}" for r, n in sorted(proj["unmeasured"].items())) or "none"))
        print(f"parallel efficiency so far {proj['efficiency']:.2f}; remaining wall on {args.cores} cores "
              f">= {proj['remaining_wall_s'] / 3600:.2f} h (unmeasured rules not counted); "
              f"projected total >= {(wall + proj['remaining_wall_s']) / 3600:.2f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
