"""Ground truth of the synthetic cohort: is relevance where the effect was planted?

Enrichment of positive relevance in the planted-effect mask (its share of the relevance over its
share of the brain volume), and the ranks of the planted regions among all atlas regions.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.explain.aggregate import load_maps, parse_run, read_run_index
from mrixai.explain.regions import enrichment, load_sample_atlas, region_metrics, region_ranks, to_sample_grid
from mrixai.io import atomic_path

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
    regions_mask: str | Path | None = None,
    atlas: str | Path | None = None,
    labels: str | Path | None = None,
    merge_hemispheres: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Enrichment of positive relevance in the planted-effect mask per subject, run and method,
    and the ranks of the planted regions by ``rank_metric`` among the ``positive_group`` subjects.

    With ``regions_mask`` (the planted regions themselves) the enrichment table also has
    ``share_in_regions``, ``regions_volume_share`` and ``enrichment_regions`` for that mask.
    With ``atlas`` and ``labels`` the ranks table also has ``rank_of_effect``: each planted region's
    rank when the regions are ranked by the share of their volume inside the planted effect, i.e.
    the rank a map equal to the planted effect would give it (the best an explanation can do).
    """
    mask = mask_on_sample_grid(effect_mask, store_json)
    brain = mask_on_sample_grid(brain_mask, store_json)
    regions = None if regions_mask is None else mask_on_sample_grid(regions_mask, store_json)
    rows = []
    for run_dir in run_dirs:
        split, seed = parse_run(str(run_dir))
        index = read_run_index(run_dir)
        for method, part in index.groupby("method", sort=False):
            part = part.reset_index(drop=True)
            maps = load_maps(run_dir, part)
            table = enrichment(maps, mask, brain)
            if regions is not None:
                other = enrichment(maps, regions, brain)
                table["share_in_regions"] = other["share_in_mask"].to_numpy()
                table["regions_volume_share"] = other["volume_share"].to_numpy()
                table["enrichment_regions"] = other["enrichment"].to_numpy()
            table.insert(0, "method", method)
            table.insert(1, "run", f"split-{split}_seed-{seed}")
            table.insert(2, "unit", part["unit"].to_numpy())
            table.insert(3, "group", part["group"].to_numpy())
            rows.append(table)
    enrich = pd.concat(rows, ignore_index=True)
    region_table = pd.read_csv(regions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    ranks = region_ranks(region_table, rank_metric, list(planted), by=("method",), group=positive_group)
    ranks.insert(2, "metric", rank_metric)
    if atlas is not None and labels is not None:
        sample_atlas = load_sample_atlas(atlas, labels, store_json, merge_hemispheres)
        share = region_metrics(mask[None], sample_atlas)["density"][0]
        order = pd.Series(share, index=sample_atlas.names).rank(ascending=False, method="min").astype(int)
        ranks["rank_of_effect"] = ranks["region"].map(order).astype("Int64")
    _write(enrich, out_enrichment)
    _write(ranks, out_ranks)
    summary = enrich[enrich["group"] == positive_group].groupby("method")["enrichment"].mean()
    log.info("mean enrichment in the planted-effect mask (%s): %s", positive_group, summary.round(2).to_dict())
    if regions is not None:
        summary = enrich[enrich["group"] == positive_group].groupby("method")["enrichment_regions"].mean()
        log.info("mean enrichment in the planted regions (%s): %s", positive_group, summary.round(2).to_dict())
    shown = [c for c in ("method", "region", "rank", "rank_of_effect") if c in ranks.columns]
    log.info("planted-region ranks by %s: %s", rank_metric, ranks[shown].to_dict("records"))
    return enrich, ranks
