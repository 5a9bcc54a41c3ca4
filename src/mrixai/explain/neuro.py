"""Neurobiological checks of explanations: relevance against measured anatomy.

Boehle et al. correlate each patient's hippocampal relevance with the hippocampal volume; a
model that looks at atrophy should give more relevance to smaller hippocampi. The volumes
come from :mod:`mrixai.explain.volumes` (the atlas warped into each subject's native space). The correlation is tested with
a permutation test, which makes no normality assumption for a few dozen subjects; with few subjects
every permutation is enumerated, so the p value is exact and does not depend on the seed.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mrixai.io import atomic_path

log = logging.getLogger(__name__)

CORRELATIONS = ("pearson", "spearman")
#: Numerical slack when counting permuted correlations at least as large as the observed one.
_TIE_TOLERANCE = 1e-12


def _rows_correlation(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``x`` (n,) with every row of ``ys`` (m, n)."""
    xc = x - x.mean()
    yc = ys - ys.mean(axis=1, keepdims=True)
    return (yc @ xc) / (np.linalg.norm(yc, axis=1) * np.linalg.norm(xc))


def permutation_correlation(
    x: Sequence[float],
    y: Sequence[float],
    n_permutations: int = 10000,
    seed: int = 0,
    method: str = "pearson",
    max_exact: int = 1_000_000,
) -> dict:
    """Correlation of ``x`` and ``y`` with a two-sided permutation p value.

    With ``n! <= max_exact`` pairs' orderings, every permutation of ``y`` is enumerated and
    ``p = #{|r_perm| >= |r|} / n!`` (exact; ``seed`` and ``n_permutations`` play no part). Otherwise
    ``p = (1 + #{|r_perm| >= |r|}) / (1 + n_permutations)`` over random permutations, so it is never 0.
    Returns a dict with ``r``, ``p``, ``n``, ``p_method`` (``exact`` or ``permutation``) and
    ``permutations`` (the number enumerated or drawn).
    """
    if method not in CORRELATIONS:
        raise ValueError(f"correlation method must be one of {CORRELATIONS}, got {method!r}")
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations!r}")
    if int(max_exact) < 1:
        raise ValueError(f"max_exact must be >= 1, got {max_exact!r}")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    if x.size < 3:
        raise ValueError(f"need at least 3 pairs for a correlation, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (drop missing values first)")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError(f"x or y is constant (x range {np.ptp(x)}, y range {np.ptp(y)}): correlation undefined")
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
    r = float(_rows_correlation(x, y[None, :])[0])
    threshold = abs(r) - _TIE_TOLERANCE
    n_orders = math.factorial(x.size)
    if n_orders <= int(max_exact):
        orders = np.array(list(itertools.permutations(range(x.size))))
        count = int((np.abs(_rows_correlation(x, y[orders])) >= threshold).sum())
        return {"r": r, "p": count / n_orders, "n": int(x.size), "p_method": "exact", "permutations": n_orders}
    rng = np.random.default_rng(seed)
    count, done, chunk = 0, 0, 10000
    while done < n_permutations:
        m = min(chunk, int(n_permutations) - done)
        perms = rng.permuted(np.broadcast_to(y, (m, y.size)), axis=1)
        count += int((np.abs(_rows_correlation(x, perms)) >= threshold).sum())
        done += m
    return {"r": r, "p": (1 + count) / (1 + int(n_permutations)), "n": int(x.size), "p_method": "permutation",
            "permutations": int(n_permutations)}


def _write(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


#: Outcomes of a test subject in a run (label x prediction); TP/FN belong to the second group.
OUTCOMES = ("TP", "FN", "TN", "FP")
#: Native regional volume measures (columns of the region volume tables of :mod:`mrixai.explain.volumes`).
VOLUME_MEASURES = ("gm_ml", "label_ml")
#: The sign of the correlation a neurobiological check expects.
DIRECTIONS = ("negative", "positive")


def hippocampus_check(
    regions_tsv: str | Path,
    volume_tsvs: Mapping[str, str | Path],
    out_points: str | Path,
    out_test: str | Path,
    *,
    method: str,
    region: str = "Hippocampus",
    metric: str = "sum_abs",
    n_permutations: int = 10000,
    seed: int = 0,
    max_exact: int = 1_000_000,
    outcomes: Sequence[str] = ("TP",),
    volume_measure: str = "gm_ml",
    direction: str = "negative",
) -> dict:
    """Correlate a region's relevance (``metric`` of ``method``, averaged over the runs in which a
    subject's outcome was one of ``outcomes``) with the subject's native volume of that region.

    The defaults are Boehle et al.'s check: hippocampal relevance of the true positives against
    the native hippocampal grey-matter volume (``gm_ml``), expected to fall with it
    (``direction`` negative). ``volume_measure`` ``label_ml`` takes the volume of the atlas
    region warped into the subject (for a region that is not grey matter, such as the lateral
    ventricles), and ``outcomes`` e.g. ``["TP", "FN"]`` takes every test subject of the second
    group. ``direction`` is only recorded for the claims table; the p value is two-sided.

    The test table holds ``method, region, metric, r, p, n, unit`` (``subject``), ``p_method``
    (``exact`` or ``permutation``, see :func:`permutation_correlation``), ``permutations``,
    ``outcomes`` (joined by ``+``), ``volume_measure`` and ``direction``."""
    outcomes = list(outcomes)
    bad = [o for o in outcomes if o not in OUTCOMES]
    if not outcomes or bad:
        raise ValueError(f"outcomes must be a non-empty list of {OUTCOMES}, got {outcomes!r}")
    if volume_measure not in VOLUME_MEASURES:
        raise ValueError(f"volume_measure must be one of {VOLUME_MEASURES}, got {volume_measure!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    regions = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    for what, value, valid in (("method", method, regions["method"]), ("region", region, regions["region"])):
        if value not in set(valid):
            raise ValueError(f"{regions_tsv}: no {what} {value!r}; valid: {sorted(set(valid))}")
    chosen = regions[regions["outcome"].isin(outcomes) & (regions["method"] == method) & (regions["region"] == region)]
    points = chosen.groupby("unit", as_index=False).agg(relevance=(metric, "mean"), n_runs=("run", "nunique"))
    volumes = []
    for unit in points["unit"]:
        if unit not in volume_tsvs:
            raise ValueError(f"no regional volume table for unit {unit}")
        vol = pd.read_csv(volume_tsvs[unit], sep="\t")
        if volume_measure not in vol.columns:
            raise ValueError(f"{volume_tsvs[unit]}: no column {volume_measure!r}; has {list(vol.columns)}")
        match = vol[vol["region"] == region]
        if match.empty:
            raise ValueError(f"{volume_tsvs[unit]}: no region {region!r}")
        volumes.append(float(match[volume_measure].iloc[0]))
    points["volume_ml"] = volumes
    _write(points, out_points)
    if len(points) >= 3:
        result = permutation_correlation(
            points["volume_ml"].to_numpy(), points["relevance"].to_numpy(), n_permutations, seed, "pearson",
            max_exact,
        )
    else:
        log.warning("only %d subjects with outcome %s: too few for a correlation", len(points), "+".join(outcomes))
        result = {"r": float("nan"), "p": float("nan"), "n": len(points), "p_method": "", "permutations": 0}
    result = {"method": method, "region": region, "metric": metric, "r": result["r"], "p": result["p"],
              "n": result["n"], "unit": "subject", "p_method": result["p_method"],
              "permutations": result["permutations"], "outcomes": "+".join(outcomes),
              "volume_measure": volume_measure, "direction": direction}
    _write(pd.DataFrame([result]), out_test)
    log.info("%s volume (%s) vs relevance among %d subjects (%s): r = %.3f, p = %.4f",
             region, volume_measure, result["n"], "+".join(outcomes), result["r"], result["p"])
    return result
