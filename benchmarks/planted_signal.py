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

Then, per volume store under RESULTS_DIR/samples (the CNN's own inputs: sample grid, normalised,
inside the template mask where samples.volumes.template_mask says so), the same enrichment for two
yardsticks of a relevance map: |mean AD - mean CN|, and gradient x input (w * x, positive part) of
an L2 logistic regression trained on split 0's training and validation subjects, over split 0's AD
test subjects. A linear model's w * x is what LRP-epsilon returns for it, so it shows how
concentrated a relevance map can be on these inputs when the classifier is as simple as possible.
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
    stores(res)
    return 0


def stores(res: Path) -> None:
    """Yardsticks of relevance enrichment on each volume store (see the module docstring)."""
    from sklearn.linear_model import LogisticRegression

    from mrixai.explain.groundtruth import mask_on_sample_grid
    from mrixai.explain.regions import enrichment

    splits_tsv = res / "splits" / "splits.tsv"
    if not splits_tsv.is_file():
        print("no splits/splits.tsv: volume-store yardsticks skipped")
        return
    splits = pd.read_csv(splits_tsv, sep="\t", dtype={"unit": str})
    split0 = splits[splits["split"] == 0]
    for npy in sorted((res / "samples").glob("reg-*_desc-volumes.npy")):
        meta = npy.with_suffix(".json")
        index = pd.read_csv(npy.with_suffix(".tsv"), sep="\t", dtype={"unit": str})
        effect = mask_on_sample_grid(res / "synthetic/bids/derivatives/truth/space-template_desc-effect_mask.nii.gz", meta)
        brain = mask_on_sample_grid(one("*desc-brain_mask.nii.gz", res / "template"), meta)
        x = np.load(npy).astype(np.float64)
        rows = index.merge(split0[["unit", "label", "partition"]], on="unit")
        fit = rows[rows["partition"] != "test"]
        test = rows[(rows["partition"] == "test") & (rows["label"] == 1)]
        diff = x[rows.loc[rows.label == 1, "row"]].mean(0) - x[rows.loc[rows.label == 0, "row"]].mean(0)
        model = LogisticRegression(C=1e-3, max_iter=5000).fit(x[fit["row"]].reshape(len(fit), -1), fit["label"])
        weights = model.coef_.reshape(x.shape[1:])
        gxi = enrichment(weights[None] * x[test["row"]], effect, brain)["enrichment"].mean()
        print(f"{npy.name}: |mean difference| enrichment {enrichment(np.abs(diff)[None], effect, brain)['enrichment'][0]:.2f}; "
              f"logistic regression w*x {gxi:.2f} ({len(test)} AD test subjects of split 0)")


if __name__ == "__main__":
    sys.exit(main())
