"""The papers' claims, each checked against the statistics tables a run wrote.

One row per claim of the studies this tool reproduces: what the paper says, what this run
measured (short text with numbers), the test with its p, n and unit of replication, and a verdict
decided by a rule fixed in advance, before any number is seen:

- **held**: the effect is in the claimed direction and its p (the Holm-adjusted p where the table
  has one) is below ``alpha`` (``analysis.claims.alpha``);
- **not held**: the effect is in the opposite direction with p below ``alpha``, or, for a claim
  without a test, the direction (or the stated bound) is wrong;
- **inconclusive**: everything else, including a p that cannot reach ``alpha`` with so few units
  (the ``note`` then says so, e.g. "3 splits: smallest attainable p 0.25").
- **not run**: the study (or check) behind the claim is switched off in the config.

The tables are recognised by their paths (:func:`classify_tables`), as the workflow writes them:
``results/stats/registration_wilcoxon.tsv``, ``tissue_models-wilcoxon.tsv``,
``tissue_posthoc.tsv``, ``transfer_comparison.tsv``, ``results/stats/<study>/<variant>_<kind>.tsv``
(``robustness-l2``, ``randomisation``, ``hippocampus-test``, ``enrichment``, ``planted-ranks``),
``results/attribution/<study>/<variant>_regions.tsv`` and ``results/masking/metrics.tsv`` /
``brain_mask_dice.tsv``. Nothing here re-runs a study test; the only tests computed here are the
exact Wilcoxon signed-rank test over splits of the robustness L2 (:func:`mrixai.stats.signed_rank_test`)
and the exact sign test over runs of the enrichment (:func:`scipy.stats.binomtest`), because the
robustness and ground-truth tables hold per-pair and per-subject values only.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as ss

from mrixai.io import atomic_path
from mrixai.stats import cliffs_delta, signed_rank_test

log = logging.getLogger(__name__)

HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN = "held", "not held", "inconclusive", "not run"
VERDICTS = (HELD, NOT_HELD, INCONCLUSIVE, NOT_RUN)

CLAIM_COLUMNS = ["claim", "paper", "measured", "test", "p", "n", "unit", "verdict", "note"]

VERDICT_RULE = (
    "**held**: the effect is in the claimed direction and its p (Holm-adjusted where the table has "
    "it) is below alpha; **not held**: the effect is in the opposite direction with p below alpha, "
    "or, for a claim without a test, the direction (or bound) is wrong; **inconclusive**: otherwise, "
    "including when n is too small for any p to reach alpha (the note gives the smallest attainable "
    "p); **not run**: the study behind the claim is switched off."
)

#: Studies (or checks) a claim depends on; a key missing from ``enabled`` counts as off.
SWITCHES = ("registration", "tissue", "baseline", "transfer", "attribution", "synthetic", "masking")

PAPERS = {
    "registration": "Klingenberg et al.",
    "baseline": "Wen et al. 2020 (classical baseline)",
    "tissue": "Tachibana et al.",
    "ground_truth": "Böhle et al. 2019",
    "robustness": "Eitel & Ritter 2019",
    "randomisation": "Adebayo et al. 2018",
    "transfer": "Eitel et al. 2019",
    "masking": "saliency-guided masking study",
}

_STAT_KINDS = {
    "robustness-l2": "robustness_l2",
    "randomisation": "randomisation",
    "hippocampus-test": "hippocampus",
    "enrichment": "enrichment",
    "planted-ranks": "planted_ranks",
}
_SINGLE = {
    ("stats", "registration_wilcoxon.tsv"): "registration_wilcoxon",
    ("stats", "registration_baseline.tsv"): "registration_baseline",
    ("stats", "tissue_models-wilcoxon.tsv"): "tissue_models_wilcoxon",
    ("stats", "tissue_posthoc.tsv"): "tissue_posthoc",
    ("stats", "transfer_comparison.tsv"): "transfer_comparison",
    ("masking", "metrics.tsv"): "masking_metrics",
    ("masking", "brain_mask_dice.tsv"): "masking_brain_dice",
    ("samples", "desc-regionvolumes_features.tsv"): "region_volumes",
    ("samples", "labels.tsv"): "labels",
}

#: On data without a planted effect, how many regions with the largest group difference in volume
#: the rank claim follows (the synthetic cohort plants three).
DIFFERENCE_REGIONS = 3


# ----------------------------------------------------------------------------------------------
# verdict rule and the smallest attainable p
# ----------------------------------------------------------------------------------------------
def verdict(direction: int, p: float | None, alpha: float) -> str:
    """The verdict of one claim.

    ``direction`` is +1 when the effect lies in the claimed direction, -1 when opposite, 0 when
    there is no effect (ties). ``p`` is the claim's p value, or None for a claim without a test
    (then the direction alone decides: +1 held, otherwise not held). A NaN p is inconclusive.
    """
    _check_alpha(alpha)
    if direction not in (-1, 0, 1):
        raise ValueError(f"direction must be -1, 0 or 1, got {direction!r}")
    if p is None:
        return HELD if direction == 1 else NOT_HELD
    if not np.isfinite(p):
        return INCONCLUSIVE
    if p < alpha and direction == 1:
        return HELD
    if p < alpha and direction == -1:
        return NOT_HELD
    return INCONCLUSIVE


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"analysis.claims.alpha must lie in (0, 1), got {alpha!r}")


def min_p_signed_rank(n_nonzero: int, family: int = 1) -> float:
    """Smallest two-sided exact Wilcoxon signed-rank p with ``n_nonzero`` non-zero differences,
    Holm-adjusted over a family of ``family`` tests (Holm multiplies the smallest p by the family
    size): ``min(1, family * 2 / 2^n)``."""
    return min(1.0, family * 2.0 ** (1 - int(n_nonzero))) if n_nonzero > 0 else 1.0


def min_p_rank_sum(n_a: int, n_b: int, family: int = 1) -> float:
    """Smallest two-sided exact Mann-Whitney p: ``min(1, family * 2 / C(n_a + n_b, n_a))``."""
    if n_a < 1 or n_b < 1:
        return 1.0
    return min(1.0, family * 2.0 / math.comb(int(n_a) + int(n_b), int(n_a)))


def min_p_sign_test(n: int) -> float:
    """Smallest one-sided exact sign-test p over ``n`` non-tied units: ``1 / 2^n``."""
    return 0.5 ** int(n) if n > 0 else 1.0


def min_p_permutation_correlation(n: int, method: str, permutations: int) -> float:
    """Smallest permutation p of a correlation: ``1 / n!`` when every ordering is enumerated
    (``exact``), ``1 / (1 + permutations)`` for a Monte-Carlo p."""
    if method == "exact":
        return 1.0 / math.factorial(int(n)) if n > 0 else 1.0
    return 1.0 / (1 + int(permutations)) if permutations > 0 else 1.0


def _fmt(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "NA"
    if x != 0 and abs(x) < 10 ** (-digits):
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}f}".rstrip("0").rstrip(".") if abs(x) < 1e6 else f"{x:.3g}"


def _small_n_note(n: int, unit: str, min_p: float, alpha: float, family: int = 1) -> str:
    """Why no p can reach ``alpha``: ``"3 splits: smallest attainable p 0.25"`` (empty when one can)."""
    if min_p >= alpha:
        holm = f" (Holm over {family} tests)" if family > 1 else ""
        return f"{n} {unit}{'' if n == 1 else 's'}: smallest attainable p {_fmt(min_p)}{holm}"
    return ""


def _row(claim, paper, measured, test, p, n, unit, direction, alpha, note="") -> dict:
    p_val = float(p) if p is not None else np.nan
    return {
        "claim": claim,
        "paper": paper,
        "measured": measured,
        "test": test,
        "p": p_val,
        "n": n,
        "unit": unit,
        "verdict": verdict(direction, None if p is None else p_val, alpha),
        "note": note,
    }


def not_run(claim: str, paper: str, why: str) -> dict:
    """The row of a claim whose study is switched off."""
    return {"claim": claim, "paper": paper, "measured": "", "test": "", "p": np.nan, "n": np.nan,
            "unit": "", "verdict": NOT_RUN, "note": why}


def _sign(x: float) -> int:
    return 0 if not np.isfinite(x) or x == 0 else (1 if x > 0 else -1)


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def _holm_p(row: Mapping) -> float:
    p = row.get("p_holm", np.nan)
    return float(p) if pd.notna(p) else float(row["p_value"])


# ----------------------------------------------------------------------------------------------
# 1. registration (Klingenberg et al.)
# ----------------------------------------------------------------------------------------------
def registration_claims(wilcoxon: pd.DataFrame, alpha: float, margin: float,
                        metric: str = "balanced_accuracy") -> list[dict]:
    """Linear > none and SyN > none (exact Wilcoxon over splits, Holm over the table), and
    linear ~ SyN: ``|mean difference| <= margin`` (no test; the Wilcoxon p is shown beside)."""
    _require(wilcoxon, ["metric", "variant_a", "variant_b", "n", "mean_diff", "p_value"], "registration Wilcoxon table")
    if not 0 <= margin < 1:
        raise ValueError(f"analysis.claims.equivalence_margin must lie in [0, 1), got {margin!r}")
    paper = PAPERS["registration"]
    tested = wilcoxon["p_value"].notna().sum()  # Holm over every test of the table
    rows = []
    for better, worse in (("linear", "none"), ("syn", "none")):
        claim = f"{better} registration > no registration ({metric})"
        found = _oriented(wilcoxon, metric, f"reg-{worse}", f"reg-{better}")
        if found is None:
            rows.append(not_run(claim, paper, f"arm reg-{better} or reg-{worse} not in the run"))
            continue
        r, diff = found
        n_nz = int(r.get("n_nonzero", r["n"]))
        p = _holm_p(r)
        measured = (f"mean {metric} {worse} {_fmt(_mean_of(r, f'reg-{worse}'))}, {better} "
                    f"{_fmt(_mean_of(r, f'reg-{better}'))}; mean difference {_fmt(diff)}")
        test = "exact Wilcoxon signed-rank, two-sided, Holm over the table"
        note = _small_n_note(int(r["n"]), str(r.get("unit", "split")), min_p_signed_rank(n_nz, tested), alpha,
                             tested)
        rows.append(_row(claim, paper, measured, test, p, int(r["n"]), str(r.get("unit", "split")),
                         _sign(diff), alpha, note))
    claim = f"linear ~ SyN registration (|mean difference| <= {_fmt(margin)} {metric})"
    found = _oriented(wilcoxon, metric, "reg-linear", "reg-syn")
    if found is None:
        rows.append(not_run(claim, paper, "arm reg-linear or reg-syn not in the run"))
    else:
        r, diff = found
        measured = f"mean difference syn - linear {_fmt(diff)} (margin {_fmt(margin)}); Wilcoxon p {_fmt(_holm_p(r))}"
        direction = 1 if np.isfinite(diff) and abs(diff) <= margin else -1
        rows.append(_row(claim, paper, measured, "|mean difference| <= margin (no test)", None, int(r["n"]),
                         str(r.get("unit", "split")), direction, alpha))
    return rows


def baseline_claims(comparison: pd.DataFrame, margin: float, alpha: float,
                    metric: str = "balanced_accuracy") -> list[dict]:
    """The best CNN arm at least matches each classical baseline (Wen et al. 2020 found a linear SVM
    on grey-matter maps as good as most CNNs): held when its mean ``metric`` over the splits is at
    most ``margin`` below the baseline's (no test; the exact Wilcoxon p over splits is shown beside),
    not held when it falls further below."""
    _require(comparison, ["metric", "cnn_variant", "baseline", "n", "mean_cnn", "mean_baseline", "p_value"],
             "CNN-vs-baseline table")
    if not 0 <= margin < 1:
        raise ValueError(f"analysis.claims.equivalence_margin must lie in [0, 1), got {margin!r}")
    rows = []
    for _, r in comparison[comparison["metric"] == metric].iterrows():
        diff = float(r["mean_cnn"]) - float(r["mean_baseline"])
        claim = (f"best CNN arm ({r['cnn_variant']}) at least matches the {r['baseline']} baseline "
                 f"(at most {_fmt(margin)} lower {metric})")
        measured = (f"mean {metric} {r['cnn_variant']} {_fmt(float(r['mean_cnn']))}, {r['baseline']} baseline "
                    f"{_fmt(float(r['mean_baseline']))}; difference {_fmt(diff)}; Wilcoxon p {_fmt(float(r['p_value']))}")
        direction = 1 if np.isfinite(diff) and diff >= -margin else -1
        rows.append(_row(claim, PAPERS["baseline"], measured, "mean difference >= -margin (no test)", None,
                         int(r["n"]), str(r.get("unit", "split")), direction, alpha))
    if not rows:
        raise ValueError(f"CNN-vs-baseline table: no {metric} row")
    return rows


def _oriented(table: pd.DataFrame, metric: str, a: str, b: str, a_col="variant_a", b_col="variant_b"):
    """The row comparing ``a`` and ``b`` on ``metric`` and its mean difference b - a (sign flipped
    when the table has the pair the other way round), or None."""
    sub = table[table["metric"] == metric]
    fwd = sub[(sub[a_col] == a) & (sub[b_col] == b)]
    if len(fwd):
        r = fwd.iloc[0]
        return r, float(r["mean_diff"]) if "mean_diff" in r else float(r["mean_b"] - r["mean_a"])
    rev = sub[(sub[a_col] == b) & (sub[b_col] == a)]
    if len(rev):
        r = rev.iloc[0]
        d = float(r["mean_diff"]) if "mean_diff" in r else float(r["mean_b"] - r["mean_a"])
        return r, -d
    return None


def _mean_of(row: Mapping, variant: str) -> float:
    return float(row["mean_a"]) if row["variant_a"] == variant else float(row["mean_b"])


# ----------------------------------------------------------------------------------------------
# 2. tissue (Tachibana et al.)
# ----------------------------------------------------------------------------------------------
TISSUE_CLAIMS = (("pp1", "pp3"), ("pp2", "pp3"), ("pp4", "pp5"))


def tissue_claims(model_pairs: pd.DataFrame, posthoc: pd.DataFrame | None, alpha: float,
                  metric: str = "fraction_correct") -> list[dict]:
    """pp1 > pp3, pp2 > pp3, pp4 > pp5 at the model level (exact Wilcoxon over splits, Holm over the
    pairs of the metric); the published subject-level Steel-Dwass p is shown beside it."""
    _require(model_pairs, ["metric", "variant_a", "variant_b", "n", "mean_a", "mean_b", "p_value"],
             "tissue model-level Wilcoxon table")
    paper = PAPERS["tissue"]
    family = int(model_pairs.loc[model_pairs["metric"] == metric, "p_value"].notna().sum())
    rows = []
    for better, worse in TISSUE_CLAIMS:
        claim = f"{better} > {worse} (model-level mean fraction of correct slices)"
        found = _oriented(model_pairs, metric, worse, better)
        if found is None:
            rows.append(not_run(claim, paper, f"set {better} or {worse} not in the run"))
            continue
        r, diff = found
        n_nz = int(r.get("n_nonzero", r["n"]))
        measured = (f"{worse} {_fmt(_mean_of(r, worse))}, {better} {_fmt(_mean_of(r, better))}; "
                    f"mean difference {_fmt(diff)}")
        sd = _steel_dwass(posthoc, better, worse)
        if sd:
            measured += f"; {sd}"
        unit = str(r.get("unit", "split"))
        note = _small_n_note(int(r["n"]), unit, min_p_signed_rank(n_nz, family), alpha, family)
        rows.append(_row(claim, paper, measured, "exact Wilcoxon signed-rank over splits, two-sided, Holm over pairs",
                         _holm_p(r), int(r["n"]), unit, _sign(diff), alpha, note))
    return rows


def _steel_dwass(posthoc: pd.DataFrame | None, better: str, worse: str) -> str:
    if posthoc is None or posthoc.empty:
        return ""
    _require(posthoc, ["group_a", "group_b", "n", "p_value"], "tissue Steel-Dwass table")
    hit = posthoc[((posthoc["group_a"] == better) & (posthoc["group_b"] == worse))
                  | ((posthoc["group_a"] == worse) & (posthoc["group_b"] == better))]
    if hit.empty:
        return ""
    r = hit.iloc[0]
    return f"subject-level Steel-Dwass p {_fmt(float(r['p_value']))} (n {int(r['n'])} subject values)"


# ----------------------------------------------------------------------------------------------
# 3. ground truth and neurobiology (Böhle et al.)
# ----------------------------------------------------------------------------------------------
def enrichment_claim(enrichment: pd.DataFrame, method: str, positive_group: str, alpha: float,
                     label: str = "") -> dict:
    """Enrichment of ``method``'s positive relevance in the planted effect > 1 over runs.

    Each run's mean enrichment over its ``positive_group`` test subjects is one unit; the exact
    sign test over the runs whose mean is not 1, one-sided in the direction observed (more runs
    above 1: ``P(K >= k)``, more below: ``P(K <= k)``; a tie: the larger of the two)."""
    _require(enrichment, ["method", "run", "group", "enrichment"], "enrichment table")
    claim = f"relevance enriched in the planted effect (> 1){label}"
    paper = PAPERS["ground_truth"]
    sub = enrichment[(enrichment["method"] == method) & (enrichment["group"].astype(str) == str(positive_group))]
    per_run = pd.to_numeric(sub["enrichment"], errors="coerce").groupby(sub["run"]).mean().dropna()
    if per_run.empty:
        row = _row(claim, paper, f"{method}: no finite enrichment of {positive_group} test subjects",
                   "exact sign test over runs, one-sided", np.nan, 0, "run", 0, alpha)
        row["note"] = "no run has a finite enrichment (no positive relevance in the brain?)"
        return row
    above = int((per_run > 1).sum())
    below = int((per_run < 1).sum())
    n = above + below
    p_hi = ss.binomtest(above, n, 0.5, alternative="greater").pvalue if n else 1.0
    p_lo = ss.binomtest(above, n, 0.5, alternative="less").pvalue if n else 1.0
    direction = _sign(above - below)
    p = p_hi if direction == 1 else p_lo if direction == -1 else max(p_hi, p_lo)
    measured = (f"{method}: median over runs of the mean enrichment {_fmt(float(per_run.median()))} "
                f"({above} of {len(per_run)} runs above 1)")
    note = _small_n_note(n, "run", min_p_sign_test(n), alpha)
    return _row(claim, paper, measured, "exact sign test over runs, one-sided", float(p), n, "run",
                direction, alpha, note)


def _listed_ranks(tables: Sequence[pd.DataFrame], method: str) -> tuple[list[str], int]:
    """``["by density: A 1/71, ...", ...]`` for ``method``'s rows of each rank table (columns
    ``method, region, rank, n_regions`` and optionally ``metric``), and the worst rank listed."""
    parts, worst = [], 0
    for table in tables:
        sub = table[table["method"] == method]
        if sub.empty:
            raise ValueError(f"rank table: no method {method!r}; has {sorted(table['method'].unique())}")
        metric = str(sub["metric"].iloc[0]) if "metric" in sub else "relevance"
        listed = ", ".join(f"{r.region} {int(r.rank)}/{int(r.n_regions)}" for r in sub.itertuples())
        parts.append(f"by {metric}: {listed}")
        worst = max(worst, int(sub["rank"].max()))
    return parts, worst


def planted_rank_claim(ranks: pd.DataFrame, method: str, top: int, label: str = "",
                       extra: pd.DataFrame | None = None) -> dict:
    """Ranks of the planted regions by relevance (planted-ranks table, plus ``extra`` ranks by
    another metric); held when every planted region ranks within the top ``top`` by every metric
    (no test)."""
    _require(ranks, ["method", "region", "rank", "n_regions"], "planted-ranks table")
    claim = f"planted regions rank in the top {top}{label}"
    parts, worst = _listed_ranks([ranks] if extra is None else [ranks, extra], method)
    measured = f"{method}: " + "; ".join(parts)
    return _row(claim, PAPERS["ground_truth"], measured, f"all ranks <= {top} (no test)", None,
                int(ranks[ranks["method"] == method]["region"].nunique()), "region",
                1 if worst <= top else -1, 0.05)


def volume_effects(features: pd.DataFrame, labels: pd.DataFrame, positive_group: str) -> pd.DataFrame:
    """Where the groups differ, from the native regional volumes: per region, the rank-biserial
    correlation of its volume between the positive group and the other (Cliff's delta,
    :func:`mrixai.stats.cliffs_delta`: P(positive larger) - P(positive smaller) over all pairs;
    +1: every positive-group volume is larger).

    ``features`` is the regional-volumes table (``unit``, ``brain_volume_ml`` and one column per
    region, each a fraction of the brain volume); ``labels`` the run's labels (``unit``, ``group``).
    Returns ``region, effect, abs_effect, n_positive, n_reference``.
    """
    _require(features, ["unit"], "regional-volumes table")
    _require(labels, ["unit", "group"], "labels table")
    merged = features.merge(labels[["unit", "group"]].astype({"unit": str}), on="unit", how="inner")
    pos = merged["group"].astype(str) == str(positive_group)
    if pos.sum() == 0 or (~pos).sum() == 0:
        raise ValueError(f"volume effects need both groups; labels give {int(pos.sum())} {positive_group!r} "
                         f"and {int((~pos).sum())} other units among the regional volumes")
    regions = [c for c in features.columns if c not in ("unit", "subject", "brain_volume_ml")]
    rows = []
    for region in regions:
        x = pd.to_numeric(merged[region], errors="coerce")
        a, b = x[pos].dropna().to_numpy(), x[~pos].dropna().to_numpy()
        if len(a) == 0 or len(b) == 0:
            continue
        effect = cliffs_delta(b, a)
        rows.append({"region": region, "effect": effect, "abs_effect": abs(effect),
                     "n_positive": len(a), "n_reference": len(b)})
    return pd.DataFrame(rows, columns=["region", "effect", "abs_effect", "n_positive", "n_reference"])


def group_difference_claims(regions: pd.DataFrame, effects: pd.DataFrame, method: str, positive_group: str,
                            top: int, alpha: float, label: str = "") -> list[dict]:
    """Böhle et al.'s checks where nothing is planted: the group difference is taken from the
    regional volumes (:func:`volume_effects`).

    1. Across the regions both tables share, the mean relevance density in the positive group
       follows the size of the group difference (Spearman r > 0; regions are not independent
       samples, so the p is descriptive).
    2. The :data:`DIFFERENCE_REGIONS` regions with the largest difference rank within the top
       ``top`` by density and by gain (no test), as the planted regions do on the synthetic cohort.
    """
    from mrixai.explain.regions import region_ranks

    _require(regions, ["method", "region", "group", "density", "gain"], "region table")
    sub = regions[(regions["method"] == method) & (regions["group"].astype(str) == str(positive_group))]
    if sub.empty:
        raise ValueError(f"region table: no {method!r} rows in group {positive_group!r}")
    density = sub.groupby("region")["density"].mean()
    eff = effects.set_index("region")["abs_effect"]
    common = sorted(set(density.index) & set(eff.index))
    if len(common) < 3:
        raise ValueError(f"group-difference check: only {len(common)} regions in both the region table and "
                         "the regional volumes")
    r, p = ss.spearmanr(density[common].to_numpy(), eff[common].to_numpy())
    r, p = float(r), float(p)
    n_pos = int(effects["n_positive"].iloc[0])
    n_ref = int(effects["n_reference"].iloc[0])
    rows = [_row(
        f"relevance follows the group difference in volume across regions (Spearman r > 0){label}",
        PAPERS["ground_truth"],
        f"{method}: Spearman r {_fmt(r)} between a region's mean relevance density ({positive_group}) and its "
        f"|rank-biserial| volume difference ({n_pos} vs {n_ref} subjects)",
        "Spearman correlation across regions, two-sided", p, len(common), "region", _sign(r), alpha,
        "regions are not independent samples: the p is descriptive")]
    largest = (effects[effects["region"].isin(common)].sort_values(["abs_effect", "region"], ascending=[False, True])
               .head(DIFFERENCE_REGIONS))
    listed = ", ".join(f"{q.region} {_fmt(q.effect, 2)}" for q in largest.itertuples())
    parts, worst = _listed_ranks(
        [region_ranks(sub, metric, list(largest["region"]), by=("method",)).assign(metric=metric)
         for metric in ("density", "gain")], method)
    rows.append(_row(
        f"the {DIFFERENCE_REGIONS} regions with the largest group difference in volume rank in the top {top}{label}",
        PAPERS["ground_truth"],
        f"{method}: largest differences (rank-biserial) {listed}; " + "; ".join(parts),
        f"all ranks <= {top} (no test)", None, len(largest), "region", 1 if worst <= top else -1, alpha))
    return rows


def hippocampus_claim(test: pd.DataFrame, alpha: float, label: str = "") -> dict:
    """Relevance vs volume of the region among the test's subjects (true positives unless its
    ``outcomes`` column says otherwise): r < 0 with permutation p < alpha, or r > 0 where the
    table's ``direction`` is ``positive`` (e.g. ventricles that grow with age)."""
    _require(test, ["method", "region", "r", "p", "n"], "hippocampus test table")
    r = test.iloc[0]
    region = str(r["region"])
    positive = str(r.get("direction", "negative") or "negative") == "positive"
    outcomes = str(r.get("outcomes", "TP") or "TP")
    who = {"TP": "true positives"}.get(outcomes, f"outcomes {outcomes}")
    trend, sign = ("rises", ">") if positive else ("falls", "<")
    claim = f"{region} relevance {trend} with {region.lower()} volume (r {sign} 0, {who}){label}"
    n = int(r["n"]) if pd.notna(r["n"]) else 0
    corr = float(r["r"])
    p = float(r["p"]) if pd.notna(r["p"]) else np.nan
    method = str(r.get("p_method", "exact") or "exact")
    min_p = min_p_permutation_correlation(n, method, int(r.get("permutations", 0) or 0))
    note = _small_n_note(n, "subject", min_p, alpha) if n >= 3 else f"{n} {who}: too few for a correlation"
    measured = f"{r['method']}: Pearson r {_fmt(corr)}"
    return _row(claim, PAPERS["ground_truth"], measured, f"permutation test of Pearson r, two-sided ({method})",
                p, n, str(r.get("unit", "subject")), _sign(corr) if positive else -_sign(corr), alpha, note)


# ----------------------------------------------------------------------------------------------
# 4. robustness (Eitel & Ritter)
# ----------------------------------------------------------------------------------------------
def robustness_claims(l2: pd.DataFrame, method: str, others: Sequence[str], baseline: str, alpha: float,
                      label: str = "", groups: Sequence[str] = ("TP", "TN")) -> list[dict]:
    """``method`` and ``others`` more robust than ``baseline``: lower L2 between the runs' mean maps.

    Per split, the mean L2 over its pairs of runs (identical retrainings) of each method; the exact
    Wilcoxon signed-rank test of the per-split differences (baseline minus method), unit split."""
    _require(l2, ["method", "group", "split", "run_a", "run_b", "l2"], "robustness L2 table")
    rows = []
    for m in [method, *others]:
        for group in groups:
            claim = f"{m} more robust than {baseline} over retrainings ({group}: lower L2){label}"
            sub = l2[l2["group"] == group]
            means = sub.groupby(["split", "method"])["l2"].mean().unstack("method")
            if m not in means or baseline not in means:
                rows.append(not_run(claim, PAPERS["robustness"],
                                    f"no {group} L2 of {m} or {baseline} (two runs per split needed)"))
                continue
            pair = means[[m, baseline]].dropna()
            diff = (pair[baseline] - pair[m]).to_numpy(dtype=float)
            res = signed_rank_test(diff)
            n = int(len(pair))
            measured = (f"mean L2 {m} {_fmt(float(pair[m].mean()))}, {baseline} "
                        f"{_fmt(float(pair[baseline].mean()))}")
            note = _small_n_note(n, "split", min_p_signed_rank(res["n_nonzero"]), alpha)
            rows.append(_row(claim, PAPERS["robustness"], measured,
                             "exact Wilcoxon signed-rank over splits, two-sided", res["p_value"], n, "split",
                             _sign(float(np.mean(diff))) if diff.size else 0, alpha, note))
    return rows


# ----------------------------------------------------------------------------------------------
# 5. model randomisation (Adebayo et al.)
# ----------------------------------------------------------------------------------------------
def randomisation_claims(table: pd.DataFrame, max_spearman: float, label: str = "") -> list[dict]:
    """Per method: median over subjects (and draws) of the absolute maps' Spearman correlation
    between the trained and the re-initialised model below ``max_spearman`` (no test)."""
    _require(table, ["method", "unit", "spearman_abs"], "randomisation table")
    rows = []
    for method, sub in table.groupby("method", sort=False):
        all_values = pd.to_numeric(sub["spearman_abs"], errors="coerce")
        values = all_values.dropna()
        med = float(values.median()) if len(values) else np.nan
        draws = int(sub["seed"].nunique()) if "seed" in sub else 1
        claim = f"{method} maps change under weight randomisation{label}"
        measured = f"median |map| Spearman {_fmt(med)} (bound {_fmt(max_spearman)}, {draws} draw(s))"
        undefined = int(all_values.isna().sum())
        note = (f"{undefined} of {len(all_values)} correlations undefined (a constant map, e.g. Grad-CAM "
                "all zero)" if undefined else "")
        direction = 1 if np.isfinite(med) and med < max_spearman else -1
        row = _row(claim, PAPERS["randomisation"], measured, "median below the bound (no test)", None,
                   int(sub["unit"].nunique()), "subject", direction, 0.05, note)
        if not len(values):
            row["verdict"] = INCONCLUSIVE  # nothing was measured, so the bound can be neither met nor missed
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# 6. transfer (Eitel et al. 2019)
# ----------------------------------------------------------------------------------------------
def transfer_claim(comparison: pd.DataFrame, alpha: float, metric: str = "balanced_accuracy") -> dict:
    """Fine-tuning beats training from scratch on ``metric`` (the transfer comparison table)."""
    _require(comparison, ["metric", "variant_a", "variant_b", "test", "n", "mean_a", "mean_b", "p_value"],
             "transfer comparison table")
    claim = f"fine-tuning > training from scratch ({metric})"
    found = _oriented(comparison, metric, "init-scratch", "init-finetune")
    if found is None:
        raise ValueError(f"transfer comparison table: no {metric} row of init-scratch vs init-finetune")
    r, diff = found
    family = int(comparison["p_value"].notna().sum())
    unit = str(r.get("unit", "split"))
    if r["test"] == "wilcoxon":
        min_p = min_p_signed_rank(int(r["n"]), family)
        test = "exact Wilcoxon signed-rank over splits, two-sided, Holm over metrics"
    else:
        min_p = min_p_rank_sum(int(r.get("n_a", 0)), int(r.get("n_b", 0)), family)
        test = f"Mann-Whitney U ({r.get('method', 'exact')}), two-sided, Holm over metrics"
    measured = (f"scratch {_fmt(_mean_of(r, 'init-scratch'))}, fine-tuned {_fmt(_mean_of(r, 'init-finetune'))}; "
                f"mean difference {_fmt(diff)}")
    note = _small_n_note(int(r["n"]), unit, min_p, alpha, family)
    return _row(claim, PAPERS["transfer"], measured, test, _holm_p(r), int(r["n"]), unit, _sign(diff), alpha, note)


# ----------------------------------------------------------------------------------------------
# 7. saliency-guided masking
# ----------------------------------------------------------------------------------------------
def masking_claims(metrics: pd.DataFrame, brain_dice: pd.DataFrame | None = None,
                   classes: Sequence[str] = ("GM", "WM")) -> list[dict]:
    """GM and WM Dice with the saliency-placed mask above the no-mask Dice (pooled over the test
    slices; no test), with the true-mask Dice and the share of the gap closed beside it."""
    _require(metrics, ["case", "class", "dice"], "masking metrics table")
    dice = metrics.set_index(["case", "class"])["dice"].astype(float)
    n_slices = int(metrics["n_slices"].iloc[0]) if "n_slices" in metrics else np.nan
    placed = ""
    if brain_dice is not None and not brain_dice.empty:
        _require(brain_dice, ["method", "subject", "dice"], "masking brain-mask Dice table")
        allrows = brain_dice[brain_dice["subject"].astype(str) == "all"].set_index("method")["dice"]
        if "saliency" in allrows:
            placed = f"; placed brain mask Dice {_fmt(float(allrows['saliency']))}"
            if "template_centre" in allrows:
                placed += f" (template at the centre {_fmt(float(allrows['template_centre']))})"
    rows = []
    for cls in classes:
        missing = [c for c in ("saliency", "none", "manual") if (c, cls) not in dice.index]
        if missing:
            raise ValueError(f"masking metrics table: no {cls} row for case(s) {missing}")
        sal, none, manual = dice[("saliency", cls)], dice[("none", cls)], dice[("manual", cls)]
        gap = manual - none
        share = (sal - none) / gap if gap != 0 else np.nan
        measured = (f"{cls} Dice: no mask {_fmt(none)}, saliency mask {_fmt(sal)}, true mask {_fmt(manual)}; "
                    f"share of the gap closed {_fmt(share)}{placed}")
        rows.append(_row(f"the saliency-placed mask recovers {cls} segmentation (Dice above no mask)",
                         PAPERS["masking"], measured, "Dice saliency > Dice no mask, pooled (no test)", None,
                         n_slices, "test slice", _sign(sal - none), 0.05))
    return rows


# ----------------------------------------------------------------------------------------------
# the table from the run's files
# ----------------------------------------------------------------------------------------------
def classify_tables(paths: Iterable[str | Path]) -> dict:
    """Recognise the run's tables by path: ``{key: path}`` for single tables and
    ``{"<study>/<variant>": {kind: path}}`` under ``"variants"``; other files are ignored."""
    out: dict = {"variants": {}}
    for path in paths:
        p = Path(path)
        key = _SINGLE.get((p.parent.name, p.name))
        if key:
            out[key] = p
            continue
        m = re.fullmatch(r"(.+)_(robustness-l2|randomisation|hippocampus-test|enrichment|planted-ranks|regions)\.tsv",
                         p.name)
        if m and p.parent.parent.name in ("stats", "attribution"):
            kind = "regions" if m.group(2) == "regions" else _STAT_KINDS[m.group(2)]
            out["variants"].setdefault(f"{p.parent.name}/{m.group(1)}", {})[kind] = p
    return out


def _read(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"unit": str, "subject": str})


def _need(tables: Mapping, key: str, why: str) -> Path:
    if key not in tables:
        raise ValueError(f"claims: {why} is switched on but no table {key!r} was given")
    return tables[key]


def claims_table(
    paths: Iterable[str | Path],
    enabled: Mapping[str, bool],
    *,
    alpha: float = 0.05,
    equivalence_margin: float = 0.05,
    top_rank: int = 10,
    primary_method: str = "lrpb0",
    robust_methods: Sequence[str] = ("gbp",),
    robustness_baseline: str = "gxi",
    max_spearman: float = 0.5,
    positive_group: str | None = None,
    planted: Sequence[str] = (),
) -> pd.DataFrame:
    """Every claim's row (columns :data:`CLAIM_COLUMNS`) from the run's tables.

    ``enabled`` says which of :data:`SWITCHES` are on (``attribution``: some variant is explained;
    ``synthetic``: the cohort has a planted ground truth). A claim whose switch is off gives one
    ``not run`` row; a claim whose switch is on needs its table among ``paths``.
    """
    _check_alpha(alpha)
    unknown = sorted(set(enabled) - set(SWITCHES))
    if unknown:
        raise ValueError(f"claims: unknown switch(es) {unknown}; valid: {list(SWITCHES)}")
    if int(top_rank) < 1:
        raise ValueError(f"analysis.claims.top_rank must be >= 1, got {top_rank!r}")
    on = {k: bool(enabled.get(k, False)) for k in SWITCHES}
    tables = classify_tables(paths)
    rows: list[dict] = []

    if on["registration"]:
        rows += registration_claims(_read(_need(tables, "registration_wilcoxon", "the registration study")),
                                    alpha, equivalence_margin)
    else:
        rows.append(not_run("registration improves accuracy; linear ~ SyN", PAPERS["registration"],
                            "registration study off"))

    if on["baseline"]:
        rows += baseline_claims(_read(_need(tables, "registration_baseline", "the classical baseline")),
                                equivalence_margin, alpha)
    else:
        rows.append(not_run("the best CNN arm at least matches a classical baseline", PAPERS["baseline"],
                            "baseline or registration study off"))

    if on["tissue"]:
        posthoc = _read(tables["tissue_posthoc"]) if "tissue_posthoc" in tables else None
        rows += tissue_claims(_read(_need(tables, "tissue_models_wilcoxon", "the tissue study")), posthoc, alpha)
    else:
        rows.append(not_run("pp1 > pp3, pp2 > pp3, pp4 > pp5", PAPERS["tissue"], "tissue study off"))

    variants = tables["variants"]
    if on["attribution"] and not variants:
        raise ValueError("claims: attribution is switched on but no per-variant statistics table was given")
    if not on["attribution"]:
        for claim, paper in (("relevance lies where the group difference is", "ground_truth"),
                             ("LRP and guided backprop more robust than gradient x input", "robustness"),
                             ("maps change under weight randomisation", "randomisation")):
            rows.append(not_run(claim, PAPERS[paper], "no study's runs are explained (attribution.studies)"))
    for name, kinds in sorted(variants.items()):
        if not on["attribution"]:
            break
        label = f" [{name}]"
        if on["synthetic"]:
            if positive_group is None:
                raise ValueError("claims: the enrichment claim needs the positive group (label.groups)")
            rows.append(enrichment_claim(_read(_need(kinds, "enrichment", f"the ground-truth check of {name}")),
                                         primary_method, positive_group, alpha, label))
            if "planted_ranks" in kinds:
                ranks = _read(kinds["planted_ranks"])
                extra = _other_metric_ranks(kinds.get("regions"), ranks, planted, positive_group)
                rows.append(planted_rank_claim(ranks, primary_method, int(top_rank), label, extra))
        elif "region_volumes" in tables and "labels" in tables and "regions" in kinds:
            if positive_group is None:
                raise ValueError("claims: the group-difference claim needs the positive group (label.groups)")
            effects = volume_effects(_read(tables["region_volumes"]), _read(tables["labels"]), positive_group)
            rows += group_difference_claims(_read(kinds["regions"]), effects, primary_method, positive_group,
                                            int(top_rank), alpha, label)
        else:
            rows.append(not_run(f"relevance lies where the group difference is{label}", PAPERS["ground_truth"],
                                "no planted ground truth and no regional volumes"))
        rows.append(hippocampus_claim(_read(_need(kinds, "hippocampus", f"the hippocampus test of {name}")),
                                      alpha, label))
        rows += robustness_claims(_read(_need(kinds, "robustness_l2", f"the robustness check of {name}")),
                                  primary_method, [m for m in robust_methods if m != primary_method],
                                  robustness_baseline, alpha, label)
        rows += randomisation_claims(_read(_need(kinds, "randomisation", f"the randomisation check of {name}")),
                                     max_spearman, label)

    if on["transfer"]:
        rows.append(transfer_claim(_read(_need(tables, "transfer_comparison", "the transfer study")), alpha))
    else:
        rows.append(not_run("fine-tuning > training from scratch", PAPERS["transfer"], "transfer study off"))

    if on["masking"]:
        brain = _read(tables["masking_brain_dice"]) if "masking_brain_dice" in tables else None
        rows += masking_claims(_read(_need(tables, "masking_metrics", "the masking study")), brain)
    else:
        rows.append(not_run("the saliency-placed mask recovers segmentation", PAPERS["masking"],
                            "masking study off"))
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)


def _other_metric_ranks(regions_tsv, ranks: pd.DataFrame, planted: Sequence[str],
                        positive_group: str | None) -> pd.DataFrame | None:
    """Planted-region ranks by the other of density / gain, from the variant's region table."""
    if regions_tsv is None or not planted or "metric" not in ranks:
        return None
    from mrixai.explain.regions import region_ranks

    have = str(ranks["metric"].iloc[0])
    other = {"density": "gain", "gain": "density"}.get(have)
    if other is None:
        return None
    table = _read(regions_tsv)
    if other not in table.columns:
        return None
    out = region_ranks(table, other, list(planted), by=("method",), group=positive_group)
    out.insert(2, "metric", other)
    return out


def write_claims(
    out_tsv: str | Path,
    paths: Iterable[str | Path],
    enabled: Mapping[str, bool],
    **options,
) -> pd.DataFrame:
    """Write the claims table (:func:`claims_table`) as a TSV and return it."""
    table = claims_table(paths, enabled, **options)
    with atomic_path(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    counts = table["verdict"].value_counts().to_dict()
    log.info("claims: %s", counts)
    return table


def claims_markdown(table: pd.DataFrame, alpha: float, source: str | Path | None = None) -> str:
    """The results page's "Claims" section: the verdict rule, stated in advance, and the table."""
    from mrixai.results_page import markdown_table

    _require(table, CLAIM_COLUMNS, "claims table")
    bad = sorted(set(table["verdict"]) - set(VERDICTS))
    if bad:
        raise ValueError(f"claims table: unknown verdict(s) {bad}; valid: {list(VERDICTS)}")
    lines = ["## Claims\n"]
    where = f" From `{source}`." if source else ""
    lines.append(f"Each claim of the reproduced papers, measured on this run.{where} Verdict rule "
                 f"(fixed before the run, alpha = {_fmt(alpha)}): {VERDICT_RULE}\n")
    lines.append(markdown_table(table))
    return "\n".join(lines)
