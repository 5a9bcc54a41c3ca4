"""Young vs old on the real IXI sample: configs/ixi.yaml (every study) run in a work folder.

Usage: .venv/bin/python benchmarks/ixi_age.py --workdir DIR [--bids ../shared/data/ixi_sample]
       [--cores 2] [--target all] [--dry-run]

Runs the workflow with configs/ixi.yaml (young: age < 35, old: age >= 55, subject-level stratified
5-fold cross-validation, 2 trainings per fold, every study; see docs/datasets.md) on the IXI sample
in DIR, the same as `snakemake --cores 2 --configfile configs/ixi.yaml --config bids_dir=...`
run there. Outputs already in DIR are reused. Afterwards it prints each fold's test balanced
accuracy and the mean per arm from results/models/registration/summary.tsv, and, where the
attribution tables exist, the regions with the highest mean relevance density of the primary
method among the old and among the young test subjects.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "ixi.yaml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--bids", type=Path, default=ROOT.parent / "shared" / "data" / "ixi_sample")
    ap.add_argument("--cores", default="2")
    ap.add_argument("--target", default="all", help="workflow target (all, preprocess, train, attribute, ...)")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if not args.bids.is_dir():
        print(f"IXI sample not found at {args.bids}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", args.target, "--cores", args.cores, "--rerun-incomplete",
           "--snakefile", str(ROOT / "Snakefile"), "--directory", str(args.workdir),
           "--configfile", str(CONFIG), "--config", f"bids_dir={args.bids.resolve()}"]
    if args.dry_run:
        cmd.append("-n")
    subprocess.run(cmd, check=True)
    if args.dry_run:
        return 0
    results = args.workdir / "results"
    summary_tsv = results / "models" / "registration" / "summary.tsv"
    if summary_tsv.is_file():
        summary = pd.read_csv(summary_tsv, sep="\t")
        cols = ["variant", "split", "seed", "balanced_accuracy", "sensitivity", "specificity", "roc_auc", "best_epoch"]
        print(summary[cols].round(3).to_string(index=False))
        print(summary.groupby("variant")[["balanced_accuracy", "roc_auc"]].agg(["mean", "std"]).round(3))
    config = yaml.safe_load(CONFIG.read_text())
    method = config["analysis"]["primary_method"]
    for table_tsv in sorted((results / "attribution" / "registration").glob("reg-*_regions.tsv")):
        table = pd.read_csv(table_tsv, sep="\t", dtype={"unit": str, "subject": str})
        table = table[table["method"] == method]
        for group, part in table.groupby("group"):
            # Mean over the test subjects of all folds (each subject is tested once per seed in k-fold CV).
            top = part.groupby("region")["density"].mean().sort_values(ascending=False).head(args.top)
            print(f"{table_tsv.name}, {method}, {group} ({part['unit'].nunique()} test subjects), "
                  "regions by mean relevance density: " + ", ".join(f"{r} {v:.3g}" for r, v in top.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
