"""Scoring preprocessing outputs against reference labels, and registration arms against each other.

Used by the benchmark scripts and the tests on the IXI sample (DLMUSE reference labels) and on the
synthetic cohort (its ground-truth label maps).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.qc.metrics import dice

GM, WM, CSF = 1, 2, 3


def _canonical(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asanyarray(img.dataobj)
    if data.ndim == 4:
        data = data[..., 0]
    return data, img.affine


def reference_tissues(dseg_path: str | Path, lut_tsv: str | Path) -> dict[str, np.ndarray]:
    """Masks of a labelled reference (e.g. DLMUSE) by tissue, in RAS voxel order.

    ``lut_tsv`` maps label ``index`` to ``tissue`` (GM, WM, CSF_ventricle, CSF_extracerebral,
    other); the union of all non-zero labels is the intracranial (brain) mask.
    """
    labels, affine = _canonical(dseg_path)
    labels = labels.astype(np.int32)
    lut = pd.read_csv(lut_tsv, sep="\t")
    if not {"index", "tissue"} <= set(lut.columns):
        raise ValueError(f"{lut_tsv}: needs columns 'index' and 'tissue', has {list(lut.columns)}")
    by_tissue = lut.groupby("tissue")["index"].apply(list).to_dict()
    return {
        "brain": labels > 0,
        "GM": np.isin(labels, by_tissue.get("GM", [])),
        "WM": np.isin(labels, by_tissue.get("WM", [])),
        "affine": affine,
    }


def score_segmentation(
    mask_path: str | Path, dseg_path: str | Path, reference: Mapping[str, np.ndarray]
) -> dict[str, float]:
    """Dice of the brain mask, GM and WM (1=GM 2=WM 3=CSF) against a reference on the same grid."""
    mask, affine = _canonical(mask_path)
    seg, _ = _canonical(dseg_path)
    if mask.shape != reference["brain"].shape or not np.allclose(affine, reference["affine"], atol=1e-3):
        raise ValueError(
            f"{mask_path} is not on the reference's grid: shape {mask.shape} vs {reference['brain'].shape}"
        )
    return {
        "dice_brain": dice(mask > 0, reference["brain"]),
        "dice_gm": dice(seg == GM, reference["GM"]),
        "dice_wm": dice(seg == WM, reference["WM"]),
    }


def mean_pairwise_dice(mask_paths: Sequence[str | Path]) -> float:
    """Mean Dice over every pair of masks (all on one grid): how well the subjects overlap."""
    if len(mask_paths) < 2:
        raise ValueError(f"need at least two masks for pairwise Dice, got {len(mask_paths)}")
    masks = [_canonical(p)[0] > 0 for p in mask_paths]
    shapes = {m.shape for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"masks are on different grids: shapes {sorted(shapes)}")
    return float(np.mean([dice(a, b) for a, b in itertools.combinations(masks, 2)]))


#: The rules of the per-subject preprocessing chain, in order (the issue's "full chain").
CHAIN = ("correct_bias", "strip_skull", "register_affine", "segment_tissue", "register_syn")


def chain_times(results: str | Path, rules: Sequence[str] = CHAIN) -> pd.DataFrame:
    """Seconds per subject (rows) and rule (columns) from the rules' ``benchmark:`` files, plus
    their sum in column ``chain``. Only subjects with a benchmark for every rule are kept."""
    results = Path(results)
    rows = []
    for rule in rules:
        for tsv in sorted((results / "benchmarks" / rule).glob("sub-*.tsv")):
            seconds = float(pd.read_csv(tsv, sep="\t")["s"].iloc[-1])
            rows.append({"subject": tsv.stem.removeprefix("sub-"), "rule": rule, "s": seconds})
    if not rows:
        raise FileNotFoundError(f"no benchmark files under {results / 'benchmarks'} for rules {list(rules)}")
    table = pd.DataFrame(rows).pivot(index="subject", columns="rule", values="s").dropna()
    table = table[list(rules)]
    table["chain"] = table.sum(axis=1)
    return table
