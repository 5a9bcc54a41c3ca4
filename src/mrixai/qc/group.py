"""Group QC: one table of every subject's metrics, robust z-scores (median / MAD) per metric, the
metrics whose ``|z|`` exceeds the threshold, and a strip plot of each metric."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai.io import atomic_path
from mrixai.qc.canvas import FIG_WIDTH_IN, INLIER_COLOR, OUTLIER_COLOR, new_figure, save_png
from mrixai.qc.metrics import ID_COLUMN
from mrixai.qc.volumes import PathLike

log = logging.getLogger(__name__)

MAD_TO_SD = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a normal sample times this estimates its SD
MEANAD_TO_SD = 1.2533141373155001  # sqrt(pi / 2): mean absolute deviation to SD, for MAD == 0


def robust_z(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Robust z-scores (x - median) / (1.4826 MAD), ignoring NaN.

    When MAD is 0 (more than half the values equal) the mean absolute deviation around the median,
    times sqrt(pi/2), stands in for the SD (Iglewicz & Hoaglin's modified z); when that is 0 too,
    every z is 0.
    """
    x = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(x)
    z = np.full(x.shape, np.nan)
    if not ok.any():
        return z
    med = np.median(x[ok])
    dev = np.abs(x[ok] - med)
    scale = MAD_TO_SD * np.median(dev)
    if scale == 0:
        scale = MEANAD_TO_SD * dev.mean()
    z[ok] = 0.0 if scale == 0 else (x[ok] - med) / scale
    return z


def _metric_columns(df: pd.DataFrame) -> list[str]:
    cols = []
    for col in df.columns:
        if col == ID_COLUMN:
            continue
        if not (pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])):
            raise ValueError(f"metric {col!r} must be numeric, got values like {df[col].iloc[0]!r}")
        cols.append(col)
    return cols


def summarize_group(rows: list[dict], outlier_z: float, out_tsv: PathLike, out_png: PathLike) -> pd.DataFrame:
    """Group QC table: one row per subject, its metrics, a robust z per metric and outlier flags.

    Columns: ``subject``, every metric in the rows (in first-seen order), ``z_<metric>`` for each
    (see :func:`robust_z`), ``outlier`` (True when any ``|z| > outlier_z``) and ``flags`` (the
    offending metrics, comma separated, empty when none). A metric missing from a row is NaN and
    never flags. The TSV (``n/a`` for missing values) and a figure with one strip/box plot per
    metric, outliers labelled with the subject id, are written atomically.
    """
    if not isinstance(rows, (list, tuple)) or not rows:
        raise ValueError(f"rows must be a non-empty list of dicts, got {rows!r}")
    for row in rows:
        if not isinstance(row, Mapping) or not row.get(ID_COLUMN):
            raise ValueError(f"every row must be a dict with a {ID_COLUMN!r} key, got {row!r}")
    if isinstance(outlier_z, bool) or not isinstance(outlier_z, (int, float)) or not outlier_z > 0:
        raise ValueError(f"outlier_z must be a positive number, got {outlier_z!r}")
    df = pd.DataFrame([dict(r) for r in rows])
    dupes = sorted(df[ID_COLUMN][df[ID_COLUMN].duplicated()].astype(str).unique())
    if dupes:
        raise ValueError(f"subjects appear more than once in rows: {dupes}")
    metrics = _metric_columns(df)
    if not metrics:
        raise ValueError("rows hold no metrics besides the subject id")
    for col in metrics:
        df[col] = df[col].astype(float)
    zs = pd.DataFrame({f"z_{m}": robust_z(df[m].to_numpy()) for m in metrics}, index=df.index)
    out = np.abs(zs.to_numpy()) > outlier_z  # NaN compares False
    df = pd.concat([df, zs], axis=1)
    df["outlier"] = out.any(axis=1)
    df["flags"] = [",".join(m for m, o in zip(metrics, flags) if o) for flags in out]
    n_out = int(df["outlier"].sum())
    log.info(
        "QC group: %d subjects, %d flagged at |robust z| > %g%s",
        len(df),
        n_out,
        outlier_z,
        "".join(f"\n  {s}: {f}" for s, f in zip(df[ID_COLUMN], df["flags"]) if f),
    )
    with atomic_path(out_tsv) as tmp:
        df.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    _plot_group(df, metrics, outlier_z, out_png)
    return df


def _plot_group(df: pd.DataFrame, metrics: list[str], outlier_z: float, out_png: PathLike) -> Path:
    """One panel per metric: box plot, jittered points, cut-off band, outliers labelled."""
    ncols = min(4, len(metrics))
    nrows = math.ceil(len(metrics) / ncols)
    fig = new_figure(FIG_WIDTH_IN, 0.9 + 3.0 * nrows, facecolor="white")
    rng = np.random.default_rng(0)  # fixed jitter: same figure on every run
    n_out = int(df["outlier"].sum())
    fig.suptitle(
        f"QC group summary: {len(df)} subjects, {n_out} flagged (|robust z| > {outlier_z:g})",
        fontsize=14,
        fontweight="bold",
    )
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = df[metric].to_numpy()
        z = df[f"z_{metric}"].to_numpy()
        ok = np.isfinite(values)
        if ok.any():
            ax.boxplot(
                values[ok],
                positions=[0],
                widths=0.5,
                showfliers=False,
                medianprops={"color": "black"},
                boxprops={"color": "#777777"},
                whiskerprops={"color": "#777777"},
                capprops={"color": "#777777"},
            )
            med = np.median(values[ok])
            dev = np.abs(values[ok] - med)
            scale = MAD_TO_SD * np.median(dev) or MEANAD_TO_SD * dev.mean()
            if scale > 0:
                lo, hi = med - outlier_z * scale, med + outlier_z * scale
                ax.axhspan(lo, hi, color="#E8E8E8", zorder=0)
                for cut in (lo, hi):
                    ax.axhline(
                        cut,
                        color="#555555",
                        lw=0.8,
                        ls="--",
                        zorder=1,
                        label=f"median ± {outlier_z:g} robust SD" if cut == lo else None,
                    )
                span = max(values[ok].max(), hi) - min(values[ok].min(), lo)
                ax.set_ylim(min(values[ok].min(), lo) - 0.08 * span, max(values[ok].max(), hi) + 0.08 * span)
        missing = int((~ok).sum())
        if missing:
            ax.text(
                0.98,
                0.02,
                f"{missing} n/a",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                color="#555555",
            )
        flagged = np.abs(np.nan_to_num(z)) > outlier_z
        x = rng.uniform(-0.15, 0.15, len(values))
        ax.scatter(x[ok & ~flagged], values[ok & ~flagged], s=18, color=INLIER_COLOR, alpha=0.8, zorder=3)
        ax.scatter(x[flagged], values[flagged], s=40, color=OUTLIER_COLOR, marker="D", zorder=4)
        for xi, yi, name in zip(x[flagged], values[flagged], df[ID_COLUMN][flagged]):
            ax.annotate(
                str(name),
                (xi, yi),
                xytext=(6, 0),
                textcoords="offset points",
                fontsize=8,
                color=OUTLIER_COLOR,
                va="center",
            )
        ax.set_xlim(-0.5, 1.0)
        ax.set_xticks([])
        ax.set_title(metric, fontsize=10)
        ax.grid(axis="y", color="#EEEEEE")
        if i == 0 and ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=7, frameon=True, framealpha=0.9)
    fig.subplots_adjust(
        left=0.06, right=0.98, top=1 - 0.7 / (0.9 + 3.0 * nrows), bottom=0.04, wspace=0.35, hspace=0.3
    )
    return save_png(fig, out_png, facecolor="white")
