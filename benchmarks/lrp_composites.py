"""LRP beta 0 under other rule composites, scored against the synthetic cohort's planted effect.

Usage: .venv/bin/python benchmarks/lrp_composites.py RESULTS_DIR [--variant reg-syn]

Reads a synthetic-cohort run (RESULTS_DIR = its results/ folder, after `train` and
`write_effect_mask`): every trained run of the registration study's ``--variant``, its test
subjects of the second group (e.g. AD), the volume store and the planted effect. For each run it
computes LRP beta 0 maps (``attribute(..., "lrp_alphabeta", beta=0, ...)``) under five composites,
all options of the shipped method:

- ``boehle2019`` (the baseline): alpha-beta on every convolution and dense layer as in Boehle et
  al. 2019, z^B in the first layer (``dense_rule=alphabeta, first_rule=zbox``; the pipeline's
  former default);
- ``dense-eps``: the epsilon rule in the dense layers (``dense_rule=epsilon``), z^B first;
- ``first-w2``: alpha-beta dense, the w^2 rule in the first layer;
- ``first-ab``: alpha-beta dense, alpha-beta in the first layer too;
- ``shipped``: the default composite (epsilon dense, w^2 first).

Prints per run the enrichment of positive relevance in the planted effect (as the ground-truth
check computes it) and each composite's ratio to the baseline, then the density ranks of the
planted regions (the atlas regions of the planted-regions mask, hemispheres merged) from the mean
density over all those subjects and runs, and the model-randomisation check of each composite on the
first run (as the workflow's check: the same model re-initialised with each of ``--seeds``,
Spearman of the absolute maps inside the brain, every test subject; the median over subjects and
seeds, the range of the per-seed medians, and the maximum).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from mrixai.explain.attribution import attribute, spearman_maps
from mrixai.explain.groundtruth import mask_on_sample_grid
from mrixai.explain.randomisation import randomise_weights
from mrixai.explain.regions import enrichment, load_sample_atlas, merged_name, region_metrics
from mrixai.learn.train import model_from_checkpoint

BASELINE = "boehle2019"
COMPOSITES = {
    BASELINE: {"dense_rule": "alphabeta", "first_rule": "zbox"},
    "dense-eps": {"dense_rule": "epsilon", "first_rule": "zbox"},
    "first-w2": {"dense_rule": "alphabeta", "first_rule": "wsquare"},
    "first-ab": {"dense_rule": "alphabeta", "first_rule": "alphabeta"},
    "shipped": {},
}
VARIANTS = tuple(c for c in COMPOSITES if c != BASELINE)


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


def randomisation(
    model_path: Path, data: np.ndarray, row_of: dict, pred: pd.DataFrame, seeds: list[int]
) -> pd.DataFrame:
    """Spearman of |trained map| and |re-initialised model's map| per composite, seed and test subject."""
    trained, _ = model_from_checkpoint(model_path)
    units = pred.loc[pred["partition"] == "test", "unit"]
    x = torch.from_numpy(np.stack([data[row_of[u]] for u in units]))[:, None].float()
    brain = x[:, 0].numpy() != 0
    target = torch.ones(len(x), dtype=torch.long)
    maps = {c: attribute(trained.eval(), x, "lrp_alphabeta", target, beta=0.0, **o).numpy()[:, 0]
            for c, o in COMPOSITES.items()}  # fmt: skip
    rows = []
    for seed in seeds:
        random = randomise_weights(model_from_checkpoint(model_path)[0], seed).eval()
        for name, opts in COMPOSITES.items():
            b = attribute(random, x, "lrp_alphabeta", target, beta=0.0, **opts).numpy()[:, 0]
            a = maps[name]
            rows += [{"composite": name, "seed": seed, "unit": u,
                      "rho": spearman_maps(np.abs(a[i][brain[i]]), np.abs(b[i][brain[i]]))}
                     for i, u in enumerate(units)]  # fmt: skip
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path)
    ap.add_argument("--variant", default="reg-syn")
    ap.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2, 3],
                    help="re-initialisation seeds of the randomisation check (42: the default config's seed)")
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
    rows, density = [], {v: [] for v in COMPOSITES}
    for path in models:
        run = path.name.removesuffix("_model.pt")
        model, _ = model_from_checkpoint(path)
        model.eval()
        pred = pd.read_csv(path.with_name(f"{run}_predictions.tsv"), sep="\t", dtype={"unit": str})
        test = pred[(pred["partition"] == "test") & (pred["label"] == 1)]
        positive, units = test["group"].iloc[0], test["unit"]
        x = torch.from_numpy(np.stack([data[row_of[u]] for u in units]))[:, None].float()
        target = torch.ones(len(x), dtype=torch.long)  # the second group's logit, as the check explains
        maps = {
            c: attribute(model, x, "lrp_alphabeta", target, beta=0.0, **o).numpy()[:, 0]
            for c, o in COMPOSITES.items()
        }
        row = {"run": run, "n": len(units)}
        for name, m in maps.items():
            row[name] = float(enrichment(m, effect, brain)["enrichment"].mean())  # NaN: no positive relevance
            density[name].append(region_metrics(m, atlas)["density"])
        rows.append(row)
        ratios = "  ".join(f"{v} {row[v]:.2f} ({row[v] / row[BASELINE]:.2f}x)" for v in VARIANTS)
        print(f"  {run} ({len(units)} {positive}): {BASELINE} {row[BASELINE]:.2f}  {ratios}", flush=True)
    table = pd.DataFrame(rows)
    means = table[list(COMPOSITES)].mean().round(2).to_dict()
    print("mean enrichment over runs (a run whose maps hold no positive relevance is left out):", means)
    for name, dens in density.items():
        ranks = pd.Series(np.concatenate(dens).mean(0), index=atlas.names).rank(ascending=False, method="min")
        print(f"  {name}: planted-region density ranks {({n: int(ranks[n]) for n in names})}; "
              f"top 5 {ranks.sort_values().index[:5].tolist()}")
    first = models[0]
    pred_tsv = first.with_name(first.name.replace("_model.pt", "_predictions.tsv"))
    pred = pd.read_csv(pred_tsv, sep="\t", dtype={"unit": str})
    print(f"randomisation check on {first.name.removesuffix('_model.pt')} (Spearman of |maps|, trained vs "
          f"re-initialised with seeds {args.seeds}, per test subject):")
    rand = randomisation(first, data, row_of, pred, args.seeds)
    for name, part in rand.groupby("composite", sort=False):
        per_seed = part.groupby("seed")["rho"].median()
        print(f"  {name}: median {part['rho'].median():.2f} (per seed {per_seed.min():.2f}-{per_seed.max():.2f}, "
              f"{int((per_seed >= 0.5).sum())} of {len(per_seed)} at or above 0.5), max {part['rho'].max():.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
