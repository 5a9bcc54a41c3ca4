"""A tissue-study run: the 2D CNN of one subimage set, evaluated by slice majority vote."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai.learn.metrics import classification_metrics, roc_points
from mrixai.learn.run import run_seed, split_rows, write_metrics, write_table
from mrixai.learn.subimages import aggregate_slices, balance_rows
from mrixai.learn.train import TrainConfig, fit, predict_proba, save_checkpoint

log = logging.getLogger(__name__)


def train_on_subimages(
    store_dir: str | Path,
    subimage_set: str,
    splits_tsv: str | Path,
    split: int,
    seed: int,
    cfg: TrainConfig,
    out: dict[str, str | Path],
    *,
    run_info: dict,
    max_repeat: int = 4,
) -> dict:
    """Train the 2D CNN of one subimage set; evaluate as the tissue study does.

    Test subimages vote per slice (ties count as wrong); the per-subject fraction of correctly
    classified slices goes to ``out['fractions']``; subject-level metrics use the mean
    subimage probability.
    """
    rows = split_rows(splits_tsv, split)
    store_dir = Path(store_dir)
    index = pd.read_csv(store_dir / "index.tsv", sep="\t", dtype={"subject": str})
    index = index.rename(columns={"subject": "unit"})
    part = dict(zip(rows["unit"], rows["partition"]))
    label = dict(zip(rows["unit"], rows["label"]))
    group = dict(zip(rows["unit"], rows["group"]))
    missing = sorted(set(rows["unit"]) - set(index["unit"]))
    if missing:
        raise ValueError(f"{store_dir}: units of split {split} missing from the subimage store: {missing}")
    index = index[index["unit"].isin(part)].reset_index(drop=True)
    index["partition"] = index["unit"].map(part)
    index["label"] = index["unit"].map(label).astype(int)
    samples = np.asarray(np.load(store_dir / f"set-{subimage_set}.npy", mmap_mode="r")[index["row"].to_numpy()])
    labels = index["label"].to_numpy()
    tseed = run_seed(run_info.get("base_seed", 0), split, seed)
    train_rows = np.flatnonzero(index["partition"].to_numpy() == "train")
    train_idx = train_rows[balance_rows(labels[train_rows], max_repeat, np.random.default_rng(tseed))]
    val_idx = np.flatnonzero(index["partition"].to_numpy() == "val")
    desc = f"{run_info.get('study', 'tissue')}/{subimage_set} split {split} seed {seed}"
    model, history, summary = fit(samples, labels, train_idx, val_idx, cfg, tseed, None, desc)
    import torch

    prob = predict_proba(model, torch.from_numpy(samples), np.arange(len(index)), next(model.parameters()).device,
                         cfg.batch_size * 2, cfg.precision)
    sub = index.assign(prob=prob, pred=(prob >= 0.5).astype(int))
    sub["correct"] = sub["pred"] == sub["label"]
    test = sub[sub["partition"] == "test"]
    fractions = aggregate_slices(test.rename(columns={"unit": "subject"})[["subject", "slice", "correct"]])
    fractions = fractions.rename(columns={"subject": "unit"})
    fractions.insert(0, "set", subimage_set)
    fractions["group"] = fractions["unit"].map(group)
    fractions["split"], fractions["seed"] = split, seed
    per_unit = test.groupby("unit").agg(prob=("prob", "mean"), label=("label", "first")).reset_index()
    metrics = {**run_info, "split": split, "seed": seed, "train_seed": tseed,
               **classification_metrics(per_unit["label"].to_numpy(), per_unit["prob"].to_numpy()),
               "subimage_balanced_accuracy": classification_metrics(test["label"].to_numpy(), test["prob"].to_numpy())["balanced_accuracy"],
               "mean_fraction_correct_slices": float(fractions["fraction_correct"].mean()),
               **{k: v for k, v in summary.items() if k != "optimizer"},
               "n_train": int(len(train_idx)), "n_val": int(len(val_idx)), "n_test": int(len(test)),
               "roc": roc_points(per_unit["label"], per_unit["prob"]).to_dict("list")}
    save_checkpoint(out["model"], model, summary, cfg, tseed,
                    {"input_shape": list(samples.shape[1:]), "run": dict(run_info), "split": split,
                     "classes": sorted(rows.groupby("label")["group"].first().tolist())})
    write_table(history, out["history"])
    write_table(sub.drop(columns=["row"]), out["predictions"])
    write_table(fractions, out["fractions"])
    write_metrics(metrics, out["metrics"])
    log.info("%s: mean fraction of correct slices %.3f, subject balanced accuracy %.3f", desc,
             metrics["mean_fraction_correct_slices"], metrics["balanced_accuracy"])
    return metrics
