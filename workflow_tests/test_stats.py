"""Statistics of the learning studies, checked against hand computations on tiny tables."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pandas as pd
import pytest

from mrixai import stats


def _runs(values: dict[str, list[list[float]]], metric: str = "balanced_accuracy") -> pd.DataFrame:
    """A summary table: ``values[variant][split][seed]`` -> one row per run."""
    rows = []
    for variant, per_split in values.items():
        for split, per_seed in enumerate(per_split):
            for seed, v in enumerate(per_seed):
                rows.append({"study": "s", "variant": variant, "split": split, "seed": seed, metric: v})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# paired Wilcoxon tests
# ----------------------------------------------------------------------------------------------
def test_wilcoxon_all_positive_matches_exact_hand_value():
    a = [0.50, 0.55, 0.60, 0.52, 0.58, 0.61]
    diffs = [0.01, 0.02, 0.03, 0.04, 0.05, 0.06]  # all positive, distinct
    summary = _runs({"A": [[x] for x in a], "B": [[x + d] for x, d in zip(a, diffs)]})
    out = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"])
    assert len(out) == 1
    row = out.iloc[0]
    assert row["n"] == 6 and row["unit"] == "split" and row["method"] == "exact"
    # exact two-sided: only the all-positive and all-negative sign patterns are as extreme: 2 / 2^6
    assert row["p_value"] == pytest.approx(2 / 64)
    assert row["statistic"] == 0  # min(R+, R-) with no negative differences
    assert row["effect_size"] == pytest.approx(1.0)
    assert row["n_positive"] == 6
    assert row["mean_diff"] == pytest.approx(np.mean(diffs))
    assert row["median_diff"] == pytest.approx(np.median(diffs))
    assert row["mean_a"] == pytest.approx(np.mean(a))
    assert row["p_holm"] == pytest.approx(2 / 64)  # a single test: Holm changes nothing


def test_wilcoxon_mixed_signs_and_rank_biserial_by_hand():
    # differences 1, -2, 3, 4, 5, 6: ranks 1..6, R- = 2, R+ = 19
    a = np.zeros(6)
    d = np.array([1, -2, 3, 4, 5, 6], dtype=float)
    summary = _runs({"A": [[x] for x in a], "B": [[x] for x in a + d]})
    row = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"]).iloc[0]
    # sign patterns with R- <= 2: {}, {1}, {2} -> 3 of 64, doubled for two sides
    assert row["p_value"] == pytest.approx(6 / 64)
    assert row["statistic"] == 2
    assert row["effect_size"] == pytest.approx((19 - 2) / 21)
    assert row["n_positive"] == 5


def test_effect_size_negative_when_b_smaller():
    summary = _runs({"A": [[1.0], [2.0], [3.0]], "B": [[0.5], [1.5], [2.5]]})
    row = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"]).iloc[0]
    assert row["effect_size"] == pytest.approx(-1.0)
    assert row["n_positive"] == 0
    assert row["mean_diff"] == pytest.approx(-0.5)


def test_seeds_are_averaged_before_pairing():
    # split means: A = 0.5, 0.6, 0.7, 0.8 ; B = A + 0.1. Seed 0 of B is below seed 0 of A on every
    # split, so pairing single runs would mix signs; averaging per split gives 4 positive differences.
    a_means = [0.5, 0.6, 0.7, 0.8]
    a = [[m - 0.05, m + 0.05] for m in a_means]
    b = [[m + 0.1 - 0.2, m + 0.1 + 0.2] for m in a_means]
    summary = _runs({"A": a, "B": b})
    row = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"], pair_by=("split",)).iloc[0]
    assert row["n"] == 4  # blocks are splits, not runs
    assert row["mean_a"] == pytest.approx(np.mean(a_means))
    assert row["mean_b"] == pytest.approx(np.mean(a_means) + 0.1)
    assert row["mean_diff"] == pytest.approx(0.1)
    assert row["n_positive"] == 4
    assert row["p_value"] == pytest.approx(2 / 2**4)


def test_all_zero_differences_give_p_one_without_error():
    summary = _runs({"A": [[0.7], [0.8], [0.9]], "B": [[0.7], [0.8], [0.9]]})
    row = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"]).iloc[0]
    assert row["p_value"] == 1.0
    assert math.isnan(row["statistic"])
    assert row["effect_size"] == 0.0


def test_missing_pairs_are_dropped_and_logged(caplog):
    summary = _runs({"A": [[0.1], [0.2], [0.3], [0.4]], "B": [[0.5], [0.6], [0.7]]})  # split 3 only in A
    with caplog.at_level(logging.INFO, logger="mrixai.stats"):
        row = stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"]).iloc[0]
    assert row["n"] == 3
    assert row["mean_a"] == pytest.approx(0.2)  # the unpaired split is not in the mean either
    assert "dropped 1 block" in caplog.text


def test_reference_pairs_and_holm_adjustment():
    base = [[0.1], [0.2], [0.3], [0.4], [0.5], [0.6]]
    summary = _runs({
        "none": base,
        "linear": [[v[0] + 0.1 * (i + 1)] for i, v in enumerate(base)],
        "syn": [[v[0] + 0.05 * (i + 1)] for i, v in enumerate(base)],
    })
    out = stats.paired_tests(summary, ["none", "linear", "syn"], ["balanced_accuracy"], reference="none")
    assert list(zip(out["variant_a"], out["variant_b"])) == [("none", "linear"), ("none", "syn")]
    # both raw p = 2/64; Holm: smallest x 2, next x 1, then monotone -> both 4/64
    assert out["p_value"].tolist() == pytest.approx([2 / 64, 2 / 64])
    assert out["p_holm"].tolist() == pytest.approx([4 / 64, 4 / 64])
    all_pairs = stats.paired_tests(summary, ["none", "linear", "syn"], ["balanced_accuracy"])
    assert len(all_pairs) == 3


def test_paired_tests_reject_bad_arguments():
    summary = _runs({"A": [[0.1]], "B": [[0.2]]})
    with pytest.raises(ValueError, match="C"):
        stats.paired_tests(summary, ["A", "C"], ["balanced_accuracy"])
    with pytest.raises(ValueError, match="roc_auc"):
        stats.paired_tests(summary, ["A", "B"], ["roc_auc"])
    with pytest.raises(ValueError, match="Z"):
        stats.paired_tests(summary, ["A", "B"], ["balanced_accuracy"], reference="Z")


# ----------------------------------------------------------------------------------------------
# Friedman
# ----------------------------------------------------------------------------------------------
def test_friedman_consistent_ranking_gives_w_one():
    # 4 blocks, every block ranks A < B < C: chi2 = n (k - 1) = 8, W = 1. Exact p: the maximum rank
    # sums need the same ordering in all 4 blocks; the first block's ordering is free, each of the 3
    # others must match it with probability 1/3! -> p = (1/6)^3 = 1/216 (the chi-square
    # approximation, exp(-8/2) = 0.018, overstates the evidence of 4 blocks).
    summary = _runs({
        "A": [[0.1, 0.3], [0.2], [0.5], [0.0]],
        "B": [[0.4], [0.3], [0.6], [0.1]],
        "C": [[0.9], [0.8], [0.7], [0.2]],
    })
    row = stats.friedman_test(summary, ["A", "B", "C"], ["balanced_accuracy"]).iloc[0]
    assert row["n"] == 4 and row["k"] == 3 and row["unit"] == "split" and row["method"] == "exact"
    assert row["statistic"] == pytest.approx(8.0)
    assert row["kendall_w"] == pytest.approx(1.0)
    assert row["p_value"] == pytest.approx(1 / 216)


def test_friedman_needs_three_variants_and_two_blocks():
    two = _runs({"A": [[0.1], [0.2]], "B": [[0.3], [0.4]]})
    row = stats.friedman_test(two, ["A", "B"], ["balanced_accuracy"]).iloc[0]
    assert math.isnan(row["p_value"]) and "3 variants" in row["note"]
    one_block = _runs({"A": [[0.1]], "B": [[0.3]], "C": [[0.5]]})
    row = stats.friedman_test(one_block, ["A", "B", "C"], ["balanced_accuracy"]).iloc[0]
    assert math.isnan(row["kendall_w"]) and "2 complete blocks" in row["note"]


# ----------------------------------------------------------------------------------------------
# Kruskal-Wallis + Steel-Dwass
# ----------------------------------------------------------------------------------------------
def _fractions() -> pd.DataFrame:
    """pp1 and pp2 overlap (low values), pp3 is far above both; each subject tested on 2 splits."""
    rng = np.random.default_rng(1)
    low1 = np.linspace(0.10, 0.45, 8)
    low2 = np.linspace(0.12, 0.47, 8)
    high = np.linspace(0.80, 0.98, 8)
    rows = []
    for name, values in (("pp1", low1), ("pp2", low2), ("pp3", high)):
        for i, v in enumerate(values):
            delta = rng.uniform(0.0, 0.02)
            for split, shift in ((0, -delta), (1, +delta)):  # split values average to v
                rows.append({"set": name, "unit": f"{i:03d}", "fraction_correct": v + shift,
                             "split": split, "seed": 0})
    return pd.DataFrame(rows)


def test_kruskal_dscf_flags_exactly_the_separated_pairs():
    kw, posthoc = stats.kruskal_dscf(_fractions())
    row = kw.iloc[0]
    assert row["n"] == 24  # subjects counted once per set after averaging the splits
    assert row["p_value"] < 0.001
    # H by the rank formula (no ties): ranks 1..16 shared by pp1/pp2, 17..24 for pp3
    values = pd.concat([pd.Series(np.linspace(0.10, 0.45, 8)), pd.Series(np.linspace(0.12, 0.47, 8)),
                        pd.Series(np.linspace(0.80, 0.98, 8))]).rank().to_numpy()
    r = [values[:8].sum(), values[8:16].sum(), values[16:].sum()]
    n = 24
    h = 12 / (n * (n + 1)) * sum(x**2 / 8 for x in r) - 3 * (n + 1)
    assert row["H"] == pytest.approx(h)
    assert row["epsilon_squared"] == pytest.approx(h / (n - 1))
    sig = posthoc[posthoc["p_value"] < 0.05]
    assert sorted(zip(sig["group_a"], sig["group_b"])) == [("pp1", "pp3"), ("pp2", "pp3")]
    pp13 = posthoc[(posthoc["group_a"] == "pp1") & (posthoc["group_b"] == "pp3")].iloc[0]
    assert pp13["effect_size"] == pytest.approx(1.0)  # every pp3 subject above every pp1 subject
    assert pp13["n_a"] == 8 and pp13["n_b"] == 8
    assert pp13["median_a"] == pytest.approx(np.median(np.linspace(0.10, 0.45, 8)))


def test_kruskal_identical_values_do_not_raise():
    df = pd.DataFrame({"set": ["pp1"] * 3 + ["pp2"] * 3, "unit": list("abcabc"), "fraction_correct": 0.5})
    kw, posthoc = stats.kruskal_dscf(df)
    assert kw.iloc[0]["p_value"] == 1.0
    assert posthoc.iloc[0]["p_value"] == 1.0
    assert posthoc.iloc[0]["effect_size"] == 0.0


def test_cliffs_delta_by_hand():
    assert stats.cliffs_delta([1, 2, 3], [4, 5, 6]) == 1.0
    assert stats.cliffs_delta([4, 5, 6], [1, 2, 3]) == -1.0
    # b = [2, 3] vs a = [1, 3]: pairs (2>1), (2<3), (3>1), (3=3) -> (2 - 1) / 4
    assert stats.cliffs_delta([1, 3], [2, 3]) == pytest.approx(0.25)


# ----------------------------------------------------------------------------------------------
# variant comparison (PIF, transfer)
# ----------------------------------------------------------------------------------------------
def test_variant_comparison_paired_and_unpaired():
    rows = []
    for split in range(3):
        rows.append({"variant": "base", "split": split, "seed": 0, "wall_time_s": 10.0 + split})
        rows.append({"variant": "pif", "split": split, "seed": 0, "wall_time_s": 5.0 + split})
    summary = pd.DataFrame(rows)
    row = stats.variant_comparison(summary, "base", "pif", ["wall_time_s"]).iloc[0]
    assert row["test"] == "wilcoxon" and row["method"] == "exact"
    assert row["unit"] == "split" and row["n"] == 3
    assert row["n_a"] == 3 and row["n_b"] == 3
    assert row["ratio"] == pytest.approx(6.0 / 11.0)
    assert row["sd_a"] == pytest.approx(1.0)
    assert row["effect_size"] == pytest.approx(-1.0)
    assert row["p_value"] == pytest.approx(2 / 8)  # exact, n = 3, all differences negative

    # no split shared: Mann-Whitney on 3 vs 3 fully separated -> exact two-sided p = 2 / C(6, 3)
    unpaired = summary.assign(split=np.where(summary["variant"] == "pif", summary["split"] + 3, summary["split"]))
    row = stats.variant_comparison(unpaired, "base", "pif", ["wall_time_s"]).iloc[0]
    assert row["test"] == "mannwhitneyu" and row["method"] == "exact" and row["n"] == 6
    assert row["p_value"] == pytest.approx(2 / 20)
    assert row["effect_size"] == pytest.approx(-1.0)


# ----------------------------------------------------------------------------------------------
# ROC and descriptions
# ----------------------------------------------------------------------------------------------
def test_mean_roc_of_identical_curves():
    fpr = np.array([0.0, 0.0, 0.5, 0.5, 1.0])
    tpr = np.array([0.0, 0.5, 0.5, 1.0, 1.0])
    out = stats.mean_roc([(fpr, tpr)] * 4, grid=np.array([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert out["n_curves"].eq(4).all()
    assert np.allclose(out["se_tpr"], 0.0)
    # at repeated fpr the upper tpr counts: (0, .5), (.5, 1), (1, 1); tpr forced to 0 at fpr 0
    assert out["mean_tpr"].tolist() == pytest.approx([0.0, 0.75, 1.0, 1.0, 1.0])


def test_mean_roc_of_diagonal_is_diagonal():
    out = stats.mean_roc([(np.array([0.0, 1.0]), np.array([0.0, 1.0]))] * 2)
    assert len(out) == stats.ROC_GRID_POINTS
    assert np.allclose(out["mean_tpr"], out["fpr"])
    assert np.allclose(out["fpr"], np.linspace(0, 1, stats.ROC_GRID_POINTS))


def test_mean_roc_standard_error_by_hand():
    grid = np.array([0.0, 0.5, 1.0])
    curves = [(np.array([0.0, 1.0]), np.array([0.0, 1.0])), (np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 1.0]))]
    out = stats.mean_roc(curves, grid=grid)
    # at fpr 0.5: tpr 0.5 and 1.0 -> mean 0.75, sd 0.3536, se = sd / sqrt(2) = 0.25
    assert out["mean_tpr"].iloc[1] == pytest.approx(0.75)
    assert out["se_tpr"].iloc[1] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="1.5"):
        stats.mean_roc([(np.array([0.0, 1.5]), np.array([0.0, 1.0]))])


def test_describe_runs():
    summary = _runs({"A": [[0.2, 0.4], [0.6]], "B": [[1.0]]})
    out = stats.describe_runs(summary, metrics=("balanced_accuracy",)).set_index("variant")
    assert out.loc["A", "n"] == 3
    assert out.loc["A", "mean"] == pytest.approx(0.4)
    assert out.loc["A", "sd"] == pytest.approx(0.2)
    assert out.loc["A", "se"] == pytest.approx(0.2 / math.sqrt(3))
    assert out.loc["B", "n"] == 1 and math.isnan(out.loc["B", "sd"])


# ----------------------------------------------------------------------------------------------
# exact nulls, checked against brute-force enumerations written here
# ----------------------------------------------------------------------------------------------
def _friedman_brute(table) -> tuple[float, float]:
    """Friedman chi-square (tie-corrected) and its p over every within-block permutation of the ranks."""
    from scipy.stats import rankdata

    x = np.asarray(table, dtype=float)
    n, k = x.shape
    ranks = [rankdata(row) for row in x]
    ties = sum(sum(c**3 - c for c in np.unique(row, return_counts=True)[1]) for row in x)
    correction = 1 - ties / (n * k * (k**2 - 1))

    def chi2(rank_rows):
        sums = [sum(r[j] for r in rank_rows) for j in range(k)]
        return (12 / (n * k * (k + 1)) * sum(s * s for s in sums) - 3 * n * (k + 1)) / correction

    observed = chi2(ranks)
    null = [chi2(arr) for arr in itertools.product(*(list(itertools.permutations(r)) for r in ranks))]
    return observed, sum(v >= observed - 1e-9 for v in null) / len(null)


def _wilcoxon_brute(diff) -> float:
    """Two-sided p over every sign flip of the non-zero differences (mid-ranks of |d|)."""
    from scipy.stats import rankdata

    d = np.asarray([v for v in diff if v != 0], dtype=float)
    if d.size == 0:
        return 1.0
    ranks = rankdata(np.abs(d))
    centre = ranks.sum() / 2
    observed = abs(ranks[d > 0].sum() - centre)
    flips = list(itertools.product((0, 1), repeat=d.size))
    return sum(abs(sum(r for r, f in zip(ranks, s) if f) - centre) >= observed - 1e-9 for s in flips) / len(flips)


FRIEDMAN_TABLES = {
    # rows = blocks (splits), columns = arms none, linear, syn: "none < linear = syn in every block".
    # Ranks per block are (1, 2.5, 2.5); a block's 3! permutations put the rank 1 in each column
    # twice, so there are 3 equally likely placements per block and 3^3 = 27 in all. The observed
    # rank sums (3, 7.5, 7.5) are the most extreme possible, reached only when the rank 1 sits in
    # the same column in all three blocks: 3 of 27 -> p = 3/27 = 1/9 (chi-square approx: 0.050).
    "none<linear=syn": ([[0.80, 1.00, 1.00], [0.70, 1.00, 1.00], [0.90, 1.00, 1.00]], 3 / 27),
    "no ties, mixed": ([[0.1, 0.5, 0.3], [0.2, 0.4, 0.6], [0.3, 0.2, 0.9]], None),
    "4 arms with ties": ([[1, 2, 2, 3], [4, 1, 3, 3], [2, 2, 1, 5]], None),
    "4 blocks": ([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1], [0.1, 0.3, 0.2], [0.2, 0.1, 0.3]], None),
}


@pytest.mark.parametrize("name", list(FRIEDMAN_TABLES))
def test_exact_friedman_matches_brute_force_enumeration(name):
    table, hand = FRIEDMAN_TABLES[name]
    statistic, p = _friedman_brute(table)
    res = stats.friedman_permutation(np.array(table))
    assert res["method"] == "exact"
    assert res["statistic"] == pytest.approx(statistic)
    assert res["p_value"] == pytest.approx(p)
    if hand is not None:
        assert p == pytest.approx(hand)


def test_friedman_table_of_registration_arms_reports_exact_p_n_and_unit():
    values = FRIEDMAN_TABLES["none<linear=syn"][0]
    summary = _runs({arm: [[row[j]] for row in values] for j, arm in enumerate(["none", "linear", "syn"])})
    row = stats.friedman_test(summary, ["none", "linear", "syn"], ["balanced_accuracy"]).iloc[0]
    assert row["p_value"] == pytest.approx(1 / 9)
    assert (row["n"], row["unit"], row["method"]) == (3, "split", "exact")


@pytest.mark.parametrize("seed", range(20))
def test_monte_carlo_friedman_is_within_its_error_of_the_exact_p(seed):
    table, _ = FRIEDMAN_TABLES["no ties, mixed"]
    _, exact = _friedman_brute(table)
    m = 20000
    res = stats.friedman_permutation(np.array(table), exact_limit=1, permutations=m, seed=seed)
    assert res["method"] == "permutation" and res["n_arrangements"] == m
    # (b + 1) / (m + 1) with b ~ Binomial(m, p): 6 standard errors plus the +1 bias bound it
    # for practically every seed (a miss has probability < 1e-8).
    margin = 6 * math.sqrt(exact * (1 - exact) / m) + 1 / (m + 1)
    assert abs(res["p_value"] - exact) <= margin


WILCOXON_DIFFS = {
    "ties in |d|": [0.1, -0.1, 0.2, 0.2, 0.3],
    "zeros and ties": [0.0, 0.05, -0.05, 0.1, 0.0, 0.2, 0.2],
    "all positive with ties": [0.1, 0.1, 0.1],
    "mixed": [0.3, -0.1, 0.25, 0.4, -0.2, 0.15, 0.05],
}


@pytest.mark.parametrize("name", list(WILCOXON_DIFFS))
def test_exact_wilcoxon_matches_brute_force_sign_flips(name):
    diff = WILCOXON_DIFFS[name]
    res = stats.signed_rank_test(diff)
    assert res["method"] == "exact"
    assert res["p_value"] == pytest.approx(_wilcoxon_brute(diff))
    assert res["n"] == len(diff) and res["n_nonzero"] == sum(v != 0 for v in diff)


@pytest.mark.parametrize("n", [3, 5, 8, 12])
def test_exact_wilcoxon_matches_scipy_without_ties_or_zeros(n):
    from scipy.stats import wilcoxon

    # distinct magnitudes 1..n with a fixed mixed sign pattern: scipy's exact null applies
    diff = np.arange(1, n + 1, dtype=float) * np.where(np.arange(n) % 3 == 1, -1, 1)
    res = stats.signed_rank_test(diff)
    ref = wilcoxon(diff, method="exact")
    assert res["p_value"] == pytest.approx(ref.pvalue)
    assert res["statistic"] == pytest.approx(ref.statistic)


def test_two_arms_tied_in_every_block_give_p_one():
    # accuracies 1.000 for both arms in every split; the seeds' means differ by float noise only
    summary = _runs({"linear": [[1.0, 1.0]] * 3, "syn": [[0.1 + 0.9, 1.0]] * 3})
    row = stats.paired_tests(summary, ["linear", "syn"], ["balanced_accuracy"]).iloc[0]
    assert row["p_value"] == 1.0 and row["n"] == 3 and row["n_nonzero"] == 0
    noisy = _runs({"A": [[0.3], [0.6], [0.9]], "B": [[0.1 + 0.2], [0.2 + 0.4], [0.4 + 0.5]]})
    assert stats.paired_tests(noisy, ["A", "B"], ["balanced_accuracy"]).iloc[0]["p_value"] == 1.0
    assert stats.signed_rank_test([0.0, 0.0, 0.0])["p_value"] == 1.0


def test_smallest_wilcoxon_p_of_three_blocks_is_a_quarter():
    # 3 non-zero differences: 2^3 sign patterns, all-positive and all-negative are the extremes
    assert stats.signed_rank_test([0.1, 0.2, 0.3])["p_value"] == pytest.approx(2 / 8)
    # 2 non-zero differences of 3 blocks: the zero one is no evidence, p = 2 / 2^2
    assert stats.signed_rank_test([0.0, 0.2, 0.3])["p_value"] == pytest.approx(2 / 4)


def _two_seed_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs with 2 seeds per split, and the same runs averaged per split (one seed)."""
    per_seed = {
        "A": [[0.50, 0.60], [0.62, 0.58], [0.70, 0.74], [0.40, 0.52], [0.66, 0.60]],
        "B": [[0.48, 0.80], [0.61, 0.75], [0.66, 0.90], [0.58, 0.50], [0.70, 0.71]],
        "C": [[0.90, 0.70], [0.40, 0.50], [0.71, 0.73], [0.60, 0.66], [0.50, 0.40]],
    }
    averaged = {v: [[float(np.mean(s))] for s in splits] for v, splits in per_seed.items()}
    return _runs(per_seed), _runs(averaged)


def test_seeds_are_averaged_before_pairing_in_every_paired_comparison():
    runs, means = _two_seed_table()
    cols = ["n", "mean_diff", "statistic", "p_value", "p_holm"]
    pd.testing.assert_frame_equal(stats.paired_tests(runs, ["A", "B", "C"], ["balanced_accuracy"])[cols],
                                  stats.paired_tests(means, ["A", "B", "C"], ["balanced_accuracy"])[cols])
    cols = ["n", "statistic", "p_value"]
    pd.testing.assert_frame_equal(stats.friedman_test(runs, ["A", "B", "C"], ["balanced_accuracy"])[cols],
                                  stats.friedman_test(means, ["A", "B", "C"], ["balanced_accuracy"])[cols])
    cols = ["test", "unit", "n", "mean_a", "mean_b", "statistic", "p_value", "p_holm"]
    by_runs = stats.variant_comparison(runs, "A", "B", ["balanced_accuracy"])
    by_means = stats.variant_comparison(means, "A", "B", ["balanced_accuracy"])
    pd.testing.assert_frame_equal(by_runs[cols], by_means[cols])
    assert by_runs.iloc[0]["n"] == 5 and by_runs.iloc[0]["unit"] == "split"


def test_holm_over_the_metrics_of_one_comparison_by_hand():
    rows = []
    # 5 splits. time: b above a in all 5 -> p = 2/32. epochs: b above in 4, the one below has the
    # smallest |d| (R- = 1; patterns with R- <= 1: {}, {1}) -> p = 2 * 2/32 = 4/32. auc: no change -> 1.
    for split, (dt, de) in enumerate([(1, 2), (2, -1), (3, 3), (4, 4), (5, 5)]):
        rows.append({"variant": "a", "split": split, "seed": 0, "time": 10.0, "epochs": 10.0, "auc": 0.8})
        rows.append({"variant": "b", "split": split, "seed": 0, "time": 10.0 + dt, "epochs": 10.0 + de,
                     "auc": 0.8})
    out = stats.variant_comparison(pd.DataFrame(rows), "a", "b", ["time", "epochs", "auc"]).set_index("metric")
    assert out["p_value"].tolist() == pytest.approx([2 / 32, 4 / 32, 1.0])
    # Holm: sorted p 2/32 x 3 = 0.1875; 4/32 x 2 = 0.25; 1 x 1 = 1 (already monotone)
    assert out["p_holm"].tolist() == pytest.approx([0.1875, 0.25, 1.0])
    assert set(out["method"]) == {"exact"} and set(out["unit"]) == {"split"}


def test_paired_tests_holm_families():
    runs, _ = _two_seed_table()
    out = stats.paired_tests(runs, ["A", "B", "C"], ["balanced_accuracy"], holm="all")
    raw = sorted(out["p_value"])
    # three tests in one family: Holm multiplies the sorted p by 3, 2, 1 and keeps them monotone
    expected = np.maximum.accumulate([min(1, p * f) for p, f in zip(raw, (3, 2, 1))])
    assert sorted(out["p_holm"]) == pytest.approx(list(expected))
    with pytest.raises(ValueError, match="holm"):
        stats.paired_tests(runs, ["A", "B"], ["balanced_accuracy"], holm="splits")


# ----------------------------------------------------------------------------------------------
# tissue study at the level of trained models
# ----------------------------------------------------------------------------------------------
def _tissue_fractions() -> pd.DataFrame:
    """3 splits x 2 seeds x 3 sets; 2 test subjects per model (one per group).

    Per model, the AD subject's fraction is ``base`` and the CN subject's ``base + 0.2``; pp1 < pp2 < pp3
    in every split after averaging seeds, and the seeds differ.
    """
    rows = []
    for split in range(3):
        for seed in range(2):
            for k, name in enumerate(["pp1", "pp2", "pp3"]):
                base = 0.3 + 0.2 * k + 0.01 * split + (0.05 if seed else -0.05)
                for unit, group, value in ((f"{split}a", "AD", base), (f"{split}c", "CN", base + 0.2)):
                    rows.append({"set": name, "unit": unit, "group": group, "split": split, "seed": seed,
                                 "fraction_correct": value})
    return pd.DataFrame(rows)


def test_tissue_model_level_tests_use_splits_as_units():
    models, friedman, pairs = stats.tissue_model_tests(_tissue_fractions())
    assert len(models) == 3 * 3 * 2  # one row per (set, split, seed) model
    one = models[(models.variant == "pp2") & (models.split == 1) & (models.seed == 1)].iloc[0]
    # pp2, split 1, seed 1: AD 0.3 + 0.2 + 0.01 + 0.05 = 0.56, CN 0.76 -> mean 0.66
    assert one["fraction_correct"] == pytest.approx(0.66)
    assert one["balanced_fraction_correct"] == pytest.approx(0.66)
    assert one["n_subjects"] == 2
    # pp1 < pp2 < pp3 in each of 3 splits: exact p = (1/3!)^2 = 1/36 (first block free, 2 must match)
    f = friedman.set_index("metric").loc["fraction_correct"]
    assert f["p_value"] == pytest.approx(1 / 36)
    assert (f["n"], f["unit"], f["method"]) == (3, "split", "exact")
    # every pair: 3 positive differences -> p = 2/8; Holm over 3 pairs: 3 x 0.25 = 0.75 for all
    fc = pairs[pairs.metric == "fraction_correct"]
    assert len(fc) == 3 and (fc["n"] == 3).all() and set(fc["unit"]) == {"split"}
    assert fc["p_value"].tolist() == pytest.approx([0.25] * 3)
    assert fc["p_holm"].tolist() == pytest.approx([0.75] * 3)


def test_balanced_fraction_weights_groups_equally():
    df = pd.DataFrame({"set": "pp1", "split": 0, "seed": 0, "unit": ["a", "b", "c", "d"],
                       "group": ["AD", "CN", "CN", "CN"], "fraction_correct": [1.0, 0.0, 0.0, 0.0]})
    row = stats.tissue_model_values(df).iloc[0]
    assert row["fraction_correct"] == pytest.approx(0.25)  # 1 of 4 subjects
    assert row["balanced_fraction_correct"] == pytest.approx(0.5)  # AD mean 1, CN mean 0


def test_subject_level_tables_name_their_unit_and_method():
    kw, posthoc = stats.kruskal_dscf(_fractions())
    assert (kw.iloc[0]["unit"], kw.iloc[0]["method"], kw.iloc[0]["n"]) == ("subject", "asymptotic", 24)
    assert set(posthoc["unit"]) == {"subject"} and set(posthoc["method"]) == {"asymptotic"}
    assert (posthoc["n"] == posthoc["n_a"] + posthoc["n_b"]).all()


def test_exact_rank_sum_test_by_hand_and_with_ties():
    # fully separated 3 vs 3: 2 of C(6, 3) = 20 labellings are as extreme
    assert stats.rank_sum_test([1, 2, 3], [4, 5, 6])["p_value"] == pytest.approx(2 / 20)
    # a = [1, 2], b = [2, 3]: pooled mid-ranks 1, 2.5, 2.5, 4; U_b = 6.5 - 3 = 3.5, |U - 2| = 1.5.
    # The 6 labellings give b rank sums 3.5, 3.5, 5, 5, 6.5, 6.5 -> U = 0.5, 0.5, 2, 2, 3.5, 3.5:
    # |U - 2| >= 1.5 for 4 of 6 -> p = 2/3
    res = stats.rank_sum_test([1, 2], [2, 3])
    assert res["p_value"] == pytest.approx(2 / 3) and res["method"] == "exact"


def test_friedman_of_variants_equal_in_every_block_is_p_one():
    summary = _runs({"A": [[0.5], [0.7], [0.9]], "B": [[0.5], [0.7], [0.9]], "C": [[0.5], [0.7], [0.9]]})
    row = stats.friedman_test(summary, ["A", "B", "C"], ["balanced_accuracy"]).iloc[0]
    assert row["p_value"] == 1.0 and row["statistic"] == 0.0 and "equal within every block" in row["note"]
    with pytest.raises(ValueError, match="exact_limit"):
        stats.friedman_permutation(np.ones((3, 3)), exact_limit=0)
