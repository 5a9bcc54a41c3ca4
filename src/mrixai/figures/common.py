"""Shared figure helpers: one style, atomic PNG + PDF output, p-value formatting."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from mrixai.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

#: Resolution of the PNG output (dots per inch).
PNG_DPI = 150

#: One style for every figure of the pipeline (readable at report size).
STYLE: Mapping[str, Any] = {
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8.5,
    "figure.titlesize": 12,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}

#: Colour-blind-safe palette (Okabe-Ito), used in order for arms / variants / sets.
PALETTE: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
)


def apply_style() -> None:
    """Apply the pipeline's matplotlib style globally (for interactive use; plot functions use :func:`styled`)."""
    plt.rcParams.update(STYLE)


def styled(function: Callable) -> Callable:
    """Run a plot function inside ``plt.rc_context(STYLE)``: the style never leaks into other code."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with plt.rc_context(STYLE):
            return function(*args, **kwargs)

    return wrapper


def color_for(index: int) -> str:
    """The palette colour for the ``index``-th group (cycles)."""
    if index < 0:
        raise ValueError(f"colour index must be >= 0, got {index}")
    return PALETTE[index % len(PALETTE)]


def format_p(p: float, threshold: float = 0.001) -> str:
    """Format a p-value for a figure: ``"p = 0.031"``, ``"p < 0.001"``, ``"p = n/a"`` for NaN."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "p = n/a"
    p = float(p)
    if not 0.0 <= p <= 1.0 + 1e-12:
        raise ValueError(f"p-value must lie in [0, 1], got {p}")
    if p < threshold:
        return f"p < {threshold:g}"
    return f"p = {p:.3f}"


def significance_stars(p: float) -> str:
    """``"***"`` (p < 0.001), ``"**"`` (< 0.01), ``"*"`` (< 0.05), ``"n.s."`` otherwise or for NaN."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n.s."
    p = float(p)
    if p < 0:
        raise ValueError(f"p-value must be >= 0, got {p}")
    if p < 0.001:
        return "***"
    if p < 0.01:
        return "**"
    if p < 0.05:
        return "*"
    return "n.s."


def save_figure(fig: Figure, out_png: str | Path, out_pdf: str | Path | None = None) -> list[Path]:
    """Write ``fig`` as PNG (``PNG_DPI``) and, if given, PDF, each atomically; close the figure.

    Returns the paths written, PNG first.
    """
    targets = [(Path(out_png), "png")]
    if out_pdf is not None:
        targets.append((Path(out_pdf), "pdf"))
    for path, fmt in targets:
        if path.suffix.lower() != f".{fmt}":
            plt.close(fig)
            raise ValueError(f"expected a .{fmt} path, got {path}")
    try:
        for path, fmt in targets:
            with atomic_path(path) as tmp:
                fig.savefig(tmp, format=fmt, dpi=PNG_DPI)
            log.info("wrote %s", path)
    finally:
        plt.close(fig)
    return [path for path, _ in targets]

