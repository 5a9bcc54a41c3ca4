"""Native-space regional volumes: the template atlas warped into a subject (antspyx).

The atlas goes through the inverse of the subject's registration with nearest-label
interpolation; per region we take the label volume and the grey-matter volume (the native GM
probability summed inside the label). The neurobiological check (:mod:`mrixai.explain.neuro`)
correlates these volumes with the relevance CNNs give the same regions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai.explain.regions import read_label_table, region_columns

log = logging.getLogger(__name__)


def native_region_volumes(
    atlas_nii: str | Path,
    labels_tsv: str | Path,
    reference_nii: str | Path,
    transforms: Sequence[str],
    gm_probseg_nii: str | Path,
    regions: Sequence[str] | None = None,
    merge_hemispheres: bool = True,
    whichtoinvert: Sequence[bool] | None = None,
) -> pd.DataFrame:
    """Label and grey-matter volume (ml) of atlas regions in a subject's native space.

    The template atlas is resampled onto ``reference_nii`` (the subject's native grid) with
    ``ants.apply_transforms(fixed=reference, moving=atlas, transformlist=transforms,
    whichtoinvert=whichtoinvert, interpolator="genericLabel")``; ``transforms`` must map native
    points to template points (ANTs applies the list last-first), e.g. for a SyN arm
    ``[affine.mat, inverse_warp.nii.gz]`` with ``whichtoinvert=[True, False]``. Per region:
    ``label_ml`` = voxel count x voxel volume, ``gm_ml`` = sum of the native GM probability inside
    the label x voxel volume. ``regions`` (names after merging) defaults to all regions of the table
    present in the atlas.
    """
    import ants

    if not transforms:
        raise ValueError("transforms is empty")
    for path in [atlas_nii, labels_tsv, reference_nii, gm_probseg_nii, *transforms]:
        if not Path(path).exists():
            raise ValueError(f"input file {path} does not exist")
    if whichtoinvert is not None:
        whichtoinvert = [bool(w) for w in whichtoinvert]
        if len(whichtoinvert) != len(transforms):
            raise ValueError(f"whichtoinvert {whichtoinvert} must have one entry per transform {list(transforms)}")
    table = read_label_table(labels_tsv)
    names, column_of_label = region_columns(table, merge_hemispheres)

    reference = ants.image_read(str(reference_nii))
    atlas = ants.image_read(str(atlas_nii))
    gm = ants.image_read(str(gm_probseg_nii))
    if gm.shape != reference.shape or not np.allclose(gm.spacing, reference.spacing, atol=1e-4):
        raise ValueError(
            f"{gm_probseg_nii}: grid {gm.shape} / {gm.spacing} differs from the reference "
            f"{reference_nii}: {reference.shape} / {reference.spacing}"
        )
    template_labels = np.rint(atlas.numpy()).astype(np.int64)
    present_cols = {column_of_label[i] for i in np.unique(template_labels) if i in column_of_label}
    if regions is None:
        wanted = [n for c, n in enumerate(names) if c in present_cols]
    else:
        unknown = [r for r in regions if r not in names]
        if unknown:
            raise ValueError(f"unknown regions {unknown}; valid (merge_hemispheres={merge_hemispheres}): {names}")
        wanted = list(dict.fromkeys(regions))

    warped = ants.apply_transforms(
        fixed=reference, moving=atlas, transformlist=[str(t) for t in transforms],
        interpolator="genericLabel", whichtoinvert=whichtoinvert,
    )
    labels = np.rint(warped.numpy()).astype(np.int64)
    gm_prob = np.clip(gm.numpy().astype(np.float64), 0.0, 1.0)
    voxel_ml = float(np.prod(reference.spacing)) / 1000.0

    lut = np.full(max(int(labels.max(initial=0)), max(column_of_label, default=0)) + 1, -1, dtype=np.int64)
    for index, col in column_of_label.items():
        lut[index] = col
    cols = lut[labels.ravel()]
    inside = cols >= 0
    counts = np.bincount(cols[inside], minlength=len(names))
    gm_sum = np.bincount(cols[inside], weights=gm_prob.ravel()[inside], minlength=len(names))
    rows = []
    for name in wanted:
        c = names.index(name)
        if c not in present_cols:
            log.warning("region %s has no voxel in the template atlas %s", name, atlas_nii)
        rows.append({"region": name, "label_ml": counts[c] * voxel_ml, "gm_ml": gm_sum[c] * voxel_ml})
    log.info("native volumes of %d regions on %s (%d transforms)", len(rows), Path(reference_nii).name, len(transforms))
    return pd.DataFrame(rows, columns=["region", "label_ml", "gm_ml"])
