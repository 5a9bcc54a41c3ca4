"""One training run of a study, from sample store and split table to checkpoint and predictions.

These are the functions the workflow's training scripts call: they pick the split's partitions
(refusing to start on subject leakage), train, and write the checkpoint, the per-epoch history,
the per-sample predictions of every partition and the test metrics.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai.io import atomic_path
from mrixai.learn.metrics import classification_metrics, roc_points
from mrixai.learn.splits import check_no_leakage
from mrixai.learn.store import sample_grid_record
from mrixai.learn.train import TrainConfig, fit, load_checkpoint, predict_proba, save_checkpoint

log = logging.getLogger(__name__)


#: Version of the prediction fields a volume-model checkpoint carries (sample_grid, arm, contrast,
#: template, classes, model, workflow_config); checkpoints without it cannot be used by predict.
CHECKPOINT_FORMAT = 1


def plain(value):
    """A config as plain dicts, lists, strings and numbers (what ``torch.load(weights_only=True)`` reads)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def train_config(options: Mapping) -> TrainConfig:
    """The :class:`TrainConfig` of one run's :func:`run_options`."""
    return TrainConfig(model=options["model"], model_options=dict(options["model_options"]), **options["training"])


def run_seed(base_seed: int, split: int, seed: int) -> int:
    """The training seed of (split, seed) runs, derived from the config's seed."""
    return int(np.random.SeedSequence([int(base_seed), int(split), int(seed)]).generate_state(1)[0])


def split_rows(splits_tsv: str | Path, split: int) -> pd.DataFrame:
    """The rows of one split, after the leakage check."""
    table = pd.read_csv(splits_tsv, sep="\t", dtype={"unit": str, "subject": str})
    check_no_leakage(table, split)
    return table[table["split"] == split].reset_index(drop=True)


def subsample_training(rows: pd.DataFrame, n_per_group: int | None, split: int) -> pd.DataFrame:
    """Keep ``n_per_group`` training participants per group (the same ones for every seed of a split)."""
    if not n_per_group:
        return rows
    rng = np.random.default_rng(1000 + split)
    train = rows[rows["partition"] == "train"]
    keep = set()
    for group, part in train.groupby("group"):
        subjects = sorted(part["subject"].unique())
        if len(subjects) < n_per_group:
            raise ValueError(f"split {split}: group {group} has {len(subjects)} training participants, fewer than n_train_per_group={n_per_group}")
        keep |= set(rng.choice(subjects, n_per_group, replace=False))
    drop = (rows["partition"] == "train") & ~rows["subject"].isin(keep)
    log.info("training on %d of %d training participants (%d per group)", len(keep), train["subject"].nunique(), n_per_group)
    return rows[~drop].reset_index(drop=True)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def write_metrics(metrics: dict, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float))


def init_state(init_checkpoint: str | Path | None) -> dict | None:
    if not init_checkpoint:
        return None
    ckpt = load_checkpoint(init_checkpoint)
    log.info("initialised from %s (epoch %d)", init_checkpoint, ckpt["epoch"])
    return ckpt["state_dict"]


def _grid_record(store_npy: str | Path, store_json: str | Path | None) -> dict | None:
    """The sample grid of the store (required when ``store_json`` is given; else read when complete)."""
    if store_json is not None:
        return sample_grid_record(store_json)
    try:
        return sample_grid_record(Path(store_npy).with_suffix(".json"))
    except ValueError as err:
        log.warning("%s; the checkpoint records no sample grid and cannot be used by predict", err)
        return None


def train_on_volumes(
    store_npy: str | Path,
    store_tsv: str | Path,
    splits_tsv: str | Path,
    split: int,
    seed: int,
    cfg: TrainConfig,
    out: dict[str, str | Path],
    *,
    run_info: dict,
    init_checkpoint: str | Path | None = None,
    n_train_per_group: int | None = None,
    store_json: str | Path | None = None,
    contrast: str | None = None,
    template: str | None = None,
    workflow_config: Mapping | None = None,
) -> dict:
    """Train on whole volumes (one sample per unit); ``out`` has model, history, predictions, metrics.

    The checkpoint also carries what prediction on new subjects needs (:mod:`mrixai.learn.predict`):
    the sample grid of the store (``store_json``, default: the ``.json`` beside ``store_npy``), the
    registration arm, ``contrast``, ``template`` (its TemplateFlow-style ID), the class names in label
    order and the ``workflow_config`` the run was made with (its preprocessing settings).
    """
    rows = subsample_training(split_rows(splits_tsv, split), n_train_per_group, split)
    index = pd.read_csv(store_tsv, sep="\t", dtype={"unit": str, "subject": str})
    row_of = dict(zip(index["unit"], index["row"]))
    missing = sorted(set(rows["unit"]) - set(row_of))
    if missing:
        raise ValueError(f"{store_tsv}: units of split {split} missing from the sample store: {missing}")
    store = np.load(store_npy, mmap_mode="r")
    samples = np.asarray(store[[row_of[u] for u in rows["unit"]]])
    labels = rows["label"].to_numpy()
    idx = {p: np.flatnonzero(rows["partition"].to_numpy() == p) for p in ("train", "val", "test")}
    tseed = run_seed(run_info.get("base_seed", 0), split, seed)
    desc = f"{run_info.get('study', 'study')}/{run_info.get('variant', '')} split {split} seed {seed}"
    model, history, summary = fit(samples, labels, idx["train"], idx["val"], cfg, tseed,
                                  init_state(init_checkpoint), desc)
    import torch

    prob = predict_proba(model, torch.from_numpy(samples), np.arange(len(rows)), next(model.parameters()).device,
                         cfg.batch_size * 2, cfg.precision)
    pred = rows[["unit", "subject", "group", "label", "partition"]].assign(
        prob=prob, pred=(prob >= 0.5).astype(int))
    pred["correct"] = pred["pred"] == pred["label"]
    test = pred[pred["partition"] == "test"]
    metrics = {**run_info, "split": split, "seed": seed, "train_seed": tseed,
               **classification_metrics(test["label"].to_numpy(), test["prob"].to_numpy()),
               **{k: v for k, v in summary.items() if k != "optimizer"},
               "n_train": int(len(idx["train"])), "n_val": int(len(idx["val"])), "n_test": int(len(idx["test"])),
               "roc": roc_points(test["label"], test["prob"]).to_dict("list")}
    grid = _grid_record(store_npy, store_json)
    classes = rows.groupby("label")["group"].first().sort_index()
    if list(classes.index) != [0, 1]:
        raise ValueError(f"{splits_tsv}: split {split} needs labels 0 and 1, got {list(classes.index)}")
    keep = grid.pop("keep") if grid else None
    save_checkpoint(out["model"], model, summary, cfg, tseed,
                    {"input_shape": list(samples.shape[1:]), "run": {k: v for k, v in run_info.items()},
                     "split": split, "classes": [str(c) for c in classes],
                     "format": CHECKPOINT_FORMAT,
                     "sample_grid": grid and {**grid, "keep": None if keep is None else torch.from_numpy(keep)},
                     "arm": grid["arm"] if grid else run_info.get("arm"), "contrast": contrast, "template": template,
                     "model": {"name": cfg.model, "input_shape": list(samples.shape[1:]), "n_classes": 2,
                               "options": dict(cfg.model_options)},
                     "workflow_config": plain(workflow_config) if workflow_config is not None else None})
    write_table(history, out["history"])
    write_table(pred, out["predictions"])
    write_metrics(metrics, out["metrics"])
    log.info("%s: test balanced accuracy %.3f, AUC %.3f (best epoch %d of %d, %.0f s)", desc,
             metrics["balanced_accuracy"], metrics["roc_auc"], summary["best_epoch"], summary["epochs_run"],
             summary["wall_time_s"])
    return metrics


def share_run(src: Mapping[str, str | Path], dst: Mapping[str, str | Path], study: str, variant: str) -> None:
    """Reuse a finished run as the run of another study whose training would be identical.

    The model, history and predictions are copied; the metrics JSON is rewritten with the new ``study`` and ``variant`` and a ``shared_from``
    field naming the source run, so summaries and figures stay truthful about where it came from.
    """
    keys = ("model", "history", "predictions", "metrics")
    for mapping, name in ((src, "source"), (dst, "destination")):
        missing = [k for k in keys if k not in mapping]
        if missing:
            raise ValueError(f"share_run: {name} files lack {missing}")
    for key in ("model", "history", "predictions"):
        # Copies, not hard links: Snakemake touches outputs older than the job, and touching a
        # link would make the registration run look newer than what was made from it.
        with atomic_path(dst[key]) as tmp:
            shutil.copyfile(src[key], tmp)
    metrics = json.loads(Path(src["metrics"]).read_text())
    metrics["shared_from"] = f"{metrics.get('study')}/{metrics.get('variant')}"
    metrics.update(study=study, variant=variant)
    write_metrics(metrics, dst["metrics"])
    log.info("run of %s/%s reused for %s/%s (identical training)", metrics["shared_from"], Path(src["model"]).name,
             study, variant)
