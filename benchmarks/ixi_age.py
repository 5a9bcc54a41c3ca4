"""Young vs old on the real IXI sample: the registration study's CNN on the syn arm, 5-fold CV.

Usage: .venv/bin/python benchmarks/ixi_age.py --workdir DIR [--bids ../shared/data/ixi_sample]
       [--arms syn] [--cores 2] [--explain] [--dry-run]

Runs the workflow's `train` target in DIR with dataset=bids on the IXI sample, groups
young (age < 35) and old (age >= 55), subject-level stratified 5-fold cross-validation, only the
registration study, then prints each fold's test balanced accuracy and the mean per arm from
results/models/registration/summary.tsv. Preprocessing outputs already in DIR are reused.

With --explain it also explains every fold's test subjects (attribution.methods of config.yaml),
measures the atlas regions and draws the top-regions figure of each arm, then prints the regions
with the highest mean LRP (beta 0) density among the old test subjects (the positive group) and
among the young ones, from results/attribution/registration/reg-<arm>_regions.tsv.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]


def ixi_config(bids: Path, arms: list[str]) -> dict:
    """The config overlay of this benchmark."""
    return {
        "dataset": "bids",
        "bids_dir": str(bids.resolve()),
        "label": {"column": "age", "groups": {"young": "age < 35", "old": "age >= 55"}},
        "splits": {"method": "kfold", "n_splits": 5, "n_repeats": 1, "val_fraction": 0.2},
        "studies": {
            "registration": {"enabled": True, "arms": arms},
            "tissue": {"enabled": False},
            "pif": {"enabled": False},
            "transfer": {"enabled": False},
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--bids", type=Path, default=ROOT.parent / "shared" / "data" / "ixi_sample")
    ap.add_argument("--arms", nargs="+", default=["syn"])
    ap.add_argument("--cores", default="2")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--method", default="lrpb0", help="attribution method whose top regions are printed")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    if not args.bids.is_dir():
        print(f"IXI sample not found at {args.bids}", file=sys.stderr)
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    # A whole config file, not an overlay: Snakemake merges dictionaries of stacked config files,
    # so an overlay could not replace label.groups.
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for key, value in ixi_config(args.bids, args.arms).items():
        if key == "studies":
            for study, settings in value.items():
                config[key][study].update(settings)
        else:
            config[key] = value
    config_path = args.workdir / "ixi_age.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    targets = ["train"]
    if args.explain:
        targets += [f"results/figures/registration_reg-{arm}_top-regions.png" for arm in args.arms]
    cmd = [sys.executable, "-m", "snakemake", *targets, "--cores", args.cores, "--rerun-incomplete", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(args.workdir), "--configfile", str(config_path)]
    if args.dry_run:
        cmd.append("-n")
    subprocess.run(cmd, check=True)
    if args.dry_run:
        return 0
    summary = pd.read_csv(args.workdir / "results" / "models" / "registration" / "summary.tsv", sep="\t")
    cols = ["variant", "split", "seed", "balanced_accuracy", "sensitivity", "specificity", "roc_auc", "best_epoch"]
    print(summary[cols].round(3).to_string(index=False))
    print(summary.groupby("variant")[["balanced_accuracy", "roc_auc"]].agg(["mean", "std"]).round(3))
    if args.explain:
        for arm in args.arms:
            table = pd.read_csv(args.workdir / "results" / "attribution" / "registration" / f"reg-{arm}_regions.tsv",
                                sep="\t", dtype={"unit": str, "subject": str})
            table = table[table["method"] == args.method]
            for group, part in table.groupby("group"):
                # Mean over the test subjects of all folds (each subject is tested once in k-fold CV).
                top = part.groupby("region")["density"].mean().sort_values(ascending=False).head(args.top)
                print(f"reg-{arm}, {args.method}, {group} ({part['unit'].nunique()} test subjects), "
                      "regions by mean relevance density: " + ", ".join(f"{r} {v:.3g}" for r, v in top.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
