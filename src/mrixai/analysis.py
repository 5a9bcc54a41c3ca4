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

from mrixai.explain.aggregate import parse_run, run_mean_maps
from mrixai.explain.robustness import method_overlap, pairwise_l2, topk_overlap
from mrixai.io import atomic_path
from mrixai.stats import (
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
    arms, and each arm's mean ROC curve with its standard error."""
    summary = read_summary(summary_tsv)
    variants = [v for v in ("reg-none", "reg-linear", "reg-syn") if v in set(summary["variant"])]
    write_tsv(paired_tests(summary, variants, PERFORMANCE, pair_by=("split",)), out_wilcoxon)
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


def _runs_by_split(runs) -> dict[int, list[str]]:
    """Run names (``split-<s>_seed-<r>``) grouped by split, in seed order."""
    out: dict[int, list[str]] = {}
    for name in sorted(runs, key=parse_run):
        out.setdefault(parse_run(name)[0], []).append(name)
    return out


def robustness_tables(
    regions_tsv: str | Path,
    maps_dir: str | Path,
    methods: Sequence[str],
    beta_methods: Sequence[str],
    out_l2: str | Path,
    out_topk: str | Path,
    out_overlap: str | Path,
    *,
    k: int = 10,
    metrics: Sequence[str] = ("sum_abs", "density", "gain"),
    group: str | None = None,
) -> None:
    """The robustness tables of Eitel & Ritter over a variant's identical retrainings.

    Identical retrainings are the runs of one split (same training data, different seeds); pairs
    are only formed within a split. Per method: the L2 distance between the max-scaled mean maps
    of each pair, and the mean top-k region intersection per metric; plus the top-k overlap
    between LRP beta values (all runs' subjects).
    """
    regions = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    l2 = []
    for method in methods:
        runs = run_mean_maps(maps_dir, method)
        for split, names in _runs_by_split(runs).items():
            if len(names) < 2:
                continue
            table = pairwise_l2({name: runs[name] for name in names})
            table.insert(0, "method", method)
            table.insert(1, "split", split)
            l2.append(table)
    l2 = (
        pd.concat(l2, ignore_index=True)
        if l2
        else pd.DataFrame(columns=["method", "split", "run_a", "run_b", "l2"])
    )
    if l2.empty:
        log.warning("no split has two runs: no identical retrainings to compare (splits.n_repeats < 2?)")
    write_tsv(l2, out_l2)
    topk = []
    for split, names in _runs_by_split({run: None for run in regions["run"].unique()}).items():
        if len(names) < 2:
            continue
        tables = {run: regions[regions["run"] == run] for run in names}
        for metric in metrics:
            table = topk_overlap(tables, metric, k=k, group=group)
            table.insert(0, "split", split)
            topk.append(table)
    topk = (
        pd.concat(topk, ignore_index=True)
        if topk
        else pd.DataFrame(columns=["split", "method", "metric", "k", "n_runs", "n_pairs", "mean_overlap", "sd_overlap"])
    )
    write_tsv(topk, out_topk)
    overlaps = []
    if len(beta_methods) >= 2:
        for metric in metrics:
            table = method_overlap(regions, list(beta_methods), metric, k=k, group=group)
            table.insert(0, "metric", metric)
            overlaps.append(table)
    overlap = (
        pd.concat(overlaps, ignore_index=True)
        if overlaps
        else pd.DataFrame(columns=["metric", "method_a", "method_b", "overlap"])
    )
    write_tsv(overlap, out_overlap)
    log.info("robustness: %d L2 pairs, %d top-%d rows, %d beta-overlap rows", len(l2), len(topk), k, len(overlap))
