"""Model-randomisation sanity check (Adebayo et al.): maps must change when the model does.

The maps of a run's test subjects are recomputed with the same model whose weights were
re-initialised (``draws`` times, seeds ``seed``, ``seed + 1``, ...) and compared with the trained
model's maps by Spearman rank correlation inside the brain, of the signed maps (``spearman``) and,
as Adebayo et al. also do, of their absolute values (``spearman_abs``). The absolute variant is the
one to judge by: the re-initialised model's logit may have either sign, and a map that only flips
sign with it (signed rho near -1 for one class and +1 for the other, averaging to 0) has not changed
with the model. A method whose maps barely change explains the image, not the model. One draw is not
enough to judge by: on the ground-truth study's first run the median over subjects of LRP beta 0's
absolute-map correlation ranged from 0.04 to 0.38 over five seeds (Böhle et al.'s composite: 0.40 to
0.57).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrixai.explain.aggregate import load_maps, read_run_index
from mrixai.explain.attribution import attribute, spearman_maps
from mrixai.explain.maps import check_methods
from mrixai.io import atomic_path
from mrixai.learn.data import pick_device
from mrixai.learn.train import model_from_checkpoint

log = logging.getLogger(__name__)


def _write(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def randomise_weights(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Re-initialise every layer that has parameters (in place), seeded; BatchNorm statistics reset."""
    torch.manual_seed(seed)
    n = 0
    for module in model.modules():
        if hasattr(module, "reset_parameters") and any(True for _ in module.parameters(recurse=False)):
            module.reset_parameters()
            n += 1
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
    if n == 0:
        raise ValueError("the model has no layer with parameters to re-initialise")
    log.info("re-initialised %d layers (seed %d)", n, seed)
    return model


def randomisation_check(
    model_path: str | Path,
    store_npy: str | Path,
    store_tsv: str | Path,
    run_dir: str | Path,
    methods: Mapping[str, Mapping],
    names: Sequence[str],
    out_tsv: str | Path,
    *,
    seed: int = 0,
    draws: int = 1,
    device: str = "auto",
    target: str = "positive",
) -> pd.DataFrame:
    """Spearman correlation (inside the brain; of the maps and of their absolute values) between
    each test subject's trained-model map and the map of the same model with re-initialised weights,
    for the methods ``names``; one row per method, subject and draw (column ``seed``)."""
    specs = check_methods(methods)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"analysis.randomisation.methods {unknown} are not in attribution.methods {list(specs)}")
    if not isinstance(draws, int) or isinstance(draws, bool) or draws < 1:
        raise ValueError(f"draws must be an integer >= 1, got {draws!r}")
    dev = pick_device(device)
    seeds = [seed + k for k in range(draws)]
    random_models = {s: randomise_weights(model_from_checkpoint(model_path)[0], s).to(dev) for s in seeds}
    index = read_run_index(run_dir)
    store_index = pd.read_csv(store_tsv, sep="\t", dtype={"unit": str})
    row_of = dict(zip(store_index["unit"], store_index["row"]))
    store = np.load(store_npy, mmap_mode="r")
    rows = []
    for name in names:
        part = index[index["method"] == name].reset_index(drop=True)
        if part.empty:
            raise ValueError(f"{run_dir}: no maps of method {name!r} to compare with")
        trained = load_maps(run_dir, part)
        volumes = np.stack([store[row_of[u]] for u in part["unit"]])
        brains = volumes != 0
        x = torch.from_numpy(volumes)[:, None].to(dev)
        targets = torch.ones(len(part), dtype=torch.long) if target == "positive" else torch.as_tensor(
            part["pred"].to_numpy(), dtype=torch.long
        )
        spec = specs[name]
        opts = {k: v for k, v in spec.items() if k != "method"}
        for s, random_model in random_models.items():
            random_maps = attribute(random_model, x, spec["method"], targets, **opts).cpu().numpy()[:, 0]
            for i, unit in enumerate(part["unit"]):
                a, b = trained[i][brains[i]], random_maps[i][brains[i]]
                rows.append({"method": name, "unit": unit, "group": part["group"][i], "seed": s,
                             "spearman": spearman_maps(a, b), "spearman_abs": spearman_maps(np.abs(a), np.abs(b))})
    table = pd.DataFrame(rows)
    _write(table, out_tsv)
    for column in ("spearman", "spearman_abs"):
        log.info("trained vs randomised model, median %s: %s", column,
                 table.groupby("method")[column].median().round(3).to_dict())
    return table
