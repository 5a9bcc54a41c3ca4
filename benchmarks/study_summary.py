"""Print what the trained studies measured: per-variant means and paired differences.

Usage: .venv/bin/python benchmarks/study_summary.py RESULTS_DIR

Reads RESULTS_DIR/models/<study>/summary.tsv (written by the workflow's `train` target) and
prints, for each study, the mean and standard deviation of the test metrics per variant, and for
the registration study the differences in balanced accuracy between arms paired by split and
seed (the same test subjects and training seed), e.g. linear - none.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pandas as pd

METRICS = ["balanced_accuracy", "sensitivity", "specificity", "roc_auc", "best_epoch", "epochs_run", "wall_time_s"]


def paired_differences(summary: pd.DataFrame, metric: str = "balanced_accuracy") -> pd.DataFrame:
    """Differences of ``metric`` between every pair of variants, matched on (split, seed)."""
    wide = summary.pivot_table(index=["split", "seed"], columns="variant", values=metric)
    rows = []
    for a, b in itertools.combinations(sorted(wide.columns), 2):
        diff = (wide[b] - wide[a]).dropna()
        rows.append({"comparison": f"{b} - {a}", "pairs": len(diff), "mean": diff.mean(), "std": diff.std(),
                     "min": diff.min(), "max": diff.max(), "n_positive": int((diff > 0).sum()),
                     "n_negative": int((diff < 0).sum())})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    args = ap.parse_args(argv)
    pd.set_option("display.width", 160)
    for path in sorted((args.results / "models").glob("*/summary.tsv")):
        summary = pd.read_csv(path, sep="\t")
        study = path.parent.name
        cols = [c for c in METRICS if c in summary]
        print(f"\n== {study}: {len(summary)} runs ==")
        print(summary.groupby("variant")[cols].agg(["mean", "std"]).round(3).to_string())
        if study in ("registration", "pif", "transfer"):
            print(paired_differences(summary).round(3).to_string(index=False))
        if study == "tissue" and "mean_fraction_correct_slices" in summary:
            print(summary.groupby("variant")["mean_fraction_correct_slices"].agg(["mean", "std"]).round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
