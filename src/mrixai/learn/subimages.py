"""2D subimage sets pp1..pp5 of the tissue ablation study (Tachibana et al.).

The input is one subject's template-space, skull-stripped brain image (3D float array in RAS
voxel order, axis 2 running inferior -> superior) and its tissue segmentation ``dseg`` on the
same grid (0 = background, 1 = GM, 2 = WM, 3 = CSF). The brain mask is ``dseg > 0``; the
parenchyma is GM or WM. Coordinates ``x, y`` are voxel indices along axes 0 and 1 of an axial
slice; an angle ``theta`` (degrees) is the direction ``(cos theta, sin theta)`` in that plane,
measured from +x (towards R) to +y (towards A).

Definition, as implemented here:

1. **Slices.** Axial slices (axis 2). ``k0`` is the slice with the largest brain-mask area (the
   lowest index on a tie); the slices are ``k0, k0 - step, k0 - 2 step, ...`` while the index is
   ``> k0 - extent``, i.e. ``extent`` slices downwards from ``k0`` (inclusive), every ``step``-th.
   Indices below 0 and slices whose mask is empty are dropped (:func:`select_slices`).
2. **Angles.** Per slice, ``n_angles`` directions ``(a0 + j * 360 / n_angles) mod 360`` for
   ``j = 0 .. n_angles - 1``, with a start angle ``a0`` drawn uniformly in ``[0, 360)`` from the
   ``numpy.random.Generator``, one draw per slice.
3. **Centre and boundary.** The centre ``c`` is the centroid of the slice's brain mask (continuous
   voxel coordinates). Along each ray ``c + r d`` the mask is sampled at ``r = 0, 0.25, 0.5, ...``
   (nearest voxel; points outside the image count as outside the mask) up to the slice diagonal.
   The boundary distance ``r_b`` is the midpoint between the last sample inside the mask and the
   sample after it, i.e. the point where the ray leaves the mask for the last time (the outer
   boundary; holes and concavities crossed before it are ignored). A ray that never meets the
   mask has ``r_b = 0``.
4. **Peripheral square** (``size`` x ``size``): centred on the ray at ``r_p = r_b - size / 6``.
   The square is axis-aligned (not rotated) and its extent along the ray is approximated by
   ``size / 2`` on each side of its centre, so the ray segment ``[r_p - size/2, r_p + size/2]``
   has ``2/3 size`` inside the boundary and ``1/3 size`` outside (parenchyma side : outside =
   2 : 1). The approximation is exact for rays along the axes; for an oblique ray the true chord
   of the square through its centre is longer (up to ``sqrt(2) size`` at 45 degrees), so the
   ratio along the full chord is smaller (about 1.6 : 1 at 45 degrees), while the ratio over the
   central ``size``-long segment of the ray stays 2 : 1.
5. **Inner square**: centred on the same ray at ``r_i = max(0, r_b - size/2 - size/6)``
   ``= max(0, r_b - 2 size / 3)``. Its (approximate) extent along the ray then ends ``size / 6``
   inside the boundary, mirroring the peripheral square, which reaches ``size / 6`` outside it;
   on slices where ``r_b < 2 size / 3`` it sits on the centroid.
6. **Sampling.** A square centred at the continuous point ``p`` is the integer voxel crop of rows
   ``x - size // 2 .. x - size // 2 + size - 1`` (and likewise columns) around the rounded centre
   ``(x, y) = floor(p + 0.5)``, padded with zeros (image) / background (dseg) where it leaves the
   slice. For even ``size`` the crop's geometric centre is half a voxel below ``(x, y)``.
7. **Sets.** pp1 = inner squares of the image; pp2 = peripheral squares of the image; pp3 = pp2
   with only parenchyma (GM or WM) kept; pp4 = pp2 with only GM kept; pp5 = pp2 with only WM
   kept. In pp3..pp5 every removed voxel (including background and padding) is replaced by
   Gaussian noise whose mean and standard deviation (``ddof=0``) are those of all voxels of that
   pp2 square, drawn from the generator (pp3, then pp4, then pp5). Row ``i`` of every set belongs
   to the same (slice, angle).

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
#: Labels kept (not replaced by noise) in each ablated set.
KEEP = {"pp3": (GM, WM), "pp4": (GM,), "pp5": (WM,)}
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

    Indices below 0 and slices with an empty mask are dropped; an empty mask gives ``[]``.
    """
    brain_mask = np.asarray(brain_mask)
    if brain_mask.ndim != 3:
        raise ValueError(f"brain_mask must be a 3D array, got shape {brain_mask.shape}")
    extent = _check_positive_int("extent", extent)
    step = _check_positive_int("step", step)
    area = (brain_mask > 0).sum(axis=(0, 1))
    if not area.any():
        log.warning("the brain mask is empty: no slices selected")
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


def _crop(plane: np.ndarray, x: int, y: int, size: int) -> np.ndarray:
    """The ``size`` x ``size`` square around voxel ``(x, y)`` of a 2D array, zero-padded."""
    out = np.zeros((size, size), dtype=plane.dtype)
    x0, y0 = x - size // 2, y - size // 2
    lo_x, hi_x = max(x0, 0), min(x0 + size, plane.shape[0])
    lo_y, hi_y = max(y0, 0), min(y0 + size, plane.shape[1])
    if lo_x < hi_x and lo_y < hi_y:
        out[lo_x - x0 : hi_x - x0, lo_y - y0 : hi_y - y0] = plane[lo_x:hi_x, lo_y:hi_y]
    return out


def _round(value: float) -> int:
    """Nearest integer, halves rounded up (not to even)."""
    return int(math.floor(value + 0.5))


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


def _ablate(pp2: np.ndarray, seg: np.ndarray, keep: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """``pp2`` with voxels whose label is not in ``keep`` replaced by per-square Gaussian noise."""
    values = pp2.astype(np.float64)
    mean = values.mean(axis=(1, 2), keepdims=True)
    std = values.std(axis=(1, 2), keepdims=True)
    noise = rng.normal(size=pp2.shape) * std + mean
    return np.where(np.isin(seg, keep), pp2, noise).astype(np.float32)


def extract_subimages(
    image: np.ndarray,
    dseg: np.ndarray,
    *,
    size: int,
    extent: int,
    step: int = 2,
    n_angles: int = 12,
    rng: np.random.Generator,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """The subimage sets pp1..pp5 of one subject (see the module docstring for the rules).

    Returns ``{set: float32 array (n_rows, size, size)}`` and an index with one row per
    (slice, angle), shared by all sets: ``slice, angle`` (degrees), ``x, y`` (peripheral square
    centre voxel, used by pp2..pp5), ``x_inner, y_inner`` (inner square centre voxel, pp1),
    ``brain_fraction_inner, brain_fraction_peripheral`` (fraction of each square's voxels in the
    brain mask, padding counted as outside), ``centre_x, centre_y`` (mask centroid) and
    ``r_boundary`` (distance from the centroid to the outer boundary along the ray).
    """
    image, dseg = _check_inputs(image, dseg, size)
    n_angles = _check_positive_int("n_angles", n_angles)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    brain = dseg > 0
    slices = select_slices(brain, extent, step)
    crops: dict[str, list[np.ndarray]] = {"pp1": [], "pp2": [], "seg": []}
    rows: list[dict[str, float | int]] = []
    for k in slices:
        mask = brain[:, :, k]
        plane = image[:, :, k].astype(np.float32)
        labels = dseg[:, :, k]
        centre = np.argwhere(mask).mean(axis=0)
        start = rng.uniform(0.0, 360.0)
        angles = (start + np.arange(n_angles) * (360.0 / n_angles)) % 360.0
        r_b = _boundary_distances(mask, centre, angles)
        for angle, rb in zip(angles, r_b):
            d = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
            xp, yp = (_round(v) for v in centre + (rb - size / 6) * d)
            xi, yi = (_round(v) for v in centre + max(0.0, rb - 2 * size / 3) * d)
            seg_p = _crop(labels, xp, yp, size)
            crops["pp1"].append(_crop(plane, xi, yi, size))
            crops["pp2"].append(_crop(plane, xp, yp, size))
            crops["seg"].append(seg_p)
            rows.append({
                "slice": k, "angle": float(angle), "x": xp, "y": yp, "x_inner": xi, "y_inner": yi,
                "brain_fraction_inner": float((_crop(labels, xi, yi, size) > 0).mean()),
                "brain_fraction_peripheral": float((seg_p > 0).mean()),
                "centre_x": float(centre[0]), "centre_y": float(centre[1]), "r_boundary": float(rb),
            })
    empty = np.zeros((0, size, size), dtype=np.float32)
    pp1 = np.stack(crops["pp1"]).astype(np.float32) if rows else empty
    pp2 = np.stack(crops["pp2"]).astype(np.float32) if rows else empty
    seg = np.stack(crops["seg"]) if rows else np.zeros((0, size, size), dtype=dseg.dtype)
    sets = {"pp1": pp1, "pp2": pp2}
    for name, keep in KEEP.items():
        sets[name] = _ablate(pp2, seg, keep, rng)
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


def _zscore_in_brain(image: np.ndarray, brain: np.ndarray, path: str | Path) -> np.ndarray:
    """Z-score ``image`` inside ``brain``; outside it is set to 0."""
    if image.shape != brain.shape:
        raise ValueError(f"{path}: dseg shape {brain.shape} does not match image shape {image.shape}")
    if not brain.any():
        raise ValueError(f"{path}: its tissue map has no brain voxels")
    values = image[brain]
    out = np.zeros_like(image, dtype=np.float32)
    out[brain] = (values - values.mean()) / max(float(values.std()), 1e-6)
    return out


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

    Subject ``i`` is processed by :func:`extract_subimages` with :func:`subject_rng` ``(seed, i)``;
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
    counts = [len(select_slices(_load_dseg(p) > 0, extent, step)) * n_angles for p in dsegs]
    total = sum(counts)
    if total == 0:
        raise ValueError(f"no subimages: every brain mask of {len(subjects)} subjects is empty")
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
            # Intensities are z-scored inside the brain (per subject) so that scanners and
            # bias-corrected scales compare; the background stays 0.
            image = _zscore_in_brain(image, dseg > 0, image_path)
            sets, index = extract_subimages(
                image, dseg, size=size, extent=extent, step=step, n_angles=n_angles, rng=subject_rng(seed, i)
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
