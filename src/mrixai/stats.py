"""Statistics of the learning studies: paired tests between variants, Friedman, Kruskal-Wallis with
Steel-Dwass (DSCF) post hoc, PIF / transfer comparisons, mean ROC curves and run descriptions.

Conventions: a *run* is one row of a study's ``summary.tsv`` (one variant, split and seed). Paired tests
pair variants on ``pair_by`` keys (by default the split) after averaging each metric over the remaining
run keys (the seeds), so that repeated trainings on one split count as one block, not as independent
samples. Differences and effect sizes are always "b minus a": positive when ``variant_b`` is larger.

p-values fit the evidence: with a few blocks (splits) the chi-square and normal approximations are
far off, so paired tests use exact null distributions (all sign flips of the non-zero differences
for the Wilcoxon signed-rank test; all within-block permutations of the ranks for the Friedman test)
and fall back to a Monte-Carlo permutation p, ``(b + 1) / (m + 1)`` from ``m`` random permutations of
which ``b`` are at least as extreme, only when the exact null is too large to enumerate. Every table
names, next to each p, its ``n``, its ``unit`` of replication (``split``, ``subject`` or ``run``)
and its ``method`` (``exact``, ``permutation`` or ``asymptotic``).
"""

from __future__ import annotations

import itertools
import logging
import math
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

#: Largest number of arrangements enumerated for an exact p value (beyond it: Monte Carlo).
EXACT_LIMIT = 1_000_000

#: Random permutations of a Monte-Carlo permutation p value.
PERMUTATIONS = 20_000

#: Decimals kept before comparing values, so that float noise (e.g. 0.3 - 0.2 vs 0.1) makes ties.
DECIMALS = 12

#: How :func:`paired_tests` groups its tests into Holm families.
HOLM_FAMILIES = ("pairs", "metrics", "all")

PAIRED_COLUMNS = [
    "metric", "variant_a", "variant_b", "unit", "n", "n_nonzero", "mean_a", "mean_b", "mean_diff",
    "median_diff", "n_positive", "statistic", "p_value", "method", "p_holm", "effect_size",
]

FRIEDMAN_COLUMNS = [
    "metric", "unit", "n", "k", "statistic", "p_value", "method", "n_arrangements", "kendall_w", "note",
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


def _check_budget(exact_limit: int, permutations: int) -> None:
    if int(exact_limit) < 1:
        raise ValueError(f"exact_limit must be >= 1, got {exact_limit!r}")
    if int(permutations) < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations!r}")


def signed_rank_test(diff: Sequence[float]) -> dict:
    """Two-sided Wilcoxon signed-rank test of paired differences with its exact null distribution.

    Convention: differences are rounded to ``DECIMALS`` decimals; zero differences are no evidence
    either way and are dropped (Wilcoxon's convention); the others are ranked by ``|d|`` with
    mid-ranks for ties. Under the null every one of the ``2^m`` sign patterns of the ``m`` non-zero
    differences is equally likely; ``p`` is the fraction of them whose ``T+`` (sum of the ranks of
    the positive differences) lies at least as far from its mean ``sum(ranks) / 2`` as the observed
    one. The distribution is built by convolution over the differences (each sign flip enumerated
    implicitly), so it is exact with ties and for any ``m``. With no non-zero difference ``p = 1``.

    Returns a dict with ``statistic`` (``min(R+, R-)``, NaN without non-zero differences),
    ``p_value``, ``method`` (``"exact"``), ``n`` (finite differences) and ``n_nonzero``.
    """
    d = np.asarray(diff, dtype=float).ravel()
    d = np.round(d[np.isfinite(d)], DECIMALS)
    out = {"statistic": float("nan"), "p_value": float("nan"), "method": "exact", "n": int(d.size),
           "n_nonzero": 0}
    if d.size == 0:
        return out
    nonzero = d[d != 0]
    out["n_nonzero"] = int(nonzero.size)
    if nonzero.size == 0:
        out["p_value"] = 1.0
        return out
    # mid-ranks are multiples of 1/2: doubled they are integers, so the null is a histogram
    ranks2 = np.rint(2 * ss.rankdata(np.abs(nonzero))).astype(np.int64)
    total = int(ranks2.sum())
    dist = np.zeros(total + 1)
    dist[0] = 1.0
    for r in ranks2:  # each difference positive (shift by its rank) or negative, with probability 1/2
        dist = 0.5 * (dist + np.concatenate([np.zeros(r), dist[:-r]]))
    t_obs = int(ranks2[nonzero > 0].sum())
    support = np.arange(total + 1)
    extreme = np.abs(2 * support - total) >= abs(2 * t_obs - total)
    out["p_value"] = float(min(1.0, dist[extreme].sum()))
    out["statistic"] = min(t_obs, total - t_obs) / 2.0
    return out


def _rank_sum_squares(ranks: np.ndarray) -> np.ndarray:
    """Sum over columns of the squared column sums of rank arrays (..., n, k)."""
    return (ranks.sum(axis=-2) ** 2).sum(axis=-1)


def friedman_permutation(
    table: np.ndarray,
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict:
    """Friedman test of an ``(n blocks, k treatments)`` table with a permutation null.

    Values are ranked within each block (mid-ranks for ties, after rounding to ``DECIMALS``
    decimals). The statistic is Friedman's chi-square with the tie correction,
    ``(12 / (n k (k + 1)) sum_j R_j^2 - 3 n (k + 1)) / (1 - sum (t^3 - t) / (n k (k^2 - 1)))``.
    Under the null every within-block permutation of the ranks is equally likely; the statistic
    is a monotone function of ``sum_j R_j^2`` there, so ``p`` is the fraction of arrangements with
    ``sum_j R_j^2`` at least the observed one. Permuting the columns of every block at once leaves
    the statistic unchanged, so the exact null enumerates the ``(k!)^(n - 1)`` arrangements with the
    first block fixed (the same p as all ``(k!)^n``) when they are at most ``exact_limit``; else
    ``permutations`` random arrangements give ``p = (b + 1) / (m + 1)``.

    Returns a dict with ``statistic``, ``p_value``, ``method`` (``"exact"`` or ``"permutation"``),
    ``n_arrangements`` (enumerated or drawn) and ``kendall_w`` (= chi-square / (n (k - 1))).
    """
    _check_budget(exact_limit, permutations)
    x = np.round(np.asarray(table, dtype=float), DECIMALS)
    if x.ndim != 2 or not np.isfinite(x).all():
        raise ValueError(f"the Friedman table must be 2-D and finite, got shape {x.shape}")
    n, k = x.shape
    if n < 2 or k < 3:
        raise ValueError(f"the Friedman test needs >= 2 blocks and >= 3 treatments, got {n} x {k}")
    ranks = ss.rankdata(x, axis=1)  # mid-ranks within each block
    ties = sum(float((c**3 - c).sum()) for c in (np.unique(row, return_counts=True)[1] for row in x))
    correction = 1.0 - ties / (n * k * (k * k - 1))
    if correction <= 0:  # every block all tied
        return {"statistic": 0.0, "p_value": 1.0, "method": "exact", "n_arrangements": 1, "kendall_w": 0.0}
    # doubled mid-ranks are integers: exact comparisons of sums of squares
    ranks2 = np.rint(2 * ranks).astype(np.int64)
    ss2_obs = int(_rank_sum_squares(ranks2))
    chi2 = (12.0 / (n * k * (k + 1)) * (ss2_obs / 4.0) - 3.0 * n * (k + 1)) / correction
    n_exact = math.factorial(k) ** (n - 1)
    if n_exact <= int(exact_limit):
        orders = np.array(list(itertools.permutations(range(k))))
        # distribution of the column rank-sum vector, block by block, kept as unique rows + counts
        sums, counts = ranks2[:1], np.ones(1)
        for row in ranks2[1:]:
            options = np.unique(row[orders], axis=0)
            weights = np.full(len(options), len(orders) / len(options))
            sums = (sums[:, None, :] + options[None, :, :]).reshape(-1, k)
            counts = (counts[:, None] * weights[None, :]).ravel()
            sums, inverse = np.unique(sums, axis=0, return_inverse=True)
            counts = np.bincount(inverse.ravel(), weights=counts)
        p = float(counts[(sums**2).sum(axis=1) >= ss2_obs].sum() / counts.sum())
        method, used = "exact", n_exact
    else:
        rng = np.random.default_rng(seed)
        hits, done = 0, 0
        while done < int(permutations):
            m = min(2000, int(permutations) - done)
            perm = rng.permuted(np.broadcast_to(ranks2, (m, n, k)), axis=2)
            hits += int((_rank_sum_squares(perm) >= ss2_obs).sum())
            done += m
        p = (hits + 1) / (int(permutations) + 1)
        method, used = "permutation", int(permutations)
    return {"statistic": float(chi2), "p_value": min(1.0, p), "method": method, "n_arrangements": int(used),
            "kendall_w": float(chi2 / (n * (k - 1)))}


def rank_sum_test(
    a: Sequence[float],
    b: Sequence[float],
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> dict:
    """Two-sided Mann-Whitney U test of ``b`` versus ``a`` with a permutation null.

    ``U`` counts pairs with ``b > a`` (ties 1/2), from mid-ranks of the pooled values rounded to
    ``DECIMALS`` decimals. ``p`` is the fraction of relabellings of the pooled values whose
    ``|U - n_a n_b / 2|`` is at least the observed one: all ``C(n_a + n_b, n_b)`` of them when they are
    at most ``exact_limit`` (``method`` ``"exact"``), else ``permutations`` random ones with
    ``p = (b + 1) / (m + 1)`` (``"permutation"``; :func:`scipy.stats.permutation_test`).
    """
    _check_budget(exact_limit, permutations)
    a = np.round(np.asarray(a, dtype=float), DECIMALS)
    b = np.round(np.asarray(b, dtype=float), DECIMALS)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return {"statistic": float("nan"), "p_value": float("nan"), "method": "exact"}
    half = a.size * b.size / 2.0

    def deviation(x, y, axis=-1):
        ranks = ss.rankdata(np.concatenate([x, y], axis=axis), axis=axis)
        u = ranks[..., x.shape[axis]:].sum(axis=axis) - y.shape[axis] * (y.shape[axis] + 1) / 2.0
        return np.abs(u - half)

    exact = math.comb(a.size + b.size, b.size) <= int(exact_limit)
    res = ss.permutation_test((a, b), deviation, permutation_type="independent", vectorized=True,
                              n_resamples=np.inf if exact else int(permutations), alternative="greater",
                              rng=np.random.default_rng(seed))
    u = ss.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic").statistic
    return {"statistic": float(u), "p_value": float(min(1.0, res.pvalue)),
            "method": "exact" if exact else "permutation"}


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
def _unit_of(pair_by: Sequence[str]) -> str:
    """The unit of replication named by the blocking keys (``split`` for ``("split",)``)."""
    keys = _as_list(pair_by, "pair_by")
    if keys == ["split"]:
        return "split"
    if set(keys) >= {"split", "seed"}:
        return "run"
    return "+".join(keys)


def paired_tests(
    summary: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split",),
    reference: str | None = None,
    holm: str = "pairs",
) -> pd.DataFrame:
    """Exact Wilcoxon signed-rank tests between variants, paired on ``pair_by`` blocks.

    Each metric is first averaged over the remaining run keys (e.g. seeds) within each block, so one
    block (by default one split) is one unit of replication. Pairs are all pairs of ``variants`` (in
    the given order, ``a`` before ``b``) or, with ``reference``, the reference (as ``a``) against every
    other variant. Blocks present for one variant only are dropped (and logged). p values come from
    :func:`signed_rank_test` (exact; zero differences dropped). ``p_holm`` is Holm-adjusted within
    each family of ``holm``: ``"pairs"`` (per metric, over the pairs), ``"metrics"`` (per pair, over
    the metrics) or ``"all"`` (over every test of the table).

    Returns one row per (metric, pair) with columns ``PAIRED_COLUMNS``: ``unit`` and ``n`` (complete
    blocks), ``n_nonzero`` (blocks whose difference is not zero), means, ``mean_diff``,
    ``median_diff``, ``n_positive`` and ``effect_size`` (matched-pairs rank-biserial) of b - a, the
    statistic ``min(R+, R-)``, ``p_value``, ``method`` and ``p_holm``.
    """
    _require_columns(summary, ["variant"], "summary")
    variants = _check_variants(summary, variants)
    metrics = _as_list(metrics, "metrics")
    if holm not in HOLM_FAMILIES:
        raise ValueError(f"holm must be one of {HOLM_FAMILIES}, got {holm!r}")
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
            test = signed_rank_test(diff)
            rows.append({
                "metric": metric,
                "variant_a": a,
                "variant_b": b,
                "unit": _unit_of(pair_by),
                "n": len(complete),
                "n_nonzero": test["n_nonzero"],
                "mean_a": float(complete[a].mean()) if len(complete) else np.nan,
                "mean_b": float(complete[b].mean()) if len(complete) else np.nan,
                "mean_diff": float(diff.mean()) if diff.size else np.nan,
                "median_diff": float(np.median(diff)) if diff.size else np.nan,
                "n_positive": int((np.round(diff, DECIMALS) > 0).sum()),
                "statistic": test["statistic"],
                "p_value": test["p_value"],
                "method": test["method"],
                "effect_size": rank_biserial_paired(np.round(diff, DECIMALS)),
            })
    out = pd.DataFrame(rows, columns=[c for c in PAIRED_COLUMNS if c != "p_holm"])
    if len(out):
        if holm == "all":
            out["p_holm"] = _holm(out["p_value"])
        else:
            keys = ["metric"] if holm == "pairs" else ["variant_a", "variant_b"]
            out["p_holm"] = out.groupby(keys, sort=False)["p_value"].transform(_holm)
    else:
        out["p_holm"] = pd.Series(dtype=float)
    return out[PAIRED_COLUMNS]


def friedman_test(
    summary: pd.DataFrame,
    variants: Sequence[str],
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split",),
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """Friedman test across variants with ``pair_by`` blocks (seeds averaged first), plus Kendall's W.

    The p value is exact or a Monte-Carlo permutation p (:func:`friedman_permutation`), not the
    chi-square approximation, which is far off with a few blocks. Columns ``FRIEDMAN_COLUMNS``:
    ``unit`` and ``n`` (complete blocks), ``k`` (variants), the tie-corrected statistic, ``p_value``,
    ``method``, ``n_arrangements`` (enumerated or drawn), ``kendall_w`` = chi2 / (n (k - 1)) and
    ``note``. Needs at least 3 variants and 2 complete blocks, otherwise the row holds NaN and
    ``note`` says why.
    """
    _require_columns(summary, ["variant"], "summary")
    variants = _check_variants(summary, variants)
    metrics = _as_list(metrics, "metrics")
    rows = []
    for metric in metrics:
        table = block_means(summary, variants, metric, pair_by).dropna()
        n, k = len(table), len(variants)
        row = {"metric": metric, "unit": _unit_of(pair_by), "n": n, "k": k, "statistic": np.nan,
               "p_value": np.nan, "method": "", "n_arrangements": 0, "kendall_w": np.nan, "note": ""}
        if k < 3:
            row["note"] = f"Friedman test needs >= 3 variants, got {k}"
        elif n < 2:
            row["note"] = f"Friedman test needs >= 2 complete blocks, got {n}"
        else:
            row.update(friedman_permutation(table.to_numpy(dtype=float), exact_limit, permutations, seed))
            if row["statistic"] == 0 and row["p_value"] == 1 and row["n_arrangements"] == 1:
                row["note"] = "all variants equal within every block"
        if row["note"]:
            log.info("Friedman %s: %s", metric, row["note"])
        rows.append(row)
    return pd.DataFrame(rows, columns=FRIEDMAN_COLUMNS)


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
    group. This is the tissue study's published analysis; it treats subjects as independent
    replicates (``unit`` ``subject``), although each group's values come from a few trained models and
    the same subjects appear in every group, so its p values over-read the evidence about models:
    :func:`tissue_model_tests` is the model-level counterpart. Both p values are asymptotic
    (chi-square for H; the studentized range for Steel-Dwass, :func:`scikit_posthocs.posthoc_dscf`).

    Returns ``(kw, posthoc)``: ``kw`` is one row (``value, unit, n_groups, n, H, p_value, method,
    epsilon_squared, note``; epsilon^2 = H / (n - 1)); ``posthoc`` has one row per pair of groups
    (``group_a, group_b, unit, n, n_a, n_b, median_a, median_b, p_value, method, effect_size``), the
    effect size being Cliff's delta of b versus a.
    """
    means = subject_means(fractions, value, group, subject)
    groups = sorted(means[group].unique())
    samples = {g: means.loc[means[group] == g, value].to_numpy(dtype=float) for g in groups}
    n = len(means)
    kw = {"value": value, "unit": "subject", "n_groups": len(groups), "n": n, "H": np.nan, "p_value": np.nan,
          "method": "asymptotic", "epsilon_squared": np.nan, "note": ""}
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
            "unit": "subject",
            "n": samples[a].size + samples[b].size,
            "n_a": samples[a].size,
            "n_b": samples[b].size,
            "median_a": float(np.median(samples[a])),
            "median_b": float(np.median(samples[b])),
            "p_value": float(matrix.loc[a, b]),
            "method": "asymptotic",
            "effect_size": cliffs_delta(samples[a], samples[b]),
        })
    posthoc = pd.DataFrame(rows, columns=["group_a", "group_b", "unit", "n", "n_a", "n_b", "median_a",
                                          "median_b", "p_value", "method", "effect_size"])
    return pd.DataFrame([kw]), posthoc


TISSUE_MODEL_METRICS = ("fraction_correct", "balanced_fraction_correct")


def tissue_model_values(
    fractions: pd.DataFrame, value: str = "fraction_correct", group: str = "set", subject: str = "unit"
) -> pd.DataFrame:
    """One row per trained model (set, split, seed): its test subjects' mean ``value``.

    Columns ``variant`` (the set), ``split``, ``seed``, ``n_subjects``, ``fraction_correct`` (mean
    per-subject fraction of correct slices) and ``balanced_fraction_correct`` (the mean over
    diagnostic groups of each group's mean, the analogue of balanced accuracy; equal to
    ``fraction_correct`` without a ``group`` column).
    """
    _require_columns(fractions, [value, group, subject, "split", "seed"], "fractions")
    df = fractions.copy()
    df[value] = pd.to_numeric(df[value], errors="coerce")
    df = df.dropna(subset=[value])
    if df.empty:
        raise ValueError(f"fractions hold no finite {value!r} values")
    keys = [group, "split", "seed"]
    out = df.groupby(keys, sort=True).agg(n_subjects=(subject, "nunique"), fraction_correct=(value, "mean"))
    if "group" in df.columns and group != "group":
        per_group = df.groupby([*keys, "group"], sort=True)[value].mean()
        out["balanced_fraction_correct"] = per_group.groupby(level=keys).mean()
    else:
        out["balanced_fraction_correct"] = out["fraction_correct"]
    return out.reset_index().rename(columns={group: "variant"})


def tissue_model_tests(
    fractions: pd.DataFrame,
    value: str = "fraction_correct",
    group: str = "set",
    subject: str = "unit",
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The tissue study's image sets compared at the level of trained models.

    Each (set, split, seed) model gives one value per metric of ``TISSUE_MODEL_METRICS``
    (:func:`tissue_model_values`); seeds are averaged per split, so the unit of replication is the
    split (one split's models of all sets saw the same training and test subjects). Then an exact
    (or permutation) Friedman test across the sets over the splits, and exact Wilcoxon signed-rank
    tests between every pair of sets, Holm-adjusted per metric over the pairs.

    Returns ``(models, friedman, pairs)``: the per-model values, :func:`friedman_test`'s table and
    :func:`paired_tests`' table.
    """
    models = tissue_model_values(fractions, value, group, subject)
    sets = sorted(models["variant"].astype(str).unique())
    friedman = friedman_test(models, sets, TISSUE_MODEL_METRICS, ("split",), exact_limit, permutations, seed)
    if len(sets) >= 2:
        pairs = paired_tests(models, sets, TISSUE_MODEL_METRICS, pair_by=("split",), holm="pairs")
    else:
        pairs = pd.DataFrame(columns=PAIRED_COLUMNS)
    return models, friedman, pairs


# ----------------------------------------------------------------------------------------------
# PIF vs baseline, fine-tune vs scratch
# ----------------------------------------------------------------------------------------------
COMPARISON_COLUMNS = [
    "metric", "variant_a", "variant_b", "test", "unit", "n", "n_a", "n_b", "mean_a", "mean_b", "sd_a", "sd_b",
    "ratio", "statistic", "p_value", "method", "p_holm", "effect_size",
]


def variant_comparison(
    summary: pd.DataFrame,
    variant_a: str,
    variant_b: str,
    metrics: Sequence[str],
    pair_by: Sequence[str] = ("split",),
    exact_limit: int = EXACT_LIMIT,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> pd.DataFrame:
    """Compare two variants per metric over ``pair_by`` blocks (seeds averaged per split first).

    An exact Wilcoxon signed-rank test (:func:`signed_rank_test`) on the paired blocks when every block
    has both variants, else a Mann-Whitney U test (:func:`rank_sum_test`) on all blocks. ``p_holm``
    is Holm-adjusted over the metrics of the comparison (one family).

    Columns ``COMPARISON_COLUMNS``; ``unit`` names the block (``split`` by default), ``n`` the paired
    blocks (Wilcoxon) or all blocks (Mann-Whitney), ``n_a``/``n_b`` the blocks of each variant;
    means and sds are over blocks; ``ratio`` = mean_b / mean_a; ``effect_size`` is the matched-pairs
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
            result = signed_rank_test(b_vals - a_vals)
            effect = rank_biserial_paired(np.round(b_vals - a_vals, DECIMALS))
            test, n = "wilcoxon", len(paired)
        else:
            a_vals = a_all.to_numpy(dtype=float)
            b_vals = b_all.to_numpy(dtype=float)
            log.info("%s: %s (%d blocks) and %s (%d blocks) share %d block(s): unpaired Mann-Whitney U",
                     metric, variant_a, a_vals.size, variant_b, b_vals.size, len(paired))
            result = rank_sum_test(a_vals, b_vals, exact_limit, permutations, seed)
            effect = cliffs_delta(a_vals, b_vals)
            test, n = "mannwhitneyu", a_vals.size + b_vals.size
        mean_a = float(np.mean(a_vals)) if a_vals.size else np.nan
        mean_b = float(np.mean(b_vals)) if b_vals.size else np.nan
        rows.append({
            "metric": metric,
            "variant_a": variant_a,
            "variant_b": variant_b,
            "test": test,
            "unit": _unit_of(pair_by),
            "n": n,
            "n_a": a_vals.size,
            "n_b": b_vals.size,
            "mean_a": mean_a,
            "mean_b": mean_b,
            "sd_a": float(np.std(a_vals, ddof=1)) if a_vals.size > 1 else np.nan,
            "sd_b": float(np.std(b_vals, ddof=1)) if b_vals.size > 1 else np.nan,
            "ratio": mean_b / mean_a if np.isfinite(mean_a) and mean_a != 0 else np.nan,
            "statistic": result["statistic"],
            "p_value": result["p_value"],
            "method": result["method"],
            "effect_size": effect,
        })
    out = pd.DataFrame(rows, columns=[c for c in COMPARISON_COLUMNS if c != "p_holm"])
    out["p_holm"] = _holm(out["p_value"]) if len(out) else pd.Series(dtype=float)
    return out[COMPARISON_COLUMNS]


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


def compare_with_cnn(
    cnn_summary: pd.DataFrame,
    baseline_summary: pd.DataFrame,
    metrics: Sequence[str] = ("balanced_accuracy", "sensitivity", "specificity", "roc_auc"),
) -> pd.DataFrame:
    """The best CNN arm against every classical-baseline feature set, paired by split.

    The best arm is the CNN variant with the highest mean test balanced accuracy (over splits, seeds
    averaged per split first). Per metric, the CNN's seed mean of each split is paired with the
    baseline's value on that split; ``diff`` is CNN minus baseline, and ``p_value`` is the exact
    signed-rank p over splits (:func:`signed_rank_test`).
    """
    for name, table in (("CNN summary", cnn_summary), ("baseline summary", baseline_summary)):
        missing = {"variant", "split", "balanced_accuracy", *metrics} - set(table.columns)
        if missing:
            raise ValueError(f"{name} lacks column(s) {sorted(missing)}")
    per_split = cnn_summary.groupby(["variant", "split"])[list(dict.fromkeys(["balanced_accuracy", *metrics]))].mean()
    ranking = per_split["balanced_accuracy"].groupby("variant").mean().sort_values(ascending=False, kind="stable")
    best = str(ranking.index[0])
    cnn = per_split.loc[best]
    rows = []
    for features, part in baseline_summary.groupby("variant", sort=False):
        base = part.groupby("split")[list(metrics)].mean()
        splits = cnn.index.intersection(base.index)
        for metric in metrics:
            a = cnn.loc[splits, metric].to_numpy(float)
            b = base.loc[splits, metric].to_numpy(float)
            ok = np.isfinite(a) & np.isfinite(b)
            diff = a[ok] - b[ok]
            n = int(ok.sum())
            test = signed_rank_test(diff)
            rows.append({"metric": metric, "cnn_variant": best, "baseline": str(features), "n": n, "unit": "split",
                         "mean_cnn": float(a[ok].mean()) if n else np.nan,
                         "mean_baseline": float(b[ok].mean()) if n else np.nan,
                         "mean_diff": float(diff.mean()) if n else np.nan,
                         "n_cnn_better": int((diff > 0).sum()), "n_baseline_better": int((diff < 0).sum()),
                         "statistic": test["statistic"], "p_value": test["p_value"],
                         "test": "Wilcoxon signed-rank, exact over sign flips",
                         "cnn_selection": "highest mean test balanced accuracy over splits"})
    return pd.DataFrame(rows)
