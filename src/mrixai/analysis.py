"""The statistics rules' entry points: read the study tables, run the tests, write TSVs.

Each function is what one Snakemake rule's script calls; the tests themselves live in
:mod:`mrixai.stats` and :mod:`mrixai.explain.robustness`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mrixai.io import atomic_path
from mrixai.stats import (
    PAIRED_COLUMNS,
    friedman_test,
    kruskal_dscf,
    mean_roc,
    paired_tests,
    roc_curves_from_metrics,
    variant_comparison,
)

log = logging.getLogger(__name__)

PERFORMANCE = ("balanced_accuracy", "sensitivity", "specificity", "roc_auc")


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table atomically (tab-separated, 6 significant digits)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def read_summary(path: str | Path) -> pd.DataFrame:
    """A study's ``summary.tsv`` (one row per run)."""
    df = pd.read_csv(path, sep="\t")
    if df.empty:
        raise ValueError(f"{path}: no runs")
    return df


def registration_tests(
    summary_tsv: str | Path,
    metric_jsons: Sequence[str | Path],
    out_wilcoxon: str | Path,
    out_friedman: str | Path,
    out_roc: str | Path,
) -> None:
    """Wilcoxon signed-rank between every pair of arms (runs averaged per split), Friedman across
    arms, and each arm's mean ROC curve with its standard error. With one arm (e.g.
    configs/groundtruth.yaml) the Wilcoxon table has its columns and no rows, and the Friedman
    table says why it has no statistic."""
    summary = read_summary(summary_tsv)
    variants = [v for v in ("reg-none", "reg-linear", "reg-syn") if v in set(summary["variant"])]
    if len(variants) >= 2:
        wilcoxon = paired_tests(summary, variants, PERFORMANCE, pair_by=("split",))
    else:
        wilcoxon = pd.DataFrame(columns=PAIRED_COLUMNS)
        log.info("registration study: one arm (%s), so no Wilcoxon tests between arms", variants)
    write_tsv(wilcoxon, out_wilcoxon)
    write_tsv(friedman_test(summary, variants, PERFORMANCE, pair_by=("split",)), out_friedman)
    records = [json.loads(Path(p).read_text()) for p in metric_jsons]
    rocs = []
    for variant in variants:
        curves = roc_curves_from_metrics([r for r in records if r["variant"] == variant])
        roc = mean_roc(curves)
        roc.insert(0, "variant", variant)
        rocs.append(roc)
    write_tsv(pd.concat(rocs, ignore_index=True), out_roc)
    log.info("registration study: %d runs of %s tested", len(summary), variants)


def tissue_tests(fractions_tsv: str | Path, out_kruskal: str | Path, out_posthoc: str | Path) -> None:
    """Kruskal-Wallis across the image sets' per-subject fractions, then Steel-Dwass pairs."""
    fractions = pd.read_csv(fractions_tsv, sep="\t", dtype={"unit": str})
    kw, posthoc = kruskal_dscf(fractions, value="fraction_correct", group="set", subject="unit")
    write_tsv(kw, out_kruskal)
    write_tsv(posthoc, out_posthoc)


COMPARISONS = {
    "pif": ("model-baseline", "model-pif"),
    "transfer": ("init-scratch", "init-finetune"),
}
COMPARISON_METRICS = ("balanced_accuracy", "roc_auc", "wall_time_s", "epochs_run", "best_epoch")


def compare_variants(study: str, summary_tsv: str | Path, out_tsv: str | Path) -> pd.DataFrame:
    """PIF vs baseline, or fine-tuning vs training from scratch: time, epochs and accuracy."""
    if study not in COMPARISONS:
        raise ValueError(f"no variant comparison is defined for study {study!r}; valid: {sorted(COMPARISONS)}")
    a, b = COMPARISONS[study]
    table = variant_comparison(read_summary(summary_tsv), a, b, COMPARISON_METRICS)
    write_tsv(table, out_tsv)
    return table
