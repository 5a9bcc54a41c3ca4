"""Figures of the attribution study: mean maps, top regions, robustness, hippocampus, QC montage.

Every function takes plain arrays / DataFrames (the caller reads files and restricts tables),
writes a PNG and a PDF through :func:`mrixai.figures.common.save_figure` and returns their paths.
Brain slices are shown in neurological convention (the subject's left on the image's left), with
"L"/"R" marks; volumes are first turned to RAS voxel order with their affine.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, MaxNLocator
import nibabel as nib
import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.patches import Patch

from mrixai.display import VIEW_AXIS, VIEW_LETTER, VIEWS, display_slice, intensity_window
from mrixai.figures.common import PALETTE, format_p, save_figure, styled

log = logging.getLogger(__name__)

#: Slicing axes: name -> (RAS voxel axis, world coordinate letter).
AXES: Mapping[str, tuple[int, str]] = {view: (VIEW_AXIS[view], VIEW_LETTER[view]) for view in VIEWS}

#: Diverging colour map of attribution overlays (negative blue, positive red).
DIVERGING_CMAP = "RdBu_r"

#: Colour of ordinary and of highlighted (e.g. planted) regions in bar charts.
BAR_COLOUR = PALETTE[0]
HIGHLIGHT_COLOUR = PALETTE[3]


# ----------------------------------------------------------------------------------------- helpers
def _check_columns(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")
    if df.empty:
        raise ValueError(f"{what} is empty")


def pretty_region(name: str) -> str:
    """A region name for display: underscores become spaces (``Left_Hippocampus`` -> ``Left Hippocampus``)."""
    return " ".join(str(name).replace("_", " ").split())


def _region_key(name: str) -> str:
    return pretty_region(name).lower()


def region_colours(regions: Sequence[str], highlight: Sequence[str] = ()) -> list[str]:
    """The bar colour of each region: :data:`HIGHLIGHT_COLOUR` if it is in ``highlight``.

    Names match whatever their spelling of spaces/underscores and case.
    """
    if isinstance(highlight, str):
        highlight = [highlight]
    keys = {_region_key(h) for h in highlight}
    return [HIGHLIGHT_COLOUR if _region_key(r) in keys else BAR_COLOUR for r in regions]


def top_k_order(table: pd.DataFrame, metric: str, k: int) -> pd.DataFrame:
    """The ``k`` regions with the highest mean ``metric`` over subjects, highest first.

    Rows of one subject and region (e.g. several sessions) are averaged first; the standard error
    is ``std(ddof=1) / sqrt(n)`` over subjects (0 for a single subject). Ties are broken by region
    name. Returns columns ``region, mean, se, n``.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    _check_columns(table, ["region", metric], "region table")
    subject = "subject" if "subject" in table.columns else None
    data = table[["region", metric] + ([subject] if subject else [])].dropna(subset=[metric])
    if subject:
        data = data.groupby(["region", subject], as_index=False, sort=False)[metric].mean()
    stats = data.groupby("region", sort=False)[metric].agg(["mean", "std", "count"]).reset_index()
    stats["se"] = (stats["std"].fillna(0.0) / np.sqrt(stats["count"])).astype(float)
    stats = stats.rename(columns={"count": "n"}).sort_values(["mean", "region"], ascending=[False, True])
    return stats[["region", "mean", "se", "n"]].head(k).reset_index(drop=True)


def _canonical(volume: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``volume`` reordered to RAS voxel axes, and its new affine."""
    img = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(volume, dtype=np.float32), affine))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def brain_slices(template: np.ndarray, axis: int, n_slices: int) -> list[int]:
    """``n_slices`` evenly spaced slice indices through the brain (template > 0) along ``axis``.

    The extreme, mostly empty slices are left out: the indices split the brain's extent into
    ``n_slices + 1`` equal parts.
    """
    if n_slices < 1:
        raise ValueError(f"n_slices must be >= 1, got {n_slices}")
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(np.abs(template).max(axis=other) > 0)
    if present.size == 0:
        raise ValueError("the template is empty (no voxel > 0): cannot choose slices")
    lo, hi = int(present[0]), int(present[-1])
    return [int(round(v)) for v in np.linspace(lo, hi, n_slices + 2)[1:-1]]


def neurological_slice(volume: np.ndarray, affine: np.ndarray, axis: str, index: int) -> np.ndarray:
    """Slice ``index`` (in RAS voxel order) along ``axis`` as shown: ``imshow(..., origin="lower")``.

    Whatever the voxel order of ``volume``, the subject's left lies in the low columns (axial and
    coronal), posterior in the low columns (sagittal), and superior/anterior in the high rows.
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    if np.ndim(volume) != 3:
        raise ValueError(f"volume must be 3D, got shape {np.shape(volume)}")
    data, _ = _canonical(volume, np.asarray(affine, dtype=float))
    ax_index = AXES[axis][0]
    if not 0 <= index < data.shape[ax_index]:
        raise ValueError(f"slice index {index} outside 0..{data.shape[ax_index] - 1} along {axis}")
    return display_slice(data, axis, index)


def _bounding_box(template: np.ndarray, axis: int, margin: int = 1) -> tuple[slice, slice]:
    """Row and column ranges of the brain in slices along ``axis`` (with ``margin`` voxels)."""
    projection = (np.abs(template) > 0).any(axis=axis).T
    rows = np.flatnonzero(projection.any(axis=1))
    cols = np.flatnonzero(projection.any(axis=0))
    if rows.size == 0:
        return slice(None), slice(None)
    return (
        slice(max(rows[0] - margin, 0), rows[-1] + margin + 1),
        slice(max(cols[0] - margin, 0), cols[-1] + margin + 1),
    )


def _robust_limit(arrays: Sequence[np.ndarray], percentile: float) -> float:
    values = np.concatenate([np.abs(a[np.isfinite(a) & (a != 0)]).ravel() for a in arrays])
    if values.size == 0:
        return 1.0
    limit = float(np.percentile(values, percentile))
    return limit if limit > 0 else float(values.max())


def _diverging_colorbar(fig, norm: Normalize, cmap, axes: list, n_rows: int, label: str) -> None:
    limit = float(norm.vmax)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    cbar = fig.colorbar(mappable, ax=axes, fraction=0.04, pad=0.015, aspect=10 * n_rows, shrink=0.94)
    ticks = [-limit, -limit / 2, 0.0, limit / 2, limit]
    cbar.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
    cbar.set_label(label, fontsize=8)
    cbar.ax.tick_params(labelsize=7)


def _lr_marks(ax, axis_name: str, colour: str = "white") -> None:
    left, right = ("P", "A") if axis_name == "sagittal" else ("L", "R")
    style = dict(transform=ax.transAxes, color=colour, fontsize=8, fontweight="bold", va="top")
    ax.text(0.03, 0.97, left, ha="left", **style)
    ax.text(0.97, 0.97, right, ha="right", **style)


# ------------------------------------------------------------------------------------- mean maps
@styled
def plot_mean_maps(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    template: np.ndarray,
    out_png: str | Path,
    out_pdf: str | Path | None,
    *,
    affine: np.ndarray,
    n_slices: int = 5,
    axis: str = "axial",
    title: str = "",
    percentile: float = 99.5,
    transparent_below: float = 0.1,
    colorbar_label: str = "mean relevance (a.u.)",
    share: str = "method",
) -> list[Path]:
    """Mean attribution maps over the grey template: one row per (method, class), slices as columns.

    ``maps[method][cls]`` are 3D arrays on the template's grid (``affine``); the classes of one
    method share symmetric colour limits (the ``percentile`` of |value| over them) and one colour
    bar, so they can be compared; values below ``transparent_below`` x the limit are transparent.
    With ``share="all"`` every row shares one colour scale and bar (e.g. per-run mean maps of one
    method, ``maps[method][run]``). Columns are ``n_slices`` slices evenly spaced
    through the brain, labelled with their world coordinate in mm; neurological convention.
    """
    if axis not in AXES:
        raise ValueError(f"axis must be one of {sorted(AXES)}, got {axis!r}")
    if share not in ("method", "all"):
        raise ValueError(f"share must be 'method' or 'all', got {share!r}")
    if not isinstance(maps, Mapping) or not maps:
        raise ValueError("maps must be a non-empty mapping {method: {class: array}}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must lie in (0, 100], got {percentile}")
    if not 0 <= transparent_below < 1:
        raise ValueError(f"transparent_below must lie in [0, 1), got {transparent_below}")
    affine = np.asarray(affine, dtype=float)
    if affine.shape != (4, 4):
        raise ValueError(f"affine must be 4x4, got shape {affine.shape}")
    template = np.asarray(template, dtype=np.float32)
    if template.ndim != 3:
        raise ValueError(f"template must be 3D, got shape {template.shape}")
    for method, classes in maps.items():
        if not isinstance(classes, Mapping) or not classes:
            raise ValueError(f"maps[{method!r}] must be a non-empty mapping {{class: array}}")
        for cls, arr in classes.items():
            if np.shape(arr) != template.shape:
                raise ValueError(
                    f"map {method}/{cls} has shape {np.shape(arr)}, the template {template.shape}: "
                    "resample the template onto the maps' grid first"
                )

    ax_index, letter = AXES[axis]
    tpl, ras_affine = _canonical(template, affine)
    canon = {m: {c: _canonical(a, affine)[0] for c, a in cl.items()} for m, cl in maps.items()}
    slices = brain_slices(tpl, ax_index, n_slices)
    rows_sl, cols_sl = _bounding_box(tpl, ax_index)
    coords = []
    for s in slices:
        vox = [0.0, 0.0, 0.0, 1.0]
        vox[ax_index] = s
        coords.append(float((ras_affine @ np.asarray(vox))[ax_index]))

    rows = [(m, c) for m, cl in canon.items() for c in cl]
    t_lo, t_hi = intensity_window(tpl)
    height, width = display_slice(tpl, axis, slices[0])[rows_sl, cols_sl].shape
    panel_w, gap = 1.7, 0.05  # inches; gap as a fraction of a panel
    panel_h = panel_w * height / max(width, 1)
    left_in, right_in, top_in, bottom_in = 1.3, 1.3, 0.8, 0.1
    fig_w = left_in + right_in + panel_w * n_slices * (1 + gap)
    fig_h = top_in + bottom_in + panel_h * len(rows) * (1 + gap)
    fig, axes = plt.subplots(len(rows), n_slices, figsize=(fig_w, fig_h), squeeze=False, facecolor="white")
    fig.subplots_adjust(
        left=left_in / fig_w,
        right=1 - right_in / fig_w,
        bottom=bottom_in / fig_h,
        top=1 - top_in / fig_h,
        wspace=gap,
        hspace=gap,
    )
    cmap = plt.get_cmap(DIVERGING_CMAP)
    global_limit = _robust_limit([v for cl in canon.values() for v in cl.values()], percentile)
    for method, classes in canon.items():
        limit = global_limit if share == "all" else _robust_limit(list(classes.values()), percentile)
        norm = Normalize(-limit, limit)
        method_axes = []
        for cls, volume in classes.items():
            r = rows.index((method, cls))
            for c, s in enumerate(slices):
                ax = axes[r, c]
                method_axes.append(ax)
                ax.imshow(
                    display_slice(tpl, axis, s)[rows_sl, cols_sl],
                    cmap="gray",
                    vmin=t_lo,
                    vmax=t_hi,
                    origin="lower",
                    interpolation="bilinear",
                )
                values = display_slice(volume, axis, s)[rows_sl, cols_sl]
                rgba = cmap(norm(values))
                ramp = np.abs(values) / limit
                if transparent_below > 0:
                    ramp = (ramp - transparent_below) / (1.0 - transparent_below)
                rgba[..., 3] = np.clip(ramp * 2.0, 0.0, 1.0)  # full opacity from half the limit
                ax.imshow(rgba, origin="lower", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                for spine in ax.spines.values():
                    spine.set_visible(False)
                ax.set_facecolor("black")
                if r == 0:
                    ax.set_title(f"{letter} = {coords[c]:+.0f} mm", fontsize=9)
                    _lr_marks(ax, axis)
                if c == 0:
                    label = f"{method}\n{cls}" if len(classes) > 1 or cls != method else str(method)
                    ax.set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center", labelpad=6)
        if share == "method":
            _diverging_colorbar(fig, norm, cmap, method_axes, len(classes), f"{method}\n{colorbar_label}")
    if share == "all":
        _diverging_colorbar(
            fig, Normalize(-global_limit, global_limit), cmap, list(axes.ravel()), min(len(rows), 3), colorbar_label
        )
    limits = "one colour scale" if share == "all" else "colour limits shared within a method"
    convention = "neurological convention (L = left)" if axis != "sagittal" else "sagittal (A = anterior)"
    heading = title or f"Mean attribution maps ({axis})"
    fig.suptitle(f"{heading}\n{convention}; {limits}, transparent near zero", fontsize=10, y=1 - 0.08 / fig_h, va="top")
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------- top regions
@styled
def plot_top_regions(
    table: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path | None,
    *,
    metrics: Sequence[str] = ("sum_abs", "density", "gain"),
    k: int = 25,
    title: str = "",
    highlight: Sequence[str] = (),
) -> list[Path]:
    """Top-``k`` atlas regions by the mean of each metric (bars, standard-error whiskers).

    ``table`` is the long region table of one method and one group; ``highlight`` (e.g. the
    planted atrophy regions) are drawn in :data:`HIGHLIGHT_COLOUR` with a legend entry.
    """
    if isinstance(metrics, str) or not metrics:
        raise ValueError(f"metrics must be a non-empty sequence of column names, got {metrics!r}")
    _check_columns(table, ["region", *metrics], "region table")
    labels = {
        "sum_abs": "sum of |relevance|",
        "sum_pos": "sum of positive relevance",
        "density": "density (|relevance| / ml)",
        "gain": "gain vs mean control",
        "volume_ml": "volume (ml)",
    }
    short = {"sum_abs": "sum |relevance|", "sum_pos": "sum positive", "gain": "gain"}
    orders = [top_k_order(table, m, k) for m in metrics]
    n_rows = max(len(o) for o in orders)
    n_subjects = table["subject"].nunique() if "subject" in table.columns else len(table)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.3 * len(metrics), 0.24 * n_rows + 1.6), squeeze=False)
    highlighted_any = False
    for ax, metric, order in zip(axes[0], metrics, orders):
        names = [pretty_region(r) for r in order["region"]]
        colours = region_colours(order["region"].tolist(), highlight)
        highlighted_any |= HIGHLIGHT_COLOUR in colours
        y = np.arange(len(order))
        ax.barh(
            y,
            order["mean"],
            xerr=order["se"],
            color=colours,
            edgecolor="none",
            height=0.75,
            error_kw=dict(ecolor="0.3", elinewidth=0.8, capsize=2),
        )
        ax.set_yticks(y, names, fontsize=8)
        for tick, colour in zip(ax.get_yticklabels(), colours):
            if colour == HIGHLIGHT_COLOUR:
                tick.set_color(HIGHLIGHT_COLOUR)
                tick.set_fontweight("bold")
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_xlabel(labels.get(metric, metric.replace("_", " ")))
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.2g}"))
        ax.set_title(f"top {len(order)}: {short.get(metric, metric.replace('_', ' '))}", fontsize=10)
        ax.grid(axis="y", visible=False)
        if metric == "gain" or (order["mean"] < 0).any():
            ax.axvline(0, color="0.4", lw=0.8)
    handles = [Patch(color=BAR_COLOUR, label="region")]
    if highlight:
        handles.append(Patch(color=HIGHLIGHT_COLOUR, label="planted / highlighted region"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.01))
    fig_h = fig.get_figheight()
    fig.suptitle(title or "Top atlas regions by attribution", y=1 - 0.05 / fig_h, va="top")
    fig.text(
        0.5,
        1 - 0.3 / fig_h,
        f"mean ± standard error over {n_subjects} subjects",
        ha="center",
        va="top",
        fontsize=9,
        color="0.3",
    )
    fig.tight_layout(rect=(0, 0.35 / fig_h, 1, 1 - 0.45 / fig_h))
    if highlight and not highlighted_any:
        log.info("none of the highlighted regions %s is among the top %d", list(highlight), k)
    return save_figure(fig, out_png, out_pdf)


# ------------------------------------------------------------------------------- overlap matrix
def overlap_square(overlap: pd.DataFrame) -> pd.DataFrame:
    """The long table ``method_a, method_b, overlap`` as a symmetric square (order of appearance).

    A pair given one way only is mirrored; pairs never given stay NaN.
    """
    _check_columns(overlap, ["method_a", "method_b", "overlap"], "overlap table")
    if overlap.duplicated(["method_a", "method_b"]).any():
        dup = overlap.loc[overlap.duplicated(["method_a", "method_b"]), ["method_a", "method_b"]]
        raise ValueError(f"overlap table repeats pair(s) {dup.values.tolist()}")
    names = list(dict.fromkeys([*overlap["method_a"].astype(str), *overlap["method_b"].astype(str)]))
    square = pd.DataFrame(np.nan, index=names, columns=names)
    for a, b, v in overlap[["method_a", "method_b", "overlap"]].itertuples(index=False):
        square.loc[str(a), str(b)] = float(v)
    for a, b, v in overlap[["method_a", "method_b", "overlap"]].itertuples(index=False):
        if np.isnan(square.loc[str(b), str(a)]):
            square.loc[str(b), str(a)] = float(v)
    return square


@styled
def plot_overlap_matrix(
    overlap: pd.DataFrame, out_png: str | Path, out_pdf: str | Path | None, *, title: str = "", k: int = 10
) -> list[Path]:
    """Heat map of the top-``k`` region overlap between methods (e.g. LRP beta values), values in cells.

    Overlaps in [0, 1] are read as fractions of ``k``, larger ones as counts of shared regions.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    square = overlap_square(overlap)
    values = square.to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    if finite.size and finite.min() < 0:
        raise ValueError(f"overlaps must be >= 0, got {finite.min()}")
    fraction = bool(finite.size == 0 or finite.max() <= 1.0)
    vmax = 1.0 if fraction else float(k)
    if not fraction and finite.max() > k:
        raise ValueError(f"an overlap count ({finite.max()}) exceeds k={k}")
    n = len(square)
    size = max(3.8, 0.55 * n + 2.2)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=vmax)
    cmap = image.get_cmap()
    for i in range(n):
        for j in range(n):
            v = values[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "–", ha="center", va="center", color="0.5", fontsize=9)
                continue
            text = f"{v:.2f}" if fraction else f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
            r, g, b, _ = cmap(v / vmax)
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=9,
                color="black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white",
            )
    labels = [str(s) for s in square.index]
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    cbar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label(f"fraction of top-{k} regions shared" if fraction else f"regions shared (of top {k})")
    ax.set_title(title or f"Top-{k} region overlap between methods")
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------- hippocampus
@styled
def plot_hippocampus(
    df: pd.DataFrame,
    result: Mapping,
    out_png: str | Path,
    out_pdf: str | Path | None,
    *,
    x: str = "volume_ml",
    y: str = "relevance",
    title: str = "",
    region: str = "Hippocampus",
    point_label: str = "true positive",
) -> list[Path]:
    """Scatter of a region's volume vs its relevance (by default the hippocampus among true
    positives), LS line, r and p.

    ``result`` holds ``r``, ``p`` (permutation test), ``n`` and ``method``.
    """
    _check_columns(df, [x, y], "hippocampus table")
    missing = [key for key in ("r", "p", "n", "method") if key not in result]
    if missing:
        raise ValueError(f"result lacks key(s) {missing}; it has {sorted(result)}")
    data = df[[x, y]].apply(pd.to_numeric, errors="coerce").dropna()
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    ax.scatter(
        data[x],
        data[y],
        s=28,
        color=PALETTE[0],
        alpha=0.8,
        edgecolor="white",
        linewidth=0.5,
        label=point_label,
        zorder=3,
    )
    if len(data) >= 2 and data[x].nunique() >= 2:
        slope, intercept = np.polyfit(data[x], data[y], 1)
        xs = np.linspace(data[x].min(), data[x].max(), 50)
        ax.plot(xs, slope * xs + intercept, color=PALETTE[3], lw=1.5, label="least-squares fit", zorder=4)
    r = float(result["r"]) if result["r"] is not None else math.nan
    stats = f"r = {r:.2f}, {format_p(result['p'])} (permutation), n = {int(result['n'])}"
    name = "hippocampal" if region == "Hippocampus" else region.replace("_", " ")
    ax.set_xlabel(f"{name} volume (ml)" if x == "volume_ml" else x.replace("_", " "))
    ax.set_ylabel(f"{name} relevance (a.u.)" if y == "relevance" else y.replace("_", " "))
    ax.legend(loc="best", frameon=True, framealpha=0.85, edgecolor="0.8")
    heading = title or f"{name.capitalize()} relevance vs volume, {point_label}s ({result['method']})"
    ax.set_title(f"{heading}\n{stats}", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_png, out_pdf)


# --------------------------------------------------------------------------- box + strip helper
def _box_strip(ax, df: pd.DataFrame, value: str, seed: int = 0) -> list[str]:
    """Box plot per method with the individual points jittered on top; returns the method order."""
    methods = list(dict.fromkeys(df["method"].astype(str)))
    groups = [pd.to_numeric(df.loc[df["method"].astype(str) == m, value], errors="coerce").dropna() for m in methods]
    positions = np.arange(len(methods))
    ax.boxplot(
        [g.to_numpy() for g in groups],
        positions=positions,
        widths=0.55,
        showfliers=False,
        patch_artist=True,
        medianprops=dict(color="black", lw=1.4),
        boxprops=dict(facecolor="0.92", edgecolor="0.35"),
        whiskerprops=dict(color="0.35"),
        capprops=dict(color="0.35"),
    )
    rng = np.random.default_rng(seed)
    for i, (pos, g) in enumerate(zip(positions, groups)):
        jitter = rng.uniform(-0.15, 0.15, len(g))
        ax.scatter(
            pos + jitter,
            g,
            s=18,
            color=PALETTE[i % len(PALETTE)],
            alpha=0.85,
            zorder=3,
            edgecolor="0.25",
            linewidth=0.4,
        )
    rotate = len(methods) > 4 or max(len(m) for m in methods) > 10
    ax.set_xticks(positions, methods, rotation=30 if rotate else 0, ha="right" if rotate else "center")
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.grid(axis="x", visible=False)
    return methods


@styled
def plot_enrichment(
    df: pd.DataFrame, out_png: str | Path, out_pdf: str | Path | None, *, title: str = ""
) -> list[Path]:
    """Enrichment of relevance in the planted effect per method (one point per run), with 1x and 3x lines."""
    _check_columns(df, ["method", "run", "enrichment"], "enrichment table")
    methods = list(dict.fromkeys(df["method"].astype(str)))
    fig, ax = plt.subplots(figsize=(max(4.8, 0.75 * len(methods) + 2.5), 4.2))
    _box_strip(ax, df, "enrichment")
    values = pd.to_numeric(df["enrichment"], errors="coerce")
    top = max(3.5, float(np.nanmax(values)) * 1.08 if values.notna().any() else 3.5)
    bottom = min(0.0, float(np.nanmin(values)) * 1.08 if values.notna().any() else 0.0)
    ax.set_ylim(bottom, top)
    for level, label in ((1.0, "1x (no enrichment)"), (3.0, "3x")):
        ax.axhline(level, color="0.3" if level == 1 else PALETTE[3], ls="--", lw=1.1, zorder=1)
        ax.text(
            1.005,
            level,
            label,
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=8,
            color="0.3" if level == 1 else PALETTE[3],
            clip_on=False,
        )
    ax.set_ylabel("relevance enrichment\nin the planted effect")
    n_runs = df["run"].nunique()
    ax.set_title(title or f"Relevance enrichment in the planted effect ({n_runs} run{'s' * (n_runs != 1)})")
    fig.tight_layout()
    return save_figure(fig, out_png, out_pdf)


@styled
def plot_randomisation(
    df: pd.DataFrame, out_png: str | Path, out_pdf: str | Path | None, *, threshold: float = 0.5, title: str = ""
) -> list[Path]:
    """Model-randomisation check: Spearman correlation of trained vs randomised-model maps per method.

    One panel of the signed maps' correlation (``spearman``) with the band -threshold..threshold,
    and, when the table has it, one of the absolute maps' (``spearman_abs``) with the threshold line.
    """
    _check_columns(df, ["method", "spearman"], "randomisation table")
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must lie in [-1, 1], got {threshold}")
    methods = list(dict.fromkeys(df["method"].astype(str)))
    panels = [("spearman", "maps")]
    if "spearman_abs" in df.columns:
        panels.append(("spearman_abs", "absolute values of the maps"))
    width = max(4.8, 0.75 * len(methods) + 2.5)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels), 4.2), squeeze=False)
    for ax, (column, name) in zip(axes[0], panels):
        _box_strip(ax, df, column)
        ax.set_ylim(-1.05, 1.05)
        levels = (threshold, -threshold) if column == "spearman" else (threshold,)
        for level in levels:
            ax.axhline(level, color=PALETTE[3], ls="--", lw=1.1, zorder=1)
        ax.text(
            1.005,
            threshold,
            f"threshold\n{threshold:g}",
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=8,
            color=PALETTE[3],
            clip_on=False,
        )
        ax.axhline(0, color="0.6", lw=0.8, zorder=1)
        ax.set_ylabel("Spearman ρ, trained vs randomised")
        ax.set_title(name, fontsize=10)
    fig.suptitle(title or "Model-randomisation check (nearer 0 = more model-dependent)")
    fig.tight_layout()
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------- QC montage
@styled
def plot_qc_montage(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    out_png: str | Path,
    out_pdf: str | Path | None,
    *,
    n_cols: int = 8,
    title: str = "",
) -> list[Path]:
    """Mid-axial slice of every subject's template-space brain in a grid on black (group QC).

    Volumes are taken in RAS voxel order (template space) and shown in neurological convention;
    each is cropped to its brain (non-zero voxels) and windowed by
    :func:`mrixai.display.intensity_window` (the QC montages' window).
    """
    if len(images) == 0:
        raise ValueError("images is empty")
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    if not isinstance(n_cols, int) or n_cols < 1:
        raise ValueError(f"n_cols must be an integer >= 1, got {n_cols!r}")
    for label, image in zip(labels, images):
        if np.ndim(image) != 3:
            raise ValueError(f"image {label!r} must be 3D, got shape {np.shape(image)}")
    n_cols = min(n_cols, len(images))
    n_rows = math.ceil(len(images) / n_cols)
    first = np.asarray(images[0])
    aspect = first.shape[1] / first.shape[0]
    panel = 1.5
    grey = plt.get_cmap("gray").with_extremes(bad="black")
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(panel * n_cols, (panel * aspect + 0.25) * n_rows + 0.5),
        squeeze=False,
        facecolor="black",
    )
    for ax in axes.ravel():
        ax.set_facecolor("black")
        ax.axis("off")
    for i, (label, image) in enumerate(zip(labels, images)):
        ax = axes.ravel()[i]
        volume = np.asarray(image, dtype=np.float32)
        plane = display_slice(volume, "axial", volume.shape[2] // 2)
        rows_sl, cols_sl = _bounding_box(plane.T[:, :, None] != 0, 2, margin=2)
        plane = plane[rows_sl, cols_sl]
        lo, hi = intensity_window(plane)
        # background (exactly 0) is black even where brain intensities are negative (z-scores)
        ax.imshow(np.ma.masked_equal(plane, 0.0), cmap=grey, vmin=lo, vmax=hi, origin="lower", interpolation="nearest")
        ax.set_title(str(label), color="white", fontsize=8, pad=2)
        if i == 0:
            _lr_marks(ax, "axial", colour="yellow")
    fig.suptitle(
        f"{title or 'QC montage'} (mid-axial, neurological: L = left, n = {len(images)})", color="white", fontsize=11
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97), pad=0.3)
    return save_figure(fig, out_png, out_pdf)
