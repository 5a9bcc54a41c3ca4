"""Statistics of the learning studies, checked against hand computations on tiny tables."""

from __future__ import annotations

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
    assert row["n_pairs"] == 6
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
    assert row["n_pairs"] == 4  # blocks are splits, not runs
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
    assert row["n_pairs"] == 3
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
    # 4 blocks, every block ranks A < B < C: chi2 = n (k - 1) = 8, W = 1, p = exp(-chi2 / 2) (df 2)
    summary = _runs({
        "A": [[0.1, 0.3], [0.2], [0.5], [0.0]],
        "B": [[0.4], [0.3], [0.6], [0.1]],
        "C": [[0.9], [0.8], [0.7], [0.2]],
    })
    row = stats.friedman_test(summary, ["A", "B", "C"], ["balanced_accuracy"]).iloc[0]
    assert row["n_blocks"] == 4 and row["k"] == 3
    assert row["statistic"] == pytest.approx(8.0)
    assert row["kendall_w"] == pytest.approx(1.0)
    assert row["p_value"] == pytest.approx(math.exp(-4.0))


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
    assert row["test"] == "wilcoxon"
    assert row["n_a"] == 3 and row["n_b"] == 3
    assert row["ratio"] == pytest.approx(6.0 / 11.0)
    assert row["sd_a"] == pytest.approx(1.0)
    assert row["effect_size"] == pytest.approx(-1.0)
    assert row["p_value"] == pytest.approx(2 / 8)  # exact, n = 3, all differences negative

    # no run shared: Mann-Whitney on 3 vs 3 fully separated -> exact two-sided p = 2 / C(6, 3)
    unpaired = summary.assign(seed=np.where(summary["variant"] == "pif", 1, 0))
    row = stats.variant_comparison(unpaired, "base", "pif", ["wall_time_s"]).iloc[0]
    assert row["test"] == "mannwhitneyu"
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
