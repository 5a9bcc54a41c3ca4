"""Compact sample stores: one memory-mapped ``.npy`` array per sample family plus an index table.

A volume store holds every unit's template-space brain image of one registration arm, cropped or
padded (centred) to ``shape``, block-averaged by ``downsample``, normalised inside the brain and
optionally set to 0 outside the template's brain mask (``mask``).
Its JSON sidecar records the crop offset and the affine of the sample grid, so maps computed on
samples (attributions) can be written back as NIfTI in template space. A patch store cuts every
volume into 3D patches on a fixed grid (``size``, ``stride``), indexed by position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from tqdm import tqdm

from mrixai.grid import block_mean, crop_offset, crop_or_pad, on_sample_grid, sample_grid_affine  # noqa: F401 (re-exported)
from mrixai.io import atomic_path
from mrixai.learn.labels import unit_subject

log = logging.getLogger(__name__)

NORMALISATIONS = ("zscore", "minmax")
# Warn when more of a subject's brain than this lies outside the template mask. A SyN-registered
# default-cohort brain has 8-9 % there (its skull-stripping mask keeps a rim of CSF the template's
# does not); a failed registration leaves far more.
MAX_OUTSIDE_MASK = 0.2


def _check_shape(shape: Sequence[int], downsample: int) -> tuple[int, int, int]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"volume shape must be three positive integers, got {shape!r}")
    if not isinstance(downsample, int) or downsample < 1:
        raise ValueError(f"downsample must be an integer >= 1, got {downsample!r}")
    if any(s % downsample for s in shape):
        raise ValueError(f"every edge of shape {shape} must be a multiple of downsample={downsample}")
    return shape  # type: ignore[return-value]


def normalise(data: np.ndarray, method: str) -> np.ndarray:
    """Normalise intensities inside the brain (voxels > 0); the background stays 0."""
    if method not in NORMALISATIONS:
        raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {method!r}")
    brain = data > 0
    if not brain.any():
        raise ValueError("the image has no brain voxels (all <= 0)")
    values = data[brain]
    out = np.zeros_like(data, dtype=np.float32)
    if method == "zscore":
        out[brain] = (values - values.mean()) / max(float(values.std()), 1e-6)
    else:
        lo, hi = np.percentile(values, [0.5, 99.5])
        out[brain] = np.clip((values - lo) / max(hi - lo, 1e-6), 0, 1)
    return out


def volume_sample(box: np.ndarray, downsample: int, normalisation: str, keep: np.ndarray | None = None) -> np.ndarray:
    """One sample from a template-grid box (already cropped/padded): block average, normalise, mask.

    The volume store and prediction on new subjects (:mod:`mrixai.learn.predict`) both build
    samples with this, so a subject gets the same sample either way.
    """
    sample = normalise(block_mean(np.asarray(box, dtype=np.float32), downsample), normalisation)
    return sample if keep is None else np.where(keep, sample, 0.0).astype(np.float32)


def mask_keep(mask: str | Path, template_shape: Sequence[int], template_affine: np.ndarray,
              shape: Sequence[int], offset: Sequence[int], downsample: int) -> np.ndarray:
    """Sample voxels kept by a template-grid brain mask: at least half of the voxel lies in it."""
    mask_img = nib.load(str(mask))
    if tuple(mask_img.shape[:3]) != tuple(template_shape) or not np.allclose(mask_img.affine, template_affine, atol=1e-3):
        raise ValueError(f"{mask}: grid {mask_img.shape} differs from the template grid {tuple(template_shape)}")
    keep = on_sample_grid(np.asarray(mask_img.dataobj) > 0, shape, offset, downsample) >= 0.5
    if not keep.any():
        raise ValueError(f"{mask}: the mask is empty on the sample grid")
    return keep


def sample_grid_record(store_json: str | Path) -> dict:
    """Everything needed to rebuild a volume store's samples from template-space images.

    The store's JSON sidecar (crop box, block averaging, normalisation, template grid, sample-grid
    affine) plus, for a masked store, the kept sample voxels (read from the mask it names), so the
    record stands alone: a checkpoint carrying it predicts without the store or the mask file.
    """
    path = Path(store_json)
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read the volume store sidecar ({err})") from err
    keys = ("arm", "shape", "grid", "offset", "downsample", "normalisation", "template_shape", "template_affine", "affine")
    missing = [k for k in keys if k not in meta]
    if missing:
        raise ValueError(f"{path}: the volume store sidecar lacks {missing}")
    record = {k: meta[k] for k in keys}
    record["keep"] = None
    if meta.get("mask"):
        record["keep"] = mask_keep(meta["mask"], meta["template_shape"], np.asarray(meta["template_affine"]),
                                   meta["shape"], meta["offset"], int(meta["downsample"]))
    return record


def build_volume_store(
    units: Sequence[str],
    images: Sequence[str | Path],
    out_npy: str | Path,
    out_tsv: str | Path,
    out_json: str | Path,
    *,
    arm: str,
    shape: Sequence[int],
    downsample: int = 1,
    normalisation: str = "zscore",
    mask: str | Path | None = None,
) -> None:
    """Write the volume store of one arm (units x sample grid, float32) and its index.

    With ``mask`` (a binary image on the images' grid, e.g. the template brain mask) every sample
    is set to 0 (the brain mean after z-scoring) where less than half of the sample voxel lies in
    the mask, after normalisation over the subject's own brain. All units then share one brain
    outline, with no intensity step at it: the edge of each subject's own skull-stripping mask,
    which differs between subjects in ways unrelated to the groups, is not left for a CNN to use.
    (Masking before the block average and normalisation instead leaves a rim of dim, partly
    masked voxels that z-scoring turns strongly negative, which a CNN can use.) Meant for
    registered arms only (an unregistered brain does not sit inside the template's mask).
    """
    if len(units) != len(images) or not units:
        raise ValueError(f"need one image per unit, got {len(units)} units and {len(images)} images")
    shape = _check_shape(shape, downsample)
    ref = nib.load(str(images[0]))
    offset = crop_offset(ref.shape[:3], shape)
    grid = tuple(s // downsample for s in shape)
    keep, outside = None, []
    if mask is not None:
        keep = mask_keep(mask, ref.shape[:3], ref.affine, shape, offset, downsample)
        inside = np.asarray(nib.load(str(mask)).dataobj) > 0
    with atomic_path(out_npy) as tmp:
        store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(units), *grid))
        for i, (unit, path) in enumerate(tqdm(list(zip(units, images)), desc=f"volumes reg-{arm}", unit="vol")):
            img = nib.load(str(path))
            if img.shape[:3] != ref.shape[:3] or not np.allclose(img.affine, ref.affine, atol=1e-3):
                raise ValueError(
                    f"{path}: grid {img.shape} differs from the template grid {ref.shape} of {images[0]}"
                )
            data = np.asarray(img.dataobj, dtype=np.float32)
            if keep is not None:
                outside.append(float((data[~inside] > 0).sum()) / max(1, (data > 0).sum()))
                if outside[-1] > MAX_OUTSIDE_MASK:
                    log.warning("%s: %.1f%% of the brain voxels lie outside the mask %s (misregistered?)",
                                path, 100 * outside[-1], mask)
            box = crop_or_pad(data, shape, offset)
            lost = float(data[data > 0].size - (box > 0).sum()) / max(1, (data > 0).sum())
            if lost > 0.01:
                log.warning("%s: the %s crop cuts %.1f%% of the brain voxels", path, shape, 100 * lost)
            store[i] = volume_sample(box, downsample, normalisation, keep)
        store.flush()
        del store
    if outside:
        log.info("brain voxels outside the mask %s: median %.1f%%, largest %.1f%%", mask,
                 100 * float(np.median(outside)), 100 * max(outside))
    index = pd.DataFrame(
        {"row": range(len(units)), "unit": list(units), "subject": [unit_subject(u) for u in units], "arm": arm}
    )
    with atomic_path(out_tsv) as tmp:
        index.to_csv(tmp, sep="\t", index=False)
    meta = {
        "arm": arm,
        "shape": list(shape),
        "grid": list(grid),
        "offset": list(offset),
        "downsample": downsample,
        "normalisation": normalisation,
        "mask": None if mask is None else str(mask),
        "template_shape": list(ref.shape[:3]),
        "template_affine": ref.affine.tolist(),
        "affine": sample_grid_affine(ref.affine, offset, downsample).tolist(),
    }
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    log.info("wrote %d volumes of %s (reg-%s, %s%s) to %s", len(units), grid, arm, normalisation,
             "" if mask is None else f", inside {mask}", out_npy)


def patch_positions(grid: Sequence[int], size: int, stride: int) -> list[tuple[int, int, int]]:
    """Corner positions of patches of ``size`` every ``stride`` voxels that fit inside ``grid``."""
    if size < 1 or stride < 1 or size > min(grid):
        raise ValueError(f"patch size {size} / stride {stride} do not fit the sample grid {tuple(grid)}")
    axes = [range(0, g - size + 1, stride) for g in grid]
    return [(x, y, z) for x in axes[0] for y in axes[1] for z in axes[2]]


def build_patch_store(
    volume_npy: str | Path,
    volume_tsv: str | Path,
    out_npy: str | Path,
    out_tsv: str | Path,
    *,
    size: int,
    stride: int,
    min_brain_fraction: float = 0.0,
) -> None:
    """Cut every volume of a volume store into 3D patches on one fixed grid of positions.

    Positions whose patch holds less than ``min_brain_fraction`` brain (non-zero) voxels in every
    volume are dropped, the same ones for all units, so a position means the same place throughout.
    """
    volumes = np.load(volume_npy, mmap_mode="r")
    index = pd.read_csv(volume_tsv, sep="\t", dtype={"unit": str, "subject": str})
    positions = patch_positions(volumes.shape[1:], size, stride)
    brain = np.asarray(volumes != 0).any(axis=0)
    keep = [p for p in positions if brain[p[0] : p[0] + size, p[1] : p[1] + size, p[2] : p[2] + size].mean() >= min_brain_fraction]
    if not keep:
        raise ValueError(f"no patch position holds a brain fraction >= {min_brain_fraction}")
    rows = []
    with atomic_path(out_npy) as tmp:
        store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(index) * len(keep), size, size, size))
        r = 0
        for rec in tqdm(list(index.itertuples(index=False)), desc="patches", unit="vol"):
            vol = np.asarray(volumes[rec.row])
            for k, (x, y, z) in enumerate(keep):
                store[r] = vol[x : x + size, y : y + size, z : z + size]
                rows.append({"row": r, "unit": rec.unit, "subject": rec.subject, "arm": rec.arm,
                             "position": k, "x": x, "y": y, "z": z})
                r += 1
        store.flush()
        del store
    with atomic_path(out_tsv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, sep="\t", index=False)
    log.info("wrote %d patches (%d positions x %d units, size %d, stride %d)", len(rows), len(keep), len(index), size, stride)
