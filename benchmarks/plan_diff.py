"""The planned jobs of every shipped config, written as sorted text files, and a comparison of two such sets.

Usage:
    .venv/bin/python benchmarks/plan_diff.py write DIR [--repo REPO]
    .venv/bin/python benchmarks/plan_diff.py compare BEFORE_DIR AFTER_DIR [--rename OLD=NEW ...]

``write`` runs ``snakemake -n`` (a dry run: nothing is executed) of REPO's Snakefile in a scratch
directory for each shipped config: config.yaml alone, config.yaml with each configs/*.yaml layered over
it, and config.yaml with the tiny end-to-end config of the workflow tests (workflow_tests/conftest.py's
TINY). Each plan becomes DIR/<name>.tsv with one line per job: rule, inputs, outputs, log, benchmark,
wildcards, threads and resources (each sorted), and a PARAMS line per job (rule, outputs, params), with REPO's path replaced by ``<repo>`` so that two checkouts compare equal. Run it before
and after a refactoring that must not change behaviour; ``compare`` then prints every difference
(a renamed rule mapped with --rename OLD=NEW, which also maps its log and benchmark paths) and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import difflib
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def config_sets(repo: Path) -> dict[str, list[Path] | dict]:
    """Name -> extra config (a list of config files layered over config.yaml, or a dict)."""
    sets: dict[str, list[Path] | dict] = {"default": []}
    for path in sorted((repo / "configs").glob("*.yaml")):
        sets[path.stem] = [path]
    sys.path.insert(0, str(repo / "workflow_tests"))
    try:
        from conftest import TINY  # the tiny end-to-end config the tests share
    finally:
        sys.path.pop(0)
    sets["tiny"] = TINY
    return sets


KEPT = ("input", "output", "log", "benchmark", "wildcards", "threads", "resources")
# Runs snakemake's command line with the dry-run executor also printing each job's params (the dry
# run's own job blocks do not show them).
DRIVER = """
import sys
from snakemake.executors import dryrun

_run_job = dryrun.Executor.run_job


def run_job(self, job):
    params = sorted((str(k), repr(v)) for k, v in job.params.items())
    print("PARAMS", job.rule.name, ",".join(sorted(map(str, job.output))), repr(params), sep="\\t")
    return _run_job(self, job)


dryrun.Executor.run_job = run_job
from snakemake.cli import main

sys.exit(main(sys.argv[1:]))
"""


def plan(repo: Path, extra: list[Path] | dict) -> list[str]:
    """One plan's jobs, one line each: rule and its sorted files, wildcards and resources; sorted."""
    with tempfile.TemporaryDirectory() as tmp:
        configs = [str(repo / "config.yaml")]
        if isinstance(extra, dict):
            path = Path(tmp) / "extra.yaml"
            path.write_text(yaml.safe_dump(extra))
            configs.append(str(path))
        else:
            configs += [str(p) for p in extra]
        cmd = [sys.executable, "-c", DRIVER, "--snakefile", str(repo / "Snakefile"),
               "--directory", str(Path(tmp) / "work"), "--configfile", *configs, "-n", "--cores", "1"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return parse_dry_run(proc.stdout, repo)


def parse_dry_run(text: str, repo: Path) -> list[str]:
    """The job blocks of a dry run's output (``rule name:`` then indented ``key: value`` lines),
    without their job ids, reasons and dates, as sorted lines."""
    jobs, job, params = [], None, []
    for line in text.splitlines():
        if line.startswith("PARAMS\t"):
            params.append(line)
            continue
        head = re.fullmatch(r"(?:local)?(?:rule|checkpoint) (\w+):", line.strip())
        if head and not line.startswith(" "):
            job = {"rule": head.group(1)}
            jobs.append(job)
        elif job is not None and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            if key in KEPT:
                job[key] = ", ".join(sorted(value.split(", ")))
        elif not line.startswith(" "):
            job = None
    if not jobs:
        raise RuntimeError(f"no jobs in the dry run's output:\n{text[-2000:]}")
    lines = ["\t".join([job["rule"], *(f"{k}={job.get(k, '')}" for k in KEPT)]) for job in jobs] + params
    return sorted(line.replace(str(repo.resolve()), "<repo>") for line in lines)


def write(out: Path, repo: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, extra in config_sets(repo).items():
        lines = plan(repo, extra)
        (out / f"{name}.tsv").write_text("\n".join(lines) + "\n")
        jobs = sum(not line.startswith("PARAMS\t") for line in lines)
        print(f"{name}: {jobs} jobs -> {out / f'{name}.tsv'}")


def compare(before: Path, after: Path, renames: dict[str, str]) -> int:
    """Print the differences between two sets of plans; returns how many lines differ."""
    differ = 0
    names = sorted({p.name for p in before.glob("*.tsv")} | {p.name for p in after.glob("*.tsv")})
    for name in names:
        old = (before / name).read_text().splitlines() if (before / name).is_file() else []
        new = (after / name).read_text().splitlines() if (after / name).is_file() else []
        mapped = []
        for line in old:
            for a, b in renames.items():
                line = re.sub(rf"\b{re.escape(a)}\b", b, line)
            mapped.append(line)
        diff = [d for d in difflib.unified_diff(sorted(mapped), new, f"before/{name}", f"after/{name}", n=0, lineterm="")]
        changed = sum(1 for d in diff if d[:1] in "+-" and not d.startswith(("+++", "---")))
        differ += changed
        print(f"{name}: {len(old)} before, {len(new)} after, {changed} lines differ")
        for line in diff[:40]:
            print("   ", line[:400])
    return differ


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write the plans of every shipped config into DIR")
    w.add_argument("dir", type=Path)
    w.add_argument("--repo", type=Path, default=REPO)
    c = sub.add_parser("compare", help="compare two directories written by 'write'")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--rename", action="append", default=[], help="OLD=NEW rule name")
    args = parser.parse_args(argv)
    if args.command == "write":
        write(args.dir, args.repo.resolve())
        return 0
    renames = dict(r.split("=", 1) for r in args.rename)
    return 1 if compare(args.before, args.after, renames) else 0


if __name__ == "__main__":
    sys.exit(main())
