"""Statistics of the learning studies: paired tests between variants, Friedman, Kruskal-Wallis with
Steel-Dwass (DSCF) post hoc, PIF / transfer comparisons, mean ROC curves and run descriptions.

Conventions: a *run* is one row of a study's ``summary.tsv`` (one variant, split and seed). Paired tests
pair variants on ``pair_by`` keys (by default the split) after averaging each metric over the remaining
run keys (the seeds), so that repeated trainings on one split count as one block, not as independent
samples. Differences and effect sizes are always "b minus a": positive when ``variant_b`` is larger.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scikit_posthocs as sp
from scipy import stats as ss
from statsmodels.stats.multitest import multipletests

log = logging.getLogger(__name__)

#: Number of points of the default common false-positive-rate grid of :func:`mean_roc`.
ROC_GRID_POINTS = 101

#: Metrics described by default in :func:`describe_runs`.
DEFAULT_METRICS: tuple[str, ...] = ("balanced_accuracy", "sensitivity", "specificity", "roc_auc")

PAIRED_COLUMNS = [
    "metric", "variant_a", "variant_b", "n_pairs", "mean_a", "mean_b", "mean_diff", "median_diff",
    "n_positive", "statistic", "p_value", "effect_size", "p_holm",
]


# ----------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------
def _require_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming the columns of ``df`` that are missing."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def _as_list(values: Sequence[str] | str, what: str) -> list[str]:
    """A non-empty list of names (a single string counts as one name)."""
    out = [values] if isinstance(values, str) else list(values)
    if not out:
        raise ValueError(f"{what} must name at least one column or value, got {values!r}")
    return out


def _check_variants(summary: pd.DataFrame, variants: Sequence[str]) -> list[str]:
    """The variants as a list of distinct names, each present in ``summary``."""
    variants = _as_list(variants, "variants")
    if len(set(variants)) != len(variants):
        raise ValueError(f"variants must be distinct, got {variants}")
    present = set(summary["variant"].astype(str))
    absent = [v for v in variants if v not in present]
    if absent:
        raise ValueError(f"variant(s) {absent} not in the summary (it has {sorted(present)})")
    return variants


def block_means(
    summary: pd.DataFrame, variants: Sequence[str], metric: str, pair_by: Sequence[str] = ("split",)
) -> pd.DataFrame:
    """Mean of ``metric`` per ``pair_by`` block (rows) and variant (columns), averaged over other run keys.

    A block missing for a variant is NaN in that variant's column.
    """
    pair_by = _as_list(pair_by, "pair_by")
    _require_columns(summary, ["variant", metric, *pair_by], "summary")
    sub = summary[summary["variant"].astype(str).isin(variants)]
    table = (
        sub.assign(variant=sub["variant"].astype(str), **{metric: pd.to_numeric(sub[metric], errors="coerce")})
        .groupby([*pair_by, "variant"])[metric]
        .mean()
        .unstack("variant")
    )
    return table.reindex(columns=list(variants))


def rank_biserial_paired(diff: np.ndarray) -> float:
    """Matched-pairs rank-biserial correlation of differences ``diff`` (b - a), in [-1, 1].

    ``(R+ - R-) / (R+ + R-)`` with ranks of ``|diff|`` over the non-zero differences (Kerby 2014);
    0 when every difference is zero, NaN when there is none.
    """
    diff = np.asarray(diff, dtype=float)
    diff = diff[np.isfinite(diff)]
    if diff.size == 0:
        return float("nan")
    nonzero = diff[diff != 0]
    if nonzero.size == 0:
        return 0.0
    ranks = ss.rankdata(np.abs(nonzero))
    r_plus = ranks[nonzero > 0].sum()
    r_minus = ranks[nonzero < 0].sum()
    return float((r_plus - r_minus) / (r_plus + r_minus))


def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """Cliff's delta of ``b`` versus ``a``: P(b > a) - P(b < a) over all pairs, in [-1, 1]."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    a = a[np.isfinite(a)]
    b = b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan")
    diff = b[:, None] - a[None, :]
    return float((np.sign(diff)).sum() / diff.size)


def _wilcoxon(diff: np.ndarray) -> tuple[float, float]:
    """Two-sided Wilcoxon signed-rank test of differences (statistic, p); p = 1 if all are zero."""
    if diff.size == 0:
        return float("nan"), float("nan")
    if np.all(diff == 0):
        return float("nan"), 1.0
    res = ss.wilcoxon(diff, zero_method="wilcox", alternative="two-sided", method="auto")
    return float(res.statistic), float(res.pvalue)


def _holm(p_values: pd.Series) -> pd.Series:
    """Holm-adjusted p-values (NaN stays NaN)."""
    out = pd.Series(np.nan, index=p_values.index, dtype=float)
    ok = p_values.notna()
    if ok.any():
        out[ok] = multipletests(p_values[ok].to_numpy(dtype=float), method="holm")[1]
    return out


# ----------------------------------------------------------------------------------------------
# paired tests between variants (registration arms)
# ----------------------------------------------------------------------------------------------
def paired_tests(
    summary: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split",),
    reference: str | None = None,
) -> pd.DataFrame:
    """Wilcoxon signed-rank tests between variants, paired on ``pair_by`` blocks.

    Each metric is first averaged over the remaining run keys (e.g. seeds) within each block. Pairs are
    all pairs of ``variants`` (in the given order, ``a`` before ``b``) or, with ``reference``, the
    reference (as ``a``) against every other variant. Blocks present for one variant only are dropped
    (and logged). Holm-adjusted p-values are computed per metric over the pairs (``p_holm``).

    Returns one row per (metric, pair) with columns ``metric, variant_a, variant_b, n_pairs, mean_a,
    mean_b, mean_diff, median_diff, n_positive, statistic, p_value, effect_size, p_holm``; ``mean_diff``,
    ``median_diff``, ``n_positive`` and ``effect_size`` (matched-pairs rank-biserial) refer to b - a.
    """
    _require_columns(summary, ["variant"], "summary")
    variants = _check_variants(summary, variants)
    metrics = _as_list(metrics, "metrics")
    if len(variants) < 2:
        raise ValueError(f"paired tests need at least 2 variants, got {variants}")
    if reference is not None:
        if reference not in variants:
            raise ValueError(f"reference {reference!r} is not one of the variants {variants}")
        pairs = [(reference, v) for v in variants if v != reference]
    else:
        pairs = list(itertools.combinations(variants, 2))

    rows = []
    for metric in metrics:
        table = block_means(summary, variants, metric, pair_by)
        for a, b in pairs:
            both = table[[a, b]]
            complete = both.dropna()
            n_dropped = len(both) - len(complete)
            if n_dropped:
                log.info("%s: %s vs %s: dropped %d block(s) present for one variant only: %s",
                         metric, a, b, n_dropped, list(both.index.difference(complete.index)))
            diff = (complete[b] - complete[a]).to_numpy(dtype=float)
            statistic, p_value = _wilcoxon(diff)
            rows.append({
                "metric": metric,
                "variant_a": a,
                "variant_b": b,
                "n_pairs": len(complete),
                "mean_a": float(complete[a].mean()) if len(complete) else np.nan,
                "mean_b": float(complete[b].mean()) if len(complete) else np.nan,
                "mean_diff": float(diff.mean()) if diff.size else np.nan,
                "median_diff": float(np.median(diff)) if diff.size else np.nan,
                "n_positive": int((diff > 0).sum()),
                "statistic": statistic,
                "p_value": p_value,
                "effect_size": rank_biserial_paired(diff),
            })
    out = pd.DataFrame(rows, columns=PAIRED_COLUMNS[:-1])
    out["p_holm"] = out.groupby("metric", sort=False)["p_value"].transform(_holm) if len(out) else []
    return out[PAIRED_COLUMNS]


def friedman_test(
    summary: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split",),
) -> pd.DataFrame:
    """Friedman test across variants with ``pair_by`` blocks (seeds averaged first), plus Kendall's W.

    Columns ``metric, n_blocks, k, statistic, p_value, kendall_w, note``; W = chi2 / (n (k - 1)). Needs at
    least 3 variants and 2 complete blocks, otherwise the row holds NaN and ``note`` says why.
    """
    _require_columns(summary, ["variant"], "summary")
    variants = _check_variants(summary, variants)
    metrics = _as_list(metrics, "metrics")
    rows = []
    for metric in metrics:
        table = block_means(summary, variants, metric, pair_by).dropna()
        n, k = len(table), len(variants)
        row = {"metric": metric, "n_blocks": n, "k": k, "statistic": np.nan, "p_value": np.nan,
               "kendall_w": np.nan, "note": ""}
        if k < 3:
            row["note"] = f"Friedman test needs >= 3 variants, got {k}"
        elif n < 2:
            row["note"] = f"Friedman test needs >= 2 complete blocks, got {n}"
        elif np.all(table.to_numpy() == table.to_numpy()[:, :1]):
            row.update(statistic=0.0, p_value=1.0, kendall_w=0.0,
                       note="all variants equal within every block")
        else:
            res = ss.friedmanchisquare(*(table[v].to_numpy(dtype=float) for v in variants))
            row.update(statistic=float(res.statistic), p_value=float(res.pvalue),
                       kendall_w=float(res.statistic) / (n * (k - 1)))
        if row["note"]:
            log.info("Friedman %s: %s", metric, row["note"])
        rows.append(row)
    return pd.DataFrame(rows, columns=["metric", "n_blocks", "k", "statistic", "p_value", "kendall_w", "note"])


# ----------------------------------------------------------------------------------------------
# tissue study: Kruskal-Wallis + Steel-Dwass-Critchlow-Fligner
# ----------------------------------------------------------------------------------------------
def subject_means(
    fractions: pd.DataFrame, value: str = "fraction_correct", group: str = "set", subject: str = "unit"
) -> pd.DataFrame:
    """Mean of ``value`` per (group, subject) over splits and seeds; columns group, subject, value."""
    _require_columns(fractions, [value, group, subject], "fractions")
    df = fractions[[group, subject, value]].copy()
    df[value] = pd.to_numeric(df[value], errors="coerce")
    df[group] = df[group].astype(str)
    df[subject] = df[subject].astype(str)
    return df.dropna(subset=[value]).groupby([group, subject], as_index=False, sort=True)[value].mean()


def kruskal_dscf(
    fractions: pd.DataFrame, value: str = "fraction_correct", group: str = "set", subject: str = "unit"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kruskal-Wallis across groups and Steel-Dwass-Critchlow-Fligner pairwise comparisons.

    ``value`` is first averaged per (group, subject) over splits/seeds, so each subject counts once per
    group. Returns ``(kw, posthoc)``: ``kw`` is one row (``value, n_groups, n, H, p_value,
    epsilon_squared, note``; epsilon^2 = H / (n - 1)); ``posthoc`` has one row per pair of groups
    (``group_a, group_b, n_a, n_b, median_a, median_b, p_value, effect_size``), the effect size being
    Cliff's delta of b versus a.
    """
    means = subject_means(fractions, value, group, subject)
    groups = sorted(means[group].unique())
    samples = {g: means.loc[means[group] == g, value].to_numpy(dtype=float) for g in groups}
    n = len(means)
    kw = {"value": value, "n_groups": len(groups), "n": n, "H": np.nan, "p_value": np.nan,
          "epsilon_squared": np.nan, "note": ""}
    if len(groups) < 2:
        kw["note"] = f"Kruskal-Wallis needs >= 2 groups, got {groups}"
    elif np.unique(means[value]).size == 1:
        kw.update(H=0.0, p_value=1.0, epsilon_squared=0.0, note="all values identical")
    else:
        res = ss.kruskal(*samples.values())
        kw.update(H=float(res.statistic), p_value=float(res.pvalue), epsilon_squared=float(res.statistic) / (n - 1))
    if kw["note"]:
        log.info("Kruskal-Wallis on %s: %s", value, kw["note"])

    if len(groups) >= 2 and np.unique(means[value]).size > 1:
        matrix = sp.posthoc_dscf(means, val_col=value, group_col=group)
    else:
        matrix = pd.DataFrame(1.0, index=groups, columns=groups)  # no differences to test
    rows = []
    for a, b in itertools.combinations(groups, 2):
        rows.append({
            "group_a": a,
            "group_b": b,
            "n_a": samples[a].size,
            "n_b": samples[b].size,
            "median_a": float(np.median(samples[a])),
            "median_b": float(np.median(samples[b])),
            "p_value": float(matrix.loc[a, b]),
            "effect_size": cliffs_delta(samples[a], samples[b]),
        })
    posthoc = pd.DataFrame(rows, columns=["group_a", "group_b", "n_a", "n_b", "median_a", "median_b",
                                          "p_value", "effect_size"])
    return pd.DataFrame([kw]), posthoc


# ----------------------------------------------------------------------------------------------
# PIF vs baseline, fine-tune vs scratch
# ----------------------------------------------------------------------------------------------
def variant_comparison(
    summary: pd.DataFrame,
    variant_a: str,
    variant_b: str,
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split", "seed"),
) -> pd.DataFrame:
    """Compare two variants per metric: Wilcoxon on paired runs when every run has its partner, else
    Mann-Whitney U on all runs.

    Columns ``metric, variant_a, variant_b, test, n_a, n_b, mean_a, mean_b, sd_a, sd_b, ratio, statistic,
    p_value, effect_size``; ``ratio`` = mean_b / mean_a; ``effect_size`` is the matched-pairs
    rank-biserial correlation (Wilcoxon) or Cliff's delta (Mann-Whitney), positive when b > a.
    """
    pair_by = _as_list(pair_by, "pair_by")
    metrics = _as_list(metrics, "metrics")
    _require_columns(summary, ["variant", *pair_by, *metrics], "summary")
    _check_variants(summary, [variant_a, variant_b])
    rows = []
    for metric in metrics:
        table = block_means(summary, [variant_a, variant_b], metric, pair_by)
        a_all = table[variant_a].dropna()
        b_all = table[variant_b].dropna()
        paired = table.dropna()
        use_pairs = len(paired) >= 1 and len(paired) == len(a_all) == len(b_all)
        if use_pairs:
            a_vals = paired[variant_a].to_numpy(dtype=float)
            b_vals = paired[variant_b].to_numpy(dtype=float)
            statistic, p_value = _wilcoxon(b_vals - a_vals)
            effect = rank_biserial_paired(b_vals - a_vals)
            test = "wilcoxon"
        else:
            a_vals = a_all.to_numpy(dtype=float)
            b_vals = b_all.to_numpy(dtype=float)
            log.info("%s: %s (%d runs) and %s (%d runs) share %d run(s): unpaired Mann-Whitney U",
                     metric, variant_a, a_vals.size, variant_b, b_vals.size, len(paired))
            if a_vals.size and b_vals.size:
                res = ss.mannwhitneyu(b_vals, a_vals, alternative="two-sided", method="auto")
                statistic, p_value = float(res.statistic), float(res.pvalue)
            else:
                statistic, p_value = float("nan"), float("nan")
            effect = cliffs_delta(a_vals, b_vals)
            test = "mannwhitneyu"
        mean_a = float(np.mean(a_vals)) if a_vals.size else np.nan
        mean_b = float(np.mean(b_vals)) if b_vals.size else np.nan
        rows.append({
            "metric": metric,
            "variant_a": variant_a,
            "variant_b": variant_b,
            "test": test,
            "n_a": a_vals.size,
            "n_b": b_vals.size,
            "mean_a": mean_a,
            "mean_b": mean_b,
            "sd_a": float(np.std(a_vals, ddof=1)) if a_vals.size > 1 else np.nan,
            "sd_b": float(np.std(b_vals, ddof=1)) if b_vals.size > 1 else np.nan,
            "ratio": mean_b / mean_a if np.isfinite(mean_a) and mean_a != 0 else np.nan,
            "statistic": statistic,
            "p_value": p_value,
            "effect_size": effect,
        })
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# ROC curves and descriptions
# ----------------------------------------------------------------------------------------------
def _interp_curve(fpr: np.ndarray, tpr: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """One ROC curve's tpr on ``grid`` (max tpr at repeated fpr; 0 at fpr 0 and 1 at fpr 1)."""
    fpr = np.asarray(fpr, dtype=float).ravel()
    tpr = np.asarray(tpr, dtype=float).ravel()
    if fpr.shape != tpr.shape or fpr.size == 0:
        raise ValueError(f"an ROC curve needs fpr and tpr of one non-zero length, got {fpr.shape} and {tpr.shape}")
    if not (np.all(np.isfinite(fpr)) and np.all(np.isfinite(tpr))):
        raise ValueError("an ROC curve holds non-finite fpr or tpr values")
    if fpr.min() < 0 or fpr.max() > 1 or tpr.min() < 0 or tpr.max() > 1:
        raise ValueError(f"ROC rates must lie in [0, 1], got fpr [{fpr.min()}, {fpr.max()}], "
                         f"tpr [{tpr.min()}, {tpr.max()}]")
    xs = np.unique(fpr)
    ys = np.array([tpr[fpr == x].max() for x in xs])
    out = np.interp(grid, xs, ys)
    out[grid <= 0] = 0.0
    out[grid >= 1] = 1.0
    return out


def mean_roc(
    curves: Sequence[tuple[np.ndarray, np.ndarray]], grid: np.ndarray | None = None
) -> pd.DataFrame:
    """Mean ROC curve over runs on a common false-positive-rate grid.

    Each ``(fpr, tpr)`` curve is interpolated (``np.interp``) onto ``grid`` (default
    ``ROC_GRID_POINTS`` evenly spaced points in [0, 1]); at a repeated fpr the largest tpr is used, and
    tpr is forced to 0 at fpr 0 and to 1 at fpr 1. Returns columns ``fpr, mean_tpr, se_tpr, n_curves``
    (standard error over curves, NaN for a single curve).
    """
    curves = list(curves)
    if not curves:
        raise ValueError("mean_roc needs at least one (fpr, tpr) curve")
    if grid is None:
        grid = np.linspace(0.0, 1.0, ROC_GRID_POINTS)
    grid = np.asarray(grid, dtype=float).ravel()
    if grid.size < 2 or np.any(np.diff(grid) <= 0) or grid[0] < 0 or grid[-1] > 1:
        raise ValueError(f"grid must be strictly increasing within [0, 1] with >= 2 points, got {grid}")
    tprs = np.stack([_interp_curve(fpr, tpr, grid) for fpr, tpr in curves])
    n = tprs.shape[0]
    se = tprs.std(axis=0, ddof=1) / np.sqrt(n) if n > 1 else np.full(grid.size, np.nan)
    return pd.DataFrame({"fpr": grid, "mean_tpr": tprs.mean(axis=0), "se_tpr": se, "n_curves": n})


def describe_runs(
    summary: pd.DataFrame, by: Sequence[str] = ("variant",), metrics: Sequence[str] = DEFAULT_METRICS
) -> pd.DataFrame:
    """Mean, sd, standard error and number of runs per metric and ``by`` group (long format).

    Columns ``*by, metric, mean, sd, se, n``.
    """
    by = _as_list(by, "by")
    metrics = _as_list(metrics, "metrics")
    _require_columns(summary, [*by, *metrics], "summary")
    rows = []
    for keys, sub in summary.groupby(by, sort=True):
        keys = keys if isinstance(keys, tuple) else (keys,)
        for metric in metrics:
            values = pd.to_numeric(sub[metric], errors="coerce").dropna().to_numpy(dtype=float)
            sd = float(np.std(values, ddof=1)) if values.size > 1 else np.nan
            rows.append({**dict(zip(by, keys)), "metric": metric,
                         "mean": float(values.mean()) if values.size else np.nan,
                         "sd": sd, "se": sd / np.sqrt(values.size) if values.size > 1 else np.nan,
                         "n": int(values.size)})
    return pd.DataFrame(rows, columns=[*by, "metric", "mean", "sd", "se", "n"])


def roc_curves_from_metrics(metrics: Sequence[Mapping]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ``(fpr, tpr)`` curves of per-run metrics dicts (as read from ``*_metrics.json``)."""
    curves = []
    for m in metrics:
        roc = m.get("roc") if isinstance(m, Mapping) else None
        if not roc or "fpr" not in roc or "tpr" not in roc:
            keys = sorted(m) if isinstance(m, Mapping) else m
            raise ValueError(f"a metrics record lacks roc.fpr / roc.tpr: keys {keys}")
        curves.append((np.asarray(roc["fpr"], dtype=float), np.asarray(roc["tpr"], dtype=float)))
    return curves
