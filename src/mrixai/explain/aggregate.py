"""From one variant's attribution runs to region tables and mean maps (the inputs of statistics and figures).

A *variant* (e.g. the registration study's ``reg-syn``) has one attribution directory per
(split, seed) run, each holding one map per test subject and method plus ``index.tsv``
(see :mod:`mrixai.explain.maps`). :func:`aggregate_variant` reads them run by run (so memory
stays at one run's maps) and writes

- a long region table (run x subject x method x atlas region: sum of |relevance|, positive
  relevance, density and gain, with the run's split and seed), and
- a directory of mean maps as NIfTI on the sample grid: per method and true group (e.g. CN, AD),
  per method and outcome (TP, FP, TN, FN), and per method and run (max-scaled, for robustness):
  over all the run's test subjects (kind ``run``) and over its true positives and true negatives
  (kinds ``run-TP`` and ``run-TN``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.explain.regions import SampleAtlas, group_mean_maps, outcome, region_table
from mrixai.explain.robustness import L2_GROUPS, group_pairwise_l2, method_overlap, run_group_means, topk_overlap
from mrixai.io import atomic_path

log = logging.getLogger(__name__)

RUN_NAME = re.compile(r"split-(\d+)_seed-(\d+)$")


def parse_run(name: str) -> tuple[int, int]:
    """(split, seed) of a run directory named ``split-<s>_seed-<r>``."""
    match = RUN_NAME.search(Path(name).name)
    if not match:
        raise ValueError(f"{name!r} is not a run directory named split-<s>_seed-<r>")
    return int(match.group(1)), int(match.group(2))


def read_run_index(run_dir: str | Path) -> pd.DataFrame:
    """The ``index.tsv`` of one attribution run, checked for the columns later steps use."""
    path = Path(run_dir) / "index.tsv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: attribution index missing (was the attribute_model rule run?)")
    index = pd.read_csv(path, sep="\t", dtype={"unit": str, "subject": str})
    missing = {"unit", "subject", "group", "label", "pred", "method", "file"} - set(index.columns)
    if missing:
        raise ValueError(f"{path}: columns {sorted(missing)} missing")
    return index


def load_maps(run_dir: str | Path, rows: pd.DataFrame) -> np.ndarray:
    """Stack the maps named in ``rows['file']`` of one run directory into (n, *grid) float32."""
    run_dir = Path(run_dir)
    arrays = []
    for name in rows["file"]:
        path = run_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"{path}: attribution map listed in index.tsv is missing")
        arrays.append(np.asanyarray(nib.load(path).dataobj, dtype=np.float32))
    return np.stack(arrays) if arrays else np.zeros((0,), dtype=np.float32)


def save_map(data: np.ndarray, affine: np.ndarray, path: Path) -> None:
    """Write a float32 map with the sample grid's affine (sform and qform, mm units)."""
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    img.header.set_xyzt_units("mm", "sec")
    nib.save(img, path)


def aggregate_variant(
    run_dirs: list[str | Path],
    atlas: SampleAtlas,
    affine: np.ndarray,
    out_regions: str | Path,
    out_maps: str | Path,
    *,
    control_label: int = 0,
) -> pd.DataFrame:
    """Region table and mean maps of one variant's attribution runs (see the module docstring)."""
    if not run_dirs:
        raise ValueError("aggregate_variant needs at least one attribution run directory")
    affine = np.asarray(affine, dtype=float)
    sums: dict[tuple[str, str], np.ndarray] = {}
    counts: dict[tuple[str, str], int] = {}
    tables, rows = [], []
    with atomic_path(out_maps) as tmp:
        tmp.mkdir(parents=True)
        for run_dir in sorted(run_dirs, key=lambda p: parse_run(str(p))):
            split, seed = parse_run(str(run_dir))
            run = f"split-{split}_seed-{seed}"
            index = read_run_index(run_dir)
            for method, part in index.groupby("method", sort=False):
                part = part.reset_index(drop=True)
                maps = load_maps(run_dir, part)
                if maps.shape[1:] != tuple(atlas.grid):
                    raise ValueError(f"{run_dir}: maps of shape {maps.shape[1:]} but the atlas grid is {atlas.grid}")
                table = region_table(part, maps, atlas, control_label=control_label)
                table.insert(0, "run", run)
                table.insert(1, "split", split)
                table.insert(2, "seed", seed)
                tables.append(table)
                sizes = part["group"].astype(str).value_counts().to_dict()
                for lab, pred in zip(part["label"], part["pred"]):
                    name = outcome(int(lab), int(pred))
                    sizes[name] = sizes.get(name, 0) + 1
                for name, mean in group_mean_maps(part, maps).items():
                    n = sizes[str(name)]
                    key = (str(method), str(name))
                    sums[key] = sums.get(key, 0) + mean.astype(np.float64) * n
                    counts[key] = counts.get(key, 0) + n
                outcomes = [outcome(int(lab), int(pred)) for lab, pred in zip(part["label"], part["pred"])]
                for group, (mean, n) in run_group_means(outcomes, maps).items():
                    suffix = "" if group == "all" else f"_outcome-{group}"
                    fname = f"method-{method}_run-{run}{suffix}_mean.nii.gz"
                    save_map(mean, affine, tmp / fname)
                    rows.append({"method": method, "kind": run_kind(group), "name": run, "n": n, "file": fname})
        for (method, name), total in sums.items():
            kind = "outcome" if name in ("TP", "FP", "TN", "FN") else "group"
            fname = f"method-{method}_{kind}-{name}_mean.nii.gz"
            save_map(total / counts[(method, name)], affine, tmp / fname)
            rows.append({"method": method, "kind": kind, "name": name, "n": counts[(method, name)], "file": fname})
        pd.DataFrame(rows).to_csv(tmp / "index.tsv", sep="\t", index=False)
    regions = pd.concat(tables, ignore_index=True)
    with atomic_path(out_regions) as tmp:
        regions.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log.info(
        "%d runs, %d methods, %d regions: region table %s, %d mean maps in %s",
        len(run_dirs), regions["method"].nunique(), regions["region"].nunique(), out_regions, len(rows), out_maps,
    )
    return regions


def read_mean_maps(maps_dir: str | Path) -> tuple[pd.DataFrame, dict[tuple[str, str, str], np.ndarray]]:
    """The index of a mean-map directory and its maps keyed by (method, kind, name)."""
    maps_dir = Path(maps_dir)
    index = pd.read_csv(maps_dir / "index.tsv", sep="\t", dtype={"name": str})
    maps = {
        (r.method, r.kind, r.name): np.asanyarray(nib.load(maps_dir / r.file).dataobj, dtype=np.float32)
        for r in index.itertuples(index=False)
    }
    return index, maps


def run_kind(group: str) -> str:
    """Mean-map ``kind`` of the per-run maps of an :data:`~mrixai.explain.robustness.L2_GROUPS` group."""
    return "run" if group == "all" else f"run-{group}"


def write_tsv(df: pd.DataFrame, path: str | Path) -> None:
    """Write a table atomically (tab-separated, 6 significant digits)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


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
    of each pair, per group (column ``group``: the runs' true positives, their true negatives, as
    in the paper, and all their test subjects; a pair is compared in a group only when both runs
    have subjects in it, ``n_a`` and ``n_b`` say how many), and the mean top-k region
    intersection per metric; plus the top-k overlap between LRP beta values (all runs' subjects).
    """
    regions = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    index, mean_maps = read_mean_maps(maps_dir)
    sizes = {(r.method, r.kind, r.name): int(r.n) for r in index.itertuples(index=False)}
    columns = ["method", "group", "split", "run_a", "run_b", "n_a", "n_b", "l2"]
    l2 = []
    for method in methods:
        runs = [name for (meth, kind, name) in mean_maps if meth == method and kind == "run"]
        if not runs:
            raise ValueError(f"{maps_dir}: no per-run mean maps for method {method!r}")
        for split, names in _runs_by_split(runs).items():
            if len(names) < 2:
                continue
            groups = {
                group: {n: mean_maps[(method, run_kind(group), n)] for n in names
                        if (method, run_kind(group), n) in mean_maps}
                for group in L2_GROUPS
            }
            table = group_pairwise_l2(groups)
            table["n_a"] = [sizes[(method, run_kind(g), r)] for g, r in zip(table["group"], table["run_a"])]
            table["n_b"] = [sizes[(method, run_kind(g), r)] for g, r in zip(table["group"], table["run_b"])]
            table.insert(0, "method", method)
            table.insert(2, "split", split)
            l2.append(table[columns])
    l2 = pd.concat(l2, ignore_index=True) if l2 else pd.DataFrame(columns=columns)
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
