"""The development cohort's page: every tuning run's headline numbers side by side, from their TSVs.

Usage: .venv/bin/python benchmarks/tuning_page.py --out docs/results/development.md
       --title "..." LABEL=RUN_DIR [LABEL=RUN_DIR ...] [--note "what the runs vary"]

Each RUN_DIR is a workflow directory (with results/) of a run on the development cohort
(configs/development.yaml), e.g. the same cohort with one default changed. For each run the page shows
the registration study's test metrics per arm (mean, SD, runs, splits; from
results/models/registration/summary.tsv) and, where the run has it, the primary method's enrichment
in the planted effect over the positive group's test subjects of the syn arm (mean over runs, range of
the per-run means; from results/stats/registration/reg-syn_enrichment.tsv). Nothing on the page is
typed: rerun this script after the runs to refresh it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mrixai.results_page import GENERATED_NOTE, headline, markdown_table  # noqa: E402


def enrichment_summary(results: Path, method: str, positive_group: str) -> pd.DataFrame:
    """Mean, min and max over runs of the per-run mean enrichment (positive group, syn arm)."""
    path = results / "stats" / "registration" / "reg-syn_enrichment.tsv"
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path, sep="\t")
    table = table[(table["method"] == method) & (table["group"] == positive_group)]
    per_run = table.groupby("run")["enrichment"].mean()
    return pd.DataFrame(
        [{"method": method, "runs": len(per_run), "enrichment mean": per_run.mean(),
          "min over runs": per_run.min(), "max over runs": per_run.max()}]
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="LABEL=RUN_DIR")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--title", default="Development cohort")
    ap.add_argument("--note", default="")
    ap.add_argument("--method", default="lrpb0")
    ap.add_argument("--positive-group", default="AD")
    args = ap.parse_args(argv)
    parts = [f"# {args.title}\n", f"_{GENERATED_NOTE} (benchmarks/tuning_page.py)_\n"]
    if args.note:
        parts.append(args.note + "\n")
    for item in args.runs:
        label, _, run_dir = item.partition("=")
        results = Path(run_dir) / "results"
        summary = results / "models" / "registration" / "summary.tsv"
        parts.append(f"## {label}\n")
        if not summary.is_file():
            parts.append("(no registration summary yet)\n")
            continue
        parts.append("Registration study, test metrics per arm:\n")
        parts.append(markdown_table(headline(pd.read_csv(summary, sep="\t"))))
        enrich = enrichment_summary(results, args.method, args.positive_group)
        if len(enrich):
            parts.append("\nSyn arm, enrichment of positive relevance in the planted effect:\n")
            parts.append(markdown_table(enrich))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts))
    print(args.out.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
