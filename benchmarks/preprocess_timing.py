"""Per-subject run time of the preprocessing chain, from a run's benchmark files.

Usage: .venv/bin/python benchmarks/preprocess_timing.py RESULTS_DIR [--budget 30]

Prints seconds per rule (median, max) and the full chain (N4, skull strip, affine, Atropos, SyN)
as a ratio to the budget (30 s per subject at 2 mm, 180 s at 1 mm), plus the whole run's wall
time from the first to the last benchmark file written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mrixai.evaluation import chain_times  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a run's results/ folder")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds allowed per subject for the chain")
    args = parser.parse_args()
    times = chain_times(args.results)
    summary = pd.DataFrame({"median_s": times.median(), "max_s": times.max()})
    summary["share_of_chain"] = summary["median_s"] / summary.loc["chain", "median_s"]
    print(f"{len(times)} subjects\n{summary.round(2).to_string()}")
    median = times["chain"].median()
    print(f"\nfull chain: median {median:.1f} s = {median / args.budget:.2f} x the {args.budget:g} s budget; "
          f"max {times['chain'].max():.1f} s")
    stamps = [p.stat().st_mtime for p in (args.results / "benchmarks").rglob("*.tsv")]
    others = sorted({p.parent.name for p in (args.results / "benchmarks").rglob("sub-*.tsv")} - set(times.columns))
    if stamps:
        print(f"benchmark files written over {(max(stamps) - min(stamps)) / 60:.1f} min "
              f"(all rules; the other per-subject rules: {', '.join(others)})")


if __name__ == "__main__":
    main()
