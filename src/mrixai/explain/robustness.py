"""Robustness of explanations over identical retrainings (Eitel & Ritter 2019).

The same network is trained several times with only the random seed changed; robust
explanations should barely move. Two measures: the Euclidean (L2) distance between the runs'
max-scaled mean maps, and the overlap of their top-k atlas regions. As in the paper, the mean
maps are taken per outcome: over a run's true positives (TP) and, separately, over its true
negatives (TN), and runs are compared group by group (:data:`L2_GROUPS`; ``all``, every test
subject of a run, is reported beside them). The top-k overlap between methods (e.g. LRP
alpha-beta with beta 0 .. 1) uses the same region ranking.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mrixai.explain.regions import top_regions

log = logging.getLogger(__name__)


def max_scaled_mean(maps: np.ndarray) -> np.ndarray:
    """Mean over subjects (axis 0) divided by its maximum absolute value (all zeros stay zeros)."""
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim < 2 or maps.shape[0] == 0:
        raise ValueError(f"maps must have shape (n >= 1, *grid), got {maps.shape}")
    mean = maps.mean(axis=0)
    return _max_scaled(mean)


def _max_scaled(data: np.ndarray) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    if not np.isfinite(data).all():
        raise ValueError("map holds non-finite values")
    peak = np.abs(data).max(initial=0.0)
    return data / peak if peak > 0 else np.zeros_like(data)


# Subject groups whose per-run mean maps are compared: true positives and true negatives (the
# paper's two), then every test subject of the run.
L2_GROUPS = ("TP", "TN", "all")


def run_group_means(outcomes: Sequence[str], maps: np.ndarray) -> dict[str, tuple[np.ndarray, int]]:
    """Max-scaled mean map and subject count of each :data:`L2_GROUPS` group of one run.

    ``outcomes`` (TP / FP / TN / FN, one per map) align with ``maps`` ``(n, *grid)``; a group
    without subjects in the run is left out.
    """
    outcomes = np.asarray(outcomes, dtype=str)
    maps = np.asarray(maps)
    if len(outcomes) != len(maps):
        raise ValueError(f"{len(outcomes)} outcomes for {len(maps)} maps")
    out = {}
    for group in L2_GROUPS:
        keep = np.ones(len(outcomes), dtype=bool) if group == "all" else outcomes == group
        if keep.any():
            out[group] = (max_scaled_mean(maps[keep]), int(keep.sum()))
    return out


def pairwise_l2(mean_maps: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """L2 distance between the max-scaled mean maps of every unordered pair of runs.

    Each map is scaled by its maximum absolute value here (a no-op for maps from
    :func:`max_scaled_mean`), so the distance ignores a positive scale factor of a run's maps.
    """
    if len(mean_maps) < 2:
        raise ValueError(f"need at least 2 runs to compare, got {list(mean_maps)}")
    scaled = {run: _max_scaled(m) for run, m in mean_maps.items()}
    shapes = {run: m.shape for run, m in scaled.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"mean maps differ in shape: {shapes}")
    rows = [
        {"run_a": a, "run_b": b, "l2": float(np.linalg.norm((scaled[a] - scaled[b]).ravel()))}
        for a, b in itertools.combinations(scaled, 2)
    ]
    return pd.DataFrame(rows, columns=["run_a", "run_b", "l2"])


def group_pairwise_l2(group_maps: Mapping[str, Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """:func:`pairwise_l2` per group (e.g. TP, TN) over the runs that have a mean map of it.

    ``group_maps[group][run]`` is a run's mean map of that group; a group held by fewer than two
    runs gives no rows. Columns: group, run_a, run_b, l2.
    """
    tables = []
    for group, runs in group_maps.items():
        if len(runs) < 2:
            log.info("L2 of group %s: %d run(s) with such subjects, no pair", group, len(runs))
            continue
        tables.append(pairwise_l2(runs).assign(group=group))
    if not tables:
        return pd.DataFrame(columns=["group", "run_a", "run_b", "l2"])
    return pd.concat(tables, ignore_index=True)[["group", "run_a", "run_b", "l2"]]


def _top_sets(table: pd.DataFrame, metric: str, k: int, by: Sequence[str], group: str | None) -> dict[tuple, set]:
    """Top-k region set per ``by`` combination of one region table."""
    top = top_regions(table, metric, k, by=by, group=group)
    if not by:
        return {(): set(top["region"])}
    return {
        key if isinstance(key, tuple) else (key,): set(part["region"])
        for key, part in top.groupby(list(by), sort=True)
    }


def topk_overlap(
    tables: Mapping[str, pd.DataFrame],
    metric: str,
    k: int = 10,
    by: Sequence[str] = ("method",),
    group: str | None = None,
) -> pd.DataFrame:
    """Mean and SD (over unordered run pairs, ddof 0) of the size of the runs' top-k region overlap.

    ``tables`` maps a run name to its region table (:func:`mrixai.explain.regions.region_table`).
    Only ``by`` combinations present in every run are compared (the others are logged).
    """
    if len(tables) < 2:
        raise ValueError(f"need at least 2 runs to compare, got {list(tables)}")
    by = list(by)
    sets = {run: _top_sets(t, metric, k, by, group) for run, t in tables.items()}
    keys = [set(s) for s in sets.values()]
    common = sorted(set.intersection(*keys))
    partial = sorted(set.union(*keys) - set(common))
    if partial:
        log.warning("top-%d overlap: %s are missing from some runs and left out", k, partial)
    if not common:
        raise ValueError(f"no {by} combination is present in every run")
    rows = []
    for key in common:
        overlaps = [len(sets[a][key] & sets[b][key]) for a, b in itertools.combinations(sets, 2)]
        rows.append({
            **dict(zip(by, key)), "metric": metric, "k": int(k), "n_runs": len(sets),
            "n_pairs": len(overlaps), "mean_overlap": float(np.mean(overlaps)), "sd_overlap": float(np.std(overlaps)),
        })
    return pd.DataFrame(rows, columns=[*by, "metric", "k", "n_runs", "n_pairs", "mean_overlap", "sd_overlap"])


def method_overlap(
    table: pd.DataFrame,
    methods: Sequence[str],
    metric: str,
    k: int = 10,
    group: str | None = None,
) -> pd.DataFrame:
    """Top-k region overlap between every ordered pair of ``methods`` (long square table).

    The diagonal is the size of a method's own top-k set (``k`` when it has at least ``k`` regions).
    """
    if not methods:
        raise ValueError("methods is empty")
    if "method" not in table.columns:
        raise ValueError(f"region table lacks a method column; has {list(table.columns)}")
    available = sorted(map(str, table["method"].unique()))
    unknown = [m for m in methods if m not in available]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; the table has {available}")
    sets = _top_sets(table[table["method"].isin(list(methods))], metric, k, ("method",), group)
    rows = [
        {"method_a": a, "method_b": b, "overlap": len(sets.get((a,), set()) & sets.get((b,), set()))}
        for a in methods for b in methods
    ]
    return pd.DataFrame(rows, columns=["method_a", "method_b", "overlap"])
