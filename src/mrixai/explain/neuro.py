"""Neurobiological checks of explanations: relevance against measured anatomy.

Boehle et al. correlate each patient's hippocampal relevance with the hippocampal volume; a
model that looks at atrophy should give more relevance to smaller hippocampi. The volume is
measured in the subject's native space: the template atlas is warped through the inverse of the
registration (nearest-label interpolation), and per region we take the label volume and the grey
matter volume (the native GM probability summed inside the label). The correlation is tested with
a permutation test, which makes no normality assumption for a few dozen subjects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from mrixai.explain.regions import read_label_table, region_columns

log = logging.getLogger(__name__)

CORRELATIONS = ("pearson", "spearman")
#: Numerical slack when counting permuted correlations at least as large as the observed one.
_TIE_TOLERANCE = 1e-12


def _rows_correlation(x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``x`` (n,) with every row of ``ys`` (m, n)."""
    xc = x - x.mean()
    yc = ys - ys.mean(axis=1, keepdims=True)
    return (yc @ xc) / (np.linalg.norm(yc, axis=1) * np.linalg.norm(xc))


def permutation_correlation(
    x: Sequence[float],
    y: Sequence[float],
    n_permutations: int = 10000,
    seed: int = 0,
    method: str = "pearson",
) -> dict:
    """Correlation of ``x`` and ``y`` with a two-sided permutation p value.

    ``p = (1 + #{|r_perm| >= |r|}) / (1 + n_permutations)``, so it is never 0. Returns a dict with
    ``r``, ``p`` and ``n``.
    """
    if method not in CORRELATIONS:
        raise ValueError(f"correlation method must be one of {CORRELATIONS}, got {method!r}")
    if int(n_permutations) < 1:
        raise ValueError(f"n_permutations must be >= 1, got {n_permutations!r}")
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.size != y.size:
        raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
    if x.size < 3:
        raise ValueError(f"need at least 3 pairs for a correlation, got {x.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite (drop missing values first)")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        raise ValueError(f"x or y is constant (x range {np.ptp(x)}, y range {np.ptp(y)}): correlation undefined")
    if method == "spearman":
        x, y = rankdata(x), rankdata(y)
    r = float(_rows_correlation(x, y[None, :])[0])
    rng = np.random.default_rng(seed)
    count, done, chunk = 0, 0, 10000
    while done < n_permutations:
        m = min(chunk, int(n_permutations) - done)
        perms = rng.permuted(np.broadcast_to(y, (m, y.size)), axis=1)
        count += int((np.abs(_rows_correlation(x, perms)) >= abs(r) - _TIE_TOLERANCE).sum())
        done += m
    return {"r": r, "p": (1 + count) / (1 + int(n_permutations)), "n": int(x.size)}


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
