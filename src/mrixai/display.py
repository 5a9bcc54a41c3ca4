"""Slicing and intensity windowing of 3D images for display, shared by the QC montages
(:mod:`mrixai.qc.montage`) and the figures (:mod:`mrixai.figures.attribution`).

Volumes are expected in RAS voxel order (``nibabel.as_closest_canonical``). A cut is returned as it
is drawn with ``imshow(..., origin="lower")``: rows go up (superior, or anterior in axial cuts),
columns go right (subject's left to right in coronal and axial cuts, posterior to anterior in
sagittal cuts), i.e. the neurological convention.

The grey-scale window is the one fMRIPrep-style reports use: the 0.5th percentile of the non-zero
voxels (anchored at 0 for non-negative images, so background stays black) to the 99.5th
percentile of the voxels inside the structure shown (all non-zero voxels when none is given).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: The three views, in the order montages draw them.
VIEWS: tuple[str, ...] = ("sagittal", "coronal", "axial")

#: Voxel axis held fixed by each view, in RAS voxel order.
VIEW_AXIS: Mapping[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}

#: World coordinate letter of the fixed axis of each view.
VIEW_LETTER: Mapping[str, str] = {"sagittal": "x", "coronal": "y", "axial": "z"}

#: Lower and upper percentile of the grey-scale window.
WINDOW_PERCENTILES: tuple[float, float] = (0.5, 99.5)


def display_slice(
    data: np.ndarray,
    view: str,
    index: int,
    crop: tuple[Sequence[int], Sequence[int]] | None = None,
    radiological: bool = False,
) -> np.ndarray:
    """2D cut ``index`` along ``view`` of a RAS volume, as shown with ``origin='lower'``.

    Sagittal: columns P -> A, rows I -> S. Coronal: columns L -> R, rows I -> S. Axial: columns
    L -> R, rows P -> A. ``crop`` is an inclusive voxel box ``(lo, hi)`` of the volume; with
    ``radiological`` coronal and axial columns run R -> L.
    """
    if view not in VIEW_AXIS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if np.ndim(data) != 3:
        raise ValueError(f"data must be 3D, got shape {np.shape(data)}")
    axis = VIEW_AXIS[view]
    if not 0 <= index < data.shape[axis]:
        raise ValueError(f"slice index {index} outside 0..{data.shape[axis] - 1} along {view}")
    if crop is None:
        x = y = z = slice(None)
    else:
        lo, hi = crop
        x, y, z = (slice(int(lo[a]), int(hi[a]) + 1) for a in range(3))
    if view == "sagittal":
        cut = data[index, y, z].T
    elif view == "coronal":
        cut = data[x, index, z].T
    else:
        cut = data[x, y, index].T
    if radiological and view != "sagittal":
        cut = cut[:, ::-1]
    return cut


def edge_letters(view: str, radiological: bool = False) -> tuple[str, str]:
    """Letters of the left and right edges of a displayed cut."""
    if view not in VIEW_AXIS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    if view == "sagittal":
        return "P", "A"
    return ("R", "L") if radiological else ("L", "R")


def intensity_window(data: np.ndarray, region: np.ndarray | None = None) -> tuple[float, float]:
    """Grey-scale display range ``(vmin, vmax)`` from robust percentiles (:data:`WINDOW_PERCENTILES`).

    ``vmin`` is the lower percentile of the non-zero finite voxels, lowered to 0 when the image has
    no negative voxel; ``vmax`` is the upper percentile of the non-zero voxels inside ``region``
    (a boolean array of ``data``'s shape; all non-zero voxels when it is None or selects none).
    An empty image gives ``(0, 1)``; a constant one is shown from ``min(0, value)`` upward.
    """
    data = np.asarray(data)
    valid = np.isfinite(data) & (data != 0)
    nonzero = data[valid]
    if nonzero.size == 0:
        return 0.0, 1.0
    inside = nonzero
    if region is not None:
        region = np.asarray(region, dtype=bool)
        if region.shape != data.shape:
            raise ValueError(f"region has shape {region.shape} but the image has shape {data.shape}")
        if region.any() and (region & valid).any():
            inside = data[region & valid]
    vmin = float(np.percentile(nonzero, WINDOW_PERCENTILES[0]))
    vmax = float(np.percentile(inside, WINDOW_PERCENTILES[1]))
    if vmin >= 0 and nonzero.min() >= 0:
        vmin = min(vmin, 0.0)  # non-negative images: background stays black
    if vmax <= vmin:
        vmax = vmin + 1.0
    return vmin, vmax
