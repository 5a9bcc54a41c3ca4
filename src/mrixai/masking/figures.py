"""Figures of the masking study: example slices per case and the log-saliency histogram.

Slices are shown in RAS display: x (right of the subject to the right) horizontal, y (posterior to
anterior) upwards. Label maps use one fixed colour per tissue class.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.colors import ListedColormap
from scipy import stats

from mrixai.figures.common import PALETTE, plt, save_figure
from mrixai.masking.slices import SliceSet

log = logging.getLogger(__name__)

#: Colours of background, GM, WM, CSF.
LABEL_CMAP = ListedColormap(["#000000", PALETTE[2], PALETTE[5], PALETTE[1]])


def _show(ax, data, title: str | None = None, **kwargs) -> None:
    ax.imshow(np.asarray(data).T, origin="lower", interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    if title:
        ax.set_title(title)


def plot_case(
    case: str,
    inputs: np.ndarray,
    pred: np.ndarray,
    slices: SliceSet,
    examples: np.ndarray,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    class_names: Mapping[int, str] | None = None,
) -> list[Path]:
    """One row per example slice: segmenter input, prediction, truth (+ saliency, enhanced map, placed mask)."""
    if len(examples) == 0:
        raise ValueError("no example slices to plot")
    extra_cols = ["saliency", "enhanced", "thresholded", "placed"] if extra else []
    if extra is not None:
        missing = [k for k in extra_cols if k not in extra]
        if missing:
            raise ValueError(f"extra maps lack {missing}")
    cols = ["input", "prediction", "truth", *extra_cols]
    fig, axes = plt.subplots(len(examples), len(cols), figsize=(1.9 * len(cols), 2.2 * len(examples)), squeeze=False)
    label_kw = {"cmap": LABEL_CMAP, "vmin": -0.5, "vmax": 3.5}
    for row, i in enumerate(examples):
        first = row == 0
        _show(axes[row, 0], inputs[i], "input" if first else None, cmap="gray")
        axes[row, 0].set_ylabel(f"{slices.subject[i]}\nz={slices.index[i]}", fontsize=8)
        _show(axes[row, 1], pred[i], "prediction" if first else None, **label_kw)
        _show(axes[row, 2], slices.dseg[i], "truth" if first else None, **label_kw)
        if extra:
            _show(axes[row, 3], np.abs(extra["saliency"][i]), "|saliency|" if first else None, cmap="magma")
            _show(axes[row, 4], extra["enhanced"][i], "z(log |s|)" if first else None, cmap="viridis")
            _show(axes[row, 5], extra["thresholded"][i], "smooth threshold" if first else None, cmap="viridis", vmin=0, vmax=1)
            ax = axes[row, 6]
            _show(ax, slices.image[i], "placed mask" if first else None, cmap="gray")
            ax.contour(extra["placed"][i].T.astype(float), levels=[0.5], colors=[PALETTE[1]], linewidths=1.0)
            ax.contour(slices.mask[i].T.astype(float), levels=[0.5], colors=[PALETTE[2]], linewidths=0.8, linestyles="--")
    if class_names:
        handles = [plt.Rectangle((0, 0), 1, 1, color=LABEL_CMAP(k)) for k in sorted(class_names)]
        fig.legend(handles, [class_names[k] for k in sorted(class_names)], loc="lower center", ncol=len(handles), frameon=False)
    note = " (orange: placed mask, green dashed: true mask)" if extra else ""
    fig.suptitle(f"Segmentation, mask case: {case}{note}")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, out_png, out_pdf)


def plot_lognormal(
    magnitude: np.ndarray,
    fit: Mapping[str, float],
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    seed: int = 0,
    sample_size: int = 5000,
) -> list[Path]:
    """Histogram of ``log |s|`` (a random subsample of positive values) with the fitted log-normal's normal density."""
    values = np.asarray(magnitude, dtype=np.float64).ravel()
    values = values[values > 0]
    if values.size == 0:
        raise ValueError("no positive saliency magnitude to plot")
    rng = np.random.default_rng(seed)
    sample = np.log(rng.choice(values, size=min(sample_size, values.size), replace=False))
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.hist(sample, bins=60, density=True, color=PALETTE[0], alpha=0.6, label="log |saliency|")
    grid = np.linspace(sample.min(), sample.max(), 200)
    ax.plot(grid, stats.norm.pdf(grid, fit["mu"], fit["sigma"]), color=PALETTE[3], label="log-normal fit")
    ax.set_xlabel("log |saliency|")
    ax.set_ylabel("density")
    ax.set_title(f"KS D = {fit['ks_d']:.3f}, p = {fit['ks_p']:.2g}")
    ax.legend()
    fig.tight_layout()  # keeps the axis labels inside the canvas
    return save_figure(fig, out_png, out_pdf)
