"""LRP beta 0 under other rule composites, scored against the synthetic cohort's planted effect.

Usage: .venv/bin/python benchmarks/lrp_composites.py RESULTS_DIR [--variant reg-syn]

Reads a synthetic-cohort run (RESULTS_DIR = its results/ folder, after `train` and
`write_effect_mask`): every trained run of the registration study's ``--variant``, its test
subjects of the second group (e.g. AD), the volume store and the planted effect. For each run it
computes LRP beta 0 maps with the shipped composite (``attribute(..., "lrp_alphabeta", beta=0)``:
alpha-beta on every convolution and dense layer as in Boehle et al. 2019, z^B in the first layer)
and with variants that change one or two of those choices:

- ``dense-eps``: the epsilon rule in the dense layers (zennit's EpsilonAlpha2Beta1 / EpsilonPlus
  pattern, the composite Kohlbrenner et al. 2020 recommend), alpha-beta in the convolutions;
- ``first-w2``: the w^2 rule in the first layer instead of z^B;
- ``first-ab``: alpha-beta in the first layer too;
- ``dense-eps+first-w2``.

Prints per run the enrichment of positive relevance in the planted effect (as the ground-truth
check computes it) and each variant's ratio to the shipped composite, then the density ranks of
the planted regions (the atlas regions of the planted-regions mask, hemispheres merged) from the
mean density over all those subjects and runs. The ground-truth check itself uses the shipped
composite; this script says how much of its result is the composite's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from torch import nn
from zennit.attribution import Gradient
from zennit.composites import LayerMapComposite, SpecialFirstLayerMapComposite, layer_map_base
from zennit.rules import AlphaBeta, Epsilon, WSquare, ZBox
from zennit.types import Convolution
from zennit.types import Linear as LinearLayers

from mrixai.explain.attribution import LRP_STABILIZER, attribute, lrp_model
from mrixai.explain.groundtruth import mask_on_sample_grid
from mrixai.explain.regions import enrichment, load_sample_atlas, merged_name, region_metrics
from mrixai.learn.train import model_from_checkpoint

VARIANTS = ("dense-eps", "first-w2", "first-ab", "dense-eps+first-w2")


def composite(variant: str, x: torch.Tensor, beta: float = 0.0):
    ab = AlphaBeta(alpha=1.0 + beta, beta=beta, stabilizer=LRP_STABILIZER)
    base = layer_map_base(stabilizer=LRP_STABILIZER)
    if "dense-eps" in variant:
        layer_map = base + [(Convolution, ab), (nn.Linear, Epsilon(epsilon=1e-6))]
    else:
        layer_map = base + [(LinearLayers, ab)]
    if variant == "first-ab":
        return LayerMapComposite(layer_map=layer_map)
    if "first-w2" in variant:
        first = WSquare(stabilizer=LRP_STABILIZER)
    else:
        first = ZBox(low=float(x.min()), high=float(x.max()), stabilizer=LRP_STABILIZER)
    return SpecialFirstLayerMapComposite(layer_map=layer_map, first_map=[(LinearLayers, first)])


def lrp(model: nn.Module, x: torch.Tensor, comp) -> np.ndarray:
    """Relevance of the second class's logit (the check's target), initial relevance = the logit."""
    work = lrp_model(model)
    with Gradient(model=work, composite=comp) as attributor:
        _, rel = attributor(x.clone().requires_grad_(True), lambda out: nn.functional.one_hot(
            torch.ones(len(x), dtype=torch.long), out.shape[1]).to(out) * out)  # fmt: skip
    return rel.detach().numpy()[:, 0]


def planted_names(template: Path, planted_mask: Path) -> list[str]:
    """Merged names of the atlas regions that make up the planted-regions mask (template grid)."""
    atlas = np.asanyarray(nib.load(one(template, "*atlas-Neuromorphometrics_dseg.nii.gz")).dataobj)
    labels = pd.read_csv(one(template, "*atlas-Neuromorphometrics_dseg.tsv"), sep="\t")
    mask = np.asanyarray(nib.load(planted_mask).dataobj) > 0
    inside = [n for i, n in zip(labels["index"], labels["name"]) if (atlas == i).any() and mask[atlas == i].all()]
    return list(dict.fromkeys(merged_name(n) for n in inside))


def one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one {pattern} in {folder}, found {len(found)}")
    return found[0]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--variant", default="reg-syn")
    args = ap.parse_args(argv)
    res = args.results
    torch.set_num_threads(1)
    arm = args.variant.removeprefix("reg-")
    store = res / "samples" / f"{args.variant}_desc-volumes"
    meta = Path(f"{store}.json")
    data = np.load(f"{store}.npy", mmap_mode="r")
    index = pd.read_csv(f"{store}.tsv", sep="\t", dtype={"unit": str})
    row_of = dict(zip(index["unit"], index["row"]))
    truth = res / "synthetic" / "bids" / "derivatives" / "truth"
    effect = mask_on_sample_grid(truth / "space-template_desc-effect_mask.nii.gz", meta)
    brain = mask_on_sample_grid(one(res / "template", "*desc-brain_mask.nii.gz"), meta)
    atlas = load_sample_atlas(one(res / "template", "*atlas-Neuromorphometrics_dseg.nii.gz"),
                              one(res / "template", "*atlas-Neuromorphometrics_dseg.tsv"), meta, True)  # fmt: skip
    names = planted_names(res / "template", one(truth, "*desc-plantedregions_mask.nii.gz"))
    models = sorted((res / "models" / "registration" / args.variant).glob("*_model.pt"))
    if not models:
        raise SystemExit(f"no trained runs under {res / 'models' / 'registration' / args.variant}")
    print(f"{args.variant} ({arm} arm): {len(models)} runs; planted regions {names}")
    rows, density = [], {v: [] for v in ("shipped", *VARIANTS)}
    for path in models:
        run = path.name.removesuffix("_model.pt")
        model, _ = model_from_checkpoint(path)
        model.eval()
        pred = pd.read_csv(path.with_name(f"{run}_predictions.tsv"), sep="\t", dtype={"unit": str})
        test = pred[(pred["partition"] == "test") & (pred["label"] == 1)]
        positive, units = test["group"].iloc[0], test["unit"]
        x = torch.from_numpy(np.stack([data[row_of[u]] for u in units]))[:, None].float()
        maps = {"shipped": attribute(model, x, "lrp_alphabeta", torch.ones(len(x), dtype=torch.long), beta=0.0)
                .detach().numpy()[:, 0]}  # fmt: skip
        maps |= {v: lrp(model, x, composite(v, x)) for v in VARIANTS}
        row = {"run": run, "n": len(units)}
        for name, m in maps.items():
            row[name] = float(enrichment(m, effect, brain)["enrichment"].mean())  # NaN: no positive relevance
            density[name].append(region_metrics(m, atlas)["density"])
        rows.append(row)
        ratios = "  ".join(f"{v} {row[v]:.2f} ({row[v] / row['shipped']:.2f}x)" for v in VARIANTS)
        print(f"  {run} ({len(units)} {positive}): shipped {row['shipped']:.2f}  {ratios}", flush=True)
    table = pd.DataFrame(rows)
    means = table[["shipped", *VARIANTS]].mean().round(2).to_dict()
    print("mean enrichment over runs (a run whose maps hold no positive relevance is left out):", means)
    for name, dens in density.items():
        ranks = pd.Series(np.concatenate(dens).mean(0), index=atlas.names).rank(ascending=False, method="min")
        print(f"  {name}: planted-region density ranks {({n: int(ranks[n]) for n in names})}; "
              f"top 5 {ranks.sort_values().index[:5].tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
