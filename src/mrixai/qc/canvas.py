"""Matplotlib figures drawn on the Agg canvas (no pyplot) and saved as deterministic palette PNGs."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np

from mrixai.io import atomic_path

log = logging.getLogger(__name__)

PathLike = str | Path

# Okabe & Ito (2008) colour-blind-safe palette.
OKABE_ITO = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
MASK_COLOR = OKABE_ITO["orange"]
TISSUE_COLORS = {
    1: ("GM", OKABE_ITO["vermillion"]),
    2: ("WM", OKABE_ITO["sky_blue"]),
    3: ("CSF", OKABE_ITO["yellow"]),
}
TISSUE_ALPHA = 0.35
TEMPLATE_OUTLINE_COLOR = OKABE_ITO["orange"]
TEMPLATE_EDGE_COLOR = OKABE_ITO["sky_blue"]
OUTLIER_COLOR = OKABE_ITO["vermillion"]
INLIER_COLOR = OKABE_ITO["blue"]

FIG_WIDTH_IN = 14.0
DPI = 100  # 1400 px wide
PNG_MAX_ERROR = 16  # a palette PNG must keep 99.9 % of pixels within this (of 255), else RGB
PNG_COLOR_ENTRIES = 128  # palette entries for coloured pixels; the other 128 are greys


def new_figure(width_in: float, height_in: float, facecolor: str = "black"):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, facecolor=facecolor)
    FigureCanvasAgg(fig)
    return fig


def _palette_image(rgb):
    """``rgb`` on a palette of at most 256 colours, each pixel mapped to its nearest entry.

    A figure with at most 256 colours keeps them exactly. Otherwise greys (every other level) take
    ``256 - PNG_COLOR_ENTRIES`` entries, since the anatomy is grey, and the coloured pixels (overlays
    and their blends with the anatomy) are quantized into the rest. A palette PNG is 2-4x smaller
    than RGB; without dithering it also compresses well.
    """
    from PIL import Image

    arr = np.asarray(rgb, np.uint8)
    packed = (arr[..., 0].astype(np.int32) << 16) | (arr[..., 1].astype(np.int32) << 8) | arr[..., 2]
    uniq, inverse = np.unique(packed.ravel(), return_inverse=True)
    colors = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1).astype(np.uint8)
    if len(colors) <= 256:
        palette, nearest = colors, np.arange(len(colors))
    else:
        grey = (arr[..., 0] == arr[..., 1]) & (arr[..., 1] == arr[..., 2])
        entries = np.zeros((0, 3), np.uint8)
        if (~grey).any():
            strip = Image.fromarray(np.ascontiguousarray(arr[~grey].reshape(1, -1, 3)), "RGB")
            quant = strip.quantize(
                colors=PNG_COLOR_ENTRIES, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
            )
            used = sorted(index for _, index in quant.getcolors(maxcolors=256))
            entries = np.asarray(quant.getpalette(), np.uint8).reshape(-1, 3)[used]
        levels = np.round(np.linspace(0, 255, 256 - len(entries))).astype(np.uint8)
        palette = np.concatenate([np.repeat(levels[:, None], 3, axis=1), entries])
        pal = palette.astype(np.float64)
        nearest = np.empty(len(colors), np.int64)
        for start in range(0, len(colors), 8192):  # squared distances, in chunks
            chunk = colors[start : start + 8192].astype(np.float64)
            dist = (chunk**2).sum(1)[:, None] - 2 * chunk @ pal.T + (pal**2).sum(1)[None, :]
            nearest[start : start + 8192] = dist.argmin(axis=1)
    out = Image.fromarray(nearest[inverse].reshape(arr.shape[:2]).astype(np.uint8), "P")
    out.putpalette(palette.ravel().tolist())
    return out


def save_png(fig, out_png: PathLike, facecolor: str) -> Path:
    """Render ``fig`` and write it as an optimised palette PNG, atomically."""
    from PIL import Image

    out_png = Path(out_png)
    if out_png.suffix.lower() != ".png":
        raise ValueError(f"out_png must end in .png, got {str(out_png)!r}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor=facecolor, metadata={"Software": None})
    buf.seek(0)
    with Image.open(buf) as img:
        rgb = img.convert("RGB")
    out = _palette_image(rgb)
    shift = np.abs(np.asarray(out.convert("RGB"), np.int16) - np.asarray(rgb, np.int16)).max(axis=-1)
    error = float(np.percentile(shift, 99.9))
    if error > PNG_MAX_ERROR:
        log.info("a palette PNG would shift 0.1%% of pixels by %g levels or more; writing RGB", error)
        out = rgb
    with atomic_path(out_png) as tmp:
        out.save(tmp, format="PNG", optimize=True)
    log.info("wrote %s (%d x %d px)", out_png, *rgb.size)
    return out_png
