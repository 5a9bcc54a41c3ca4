"""Atlas region metrics of attribution maps on the volume store's sample grid.

Attribution maps live on the sample grid of a volume store: the template grid cropped or padded
to ``shape`` at ``offset`` and block-averaged by ``downsample`` (e.g. 2 mm -> 4 mm). A sample voxel
can straddle region borders, so region membership is *fractional*: the weight of sample voxel
``v`` in region ``r`` is the fraction of its ``downsample``^3 template voxels labelled ``r``, which
is exactly ``block_mean(crop_or_pad(indicator_r))``. Region metrics are weighted sums of the maps
with those fractions (Boehle et al.): the sum of absolute relevance, the sum of positive
relevance, the size-normalised density (relevance per ml) and the gain (density relative to the
mean control subject's density).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import scipy.sparse as sp

from mrixai.grid import on_sample_grid

log = logging.getLogger(__name__)

HEMISPHERE_PREFIXES = ("Left_", "Right_")
OUTCOMES = ("TP", "FP", "TN", "FN")
METRICS = ("sum_abs", "sum_pos", "density")
TABLE_COLUMNS = (
    "unit", "subject", "group", "label", "pred", "outcome", "method",
    "region", "volume_ml", "sum_abs", "sum_pos", "density", "gain",
)


def _meta(meta: Mapping) -> tuple[tuple[int, ...], tuple[int, ...], int, tuple[int, ...], tuple[int, ...]]:
    """shape, offset, downsample, template_shape and grid of a store's JSON sidecar, checked."""
    missing = [k for k in ("shape", "offset", "downsample", "template_shape") if k not in meta]
    if missing:
        raise ValueError(f"store metadata lacks {missing}; has {sorted(meta)}")
    shape = tuple(int(s) for s in meta["shape"])
    offset = tuple(int(o) for o in meta["offset"])
    ds = int(meta["downsample"])
    template_shape = tuple(int(s) for s in meta["template_shape"])
    if len(shape) != 3 or len(offset) != 3 or len(template_shape) != 3:
        raise ValueError(f"store shape {shape}, offset {offset}, template_shape {template_shape} must be 3D")
    if ds < 1 or any(s % ds for s in shape):
        raise ValueError(f"store shape {shape} is not a multiple of downsample={ds}")
    grid = tuple(s // ds for s in shape)
    if "grid" in meta and tuple(int(g) for g in meta["grid"]) != grid:
        raise ValueError(f"store grid {meta['grid']} != shape {shape} / downsample {ds}")
    return shape, offset, ds, template_shape, grid


def to_sample_grid(data: np.ndarray, meta: Mapping) -> np.ndarray:
    """A template-grid array on the store's sample grid (crop/pad, then block mean), as float."""
    shape, offset, ds, template_shape, _ = _meta(meta)
    data = np.asarray(data)
    if data.shape != template_shape:
        raise ValueError(f"array shape {data.shape} differs from the store's template_shape {template_shape}")
    return np.asarray(on_sample_grid(data, shape, offset, ds), dtype=np.float64)


def merged_name(name: str) -> str:
    """``Left_X`` / ``Right_X`` -> ``X``; names without a hemisphere prefix stay."""
    for prefix in HEMISPHERE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix):]
    return name


def read_label_table(labels_tsv: str | Path) -> pd.DataFrame:
    """The atlas label table (columns ``index``, ``name``), checked for duplicates."""
    table = pd.read_csv(labels_tsv, sep="\t")
    if not {"index", "name"} <= set(table.columns):
        raise ValueError(f"{labels_tsv}: label table needs columns index, name; has {list(table.columns)}")
    table = table[["index", "name"]].astype({"index": int, "name": str})
    dup = table["index"][table["index"].duplicated()].tolist()
    if dup:
        raise ValueError(f"{labels_tsv}: duplicated label indices {dup}")
    if (table["index"] <= 0).any():
        raise ValueError(f"{labels_tsv}: label indices must be > 0 (0 is background), got {table['index'].min()}")
    return table


def region_columns(table: pd.DataFrame, merge_hemispheres: bool) -> tuple[list[str], dict[int, int]]:
    """Region names (table order, merged or not) and the column of each label index."""
    names: list[str] = []
    column_of_name: dict[str, int] = {}
    column_of_label: dict[int, int] = {}
    for index, name in zip(table["index"], table["name"]):
        key = merged_name(name) if merge_hemispheres else name
        if key not in column_of_name:
            column_of_name[key] = len(names)
            names.append(key)
        column_of_label[int(index)] = column_of_name[key]
    return names, column_of_label


@dataclass
class SampleAtlas:
    """Fractional atlas membership on a store's sample grid.

    ``weights[v, r]`` is the fraction (0..1) of sample voxel ``v`` (C-order ravel of ``grid``) that
    lies in region ``r``; ``volume_ml[r]`` the region's volume kept by the crop; ``voxel_ml`` the
    volume of one sample voxel.
    """

    names: list[str]
    weights: sp.csr_matrix
    volume_ml: np.ndarray
    grid: tuple[int, int, int]
    voxel_ml: float

    def __post_init__(self) -> None:
        n_vox = int(np.prod(self.grid))
        if self.weights.shape != (n_vox, len(self.names)):
            raise ValueError(f"weights shape {self.weights.shape} != ({n_vox} voxels, {len(self.names)} regions)")
        if len(self.volume_ml) != len(self.names):
            raise ValueError(f"{len(self.volume_ml)} volumes for {len(self.names)} regions")
        if not self.voxel_ml > 0:
            raise ValueError(f"voxel_ml must be > 0, got {self.voxel_ml!r}")

    def column(self, name: str) -> int:
        """Column of a region, with the valid names in the error."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown region {name!r}; valid: {self.names}") from None

    def fraction_map(self, name: str) -> np.ndarray:
        """The fraction of every sample voxel inside region ``name`` (shape ``grid``)."""
        return self.weights[:, self.column(name)].toarray().reshape(self.grid)


def sample_atlas(
    labels: np.ndarray,
    table: pd.DataFrame,
    meta: Mapping,
    template_voxel_ml: float,
    merge_hemispheres: bool,
) -> SampleAtlas:
    """Build the fractional atlas from a template-grid label array (see :func:`load_sample_atlas`)."""
    shape, offset, ds, template_shape, grid = _meta(meta)
    labels = np.asarray(labels)
    if labels.shape != template_shape:
        raise ValueError(f"atlas shape {labels.shape} differs from the store's template_shape {template_shape}")
    if not template_voxel_ml > 0:
        raise ValueError(f"template voxel volume must be > 0 ml, got {template_voxel_ml!r}")
    labels = np.rint(labels).astype(np.int64)
    names, column_of_label = region_columns(table, merge_hemispheres)
    unknown = sorted(set(np.unique(labels).tolist()) - set(column_of_label) - {0})
    if unknown:
        log.warning("atlas labels %s are not in the label table; ignored", unknown)
    # One pass over the labelled template voxels: sample voxel (row) and region (column) of each.
    lut = np.full(max(labels.max(initial=0), max(column_of_label, default=0)) + 1, -1, dtype=np.int64)
    for index, col in column_of_label.items():
        lut[index] = col
    vox = np.nonzero(labels > 0)
    cols = lut[labels[vox]]
    box = np.stack(vox, axis=1) - np.asarray(offset)
    n_labelled = int((cols >= 0).sum())
    keep = (cols >= 0) & np.all((box >= 0) & (box < np.asarray(shape)), axis=1)
    cols, sample = cols[keep], box[keep] // ds
    rows = np.ravel_multi_index(tuple(sample.T), grid)
    n_vox = int(np.prod(grid))
    weights = sp.coo_matrix(
        (np.full(rows.size, 1.0 / ds**3), (rows, cols)), shape=(n_vox, len(names))
    ).tocsr()  # duplicates are summed
    weights.sum_duplicates()
    voxel_ml = float(template_voxel_ml) * ds**3
    volume_ml = np.asarray(weights.sum(axis=0)).ravel() * voxel_ml
    present = volume_ml > 0
    if not present.all():
        dropped = [n for n, p in zip(names, present) if not p]
        log.info("dropped %d regions with no voxel on the sample grid: %s", len(dropped), dropped)
    names = [n for n, p in zip(names, present) if p]
    weights = weights[:, np.flatnonzero(present)].tocsr()
    lost = 1.0 - keep.sum() / max(1, n_labelled)
    if lost > 0:
        log.info("%.2f%% of the labelled template voxels fall outside the sample box", 100 * lost)
    return SampleAtlas(names, weights, volume_ml[present], grid, voxel_ml)  # type: ignore[arg-type]


def load_sample_atlas(
    atlas_nii: str | Path,
    labels_tsv: str | Path,
    store_json: str | Path,
    merge_hemispheres: bool,
) -> SampleAtlas:
    """The template atlas as fractional region membership on a volume store's sample grid.

    ``atlas_nii`` is the label image on the template grid, ``labels_tsv`` its table (index, name),
    ``store_json`` the store's sidecar (shape, offset, downsample, template_shape). With
    ``merge_hemispheres`` ``Left_X`` and ``Right_X`` become one region ``X``. Regions with no voxel
    on the sample grid are dropped (logged).
    """
    meta = json.loads(Path(store_json).read_text())
    img = nib.load(str(atlas_nii))
    if "template_affine" in meta and not np.allclose(img.affine, np.asarray(meta["template_affine"]), atol=1e-3):
        raise ValueError(f"{atlas_nii}: affine differs from the template_affine of {store_json}")
    template_voxel_ml = float(abs(np.linalg.det(img.affine[:3, :3]))) / 1000.0
    labels = np.asarray(img.dataobj)
    if labels.ndim == 4 and labels.shape[3] == 1:
        labels = labels[..., 0]
    atlas = sample_atlas(labels, read_label_table(labels_tsv), meta, template_voxel_ml, merge_hemispheres)
    log.info("atlas %s: %d regions on the %s sample grid (merge_hemispheres=%s)",
             Path(atlas_nii).name, len(atlas.names), atlas.grid, merge_hemispheres)
    return atlas


def _flat_maps(maps: np.ndarray, grid: Sequence[int]) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 4 or tuple(maps.shape[1:]) != tuple(grid):
        raise ValueError(f"maps must have shape (n, *{tuple(grid)}), got {maps.shape}")
    return maps.reshape(maps.shape[0], -1)


def region_metrics(maps: np.ndarray, atlas: SampleAtlas) -> dict[str, np.ndarray]:
    """Per map and region: ``sum_abs``, ``sum_pos`` (fraction-weighted) and ``density`` (sum_abs per ml)."""
    flat = _flat_maps(maps, atlas.grid)
    wt = atlas.weights.T.tocsr()
    sum_abs = np.asarray(wt @ np.abs(flat).T).T
    sum_pos = np.asarray(wt @ np.maximum(flat, 0.0).T).T
    return {"sum_abs": sum_abs, "sum_pos": sum_pos, "density": sum_abs / atlas.volume_ml[None, :]}


def outcome(label: int, pred: int) -> str:
    """TP / FP / TN / FN of one prediction (label 1 is the positive class)."""
    if int(label) not in (0, 1) or int(pred) not in (0, 1):
        raise ValueError(f"label and pred must be 0 or 1, got label={label!r}, pred={pred!r}")
    return {(1, 1): "TP", (0, 1): "FP", (0, 0): "TN", (1, 0): "FN"}[(int(label), int(pred))]


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; has {list(frame.columns)}")


def region_table(
    index: pd.DataFrame, maps: np.ndarray, atlas: SampleAtlas, control_label: int = 0
) -> pd.DataFrame:
    """Long table of region metrics: one row per (map, region), with outcome and gain.

    ``index`` rows align with ``maps`` (columns unit, subject, group, label, pred, method). The gain
    is the density divided by the mean density of the ``control_label`` subjects for the same region
    and method; it is NaN where that mean is 0 or there are no controls.
    """
    _require(index, ("unit", "subject", "group", "label", "pred", "method"), "attribution index")
    if len(index) != len(maps):
        raise ValueError(f"index has {len(index)} rows but there are {len(maps)} maps")
    metrics = region_metrics(maps, atlas)
    n, r = metrics["sum_abs"].shape
    idx = index.reset_index(drop=True)
    out = pd.DataFrame({
        "unit": np.repeat(idx["unit"].to_numpy(), r),
        "subject": np.repeat(idx["subject"].to_numpy(), r),
        "group": np.repeat(idx["group"].to_numpy(), r),
        "label": np.repeat(idx["label"].astype(int).to_numpy(), r),
        "pred": np.repeat(idx["pred"].astype(int).to_numpy(), r),
        "outcome": np.repeat([outcome(a, b) for a, b in zip(idx["label"], idx["pred"])], r),
        "method": np.repeat(idx["method"].to_numpy(), r),
        "region": np.tile(np.asarray(atlas.names, dtype=object), n),
        "volume_ml": np.tile(atlas.volume_ml, n),
        **{m: metrics[m].ravel() for m in METRICS},
    })
    controls = out[out["label"] == int(control_label)]
    if controls.empty:
        log.warning("no subject with the control label %s: gain is NaN", control_label)
    ref = controls.groupby(["method", "region"])["density"].mean().rename("control_density").reset_index()
    out = out.merge(ref, on=["method", "region"], how="left", sort=False)
    denom = out["control_density"].where(out["control_density"] > 0)
    out["gain"] = out["density"] / denom
    return out[list(TABLE_COLUMNS)]


def _mean_by(table: pd.DataFrame, metric: str, by: Sequence[str], group: str | None) -> pd.DataFrame:
    """Mean of ``metric`` per (by..., region), optionally for one true group only."""
    by = list(by)
    _require(table, [*by, "region", metric], "region table")
    if group is not None:
        _require(table, ["group"], "region table")
        groups = sorted(map(str, table["group"].unique()))
        if str(group) not in groups:
            raise ValueError(f"group {group!r} not in the region table; groups: {groups}")
        table = table[table["group"].astype(str) == str(group)]
    return table.groupby([*by, "region"], sort=True)[metric].mean().reset_index()


def _ranked(means: pd.DataFrame, metric: str, by: Sequence[str]) -> pd.DataFrame:
    """Add ``rank`` (1 = highest mean; ties broken by region name) within each by combination."""
    by = list(by)
    means = means.sort_values([*by, metric, "region"], ascending=[True] * len(by) + [False, True],
                              na_position="last", kind="mergesort")
    if by:
        means["rank"] = means.groupby(by, sort=False).cumcount() + 1
    else:
        means["rank"] = np.arange(1, len(means) + 1)
    return means.reset_index(drop=True)


def top_regions(
    table: pd.DataFrame,
    metric: str,
    k: int,
    by: Sequence[str] = ("method",),
    group: str | None = None,
) -> pd.DataFrame:
    """The ``k`` regions with the highest mean ``metric`` per ``by`` combination (rank 1 = top)."""
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k!r}")
    ranked = _ranked(_mean_by(table, metric, by, group), metric, by)
    return ranked[ranked["rank"] <= int(k)][[*by, "region", metric, "rank"]].reset_index(drop=True)


def region_ranks(
    table: pd.DataFrame,
    metric: str,
    regions: Sequence[str],
    by: Sequence[str] = ("method",),
    group: str | None = None,
) -> pd.DataFrame:
    """Rank (1 = highest mean ``metric``) of each named region among all regions, per ``by``."""
    by = list(by)
    ranked = _ranked(_mean_by(table, metric, by, group), metric, by)
    valid = sorted(ranked["region"].unique())
    unknown = [r for r in regions if r not in valid]
    if unknown or not regions:
        raise ValueError(f"unknown regions {list(unknown) or list(regions)}; valid: {valid}")
    counts = ranked.groupby(by)["region"].transform("size") if by else pd.Series(len(ranked), index=ranked.index)
    ranked["n_regions"] = counts
    out = ranked[ranked["region"].isin(list(regions))]
    return out[[*by, "region", "rank", "n_regions"]].reset_index(drop=True)


def group_mean_maps(index: pd.DataFrame, maps: np.ndarray) -> dict[str, np.ndarray]:
    """Mean map per true group (``index['group']``) and per outcome (TP/FP/TN/FN, when present).

    ``index`` rows align with ``maps`` and must hold one method only.
    """
    _require(index, ("group", "label", "pred"), "attribution index")
    maps = np.asarray(maps)
    if len(index) != len(maps) or len(maps) == 0:
        raise ValueError(f"index has {len(index)} rows but there are {len(maps)} maps")
    if "method" in index.columns and index["method"].nunique() > 1:
        raise ValueError(f"group maps need the maps of one method, got {sorted(index['method'].unique())}")
    groups = index["group"].astype(str).to_numpy()
    clash = sorted(set(groups) & set(OUTCOMES))
    if clash:
        raise ValueError(f"group names {clash} clash with the outcome names {OUTCOMES}")
    outcomes = np.array([outcome(a, b) for a, b in zip(index["label"], index["pred"])])
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(groups):
        out[name] = maps[groups == name].mean(axis=0)
    for name in OUTCOMES:
        if (outcomes == name).any():
            out[name] = maps[outcomes == name].mean(axis=0)
    return out


def enrichment(maps: np.ndarray, mask_frac: np.ndarray, brain_frac: np.ndarray) -> pd.DataFrame:
    """Share of positive relevance inside a mask relative to the mask's share of the brain.

    Per map: ``share_in_mask = sum(relu(map) * mask_frac) / sum(relu(map) * brain_frac)``,
    ``volume_share = sum(mask_frac) / sum(brain_frac)`` and ``enrichment = share_in_mask /
    volume_share`` (1 = no more relevance in the mask than its size predicts). The mask should lie
    inside the brain. A map without positive relevance in the brain gives NaN.
    """
    mask_frac = np.asarray(mask_frac, dtype=np.float64)
    brain_frac = np.asarray(brain_frac, dtype=np.float64)
    if mask_frac.shape != brain_frac.shape:
        raise ValueError(f"mask shape {mask_frac.shape} != brain shape {brain_frac.shape}")
    flat = np.maximum(_flat_maps(maps, mask_frac.shape), 0.0)
    brain_total = brain_frac.sum()
    if not brain_total > 0:
        raise ValueError("the brain mask is empty")
    inside = flat @ mask_frac.ravel()
    total = flat @ brain_frac.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)
    volume_share = mask_frac.sum() / brain_total
    if not volume_share > 0:
        raise ValueError("the mask is empty")
    return pd.DataFrame({"share_in_mask": share, "volume_share": volume_share, "enrichment": share / volume_share})


def planted_regions(shrink: Sequence[str], grow: Sequence[str], merge_hemispheres: bool) -> list[str]:
    """Names of the planted regions as the (merged) atlas spells them, de-duplicated, order kept."""
    names = [merged_name(n) if merge_hemispheres else n for n in [*shrink, *grow]]
    return list(dict.fromkeys(names))
