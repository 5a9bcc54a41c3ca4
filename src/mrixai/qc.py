"""Quality control: per-subject montages (skull strip, tissues, registration) and a group table.

Montages follow the habits of fMRIPrep / sMRIPrep reports: seven cuts per view (sagittal, coronal,
axial), placed evenly inside the bounding box of the structure under scrutiny, with the slice
position in millimetres, L/R (or A/P) letters on every panel, intensity windowed by robust
percentiles, and overlays in the Okabe-Ito colour-blind-safe palette. Images are reoriented to RAS
(``nibabel.as_closest_canonical``) before display, so the same anatomy always lands in the same
place whatever the on-disk orientation; the neurological convention (subject's left on the left
of the page) is the default, ``radiological=True`` mirrors coronal and axial panels.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, no global backend switch) and
saved as palette PNGs about 1400 px wide, atomically (:func:`mrixai.io.atomic_path`), without
time stamps, so a rerun gives the same bytes.

The group table gives, per subject, brain volume, tissue fractions and the similarity of every
registration arm's output to the template, then a robust z-score (median / MAD) per metric and the
list of metrics whose ``|z|`` exceeds the threshold.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

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

VIEWS = ("sagittal", "coronal", "axial")
_VIEW_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # axis held fixed, in RAS voxel order
_VIEW_LETTER = {"sagittal": "x", "coronal": "y", "axial": "z"}
N_CUTS = 7
FIG_WIDTH_IN = 14.0
DPI = 100  # 1400 px wide
WINDOW_PERCENTILES = (0.5, 99.5)
PNG_MAX_ERROR = 16  # a palette PNG must keep 99.9 % of pixels within this (of 255), else RGB
PNG_COLOR_ENTRIES = 128  # palette entries for coloured pixels; the other 128 are greys
BASE_INTERPOLATION = "nearest"  # true voxels, as nilearn shows them; also keeps PNGs small
MAD_TO_SD = 1.482602218505602  # 1 / Phi^-1(3/4): MAD of a normal sample times this estimates its SD
MEANAD_TO_SD = 1.2533141373155001  # sqrt(pi / 2): mean absolute deviation to SD, for MAD == 0
TISSUE_LABELS = {1: "gm", 2: "wm", 3: "csf"}
ID_COLUMN = "subject"


# --------------------------------------------------------------------------------------------
# Loading and geometry


@dataclass(frozen=True)
class _Volume:
    """A 3D image in RAS voxel order."""

    data: np.ndarray
    affine: np.ndarray
    path: Path

    @property
    def zooms(self) -> np.ndarray:
        return np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))

    @property
    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))


def _check_path(path: PathLike, name: str) -> Path:
    if not isinstance(path, (str, Path)):
        raise ValueError(f"{name} must be a str or Path, got {path!r}")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} does not exist: {path}")
    return path


def _load(path: PathLike, name: str, canonical: bool = True) -> _Volume:
    """Load a 3D NIfTI (a trailing length-1 4th axis is dropped), reoriented to RAS if asked."""
    path = _check_path(path, name)
    img = nib.load(path)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if len(img.shape) != 3:
        raise ValueError(f"{name} must be a 3D image, got shape {img.shape} in {path}")
    if canonical:
        img = nib.as_closest_canonical(img)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    if not np.all(np.isfinite(data)):
        log.warning(
            "%s has %d non-finite voxels; they are treated as 0", path, int((~np.isfinite(data)).sum())
        )
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    return _Volume(data, img.affine.copy(), path)


def _same_grid(a: _Volume, b: _Volume, atol: float = 1e-3) -> bool:
    return a.data.shape == b.data.shape and np.allclose(a.affine, b.affine, atol=atol)


def _resample_like(src: _Volume, ref: _Volume, order: int) -> _Volume:
    """``src`` resampled onto ``ref``'s grid by world coordinates (order 0 for labels)."""
    if _same_grid(src, ref):
        return src
    log.warning("%s is not on the grid of %s; resampling it for display", src.path.name, ref.path.name)
    vox = np.linalg.inv(src.affine) @ ref.affine
    data = ndimage.affine_transform(
        src.data, vox[:3, :3], vox[:3, 3], output_shape=ref.data.shape, order=order, mode="constant", cval=0.0
    )
    return _Volume(data.astype(np.float32), ref.affine, src.path)


def _bbox(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inclusive voxel bounds (lo, hi) of the non-zero voxels of ``mask``; None if empty."""
    idx = np.nonzero(mask)
    if idx[0].size == 0:
        return None
    return np.array([i.min() for i in idx]), np.array([i.max() for i in idx])


def _foreground(data: np.ndarray) -> np.ndarray:
    """Head/brain voxels: above a quarter of Otsu's threshold on non-zero voxels, largest blob, filled."""
    values = data[data > 0]
    if values.size == 0:
        return np.zeros(data.shape, bool)
    fg = data > 0.25 * _otsu(values)
    labels, n = ndimage.label(fg)
    if n > 1:
        sizes = ndimage.sum(fg, labels, range(1, n + 1))
        fg = labels == (1 + int(np.argmax(sizes)))
    return ndimage.binary_fill_holes(fg)


def _otsu(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1D sample (between-class variance maximised over ``bins`` levels)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    lo, hi = np.percentile(values, [0.5, 99.5]) if values.size > 100 else (values.min(), values.max())
    if hi <= lo:
        return float(lo)
    hist, edges = np.histogram(np.clip(values, lo, hi), bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def _window(data: np.ndarray, region: np.ndarray | None) -> tuple[float, float]:
    """Display range from robust percentiles: low over non-zero voxels, high inside ``region``."""
    nonzero = data[data != 0]
    if nonzero.size == 0:
        return 0.0, 1.0
    inside = data[region & (data != 0)] if region is not None and region.any() else nonzero
    if inside.size == 0:
        inside = nonzero
    vmin = float(np.percentile(nonzero, WINDOW_PERCENTILES[0]))
    vmax = float(np.percentile(inside, WINDOW_PERCENTILES[1]))
    if vmin >= 0 and nonzero.min() >= 0:
        vmin = min(vmin, 0.0)  # non-negative images: background stays black
    if vmax <= vmin:
        vmax = vmin + 1.0
    return vmin, vmax


# --------------------------------------------------------------------------------------------
# Montage drawing


@dataclass
class _Layer:
    """Something drawn over the base image: a contour of a volume, or a label map in colours."""

    data: np.ndarray
    kind: str  # "contour" | "labels"
    colors: Mapping[int, str] | Sequence[str] = field(default_factory=dict)
    levels: Sequence[float] = (0.5,)
    linewidth: float = 1.2
    alpha: float = TISSUE_ALPHA


@dataclass(frozen=True)
class _Panel:
    """One cut: the view, the voxel index along the fixed axis, its world coordinate (mm)."""

    view: str
    index: int
    coord_mm: float


def _cuts(
    shape: Sequence[int], affine: np.ndarray, box: tuple[np.ndarray, np.ndarray], n: int = N_CUTS
) -> list[_Panel]:
    """``n`` evenly spaced cuts strictly inside ``box`` for each view, sagittal first."""
    lo, hi = box
    centre = (lo + hi) / 2
    panels = []
    for view in VIEWS:
        axis = _VIEW_AXIS[view]
        positions = np.linspace(lo[axis], hi[axis], n + 2)[1:-1]
        for pos in np.round(positions).astype(int):
            vox = centre.astype(float).copy()
            vox[axis] = pos
            coord = float((affine @ np.append(vox, 1.0))[axis])
            panels.append(_Panel(view, int(np.clip(pos, 0, shape[axis] - 1)), coord))
    return panels


def _crop_box(
    shape: Sequence[int], box: tuple[np.ndarray, np.ndarray], zooms: np.ndarray, margin_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """``box`` grown by ``margin_mm`` on every side, clipped to the volume (inclusive bounds)."""
    lo, hi = box
    grow = np.ceil(margin_mm / zooms).astype(int)
    return np.maximum(lo - grow, 0), np.minimum(hi + grow, np.array(shape) - 1)


def _display_slice(
    data: np.ndarray, view: str, index: int, crop: tuple[np.ndarray, np.ndarray], radiological: bool = False
) -> np.ndarray:
    """2D cut of a RAS volume as shown with ``origin='lower'``: rows go up (S or A), columns go right.

    Sagittal: columns P -> A, rows I -> S. Coronal: columns L -> R, rows I -> S. Axial: columns
    L -> R, rows P -> A. With ``radiological`` coronal and axial columns run R -> L.
    """
    lo, hi = crop
    x, y, z = (slice(lo[a], hi[a] + 1) for a in range(3))
    if view == "sagittal":
        cut = data[index, y, z].T
    elif view == "coronal":
        cut = data[x, index, z].T
    elif view == "axial":
        cut = data[x, y, index].T
    else:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if radiological and view != "sagittal":
        cut = cut[:, ::-1]
    return cut


def _plane_zooms(view: str, zooms: np.ndarray) -> tuple[float, float]:
    """(horizontal, vertical) voxel size in mm of a displayed cut."""
    h, v = {"sagittal": (1, 2), "coronal": (0, 2), "axial": (0, 1)}[view]
    return float(zooms[h]), float(zooms[v])


def _edge_letters(view: str, radiological: bool) -> tuple[str, str]:
    if view == "sagittal":
        return "P", "A"
    return ("R", "L") if radiological else ("L", "R")


def _new_figure(width_in: float, height_in: float, facecolor: str = "black"):
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


def _save_png(fig, out_png: PathLike, facecolor: str) -> Path:
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


def _draw_layer(
    ax, layer: _Layer, cut: np.ndarray, extent: tuple[float, float, float, float], hz: float, vz: float
) -> None:
    if layer.kind == "contour":
        levels = [lv for lv in layer.levels if cut.min() < lv < cut.max()]
        if not levels:
            return
        xs = (np.arange(cut.shape[1]) + 0.5) * hz
        ys = (np.arange(cut.shape[0]) + 0.5) * vz
        colors = list(layer.colors) if not isinstance(layer.colors, Mapping) else None
        ax.contour(
            xs,
            ys,
            cut,
            levels=levels,
            colors=[colors[layer.levels.index(lv)] for lv in levels],
            linewidths=layer.linewidth,
        )
    elif layer.kind == "labels":
        from matplotlib.colors import to_rgba

        rgba = np.zeros(cut.shape + (4,), np.float32)
        for value, color in layer.colors.items():
            sel = cut == value
            if sel.any():
                rgba[sel] = to_rgba(color, layer.alpha)
        if rgba[..., 3].any():
            ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest", zorder=2)
    else:  # pragma: no cover - internal misuse
        raise ValueError(f"layer kind must be 'contour' or 'labels', got {layer.kind!r}")


def _render_montage(
    base: _Volume,
    layers: Sequence[_Layer],
    box: tuple[np.ndarray, np.ndarray],
    window: tuple[float, float],
    title: str,
    subtitle: str,
    legend: Sequence[tuple[str, str, str]],
    out_png: PathLike,
    radiological: bool = False,
    margin_mm: float = 8.0,
    alert: str = "",
) -> Path:
    """Draw 3 rows (sagittal, coronal, axial) x ``N_CUTS`` columns and save the PNG.

    ``legend`` holds (kind, colour, text) with kind "line" or "patch"; ``alert`` is printed in red
    under the title (e.g. an empty mask).
    """
    from matplotlib.gridspec import GridSpec
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.patheffects import withStroke

    shape = base.data.shape
    zooms = base.zooms
    panels = _cuts(shape, base.affine, box)
    crop = _crop_box(shape, box, zooms, margin_mm)
    extent_mm = (crop[1] - crop[0] + 1) * zooms

    # Row heights so every panel keeps its true aspect at the column width.
    left_in, right_in, top_in, bottom_in = 0.35, 0.05, 0.75, 0.35
    col_w = (FIG_WIDTH_IN - left_in - right_in) / N_CUTS
    plane_axes = {"sagittal": (1, 2), "coronal": (0, 2), "axial": (0, 1)}
    # (Clamped, so that a degenerate box cannot make a strip or a tower; imshow keeps the aspect.)
    row_h = [
        col_w * float(np.clip(extent_mm[plane_axes[v][1]] / extent_mm[plane_axes[v][0]], 0.4, 2.0))
        for v in VIEWS
    ]
    height = top_in + bottom_in + sum(row_h)
    fig = _new_figure(FIG_WIDTH_IN, height)
    gs = GridSpec(
        3,
        N_CUTS,
        figure=fig,
        height_ratios=row_h,
        wspace=0.03,
        hspace=0.03,
        left=left_in / FIG_WIDTH_IN,
        right=1 - right_in / FIG_WIDTH_IN,
        top=1 - top_in / height,
        bottom=bottom_in / height,
    )
    vmin, vmax = window
    for n, panel in enumerate(panels):
        row, col = divmod(n, N_CUTS)
        ax = fig.add_subplot(gs[row, col])
        ax.set_facecolor("black")
        hz, vz = _plane_zooms(panel.view, zooms)
        cut = _display_slice(base.data, panel.view, panel.index, crop, radiological)
        extent = (0.0, cut.shape[1] * hz, 0.0, cut.shape[0] * vz)
        ax.imshow(
            cut,
            cmap="gray",
            vmin=vmin,
            vmax=vmax,
            origin="lower",
            extent=extent,
            interpolation=BASE_INTERPOLATION,
            zorder=1,
        )
        for layer in layers:
            _draw_layer(
                ax,
                layer,
                _display_slice(layer.data, panel.view, panel.index, crop, radiological),
                extent,
                hz,
                vz,
            )
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_axis_off()
        text = {
            "color": "white",
            "fontsize": 9,
            "transform": ax.transAxes,
            "zorder": 5,
            "path_effects": [withStroke(linewidth=2, foreground="black")],
        }
        ax.text(
            0.03, 0.03, f"{_VIEW_LETTER[panel.view]}={panel.coord_mm:+.0f}", ha="left", va="bottom", **text
        )
        west, east = _edge_letters(panel.view, radiological)
        ax.text(0.02, 0.5, west, ha="left", va="center", fontweight="bold", **text)
        ax.text(0.98, 0.5, east, ha="right", va="center", fontweight="bold", **text)
        if col == 0:
            fig.text(
                0.5 * left_in / FIG_WIDTH_IN,
                ax.get_position().y0 + ax.get_position().height / 2,
                panel.view,
                rotation=90,
                ha="center",
                va="center",
                color="white",
                fontsize=10,
            )
    fig.text(
        0.5, 1 - 0.12 / height, title, ha="center", va="top", color="white", fontsize=14, fontweight="bold"
    )
    convention = "radiological (R on the left)" if radiological else "neurological (L on the left)"
    fig.text(
        0.5,
        1 - 0.45 / height,
        f"{subtitle}   |   {convention}, coordinates in mm",
        ha="center",
        va="top",
        color="#BBBBBB",
        fontsize=9,
    )
    if alert:
        fig.text(
            0.98,
            1 - 0.12 / height,
            alert,
            ha="right",
            va="top",
            color=OUTLIER_COLOR,
            fontsize=12,
            fontweight="bold",
        )
    handles = [
        (
            Line2D([], [], color=color, lw=2, label=label)
            if kind == "line"
            else Patch(facecolor=color, edgecolor="none", label=label)
        )
        for kind, color, label in legend
    ]
    if handles:
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
            labelcolor="white",
            fontsize=10,
            handlelength=1.5,
        )
    return _save_png(fig, out_png, facecolor="black")


def _check_outputs(title: str, out_png: PathLike) -> None:
    """Fail before any work on a title that is not text or an output that is not a .png path."""
    if not isinstance(title, str):
        raise ValueError(f"title must be a str, got {title!r}")
    if not isinstance(out_png, (str, Path)) or Path(out_png).suffix.lower() != ".png":
        raise ValueError(f"out_png must be a path ending in .png, got {out_png!r}")


def plot_mask_montage(
    image_path: PathLike, mask_path: PathLike, out_png: PathLike, title: str, *, radiological: bool = False
) -> None:
    """Skull-strip QC: the brain-mask outline drawn over the (bias-corrected) head image.

    Cuts span the mask's bounding box (the head's when the mask is empty, which is then said on
    the figure); panels show 8 mm around it so that brain left outside the mask is visible.
    Intensities are windowed from the 0.5th percentile of the non-zero voxels to the 99.5th
    percentile inside the mask.

    Args:
        image_path: head image (NIfTI, any orientation).
        mask_path: binary brain mask on the same grid (resampled by nearest neighbour if not).
        out_png: PNG to write.
        title: figure title, e.g. ``"sub-01 - skull strip"``.
        radiological: mirror coronal and axial panels (R on the left).
    """
    _check_outputs(title, out_png)
    image = _load(image_path, "image_path")
    mask = _resample_like(_load(mask_path, "mask_path"), image, order=0)
    brain = mask.data > 0.5
    box = _bbox(brain)
    note, alert = f"{image.path.name}  +  outline of {mask.path.name}", ""
    if box is None:
        log.warning("brain mask %s is empty", mask.path)
        alert = "MASK IS EMPTY"
        box = _bbox(_foreground(image.data)) or _full_box(image.data.shape)
    layers = [_Layer(brain.astype(np.float32), "contour", colors=[MASK_COLOR], levels=[0.5], linewidth=1.5)]
    _render_montage(
        image,
        layers,
        box,
        _window(image.data, brain),
        title,
        note,
        [("line", MASK_COLOR, "brain mask")],
        out_png,
        radiological,
        margin_mm=8.0,
        alert=alert,
    )


def _full_box(shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(3, int), np.array(shape) - 1


def _check_dseg(dseg: _Volume) -> np.ndarray:
    """Integer labels of a 1=GM 2=WM 3=CSF segmentation; ValueError naming any other value."""
    labels = np.rint(dseg.data)
    if not np.allclose(labels, dseg.data, atol=1e-3):
        raise ValueError(f"dseg must hold integer labels, {dseg.path} has non-integer values")
    labels = labels.astype(np.int16)
    bad = sorted(set(np.unique(labels).tolist()) - {0, *TISSUE_COLORS})
    if bad:
        raise ValueError(f"dseg must hold only 0 and 1=GM 2=WM 3=CSF, {dseg.path} also holds {bad}")
    return labels


def plot_tissue_montage(
    image_path: PathLike, dseg_path: PathLike, out_png: PathLike, title: str, *, radiological: bool = False
) -> None:
    """Segmentation QC: the tissue labels (1=GM, 2=WM, 3=CSF) as a translucent overlay with legend.

    Cuts span the labelled voxels' bounding box. Each label is filled with its Okabe-Ito colour at
    ``TISSUE_ALPHA`` opacity, so the anatomy beneath stays visible.

    Args:
        image_path: brain (or head) image.
        dseg_path: label map on the same grid; any value other than 0-3 raises ValueError.
        out_png: PNG to write.
        title: figure title, e.g. ``"sub-01 - tissue segmentation"``.
        radiological: mirror coronal and axial panels (R on the left).
    """
    _check_outputs(title, out_png)
    image = _load(image_path, "image_path")
    dseg_vol = _load(dseg_path, "dseg_path")
    labels = _check_dseg(dseg_vol)
    labels = _resample_like(
        _Volume(labels.astype(np.float32), dseg_vol.affine, dseg_vol.path), image, order=0
    ).data.astype(np.int16)
    box = _bbox(labels > 0)
    note, alert = f"{image.path.name}  +  {dseg_vol.path.name}", ""
    if box is None:
        log.warning("segmentation %s is empty", dseg_vol.path)
        alert = "SEGMENTATION IS EMPTY"
        box = _bbox(_foreground(image.data)) or _full_box(image.data.shape)
    colors = {value: color for value, (_, color) in TISSUE_COLORS.items()}
    layers = [_Layer(labels, "labels", colors=colors, alpha=TISSUE_ALPHA)]
    legend = [("patch", color, name) for name, color in TISSUE_COLORS.values()]
    _render_montage(
        image,
        layers,
        box,
        _window(image.data, labels > 0),
        title,
        note,
        legend,
        out_png,
        radiological,
        margin_mm=4.0,
        alert=alert,
    )


def _template_layers(template: _Volume) -> tuple[list[_Layer], np.ndarray, list[tuple[str, str, str]]]:
    """Contours of the template: its brain outline, and for an intensity image its WM boundary."""
    values = np.unique(template.data)
    binary = values.size <= 2
    if binary:
        brain = template.data > 0.5 * values.max() if values.max() > 0 else template.data > 0
    else:
        brain = ndimage.binary_fill_holes(
            template.data > 0.1 * np.percentile(template.data[template.data > 0], 99)
        )
    layers = [
        _Layer(
            ndimage.gaussian_filter(brain.astype(np.float32), 0.6),
            "contour",
            colors=[TEMPLATE_OUTLINE_COLOR],
            levels=[0.5],
            linewidth=1.3,
        )
    ]
    legend = [("line", TEMPLATE_OUTLINE_COLOR, "template brain outline")]
    if not binary and brain.any():
        smooth = ndimage.gaussian_filter(template.data, 0.6)
        level = _otsu(smooth[brain])
        inner = np.where(ndimage.binary_erosion(brain, iterations=1), smooth, 0.0)
        layers.append(_Layer(inner, "contour", colors=[TEMPLATE_EDGE_COLOR], levels=[level], linewidth=0.9))
        legend.append(("line", TEMPLATE_EDGE_COLOR, "template WM boundary"))
    return layers, brain, legend


def plot_registration_montage(
    moving_path: PathLike,
    template_path: PathLike,
    out_png: PathLike,
    title: str,
    *,
    radiological: bool = False,
) -> None:
    """Registration QC: the template's edges drawn over the subject image warped into template space.

    Two contours of the template are drawn: its brain outline and, when ``template_path`` is an
    intensity image (not a mask), the white-matter boundary (Otsu level of the template's brain
    intensities). Misregistration shows as subject anatomy crossing them. Cuts span the template
    brain's bounding box, so every subject of an arm is cut at the same world coordinates.

    Args:
        moving_path: subject image in template space (e.g. ``..._space-template_reg-syn_desc-brain_T1w``).
        template_path: template T1w (or template brain mask); resampled onto the moving grid if needed.
        out_png: PNG to write.
        title: figure title, e.g. ``"sub-01 - registration (syn)"``.
        radiological: mirror coronal and axial panels (R on the left).
    """
    _check_outputs(title, out_png)
    moving = _load(moving_path, "moving_path")
    template = _resample_like(_load(template_path, "template_path"), moving, order=1)
    if not template.data.any():
        raise ValueError(f"template_path is empty (all zero): {template.path}")
    layers, brain, legend = _template_layers(template)
    box = _bbox(brain) or _full_box(moving.data.shape)
    note, alert = f"{moving.path.name}  +  edges of {template.path.name}", ""
    if not moving.data.any():
        log.warning("moving image %s is empty", moving.path)
        alert = "MOVING IMAGE IS EMPTY"
    _render_montage(
        moving,
        layers,
        box,
        _window(moving.data, brain),
        title,
        note,
        legend,
        out_png,
        radiological,
        margin_mm=10.0,
        alert=alert,
    )


# --------------------------------------------------------------------------------------------
# Metrics


def _check_arms(mapping: Mapping[str, PathLike] | None, name: str) -> dict[str, PathLike]:
    if mapping is None:
        return {}
    if not isinstance(mapping, Mapping):
        raise ValueError(f"{name} must map arm name -> path, got {mapping!r}")
    for arm in mapping:
        if not isinstance(arm, str) or not arm or any(c.isspace() for c in arm):
            raise ValueError(f"{name} has an invalid arm name {arm!r} (non-empty, no spaces)")
    return dict(mapping)


def _check_same_grid(a: _Volume, b: _Volume, what: str) -> None:
    if a.data.shape != b.data.shape:
        raise ValueError(f"{what}: {a.path.name} has shape {a.data.shape}, {b.path.name} has {b.data.shape}")
    if not np.allclose(a.affine, b.affine, atol=1e-3):
        raise ValueError(f"{what}: {a.path.name} and {b.path.name} have different affines")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A&B| / (|A| + |B|) of two boolean arrays (1.0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    if a.shape != b.shape:
        raise ValueError(f"dice needs arrays of one shape, got {a.shape} and {b.shape}")
    total = int(a.sum()) + int(b.sum())
    return 1.0 if total == 0 else 2.0 * int(np.logical_and(a, b).sum()) / total


def normalized_cross_correlation(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """Pearson correlation of ``a`` and ``b`` over ``region`` (all voxels if None); NaN if flat."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(
            f"normalized_cross_correlation needs arrays of one shape, got {a.shape} and {b.shape}"
        )
    if region is not None:
        a, b = a[region], b[region]
    a, b = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else float("nan")


def subject_metrics(
    unit: str,
    mask_path: PathLike,
    dseg_path: PathLike,
    template_mask_path: PathLike,
    warped_masks: Mapping[str, PathLike],
    warped_images: Mapping[str, PathLike] | None = None,
    template_image_path: PathLike | None = None,
) -> dict:
    """QC metrics of one subject, as one row of the group table.

    Returns a dict with
      - ``subject``: ``unit``;
      - ``brain_volume_ml``: native brain-mask voxels times the voxel volume (|det| of the affine);
      - ``gm_fraction``, ``wm_fraction``, ``csf_fraction``: share of each label among the labelled
        (non-zero) voxels of the native dseg (1=GM, 2=WM, 3=CSF), summing to 1;
      - ``dice_template_<arm>``: Dice of the arm's brain mask in template space with the template mask;
      - ``ncc_template_<arm>`` (when ``warped_images`` is given): Pearson correlation of the arm's
        warped brain image with ``template_image_path`` inside the template mask.

    Masks are binarised at 0.5, so interpolated masks work. Native mask and dseg must share a grid,
    and every template-space image must lie on the template mask's grid (ValueError otherwise).
    """
    if not isinstance(unit, str) or not unit:
        raise ValueError(f"unit must be a non-empty subject id, got {unit!r}")
    warped_masks = _check_arms(warped_masks, "warped_masks")
    warped_images = _check_arms(warped_images, "warped_images")
    if warped_images and template_image_path is None:
        raise ValueError("warped_images given without template_image_path to compare them with")

    mask = _load(mask_path, "mask_path", canonical=False)
    dseg = _load(dseg_path, "dseg_path", canonical=False)
    _check_same_grid(mask, dseg, "native brain mask and dseg must share a grid")
    brain = mask.data > 0.5
    labels = _check_dseg(dseg)
    row: dict[str, object] = {
        ID_COLUMN: unit,
        "brain_volume_ml": float(brain.sum()) * mask.voxel_volume_mm3 / 1000.0,
    }
    labelled = int((labels > 0).sum())
    if labelled == 0:
        log.warning("%s: dseg %s is empty; tissue fractions are NaN", unit, dseg.path)
    outside = int(((labels > 0) & ~brain).sum())
    if outside:
        log.warning("%s: %d labelled voxels lie outside the brain mask", unit, outside)
    for value, name in TISSUE_LABELS.items():
        row[f"{name}_fraction"] = float((labels == value).sum()) / labelled if labelled else float("nan")

    template_mask = _load(template_mask_path, "template_mask_path", canonical=False)
    tbrain = template_mask.data > 0.5
    for arm, path in warped_masks.items():
        warped = _load(path, f"warped_masks[{arm!r}]", canonical=False)
        _check_same_grid(warped, template_mask, f"warped mask of arm {arm!r} must lie on the template grid")
        row[f"dice_template_{arm}"] = dice(warped.data > 0.5, tbrain)
    if warped_images:
        template_image = _load(template_image_path, "template_image_path", canonical=False)
        _check_same_grid(template_image, template_mask, "template image and template mask must share a grid")
        for arm, path in warped_images.items():
            warped = _load(path, f"warped_images[{arm!r}]", canonical=False)
            _check_same_grid(
                warped, template_mask, f"warped image of arm {arm!r} must lie on the template grid"
            )
            row[f"ncc_template_{arm}"] = normalized_cross_correlation(
                warped.data, template_image.data, tbrain
            )
    log.info("%s: %s", unit, ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != ID_COLUMN))
    return row


# --------------------------------------------------------------------------------------------
# Group table


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
    fig = _new_figure(FIG_WIDTH_IN, 0.9 + 3.0 * nrows, facecolor="white")
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
    return _save_png(fig, out_png, facecolor="white")


__all__ = [
    "plot_mask_montage",
    "plot_tissue_montage",
    "plot_registration_montage",
    "subject_metrics",
    "summarize_group",
    "robust_z",
    "dice",
    "normalized_cross_correlation",
]


def run_subject_qc(
    unit: str,
    n4_path: PathLike,
    mask_path: PathLike,
    brain_path: PathLike,
    dseg_path: PathLike,
    template_path: PathLike,
    template_mask_path: PathLike,
    warped_images: Mapping[str, PathLike],
    warped_masks: Mapping[str, PathLike],
    out_skullstrip_png: PathLike,
    out_tissue_png: PathLike,
    out_registration_pngs: Mapping[str, PathLike],
    out_json: PathLike,
) -> dict:
    """Every QC output of one subject in one go: the skull-strip, tissue and per-arm registration
    montages, and the metrics JSON that :func:`summarize_group` reads.

    One job per subject instead of one per figure: each job start costs 2-3 s of imports, which is
    more than drawing a montage.
    """
    import json

    from mrixai.io import write_text

    if set(warped_images) != set(out_registration_pngs) or set(warped_masks) != set(out_registration_pngs):
        raise ValueError(
            f"arms differ between warped images {sorted(warped_images)}, masks {sorted(warped_masks)} "
            f"and registration PNGs {sorted(out_registration_pngs)}"
        )
    plot_mask_montage(n4_path, mask_path, out_skullstrip_png, f"sub-{unit}: skull strip")
    plot_tissue_montage(brain_path, dseg_path, out_tissue_png, f"sub-{unit}: tissues")
    for arm, png in out_registration_pngs.items():
        plot_registration_montage(warped_images[arm], template_path, png, f"sub-{unit}: registration, arm {arm}")
    metrics = subject_metrics(
        unit, mask_path, dseg_path, template_mask_path, warped_masks,
        warped_images=warped_images, template_image_path=template_path,
    )
    write_text(json.dumps(metrics, indent=2, default=float), out_json)
    return metrics
