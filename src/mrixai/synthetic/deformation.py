"""Deformations of the synthetic anatomy: stationary velocity fields (a smooth random field and a
radial field around each atrophy region, calibrated to a volume change), their exponential by
scaling and squaring, the pose, and coarse-to-fine upsampling."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import nibabel as nib
import numpy as np
from scipy import ndimage


_COARSE_MM = 4.0  # grid of the deformation fields
_WARP_SMOOTH_MM = 16.0  # Gaussian width of the random velocity field
_BUMP_INNER_MM = 3.0  # atrophy weight is 1 this far outside a region ...
_BUMP_FALLOFF_MM = 10.0  # ... and falls smoothly to 0 over this distance
_SQUARINGS = 6


# ----------------------------------------------------------------------------- deformations


def _coarse_shape(shape: Sequence[int], factor: int) -> tuple[int, ...]:
    """Points of a lattice with stride ``factor`` that covers indices 0..n-1 of each axis."""
    return tuple(int(math.ceil((n - 1) / factor)) + 1 for n in shape)


def _exp_velocity(v: np.ndarray, steps: int = _SQUARINGS) -> np.ndarray:
    """Displacement of exp(v) for a stationary velocity field (3, X, Y, Z), by scaling and squaring."""
    u = (v / 2.0**steps).astype(np.float32)
    grid = np.indices(v.shape[1:], dtype=np.float32)
    for _ in range(steps):
        coords = grid + u
        u = u + np.stack([ndimage.map_coordinates(c, coords, order=1, mode="nearest") for c in u])
    return u


def _bump(dist_mm: np.ndarray) -> np.ndarray:
    """1 within _BUMP_INNER_MM of a region, falling smoothly (cosine) to 0 over _BUMP_FALLOFF_MM."""
    t = np.clip((dist_mm - _BUMP_INNER_MM) / _BUMP_FALLOFF_MM, 0, 1)
    return (0.5 * (1 + np.cos(np.pi * t))).astype(np.float32)


def _signal_factors(
    atlas: np.ndarray, indices: Sequence[int], change: float, res: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Multiplicative T1w and T2w factors on the model grid for a relative T1w change inside regions.

    ``1 + change`` inside the regions (T1w) and ``1 - change`` (T2w), so a negative change moves
    the tissue towards CSF contrast in both; the edge is smoothed over about 1 mm. None when there
    is nothing to change. The factors live on the model grid, so the change moves with the tissue
    when the model is warped, and no registration can undo it.
    """
    if change == 0 or not len(indices):
        return None
    inside = np.isin(atlas, list(indices)).astype(np.float32)
    soft = np.clip(ndimage.gaussian_filter(inside, sigma=1.0 / res, mode="constant"), 0.0, 1.0)
    return 1.0 + np.float32(change) * soft, 1.0 - np.float32(change) * soft


def _region_crop(region: np.ndarray, margin: int, factor: int) -> tuple[slice, ...]:
    """Bounding box of ``region`` plus ``margin`` voxels, with starts on the coarse lattice."""
    idx = np.argwhere(region)
    lo = np.maximum(idx.min(0) - margin, 0)
    lo -= lo % factor
    hi = np.minimum(idx.max(0) + margin + 1, region.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))


def _atrophy_velocity(
    atlas: np.ndarray,
    regions: Mapping[str, tuple[int, float]],
    res: float,
    factor: int,
    coarse: tuple[int, ...],
    gains: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Velocity (coarse voxels) whose flow scales each region about its centroid by its volume change.

    Inside a region's bump the field is ``k (y - c)``, whose time-1 flow maps ``y`` to
    ``c + e^k (y - c)``; since subject(x) = model(phi(x)), the region's volume in the subject is
    ``e^(-3k)`` times the model's, so ``k = -ln(1 + change) / 3`` (times ``gains[name]``, which
    :func:`_calibrated_atrophy` fits). Overlapping bumps are averaged.
    """
    num = np.zeros((3, *coarse), np.float32)
    den = np.zeros(coarse, np.float32)
    margin = int(math.ceil((_BUMP_INNER_MM + _BUMP_FALLOFF_MM) / res)) + factor
    for name, (index, change) in regions.items():
        if change == 0:
            continue
        region = atlas == index
        if not region.any():
            continue
        k = -math.log1p(change) / 3.0 * (gains or {}).get(name, 1.0)
        centre = np.argwhere(region).mean(0) / factor
        crop = _region_crop(region, margin, factor)
        dist = ndimage.distance_transform_edt(~region[crop], sampling=res)
        weight = _bump(dist[::factor, ::factor, ::factor])
        start = [s.start // factor for s in crop]
        target = tuple(slice(a, a + n) for a, n in zip(start, weight.shape))
        pos = np.indices(weight.shape, dtype=np.float32) + np.array(start, np.float32)[:, None, None, None]
        num[(slice(None), *target)] += k * weight * (pos - centre[:, None, None, None].astype(np.float32))
        den[target] += weight
    return num / np.maximum(den, 1.0)


def _calibrated_atrophy(
    atlas: np.ndarray,
    regions: Mapping[str, tuple[int, float]],
    res: float,
    factor: int,
    coarse: tuple[int, ...],
    iterations: int = 2,
) -> np.ndarray:
    """Atrophy velocity whose per-region rates are corrected so the realised volume changes hit their targets.

    Neighbouring bumps (hippocampus, amygdala, the ventricles' temporal horns) share their
    transition zones, which dilutes each region's change; a few fixed-point steps on
    ``ln(1 + target) / ln(1 + realised)`` fix that.
    """
    active = {name: spec for name, spec in regions.items() if spec[1] != 0}
    gains = {name: 1.0 for name in active}
    if not active:
        return np.zeros((3, *coarse), np.float32)
    for _ in range(iterations):
        v = _atrophy_velocity(atlas, active, res, factor, coarse, gains)
        realised = _volume_changes(atlas, active, _exp_velocity(v), factor, res)
        for name, (_, target) in active.items():
            got = realised.get(name, 0.0)
            if abs(target) >= 0.02 and got * target > 0 and got > -0.95:
                gains[name] *= float(np.clip(math.log1p(target) / math.log1p(got), 0.5, 2.0))
    return _atrophy_velocity(atlas, active, res, factor, coarse, gains)


def _random_velocity(
    rng: np.random.Generator, coarse: tuple[int, ...], spacing_mm: float, warp_mm: float
) -> np.ndarray:
    """Smooth random velocity (coarse voxels) whose largest vector is ``warp_mm`` long."""
    v = rng.standard_normal((3, *coarse), dtype=np.float32)
    sigma = _WARP_SMOOTH_MM / spacing_mm
    v = np.stack([ndimage.gaussian_filter(c, sigma, mode="constant") for c in v])
    peak = float(np.sqrt((v**2).sum(0)).max())
    return v * np.float32(warp_mm / spacing_mm / peak) if peak > 0 and warp_mm > 0 else np.zeros_like(v)


def _rotation(angles_deg: Sequence[float]) -> np.ndarray:
    """Rotation matrix Rz @ Ry @ Rx for angles (degrees) about the x, y, z axes."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _native_grid(
    orientation: str, oblique: np.ndarray, res: float, fov_mm: Sequence[float], centre: np.ndarray
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the scan: voxel axes along ``orientation`` (e.g. PSR), tilted by ``oblique``."""
    ornt = nib.orientations.axcodes2ornt(tuple(orientation))
    perm = np.zeros((3, 3))
    for vox_axis, (world_axis, flip) in enumerate(ornt):
        perm[int(world_axis), vox_axis] = flip
    shape = tuple(int(round(fov_mm[int(world_axis)] / res)) for world_axis, _ in ornt)
    affine = np.eye(4)
    affine[:3, :3] = _rotation(oblique) @ perm * res
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.array(shape) - 1) / 2)
    return shape, affine


def _upsample(coarse: np.ndarray, factor: int, shape: Sequence[int]) -> np.ndarray:
    """Separable linear interpolation from a stride-``factor`` lattice onto every index of ``shape``.

    ``shape`` names the last three axes of ``coarse``; leading axes (vector components) are kept.
    """
    out = coarse
    lead = coarse.ndim - 3
    for axis, n in enumerate(shape, start=lead):
        if factor == 1:
            out = np.take(out, np.arange(n), axis=axis)
            continue
        i = np.arange(n)
        i0, w = i // factor, (i % factor / factor).astype(np.float32)
        i1 = np.minimum(i0 + 1, out.shape[axis] - 1)
        bshape = [1] * out.ndim
        bshape[axis] = n
        w = w.reshape(bshape)
        out = np.take(out, i0, axis=axis) * (1 - w) + np.take(out, i1, axis=axis) * w
    return out


def _volume_changes(
    atlas: np.ndarray, regions: Mapping[str, tuple[int, float]], u: np.ndarray, factor: int, res: float
) -> dict[str, float]:
    """Relative volume change of each region under phi (model space), by warping its indicator."""
    out = {}
    margin = int(math.ceil((_BUMP_INNER_MM + _BUMP_FALLOFF_MM) / res))
    for name, (index, _) in regions.items():
        region = atlas == index
        if not region.any():
            continue
        crop = _region_crop(region, margin, 1)
        x = np.indices(tuple(s.stop - s.start for s in crop), dtype=np.float32)
        x += np.array([s.start for s in crop], np.float32)[:, None, None, None]
        disp = np.stack([ndimage.map_coordinates(c, x / factor, order=1, mode="nearest") for c in u])
        warped = ndimage.map_coordinates(region.astype(np.float32), x + factor * disp, order=1)
        out[name] = float(warped.sum() / region.sum()) - 1.0
    return out
