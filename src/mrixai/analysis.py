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
    EXACT_LIMIT,
    PAIRED_COLUMNS,
    PERMUTATIONS,
    friedman_test,
    kruskal_dscf,
    mean_roc,
    paired_tests,
    roc_curves_from_metrics,
    tissue_model_tests,
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
    *,
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> None:
    """Exact Wilcoxon signed-rank between every pair of arms (seeds averaged per split, so the unit of
    replication is the split; Holm over all pairs and metrics of the table), an exact (or
    permutation) Friedman test across arms, and each arm's mean ROC curve with its standard error.
    With one arm (e.g. configs/groundtruth.yaml) the Wilcoxon table has its columns and no rows, and
    the Friedman table says why it has no statistic."""
    summary = read_summary(summary_tsv)
    variants = [v for v in ("reg-none", "reg-linear", "reg-syn") if v in set(summary["variant"])]
    if len(variants) >= 2:
        wilcoxon = paired_tests(summary, variants, PERFORMANCE, pair_by=("split",), holm="all")
    else:
        wilcoxon = pd.DataFrame(columns=PAIRED_COLUMNS)
        log.info("registration study: one arm (%s), so no Wilcoxon tests between arms", variants)
    write_tsv(wilcoxon, out_wilcoxon)
    friedman = friedman_test(summary, variants, PERFORMANCE, ("split",), exact_limit, permutations, seed)
    write_tsv(friedman, out_friedman)
    records = [json.loads(Path(p).read_text()) for p in metric_jsons]
    rocs = []
    for variant in variants:
        curves = roc_curves_from_metrics([r for r in records if r["variant"] == variant])
        roc = mean_roc(curves)
        roc.insert(0, "variant", variant)
        rocs.append(roc)
    write_tsv(pd.concat(rocs, ignore_index=True), out_roc)
    log.info("registration study: %d runs of %s tested", len(summary), variants)


def tissue_tests(
    fractions_tsv: str | Path,
    out_kruskal: str | Path,
    out_posthoc: str | Path,
    out_models: str | Path | None = None,
    out_model_friedman: str | Path | None = None,
    out_model_pairs: str | Path | None = None,
    *,
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> None:
    """The tissue study's image sets tested two ways.

    As the paper does (unit: subject): Kruskal-Wallis across the sets' per-subject fractions of
    correct slices, then Steel-Dwass pairs (``out_kruskal``, ``out_posthoc``). At the level of trained
    models (unit: split): each model's mean fraction (and its group-balanced version), seeds
    averaged per split, an exact Friedman test across sets and exact Wilcoxon tests between every
    pair of sets with Holm (``out_models``, ``out_model_friedman``, ``out_model_pairs``; written when
    given).
    """
    fractions = pd.read_csv(fractions_tsv, sep="\t", dtype={"unit": str})
    missing = [c for c in ("set", "unit", "fraction_correct", "split", "seed") if c not in fractions.columns]
    if missing:
        raise ValueError(f"{fractions_tsv}: lacks column(s) {missing}; it has {list(fractions.columns)}")
    if fractions.empty:
        raise ValueError(f"{fractions_tsv}: no rows")
    kw, posthoc = kruskal_dscf(fractions, value="fraction_correct", group="set", subject="unit")
    write_tsv(kw, out_kruskal)
    write_tsv(posthoc, out_posthoc)
    outs = (out_models, out_model_friedman, out_model_pairs)
    if any(o is not None for o in outs):
        if any(o is None for o in outs):
            raise ValueError(f"the model-level tissue tables need all three outputs, got {outs}")
        models, friedman, pairs = tissue_model_tests(
            fractions, "fraction_correct", "set", "unit", exact_limit, permutations, seed
        )
        write_tsv(models, out_models)
        write_tsv(friedman, out_model_friedman)
        write_tsv(pairs, out_model_pairs)
        log.info("tissue study at model level: %d models, Friedman p %s over %s split(s)", len(models),
                 friedman["p_value"].round(4).tolist(), friedman["n"].tolist())


COMPARISONS = {
    "pif": ("model-baseline", "model-pif"),
    "transfer": ("init-scratch", "init-finetune"),
}
COMPARISON_METRICS = ("balanced_accuracy", "roc_auc", "sensitivity", "specificity", "wall_time_s", "epochs_run",
                      "best_epoch")


def compare_variants(
    study: str,
    summary_tsv: str | Path,
    out_tsv: str | Path,
    *,
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """PIF vs baseline, or fine-tuning vs training from scratch: time, epochs and accuracy, with seeds
    averaged per split (unit of replication: the split) and Holm over the metrics."""
    if study not in COMPARISONS:
        raise ValueError(f"no variant comparison is defined for study {study!r}; valid: {sorted(COMPARISONS)}")
    a, b = COMPARISONS[study]
    summary = read_summary(summary_tsv)
    metrics = [m for m in COMPARISON_METRICS if m in summary.columns]
    absent = sorted(set(COMPARISON_METRICS) - set(metrics))
    if absent:
        log.info("%s: %s lacks metric(s) %s: not compared", study, summary_tsv, absent)
    table = variant_comparison(summary, a, b, metrics, ("split",), exact_limit, permutations, seed)
    write_tsv(table, out_tsv)
    return table
