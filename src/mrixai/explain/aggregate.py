"""From one variant's attribution runs to region tables and mean maps (the inputs of statistics and figures).

A *variant* (e.g. the registration study's ``reg-syn``) has one attribution directory per
(split, seed) run, each holding one map per test subject and method plus ``index.tsv``
(see :mod:`mrixai.explain.maps`). :func:`aggregate_variant` reads them run by run (so memory
stays at one run's maps) and writes

- a long region table (run x subject x method x atlas region: sum of |relevance|, positive
  relevance, density and gain, with the run's split and seed), and
- a directory of mean maps as NIfTI on the sample grid: per method and true group (e.g. CN, AD),
  per method and outcome (TP, FP, TN, FN), and per method and run (max-scaled, for robustness).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.explain.regions import SampleAtlas, group_mean_maps, outcome, region_table
from mrixai.explain.robustness import max_scaled_mean
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
                fname = f"method-{method}_run-{run}_mean.nii.gz"
                save_map(max_scaled_mean(maps), affine, tmp / fname)
                rows.append({"method": method, "kind": "run", "name": run, "n": len(part), "file": fname})
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


def run_mean_maps(maps_dir: str | Path, method: str) -> Mapping[str, np.ndarray]:
    """Max-scaled per-run mean maps of one method, keyed by run name."""
    _, maps = read_mean_maps(maps_dir)
    out = {name: m for (meth, kind, name), m in maps.items() if meth == method and kind == "run"}
    if not out:
        raise ValueError(f"{maps_dir}: no per-run mean maps for method {method!r}")
    return out
