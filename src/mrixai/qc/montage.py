"""Per-subject QC montages: skull strip, tissues and registration, and every QC output of one subject.

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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from mrixai.display import VIEW_AXIS, VIEW_LETTER, VIEWS, display_slice, edge_letters, intensity_window
from mrixai.qc.canvas import (
    FIG_WIDTH_IN,
    MASK_COLOR,
    OUTLIER_COLOR,
    TEMPLATE_EDGE_COLOR,
    TEMPLATE_OUTLINE_COLOR,
    TISSUE_ALPHA,
    TISSUE_COLORS,
    new_figure,
    save_png,
)
from mrixai.qc.metrics import subject_metrics
from mrixai.qc.volumes import PathLike, Volume, bbox, check_dseg, foreground, full_box, load, otsu, resample_like

log = logging.getLogger(__name__)

N_CUTS = 7
BASE_INTERPOLATION = "nearest"  # true voxels, as nilearn shows them; also keeps PNGs small


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
        axis = VIEW_AXIS[view]
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


def _plane_zooms(view: str, zooms: np.ndarray) -> tuple[float, float]:
    """(horizontal, vertical) voxel size in mm of a displayed cut."""
    h, v = {"sagittal": (1, 2), "coronal": (0, 2), "axial": (0, 1)}[view]
    return float(zooms[h]), float(zooms[v])


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
    base: Volume,
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
    fig = new_figure(FIG_WIDTH_IN, height)
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
        cut = display_slice(base.data, panel.view, panel.index, crop, radiological)
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
                display_slice(layer.data, panel.view, panel.index, crop, radiological),
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
            0.03, 0.03, f"{VIEW_LETTER[panel.view]}={panel.coord_mm:+.0f}", ha="left", va="bottom", **text
        )
        west, east = edge_letters(panel.view, radiological)
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
    return save_png(fig, out_png, facecolor="black")


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
    image = load(image_path, "image_path")
    mask = resample_like(load(mask_path, "mask_path"), image, order=0)
    brain = mask.data > 0.5
    box = bbox(brain)
    note, alert = f"{image.path.name}  +  outline of {mask.path.name}", ""
    if box is None:
        log.warning("brain mask %s is empty", mask.path)
        alert = "MASK IS EMPTY"
        box = bbox(foreground(image.data)) or full_box(image.data.shape)
    layers = [_Layer(brain.astype(np.float32), "contour", colors=[MASK_COLOR], levels=[0.5], linewidth=1.5)]
    _render_montage(
        image,
        layers,
        box,
        intensity_window(image.data, brain),
        title,
        note,
        [("line", MASK_COLOR, "brain mask")],
        out_png,
        radiological,
        margin_mm=8.0,
        alert=alert,
    )


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
    image = load(image_path, "image_path")
    dseg_vol = load(dseg_path, "dseg_path")
    labels = check_dseg(dseg_vol)
    labels = resample_like(
        Volume(labels.astype(np.float32), dseg_vol.affine, dseg_vol.path), image, order=0
    ).data.astype(np.int16)
    box = bbox(labels > 0)
    note, alert = f"{image.path.name}  +  {dseg_vol.path.name}", ""
    if box is None:
        log.warning("segmentation %s is empty", dseg_vol.path)
        alert = "SEGMENTATION IS EMPTY"
        box = bbox(foreground(image.data)) or full_box(image.data.shape)
    colors = {value: color for value, (_, color) in TISSUE_COLORS.items()}
    layers = [_Layer(labels, "labels", colors=colors, alpha=TISSUE_ALPHA)]
    legend = [("patch", color, name) for name, color in TISSUE_COLORS.values()]
    _render_montage(
        image,
        layers,
        box,
        intensity_window(image.data, labels > 0),
        title,
        note,
        legend,
        out_png,
        radiological,
        margin_mm=4.0,
        alert=alert,
    )


def _template_layers(template: Volume) -> tuple[list[_Layer], np.ndarray, list[tuple[str, str, str]]]:
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
        level = otsu(smooth[brain])
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
    moving = load(moving_path, "moving_path")
    template = resample_like(load(template_path, "template_path"), moving, order=1)
    if not template.data.any():
        raise ValueError(f"template_path is empty (all zero): {template.path}")
    layers, brain, legend = _template_layers(template)
    box = bbox(brain) or full_box(moving.data.shape)
    note, alert = f"{moving.path.name}  +  edges of {template.path.name}", ""
    if not moving.data.any():
        log.warning("moving image %s is empty", moving.path)
        alert = "MOVING IMAGE IS EMPTY"
    _render_montage(
        moving,
        layers,
        box,
        intensity_window(moving.data, brain),
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
