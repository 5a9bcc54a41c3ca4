"""How long Snakemake takes to plan the whole DAG for a large cohort (a dry run, no job runs).

Usage: .venv/bin/python benchmarks/dryrun_scale.py [--subjects 1000] [--bids] [--workdir DIR]

Runs `snakemake -n --quiet rules` on the shipped config.yaml twice in the same invocation: once as shipped
(the baseline, 48 synthetic subjects) and once with `synthetic.n_subjects` set to --subjects
(every arm, study, split and attribution run stays as configured). Prints wall time, the number of
jobs planned, milliseconds per job and the ratio to the baseline. With --bids it also writes a
BIDS dataset of --subjects small but valid T1w images and times two dry runs on it: the first
indexes and validates every image (the validation cache is empty), the second reads the cache.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"


def total_jobs(output: str) -> int:
    """The 'total' line of the dry run's job stats."""
    match = re.search(r"^total\s+(\d+)\s*$", output, re.M)
    if not match:
        raise RuntimeError(f"no job stats in the dry run's output:\n{output[-2000:]}")
    return int(match.group(1))


def job_counts(output: str) -> dict[str, int]:
    """The dry run's job stats as {rule: count}."""
    block = output.split("Job stats:", 1)[-1].split("total", 1)[0]
    return {p[0]: int(p[1]) for p in (line.split() for line in block.splitlines()) if len(p) == 2 and p[1].isdigit()}


def dry_run(workdir: Path, overrides: dict | None = None) -> tuple[float, dict[str, int], int]:
    """Time one `snakemake -n` in ``workdir``; returns (seconds, job counts, total jobs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    # --quiet rules: plan every job but print only the job stats (printing 10,000 jobs costs ~8 s)
    cmd = [str(SNAKEMAKE), "-n", "--quiet", "rules", "--cores", "2", "--snakefile", str(REPO / "Snakefile"),
           "--configfile", str(REPO / "config.yaml")]
    if overrides:
        extra = workdir / "overrides.yaml"
        extra.write_text(yaml.safe_dump(overrides))
        cmd.append(str(extra))
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"dry run failed in {workdir}:\n{proc.stderr[-3000:]}")
    return seconds, job_counts(proc.stdout), total_jobs(proc.stdout)


def write_bids(root: Path, n: int, seed: int = 0) -> Path:
    """A BIDS dataset of ``n`` subjects with small, valid T1w heads (4 mm, an ellipsoid with noise)."""
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (40, 48, 40)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    head = ((grid**2).sum(0) < 0.8).astype(np.float32) * 800
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = -np.array(shape) * 2.0
    rows = ["participant_id\tage\tsex\tdiagnosis"]
    for i in range(1, n + 1):
        sub = f"sub-{i:04d}"
        anat = root / sub / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        data = (head + rng.normal(0, 20, shape)).astype(np.int16)
        nib.save(nib.Nifti1Image(data, affine), anat / f"{sub}_T1w.nii.gz")
        rows.append(f"{sub}\t{50 + i % 40}\t{'MF'[i % 2]}\t{('CN', 'AD')[i % 2]}")
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    (root / "dataset_description.json").write_text('{"Name": "dry-run scale", "BIDSVersion": "1.8.0"}\n')
    return root


def report(name: str, seconds: float, total: int, base: tuple[float, int] | None) -> None:
    per_job = 1000 * seconds / max(total, 1)
    ratio = "" if base is None else f"  {seconds / base[0]:5.2f}x time, {per_job / (1000 * base[0] / base[1]):4.2f}x per job"
    print(f"{name:44s} {seconds:7.1f} s  {total:6d} jobs  {per_job:6.2f} ms/job{ratio}", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--bids", action="store_true", help="also time a BIDS dataset of --subjects images")
    ap.add_argument("--workdir", type=Path, default=None, help="scratch directory (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        n_default = yaml.safe_load((REPO / "config.yaml").read_text())["synthetic"]["n_subjects"]
        base_s, _, base_total = dry_run(work / "baseline")
        report(f"synthetic, {n_default} subjects (shipped config)", base_s, base_total, None)
        big_s, counts, big_total = dry_run(work / "synthetic", {"synthetic": {"n_subjects": args.subjects}})
        report(f"synthetic, {args.subjects} subjects", big_s, big_total, (base_s, base_total))
        print(f"  register_syn jobs {counts.get('register_syn')}, train_volume_model {counts.get('train_volume_model')}, "
              f"attribute_model {counts.get('attribute_model')}")
        if args.bids:
            bids = write_bids(work / "bids", args.subjects)
            cfg = {"dataset": "bids", "bids_dir": str(bids)}
            first_s, _, first_total = dry_run(work / "bids_run", cfg)
            report(f"BIDS, {args.subjects} subjects, validation (1st)", first_s, first_total, (base_s, base_total))
            second_s, _, second_total = dry_run(work / "bids_run", cfg)
            report(f"BIDS, {args.subjects} subjects, cached (2nd)", second_s, second_total, (base_s, base_total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
