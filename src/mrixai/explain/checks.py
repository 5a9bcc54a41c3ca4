"""Checks of the explanations: ground truth, model randomisation and the hippocampus.

- :func:`ground_truth_check`: on the synthetic cohort, where the planted effect is known, how
  much positive relevance falls inside the planted-effect mask relative to its volume
  (enrichment), and where the planted regions rank among all atlas regions.
- :func:`randomisation_check`: maps of the same subjects from a model whose weights were
  re-initialised (Adebayo et al.'s model-randomisation test); a method whose maps do not change
  explains the input, not the model.
- :func:`hippocampus_check`: hippocampal relevance against hippocampal grey-matter volume among
  true positives, with a permutation p-value (Boehle et al.).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from mrixai.explain.aggregate import load_maps, parse_run, read_run_index
from mrixai.explain.attribution import attribute, spearman_maps
from mrixai.explain.maps import check_methods
from mrixai.explain.neuro import permutation_correlation
from mrixai.explain.regions import enrichment, region_ranks, to_sample_grid
from mrixai.io import atomic_path
from mrixai.learn.data import pick_device
from mrixai.learn.train import model_from_checkpoint

log = logging.getLogger(__name__)


def _write(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def mask_on_sample_grid(mask_nii: str | Path, store_json: str | Path) -> np.ndarray:
    """Fraction of each sample voxel inside a template-grid mask (e.g. the planted effect)."""
    meta = json.loads(Path(store_json).read_text())
    img = nib.load(mask_nii)
    if not np.allclose(img.affine, np.asarray(meta["template_affine"]), atol=1e-3):
        raise ValueError(f"{mask_nii}: not on the template grid the store {store_json} was cut from")
    return to_sample_grid((np.asanyarray(img.dataobj) > 0).astype(np.float32), meta)


def ground_truth_check(
    run_dirs: Sequence[str | Path],
    regions_tsv: str | Path,
    effect_mask: str | Path,
    brain_mask: str | Path,
    store_json: str | Path,
    planted: Sequence[str],
    out_enrichment: str | Path,
    out_ranks: str | Path,
    *,
    positive_group: str,
    rank_metric: str = "density",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Enrichment of positive relevance in the planted-effect mask per subject, run and method,
    and the ranks of the planted regions by ``rank_metric`` among the ``positive_group`` subjects.
    """
    mask = mask_on_sample_grid(effect_mask, store_json)
    brain = mask_on_sample_grid(brain_mask, store_json)
    rows = []
    for run_dir in run_dirs:
        split, seed = parse_run(str(run_dir))
        index = read_run_index(run_dir)
        for method, part in index.groupby("method", sort=False):
            part = part.reset_index(drop=True)
            table = enrichment(load_maps(run_dir, part), mask, brain)
            table.insert(0, "method", method)
            table.insert(1, "run", f"split-{split}_seed-{seed}")
            table.insert(2, "unit", part["unit"].to_numpy())
            table.insert(3, "group", part["group"].to_numpy())
            rows.append(table)
    enrich = pd.concat(rows, ignore_index=True)
    regions = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    ranks = region_ranks(regions, rank_metric, list(planted), by=("method",), group=positive_group)
    ranks.insert(2, "metric", rank_metric)
    _write(enrich, out_enrichment)
    _write(ranks, out_ranks)
    summary = enrich[enrich["group"] == positive_group].groupby("method")["enrichment"].mean()
    log.info("mean enrichment in the planted-effect mask (%s): %s", positive_group, summary.round(2).to_dict())
    log.info("planted-region ranks by %s: %s", rank_metric, ranks[["method", "region", "rank"]].to_dict("records"))
    return enrich, ranks


def randomise_weights(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-initialise every layer that has parameters (in place), seeded; BatchNorm statistics reset."""
    torch.manual_seed(seed)
    n = 0
    for module in model.modules():
        if hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False)):
            module.reset_parameters()
            n += 1
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    if n == 0:
        raise ValueError("the model has no layer with parameters to re-initialise")
    log.info("re-initialised %d layers (seed %d)", n, seed)
    return model


def randomisation_check(
    model_path: str | Path,
    store_npy: str | Path,
    store_tsv: str | Path,
    run_dir: str | Path,
    methods: Mapping[str, Mapping],
    names: Sequence[str],
    out_tsv: str | Path,
    *,
    seed: int = 0,
    device: str = "auto",
    target: str = "positive",
) -> pd.DataFrame:
    """Spearman correlation (inside the brain) between each test subject's trained-model map and
    the map of the same model with re-initialised weights, for the methods ``names``."""
    specs = check_methods(methods)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"analysis.randomisation.methods {unknown} are not in attribution.methods {list(specs)}")
    dev = pick_device(device)
    model, _ = model_from_checkpoint(model_path)
    random_model = randomise_weights(model_from_checkpoint(model_path)[0], seed).to(dev)
    index = read_run_index(run_dir)
    store_index = pd.read_csv(store_tsv, sep="\t", dtype={"unit": str})
    row_of = dict(zip(store_index["unit"], store_index["row"]))
    store = np.load(store_npy, mmap_mode="r")
    rows = []
    for name in names:
        part = index[index["method"] == name].reset_index(drop=True)
        if part.empty:
            raise ValueError(f"{run_dir}: no maps of method {name!r} to compare with")
        trained = load_maps(run_dir, part)
        x = torch.from_numpy(np.stack([store[row_of[u]] for u in part["unit"]]))[:, None].to(dev)
        targets = torch.ones(len(part), dtype=torch.long) if target == "positive" else torch.as_tensor(
            part["pred"].to_numpy(), dtype=torch.long
        )
        spec = specs[name]
        opts = {k: v for k, v in spec.items() if k != "method"}
        random_maps = attribute(random_model, x, spec["method"], targets, **opts).cpu().numpy()[:, 0]
        for i, unit in enumerate(part["unit"]):
            brain = np.asarray(store[row_of[unit]]) != 0
            rho = spearman_maps(trained[i][brain], random_maps[i][brain])
            rows.append({"method": name, "unit": unit, "group": part["group"][i], "spearman": rho})
    table = pd.DataFrame(rows)
    _write(table, out_tsv)
    log.info("trained vs randomised model, median Spearman: %s",
             table.groupby("method")["spearman"].median().round(3).to_dict())
    return table


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
) -> dict:
    """Correlate hippocampal relevance (``metric`` of ``method``, averaged over the runs in which a
    subject was a true positive) with the subject's native hippocampal grey-matter volume."""
    regions = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    for what, value, valid in (("method", method, regions["method"]), ("region", region, regions["region"])):
        if value not in set(valid):
            raise ValueError(f"{regions_tsv}: no {what} {value!r}; valid: {sorted(set(valid))}")
    tp = regions[(regions["outcome"] == "TP") & (regions["method"] == method) & (regions["region"] == region)]
    points = tp.groupby("unit", as_index=False).agg(relevance=(metric, "mean"), n_runs=("run", "nunique"))
    volumes = []
    for unit in points["unit"]:
        if unit not in volume_tsvs:
            raise ValueError(f"no regional volume table for unit {unit}")
        vol = pd.read_csv(volume_tsvs[unit], sep="\t")
        match = vol[vol["region"] == region]
        if match.empty:
            raise ValueError(f"{volume_tsvs[unit]}: no region {region!r}")
        volumes.append(float(match["gm_ml"].iloc[0]))
    points["volume_ml"] = volumes
    _write(points, out_points)
    if len(points) >= 3:
        result = permutation_correlation(
            points["volume_ml"].to_numpy(), points["relevance"].to_numpy(), n_permutations, seed, "pearson"
        )
    else:
        log.warning("only %d true positives: too few for a correlation", len(points))
        result = {"r": float("nan"), "p": float("nan"), "n": len(points)}
    result = {"method": method, "region": region, "metric": metric, "permutations": n_permutations, **result}
    _write(pd.DataFrame([result]), out_test)
    log.info("hippocampal volume vs relevance among %d true positives: r = %.3f, p = %.4f",
             result["n"], result["r"], result["p"])
    return result
