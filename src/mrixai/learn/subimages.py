"""2D subimage sets pp1..pp5 of the tissue ablation study (Tachibana et al.).

The input is one subject's template-space **whole-head** image (the bias-corrected image with
skull, scalp and extra-parenchymal space, carried to template space by the subject's own
transform; 3D float array in RAS voxel order, axis 2 running inferior -> superior) and its tissue
segmentation ``dseg`` on the same grid (0 = not brain, 1 = GM, 2 = WM, 3 = CSF). The
segmentation covers only the brain: skull, scalp and air are label 0. The **parenchyma** is GM or
WM; everything else (CSF, skull, scalp, fat, air) is extra-parenchymal. Coordinates ``x, y`` are
voxel indices along axes 0 and 1 of an axial slice; an angle ``theta`` (degrees) is the direction
``d = (cos theta, sin theta)`` in that plane, measured from +x (towards R) to +y (towards A).

Definition, as implemented here:

1. **Slices.** Axial slices (axis 2). ``k0`` is the slice with the largest parenchyma area (the
   lowest index on a tie); the slices are ``k0, k0 - step, k0 - 2 step, ...`` while the index is
   ``> k0 - extent``, i.e. ``extent`` slices downwards from ``k0`` (inclusive), every ``step``-th.
   Indices below 0 and slices without parenchyma are dropped (:func:`select_slices`).
2. **Angles.** Per slice, ``n_angles`` directions ``(a0 + j * 360 / n_angles) mod 360`` for
   ``j = 0 .. n_angles - 1``, with a start angle ``a0`` drawn uniformly in ``[0, 360)`` from the
   ``numpy.random.Generator``, one draw per slice (30 degree steps for the study's 12).
3. **Centre and boundary.** The centre ``c`` is the centroid of the slice's parenchyma (continuous
   voxel coordinates). Along each ray ``c + r d`` the parenchyma mask is sampled at
   ``r = 0, 0.25, 0.5, ...`` (nearest voxel; points outside the image count as outside) up to the
   slice diagonal. The boundary distance ``r_b`` is the midpoint between the last sample inside
   and the sample after it: where the ray leaves the parenchyma for the last time (the outer
   cortical surface; sulci and ventricles crossed before it are ignored). A ray that never meets
   the parenchyma has ``r_b = 0``.
4. **Peripheral square** (``size`` x ``size``, axis-aligned). Its chord along the ray, the
   segment of the line ``c + r d`` inside the square when the square is centred on that line,
   is ``L = size / max(|cos theta|, |sin theta|)`` long (``size`` along an axis, ``sqrt(2) size``
   on a diagonal). The square is centred on the ray at ``r_p = r_b - L / 6``, so the chord has
   ``2 L / 3`` inside the boundary and ``L / 3`` outside: parenchyma : extra-parenchyma = 2 : 1
   along the ray.
5. **Inner square**: on the same ray, towards the centre, adjacent to the peripheral square. Its
   centre is the peripheral centre minus the offset ``L d``, whose larger component is exactly
   ``+-size`` and whose smaller one is rounded to a voxel: the two squares share (part of) an
   edge and do not overlap. (At exactly 45 degrees they meet at a corner.) The inner centre lies
   at ``r_i = r_p - L`` from the centre; where the parenchyma is narrower than
   ``7 L / 6`` along the ray (``r_i < 0``) the inner square reaches across the centroid, as an
   adjacent square on that line must.
6. **Sampling.** A square centred at the continuous point ``p`` is the integer voxel crop of rows
   ``x - size // 2 .. x - size // 2 + size - 1`` (and likewise columns) around the rounded centre
   ``(x, y) = floor(p + 0.5)``. Where the crop leaves the image it is padded with ``pad_value``
   (image) and background (dseg). The inner square's crop is ``size`` voxels from the
   peripheral one along the ray's dominant axis.
7. **Sets.** pp1 = inner squares of the head image; pp2 = peripheral squares of the head image
   (with skull, scalp and extra-parenchymal space); pp3 = pp2 with only parenchyma (GM or WM)
   kept; pp4 = pp2 with only GM kept; pp5 = pp2 with only WM kept. In pp3..pp5 every removed
   voxel (CSF, skull, scalp, air, padding) is replaced by Gaussian noise chosen so that the
   ablated square keeps the mean and variance of its pp2 square (:func:`matched_noise_fill`),
   drawn from the generator (pp3, then pp4, then pp5). Row ``i`` of every set belongs to the same
   (slice, angle).

Training balance (:func:`balance_rows`) repeats the rows of smaller groups up to the size of the
largest one, at most ``max_repeat`` copies of any row. Evaluation (:func:`aggregate_slices`)
follows the study: a slice is correct when a strict majority of its subimages is correct (a tie
counts as wrong), and a subject's score is its fraction of correct slices.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm import tqdm

log = logging.getLogger(__name__)

SETS = ("pp1", "pp2", "pp3", "pp4", "pp5")
GM, WM, CSF = 1, 2, 3
#: The parenchyma: the labels whose outer boundary places the squares.
PARENCHYMA = (GM, WM)
#: Labels kept (not replaced by noise) in each ablated set.
KEEP = {"pp3": PARENCHYMA, "pp4": (GM,), "pp5": (WM,)}
#: Sampling step (voxels) along a ray when looking for the outer boundary.
RAY_STEP = 0.25
INDEX_COLUMNS = (
    "slice", "angle", "x", "y", "x_inner", "y_inner", "brain_fraction_inner",
    "brain_fraction_peripheral", "centre_x", "centre_y", "r_boundary",
)
STORE_COLUMNS = (
    "row", "subject", "slice", "angle", "x", "y", "brain_fraction_inner",
    "brain_fraction_peripheral", "x_inner", "y_inner",
)


def _check_positive_int(name: str, value: object) -> int:
    """``value`` as an int, or a ValueError naming it when it is not an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def select_slices(brain_mask: np.ndarray, extent: int, step: int = 2) -> list[int]:
    """Axial slices ``k0, k0 - step, ... > k0 - extent`` below the largest-area slice ``k0``.

    ``brain_mask`` is the mask whose area picks the slices (:func:`extract_subimages` passes the
    parenchyma). Indices below 0 and slices with an empty mask are dropped; an empty mask gives
    ``[]``.
    """
    brain_mask = np.asarray(brain_mask)
    if brain_mask.ndim != 3:
        raise ValueError(f"brain_mask must be a 3D array, got shape {brain_mask.shape}")
    extent = _check_positive_int("extent", extent)
    step = _check_positive_int("step", step)
    area = (brain_mask > 0).sum(axis=(0, 1))
    if not area.any():
        log.warning("the mask is empty: no slices selected")
        return []
    k0 = int(np.argmax(area))
    return [k for k in range(k0, k0 - extent, -step) if k >= 0 and area[k] > 0]


def _boundary_distances(mask: np.ndarray, centre: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Distance from ``centre`` at which each ray leaves the 2D ``mask`` for the last time."""
    r = np.arange(0.0, math.hypot(*mask.shape) + 2 * RAY_STEP, RAY_STEP)
    theta = np.deg2rad(angles_deg)
    px = centre[0] + np.cos(theta)[:, None] * r[None, :]
    py = centre[1] + np.sin(theta)[:, None] * r[None, :]
    ix = np.floor(px + 0.5).astype(np.int64)
    iy = np.floor(py + 0.5).astype(np.int64)
    valid = (ix >= 0) & (ix < mask.shape[0]) & (iy >= 0) & (iy < mask.shape[1])
    inside = np.zeros(ix.shape, dtype=bool)
    inside[valid] = mask[ix[valid], iy[valid]]
    any_inside = inside.any(axis=1)
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    return np.where(any_inside, r[last] + RAY_STEP / 2, 0.0)


def _crop(plane: np.ndarray, x: int, y: int, size: int, pad_value: float = 0) -> np.ndarray:
    """The ``size`` x ``size`` square around voxel ``(x, y)`` of a 2D array, padded with ``pad_value``."""
    out = np.full((size, size), pad_value, dtype=plane.dtype)
    x0, y0 = x - size // 2, y - size // 2
    lo_x, hi_x = max(x0, 0), min(x0 + size, plane.shape[0])
    lo_y, hi_y = max(y0, 0), min(y0 + size, plane.shape[1])
    if lo_x < hi_x and lo_y < hi_y:
        out[lo_x - x0 : hi_x - x0, lo_y - y0 : hi_y - y0] = plane[lo_x:hi_x, lo_y:hi_y]
    return out


def _round(value: float) -> int:
    """Nearest integer, halves rounded up (not to even)."""
    return int(math.floor(value + 0.5))


def chord_length(angle_deg: float, size: int) -> float:
    """Length of the line through the centre of an axis-aligned ``size`` square at ``angle_deg``."""
    c, s = abs(math.cos(math.radians(angle_deg))), abs(math.sin(math.radians(angle_deg)))
    return size / max(c, s)


def _inner_offset(angle_deg: float, size: int) -> tuple[int, int]:
    """Voxel offset from the peripheral to the adjacent inner square's centre (towards the centre).

    It is ``-L d`` with ``L`` the chord length: the component along the ray's dominant axis is
    exactly ``-+size`` (the crops share an edge line), the other is rounded to a voxel and so
    never exceeds ``size`` in magnitude.
    """
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    length = chord_length(angle_deg, size)
    if abs(c) >= abs(s):
        ox, oy = math.copysign(size, c), length * s
    else:
        ox, oy = length * c, math.copysign(size, s)
    return -_round(ox), -_round(oy)


def _check_inputs(image: np.ndarray, dseg: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated float image and int segmentation."""
    image = np.asarray(image)
    dseg = np.asarray(dseg)
    if image.ndim != 3:
        raise ValueError(f"image must be a 3D array, got shape {image.shape}")
    if dseg.shape != image.shape:
        raise ValueError(f"dseg shape {dseg.shape} does not match image shape {image.shape}")
    if not np.issubdtype(image.dtype, np.number) or np.issubdtype(image.dtype, np.complexfloating):
        raise ValueError(f"image must be a real numeric array, got dtype {image.dtype}")
    if not np.issubdtype(dseg.dtype, np.integer):
        if not np.issubdtype(dseg.dtype, np.floating) or not np.array_equal(dseg, np.round(dseg)):
            raise ValueError(f"dseg must hold integer labels, got dtype {dseg.dtype} with non-integer values")
        dseg = np.round(dseg).astype(np.int16)
    if dseg.size and (dseg.min() < 0 or dseg.max() > CSF):
        raise ValueError(f"dseg labels must be 0..3 (bg, GM, WM, CSF), got range {dseg.min()}..{dseg.max()}")
    size = _check_positive_int("size", size)
    return image, dseg


def matched_noise_fill(squares: np.ndarray, kept: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace the voxels not ``kept`` by Gaussian noise that keeps each square's mean and variance.

    ``squares`` is ``(N, h, w)`` and ``kept`` a boolean array of the same shape. Take one square of
    ``n`` voxels with mean ``M`` and variance ``V`` (``ddof=0``), whose ``k`` kept voxels have mean
    ``m_k`` and variance ``v_k``. The ``r = n - k`` filled voxels keep ``M`` and ``V`` exactly when
    their sample mean and variance are

    ``m_r = (n M - k m_k) / r``,
    ``v_r = (n V - k v_k - k (m_k - M)^2 - r (m_r - M)^2) / r``

    (sums and sums of squares of the two parts add up to the square's). These are the removed
    voxels' own sample mean and variance, so a solution always exists (``v_r >= 0``) and is
    computed as such. Standard normal noise is drawn for every voxel of every square (one
    ``(N, h, w)`` draw, so the generator advances the same way whatever is kept), standardised
    over each square's removed voxels to sample mean 0 and SD 1 (``ddof=0``), and set to
    ``m_r + sqrt(v_r) z``: the ablated square then has the mean and variance of the original
    to float32 rounding. Edge cases:

    - nothing removed (``r = 0``): the square is returned unchanged;
    - everything removed (``k = 0``): pure noise with mean ``M`` and variance ``V``;
    - one removed voxel (``r = 1``): the two constraints leave it no freedom, it gets ``m_r``,
      which is its own value; with ``r = 2`` the pair is ``m_r +- sqrt(v_r)``, its own two values
      in random order. The fill is noise only where more voxels are removed;
    - a removed part of constant value (``v_r = 0``, e.g. empty space): the fill is that constant.

    Returns the filled squares as float32.
    """
    squares = np.asarray(squares)
    kept = np.asarray(kept, dtype=bool)
    if squares.ndim != 3 or kept.shape != squares.shape:
        raise ValueError(
            f"squares must be (N, h, w) and kept of the same shape, got {squares.shape} and {kept.shape}"
        )
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    n_rows, n = squares.shape[0], squares.shape[1] * squares.shape[2]
    x = squares.reshape(n_rows, n).astype(np.float64)
    removed = ~kept.reshape(n_rows, n)
    r = np.maximum(removed.sum(axis=1), 1)[:, None]
    m_r = np.where(removed, x, 0.0).sum(axis=1, keepdims=True) / r
    sd_r = np.sqrt(np.where(removed, (x - m_r) ** 2, 0.0).sum(axis=1, keepdims=True) / r)
    z = rng.standard_normal(x.shape)
    z_mean = np.where(removed, z, 0.0).sum(axis=1, keepdims=True) / r
    z_sd = np.sqrt(np.where(removed, (z - z_mean) ** 2, 0.0).sum(axis=1, keepdims=True) / r)
    # z_sd is 0 only for a single removed voxel, whose fill is then m_r.
    z = np.where(z_sd > 0, (z - z_mean) / np.where(z_sd > 0, z_sd, 1.0), 0.0)
    out = np.where(removed, m_r + sd_r * z, x)
    return out.astype(np.float32).reshape(squares.shape)


def extract_subimages(
    image: np.ndarray,
    dseg: np.ndarray,
    *,
    size: int,
    extent: int,
    step: int = 2,
    n_angles: int = 12,
    rng: np.random.Generator,
    pad_value: float = 0.0,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The subimage sets pp1..pp5 of one subject (see the module docstring for the rules).

    ``image`` is the whole-head image, ``dseg`` its tissue labels; ``pad_value`` fills the parts
    of a square outside the image (the image's value for empty space). Returns
    ``{set: float32 array (n_rows, size, size)}`` and an index with one row per (slice, angle),
    shared by all sets: ``slice, angle`` (degrees), ``x, y`` (peripheral square centre voxel,
    used by pp2..pp5), ``x_inner, y_inner`` (inner square centre voxel, pp1),
    ``brain_fraction_inner, brain_fraction_peripheral`` (fraction of each square's voxels in the
    parenchyma, padding counted as outside), ``centre_x, centre_y`` (parenchyma centroid) and
    ``r_boundary`` (distance from the centroid to the parenchyma's outer boundary along the ray).
    """
    image, dseg = _check_inputs(image, dseg, size)
    n_angles = _check_positive_int("n_angles", n_angles)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if not np.isfinite(pad_value):
        raise ValueError(f"pad_value must be a finite number, got {pad_value!r}")
    parenchyma = np.isin(dseg, PARENCHYMA)
    slices = select_slices(parenchyma, extent, step)
    crops: dict[str, list[np.ndarray]] = {"pp1": [], "pp2": [], "seg": []}
    rows: list[dict[str, float | int]] = []
    for k in slices:
        mask = parenchyma[:, :, k]
        plane = image[:, :, k].astype(np.float32)
        labels = dseg[:, :, k]
        centre = np.argwhere(mask).mean(axis=0)
        start = rng.uniform(0.0, 360.0)
        angles = (start + np.arange(n_angles) * (360.0 / n_angles)) % 360.0
        r_b = _boundary_distances(mask, centre, angles)
        for angle, rb in zip(angles, r_b):
            d = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
            xp, yp = (_round(v) for v in centre + (rb - chord_length(angle, size) / 6) * d)
            ox, oy = _inner_offset(angle, size)
            xi, yi = xp + ox, yp + oy
            seg_p = _crop(labels, xp, yp, size)
            crops["pp1"].append(_crop(plane, xi, yi, size, pad_value))
            crops["pp2"].append(_crop(plane, xp, yp, size, pad_value))
            crops["seg"].append(seg_p)
            rows.append({
                "slice": k, "angle": float(angle), "x": xp, "y": yp, "x_inner": xi, "y_inner": yi,
                "brain_fraction_inner": float(np.isin(_crop(labels, xi, yi, size), PARENCHYMA).mean()),
                "brain_fraction_peripheral": float(np.isin(seg_p, PARENCHYMA).mean()),
                "centre_x": float(centre[0]), "centre_y": float(centre[1]), "r_boundary": float(rb),
            })
    empty = np.zeros((0, size, size), dtype=np.float32)
    pp1 = np.stack(crops["pp1"]).astype(np.float32) if rows else empty
    pp2 = np.stack(crops["pp2"]).astype(np.float32) if rows else empty
    seg = np.stack(crops["seg"]) if rows else np.zeros((0, size, size), dtype=dseg.dtype)
    sets = {"pp1": pp1, "pp2": pp2}
    for name, keep in KEEP.items():
        sets[name] = matched_noise_fill(pp2, np.isin(seg, keep), rng)
    index = pd.DataFrame(rows, columns=list(INDEX_COLUMNS))
    log.debug("%d slices x %d angles = %d subimages per set", len(slices), n_angles, len(index))
    return {name: sets[name] for name in SETS}, index


def subject_rng(seed: int, subject_index: int) -> np.random.Generator:
    """The generator of subject number ``subject_index`` in a store built with ``seed``."""
    return np.random.default_rng([int(seed), int(subject_index)])


def _load_ras(path: str | Path) -> np.ndarray:
    """A NIfTI's data in RAS voxel order (first volume of a 4D image)."""
    img = nib.as_closest_canonical(nib.load(str(path)))
    data = np.asanyarray(img.dataobj)
    return data[..., 0] if data.ndim == 4 else data


def _load_dseg(path: str | Path) -> np.ndarray:
    """A tissue segmentation in RAS voxel order, as int16 labels."""
    return np.round(_load_ras(path)).astype(np.int16)


def normalise_head(image: np.ndarray, brain: np.ndarray, path: str | Path = "image") -> tuple[np.ndarray, float]:
    """The whole-head ``image`` z-scored with the brain's statistics, and the value of empty space.

    Every voxel (brain, skull, scalp, air) becomes ``(value - mean) / sd``, with the mean and SD
    (``ddof=0``) of the voxels inside ``brain`` (the tissue map's brain, ``dseg > 0``): scans
    from different scanners or intensity scales compare inside the brain, and the head around it
    keeps its contrast relative to the brain. The second value, ``(0 - mean) / sd``, is where an
    image value 0 (the empty space a warp leaves outside the scan) lands; squares that reach
    outside the grid are padded with it. ``path`` only names the image in errors.
    """
    image = np.asarray(image)
    if image.shape != brain.shape:
        raise ValueError(f"{path}: dseg shape {brain.shape} does not match image shape {image.shape}")
    if not brain.any():
        raise ValueError(f"{path}: its tissue map has no brain voxels")
    if not np.isfinite(image).all():
        raise ValueError(f"{path}: the image holds NaN or infinite values")
    values = image[brain].astype(np.float64)
    mean, sd = float(values.mean()), float(values.std())
    if sd <= 0:
        raise ValueError(f"{path}: the image is constant inside the brain ({mean:g}), cannot normalise it")
    out = ((image.astype(np.float64) - mean) / sd).astype(np.float32)
    return out, -mean / sd


def build_subimage_store(
    subjects: Sequence[str],
    images: Sequence[str | Path],
    dsegs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    size: int,
    extent: int,
    step: int,
    n_angles: int,
    seed: int,
) -> None:
    """Write ``out_dir/set-{pp}.npy`` (float32, ``(N, size, size)``) and ``out_dir/index.tsv``.

    ``images`` are the subjects' template-space whole-head (bias-corrected) images, ``dsegs`` their
    template-space tissue maps. Each head is normalised by :func:`normalise_head` (z-scored with
    its brain's mean and SD) and cut by :func:`extract_subimages` with :func:`subject_rng`
    ``(seed, i)`` for subject ``i``;
    its rows follow those of subject ``i - 1``. ``index.tsv`` has the columns ``row, subject,
    slice, angle, x, y`` (peripheral square centre), ``brain_fraction_inner,
    brain_fraction_peripheral, x_inner, y_inner``. Everything is written into
    ``.<name>.partial`` beside ``out_dir`` (a stale one is removed first), which then replaces
    ``out_dir``.
    """
    subjects = [str(s) for s in subjects]
    if not subjects or len(images) != len(subjects) or len(dsegs) != len(subjects):
        raise ValueError(
            f"need one image and one dseg per subject, got {len(subjects)} subjects, "
            f"{len(images)} images and {len(dsegs)} dsegs"
        )
    if len(set(subjects)) != len(subjects):
        raise ValueError(f"subjects must be unique, got {subjects!r}")
    for name, value in (("size", size), ("extent", extent), ("step", step), ("n_angles", n_angles)):
        _check_positive_int(name, value)
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.partial"
    # First pass: the number of rows per subject, which only depends on the masks.
    counts = [len(select_slices(np.isin(_load_dseg(p), PARENCHYMA), extent, step)) * n_angles for p in dsegs]
    total = sum(counts)
    if total == 0:
        raise ValueError(f"no subimages: no tissue map of the {len(subjects)} subjects holds GM or WM")
    if tmp.exists():
        log.info("removing stale %s", tmp)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        stores = {
            name: np.lib.format.open_memmap(
                tmp / f"set-{name}.npy", mode="w+", dtype=np.float32, shape=(total, size, size)
            )
            for name in SETS
        }
        parts = []
        row = 0
        progress = tqdm(list(zip(subjects, images, dsegs)), desc="subimages", unit="subject")
        for i, (subject, image_path, dseg_path) in enumerate(progress):
            image = _load_ras(image_path).astype(np.float32)
            dseg = _load_dseg(dseg_path)
            image, empty = normalise_head(image, dseg > 0, image_path)
            sets, index = extract_subimages(
                image, dseg, size=size, extent=extent, step=step, n_angles=n_angles,
                rng=subject_rng(seed, i), pad_value=empty,
            )
            if len(index) != counts[i]:
                raise RuntimeError(f"{subject}: expected {counts[i]} subimages, got {len(index)}")
            for name in SETS:
                stores[name][row : row + len(index)] = sets[name]
            index.insert(0, "subject", subject)
            index.insert(0, "row", np.arange(row, row + len(index)))
            parts.append(index)
            log.info("%s: %d slices, %d subimages per set", subject, index["slice"].nunique(), len(index))
            row += len(index)
        for store in stores.values():
            store.flush()
        del stores
        table = pd.concat(parts, ignore_index=True)[list(STORE_COLUMNS)]
        table.to_csv(tmp / "index.tsv", sep="\t", index=False)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log.info(
        "wrote %d subimages per set (%s) of %d subjects, size %d, to %s",
        total, ", ".join(SETS), len(subjects), size, out_dir,
    )


def balance_rows(groups: Sequence, max_repeat: int = 4, rng: np.random.Generator | None = None) -> np.ndarray:
    """Row indices that repeat the rows of smaller groups until every group is as large as the largest.

    A group of ``n`` rows short of the largest count ``m`` gets ``m // n`` whole copies of its
    rows plus a random subset (without replacement) of ``m % n`` rows, but no row appears more
    than ``max_repeat`` times in all: the group is capped at ``n * max_repeat`` rows, and a
    warning is logged when that leaves the groups unequal. ``rng`` defaults to
    ``numpy.random.default_rng(0)`` so the result is reproducible. Returns the sorted indices.
    """
    max_repeat = _check_positive_int("max_repeat", max_repeat)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator or None, got {type(rng).__name__}")
    labels = pd.Series(list(groups), dtype=object)
    if labels.isna().any():
        raise ValueError(f"groups hold missing labels at rows {np.flatnonzero(labels.isna()).tolist()[:10]}")
    if labels.empty:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng(0) if rng is None else rng
    codes, uniques = pd.factorize(labels)
    counts = np.bincount(codes)
    target = int(counts.max())
    picked = []
    for code, label in enumerate(uniques):
        rows = np.flatnonzero(codes == code)
        want = min(target, len(rows) * max_repeat)
        whole, rest = divmod(want, len(rows))
        picked.append(np.tile(rows, whole))
        if rest:
            picked.append(rng.choice(rows, size=rest, replace=False))
        if want != len(rows):
            log.info(
                "group %r: %d rows -> %d (%d whole copies + %d drawn)", label, len(rows), want, whole, rest
            )
        if want < target:
            log.warning(
                "group %r: capped at %d rows (max_repeat=%d), the largest group has %d",
                label, want, max_repeat, target,
            )
    return np.sort(np.concatenate(picked)).astype(np.int64)


def aggregate_slices(df: pd.DataFrame) -> pd.DataFrame:
    """Per-subject fraction of slices whose subimages are correct by strict majority (ties wrong).

    ``df`` has one row per subimage with columns ``subject, slice, correct`` (bool). Returns
    ``subject, n_slices, n_correct_slices, fraction_correct``, one row per subject, sorted.
    """
    missing = {"subject", "slice", "correct"} - set(df.columns)
    if missing:
        raise ValueError(f"aggregate_slices needs columns subject, slice, correct; missing {sorted(missing)}")
    correct = df["correct"]
    if correct.isna().any() or not correct.isin([True, False]).all():
        raise ValueError(f"column 'correct' must be boolean, got values {sorted(map(repr, correct.unique()))[:5]}")
    votes = (
        df.assign(correct=correct.astype(bool))
        .groupby(["subject", "slice"], sort=True)["correct"]
        .agg(n="size", k="sum")
        .reset_index()
    )
    votes["slice_correct"] = 2 * votes["k"] > votes["n"]
    out = (
        votes.groupby("subject", sort=True)["slice_correct"]
        .agg(n_slices="size", n_correct_slices="sum")
        .reset_index()
    )
    out["n_slices"] = out["n_slices"].astype(np.int64)
    out["n_correct_slices"] = out["n_correct_slices"].astype(np.int64)
    out["fraction_correct"] = out["n_correct_slices"] / out["n_slices"]
    ties = int((2 * votes["k"] == votes["n"]).sum())
    log.info(
        "%d subimages -> %d slices of %d subjects (%d ties counted wrong)", len(df), len(votes), len(out), ties
    )
    return out[["subject", "n_slices", "n_correct_slices", "fraction_correct"]]
