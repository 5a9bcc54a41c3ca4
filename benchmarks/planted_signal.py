"""How much of the planted group difference each registration arm's images still carry, and where.

Usage: .venv/bin/python benchmarks/planted_signal.py RESULTS_DIR

Reads a synthetic-cohort run (RESULTS_DIR = its results/ folder, after `preprocess` and
`write_effect_mask`): every subject's template-space brain image per arm, z-scored inside the
template brain mask, and the voxelwise Welch t-statistic of patients (AD) against controls (CN).
Prints, per arm, the share of the brain's t^2 inside the planted effect
(truth/space-template_desc-effect_mask.nii.gz) over the mask's share of the brain volume (the
same enrichment the explanation check computes for relevance maps; the baseline 1 = no more
group difference in the mask than its size predicts), the same for the mask dilated by 2 and 4
voxels, and the atlas regions with the highest mean t^2. An explanation cannot be expected to be
more enriched than the data it explains; an arm whose t^2 is enriched but whose relevance is not
points at the model or the attribution, not at the registration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage


def one(pattern: str, folder: Path) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one {pattern} in {folder}, found {len(found)}")
    return found[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    args = ap.parse_args(argv)
    res = args.results
    parts = pd.read_csv(res / "synthetic" / "bids" / "participants.tsv", sep="\t")
    effect = nib.load(res / "synthetic/bids/derivatives/truth/space-template_desc-effect_mask.nii.gz").get_fdata() > 0
    brain = nib.load(one("*desc-brain_mask.nii.gz", res / "template")).get_fdata() > 0
    atlas = np.rint(nib.load(one("*atlas-Neuromorphometrics_dseg.nii.gz", res / "template")).get_fdata()).astype(int)
    labels = pd.read_csv(one("*atlas-Neuromorphometrics_dseg.tsv", res / "template"), sep="\t")
    names = dict(zip(labels["index"], labels["name"]))
    ids = np.unique(atlas[atlas > 0])
    for arm in ("none", "linear", "syn"):
        groups: dict[str, list[np.ndarray]] = {}
        for _, row in parts.iterrows():
            sub = row["participant_id"]
            path = res / "preproc" / sub / "anat" / f"{sub}_space-template_reg-{arm}_desc-brain_T1w.nii.gz"
            if not path.is_file():
                continue
            img = nib.load(path).get_fdata(dtype=np.float32)
            inside = img[brain]
            groups.setdefault(row["diagnosis"], []).append((img - inside.mean()) / (inside.std() + 1e-6))
        if len(groups.get("AD", [])) < 2 or len(groups.get("CN", [])) < 2:
            print(f"{arm}: fewer than 2 subjects per group, skipped")
            continue
        ad, cn = np.stack(groups["AD"]), np.stack(groups["CN"])
        t = (ad.mean(0) - cn.mean(0)) / np.sqrt(ad.var(0, ddof=1) / len(ad) + cn.var(0, ddof=1) / len(cn) + 1e-6)
        t2 = np.where(brain, t**2, 0.0)
        print(f"{arm}: {len(ad)} AD, {len(cn)} CN")
        for dilation in (0, 2, 4):
            mask = (ndimage.binary_dilation(effect, iterations=dilation) if dilation else effect) & brain
            share, volume = t2[mask].sum() / t2[brain].sum(), mask.sum() / brain.sum()
            print(f"  effect mask dilated {dilation}: t^2 enrichment {share / volume:5.2f} "
                  f"(share {share:.2f} of the brain's t^2 in {volume:.3f} of its volume)")
        means = pd.Series(ndimage.mean(t2, atlas, ids), index=[names.get(i, str(i)) for i in ids])
        top = means.sort_values(ascending=False).head(8)
        print("  top regions by mean t^2: " + ", ".join(f"{n} {v:.1f}" for n, v in top.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
