"""Does a result of the default job hold on a cohort nobody looked at? The registration study and the
ground-truth check on the embedded synthetic cohort drawn with any seed.

Usage: .venv/bin/python benchmarks/cohort_check.py --seed N --workdir DIR
       [--reference EVAL_RESULTS] [--configfile FILE ...] [--cores 2] [--page OUT.md] [--dry-run]

Runs the workflow in DIR on the default config (plus any --configfile overlays) with ``seed: N``: a new
cohort (subjects, poses, anatomy, severities), new splits and new initialisations. Only the registration
study runs, and only the primary attribution method (``analysis.primary_method``) is computed for its
ground-truth check on the syn arm. It then prints and writes (DIR/cohort-check.tsv and a Markdown page):

- each registration arm's test balanced accuracy (mean, SD, runs) and the arms' order;
- the syn arm's enrichment of the primary method's positive relevance in the planted effect (mean over
  runs, and the range of the per-run means), and the planted regions' ranks;

and, with --reference (the ``results`` folder of the evaluation cohort's default job), the same numbers of
that run beside them, so anyone can see whether the defaults were tuned to the evaluation cohort. Use a
seed that was used for nothing else (the development cohort's seed is in configs/development.yaml; the
evaluation cohort's is ``seed`` in config.yaml).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mrixai.results_page import markdown_table  # noqa: E402


def overlay(seed: int, primary: str, methods: dict) -> dict:
    """The config overlay: the registration study alone, one attribution method, seed ``seed``."""
    return {
        "seed": seed,
        "studies": {s: {"enabled": False} for s in ("tissue", "pif", "transfer", "masking")},
        "attribution": {"studies": ["registration"], "methods": {primary: methods[primary]}},
        "analysis": {"primary_method": primary, "randomisation": {"methods": [primary]}},
    }


def targets(arms: list[str]) -> list[str]:
    out = ["results/models/registration/summary.tsv"]
    if "syn" in arms:
        out += [
            "results/stats/registration/reg-syn_enrichment.tsv",
            "results/stats/registration/reg-syn_planted-ranks.tsv",
        ]
    return out


def arm_table(results: Path) -> pd.DataFrame:
    """Per arm: mean, SD and number of runs of the test balanced accuracy, best arm first."""
    summary = pd.read_csv(results / "models" / "registration" / "summary.tsv", sep="\t")
    table = summary.groupby("variant")["balanced_accuracy"].agg(["mean", "std", "count"]).reset_index()
    table.columns = ["arm", "balanced_accuracy_mean", "balanced_accuracy_sd", "runs"]
    return table.sort_values("balanced_accuracy_mean", ascending=False, kind="stable").reset_index(drop=True)


def enrichment_table(results: Path, method: str, positive_group: str) -> pd.DataFrame:
    """The syn arm's per-run mean enrichment of ``method`` over the positive group's test subjects."""
    path = results / "stats" / "registration" / "reg-syn_enrichment.tsv"
    if not path.is_file():
        return pd.DataFrame(columns=["run", "enrichment"])
    table = pd.read_csv(path, sep="\t")
    table = table[(table["method"] == method) & (table["group"] == positive_group)]
    return table.groupby("run")["enrichment"].mean().reset_index()


def ranks_table(results: Path, method: str) -> pd.DataFrame:
    path = results / "stats" / "registration" / "reg-syn_planted-ranks.tsv"
    if not path.is_file():
        return pd.DataFrame()
    table = pd.read_csv(path, sep="\t")
    return table[table["method"] == method] if "method" in table else table


def describe(results: Path, method: str, positive_group: str, label: str) -> pd.DataFrame:
    """One row per arm (balanced accuracy) plus one for the syn arm's enrichment, labelled ``label``."""
    arms = arm_table(results)
    rows = [
        {"cohort": label, "quantity": f"{a.arm} balanced accuracy", "mean": a.balanced_accuracy_mean,
         "sd": a.balanced_accuracy_sd, "min": None, "max": None, "runs": a.runs}
        for a in arms.itertuples()
    ]
    enrich = enrichment_table(results, method, positive_group)
    if len(enrich):
        rows.append({"cohort": label, "quantity": f"reg-syn {method} enrichment in the planted effect",
                     "mean": enrich["enrichment"].mean(), "sd": enrich["enrichment"].std(ddof=1),
                     "min": enrich["enrichment"].min(), "max": enrich["enrichment"].max(), "runs": len(enrich)})
    rows.append({"cohort": label, "quantity": "arm order (best first)", "mean": None, "sd": None, "min": None,
                 "max": None, "runs": None, "order": " > ".join(arms["arm"])})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--reference", type=Path, help="results/ folder of the evaluation cohort's default job")
    ap.add_argument("--configfile", type=Path, nargs="*", default=[], help="overlays after config.yaml")
    ap.add_argument("--cores", default="2")
    ap.add_argument("--page", type=Path, help="where to write the Markdown page (default DIR/cohort-check.md)")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for extra in args.configfile:
        config.update(yaml.safe_load(extra.read_text()) or {})
    primary = config["analysis"]["primary_method"]
    positive = list(config["label"]["groups"])[1]
    arms = list(config["studies"]["registration"]["arms"])
    args.workdir.mkdir(parents=True, exist_ok=True)
    over = args.workdir / "cohort_check.yaml"
    over.write_text(yaml.safe_dump(overlay(args.seed, primary, config["attribution"]["methods"])))
    configfiles = [str(ROOT / "config.yaml"), *map(str, args.configfile), str(over)]
    cmd = [sys.executable, "-m", "snakemake", *targets(arms), "--cores", args.cores, "--rerun-incomplete",
           "--snakefile", str(ROOT / "Snakefile"), "--directory", str(args.workdir), "--configfile", *configfiles]
    if args.dry_run:
        cmd.append("-n")
    subprocess.run(cmd, check=True)
    if args.dry_run:
        return 0
    table = describe(args.workdir / "results", primary, positive, f"seed {args.seed}")
    if args.reference:
        table = pd.concat([table, describe(args.reference, primary, positive, "evaluation cohort")], ignore_index=True)
    table.to_csv(args.workdir / "cohort-check.tsv", sep="\t", index=False, float_format="%.6g")
    ranks = ranks_table(args.workdir / "results", primary)
    page = args.page or args.workdir / "cohort-check.md"
    text = (
        f"# Cohort check: seed {args.seed}\n\n_Generated by `benchmarks/cohort_check.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}` from cohort-check.tsv; do not edit by hand._\n\n"
        + markdown_table(table.fillna(""))
        + (f"\n## Planted regions' ranks (seed {args.seed}, {primary})\n\n" + markdown_table(ranks) if len(ranks) else "")
    )
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
