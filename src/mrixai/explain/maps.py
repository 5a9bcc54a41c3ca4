"""Attribution maps of one trained run, written as one NIfTI per test subject and method.

Maps are computed on the run's samples (the volume store's grid, e.g. 48x57x48 at 4 mm) and
written with that grid's affine (recorded in the store's JSON sidecar), so they sit in template
space and overlay the template and atlas directly.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from mrixai.explain.attribution import METHODS, attribute, method_options
from mrixai.io import atomic_path
from mrixai.learn.data import pick_device
from mrixai.learn.train import model_from_checkpoint

log = logging.getLogger(__name__)

TARGETS = ("positive", "predicted")


def check_methods(methods: Mapping[str, Mapping]) -> dict[str, dict]:
    """Validate ``{name: {method: ..., **options}}``; returns the options with defaults filled in."""
    if not methods:
        raise ValueError("attribution.methods is empty")
    out = {}
    for name, spec in methods.items():
        if not re.fullmatch(r"[A-Za-z0-9]+", str(name)):
            raise ValueError(
                f"attribution.methods: name {name!r} must be letters and digits only "
                "(it becomes the BIDS entity method-<name> in file names)"
            )
        spec = dict(spec or {})
        spec.pop("label", None)
        method = spec.pop("method", name)
        if method not in METHODS:
            raise ValueError(f"attribution.methods.{name}: unknown method {method!r}; valid: {METHODS}")
        out[name] = {"method": method, **method_options(method, **spec)}
    return out


def method_labels(methods: Mapping[str, Mapping]) -> dict[str, str]:
    """Figure label of every configured method: its ``label``, else its name."""
    return {name: str((spec or {}).get("label", name)) for name, spec in methods.items()}


def explain_run(
    model_path: str | Path,
    store_npy: str | Path,
    store_tsv: str | Path,
    store_json: str | Path,
    predictions_tsv: str | Path,
    out_dir: str | Path,
    methods: Mapping[str, Mapping],
    *,
    target: str = "positive",
    device: str = "auto",
    partition: str = "test",
    batch_size: int = 4,
) -> pd.DataFrame:
    """Explain every ``partition`` unit of a run with every method; write maps and ``index.tsv``.

    ``target`` ``positive`` explains the logit of label 1 (the second group, e.g. AD) for every
    subject, so maps of all subjects are comparable; ``predicted`` explains each subject's
    predicted class. The output directory is written beside its final name and renamed at the end.
    """
    if target not in TARGETS:
        raise ValueError(f"attribution target must be one of {TARGETS}, got {target!r}")
    specs = check_methods(methods)
    dev = pick_device(device)
    model, ckpt = model_from_checkpoint(model_path)
    model = model.to(dev)
    index = pd.read_csv(store_tsv, sep="\t", dtype={"unit": str, "subject": str})
    pred = pd.read_csv(predictions_tsv, sep="\t", dtype={"unit": str, "subject": str})
    pred = pred[pred["partition"] == partition].reset_index(drop=True)
    if pred.empty:
        raise ValueError(f"{predictions_tsv}: no units in partition {partition!r}")
    row_of = dict(zip(index["unit"], index["row"]))
    missing = sorted(set(pred["unit"]) - set(row_of))
    if missing:
        raise ValueError(f"{store_tsv}: units of {predictions_tsv} missing from the store: {missing}")
    meta = json.loads(Path(store_json).read_text())
    affine = np.asarray(meta["affine"])
    store = np.load(store_npy, mmap_mode="r")
    if list(store.shape[1:]) != list(ckpt["input_shape"]):
        raise ValueError(f"{store_npy}: samples of shape {store.shape[1:]} but {model_path} expects {ckpt['input_shape']}")
    out_dir = Path(out_dir)
    rows = []
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for start in tqdm(range(0, len(pred), batch_size), desc="attribution", unit="batch"):
            part = pred.iloc[start : start + batch_size]
            x = torch.from_numpy(np.stack([store[row_of[u]] for u in part["unit"]]))[:, None].to(dev)
            targets = torch.ones(len(part), dtype=torch.long) if target == "positive" else None
            for name, spec in specs.items():
                opts = {k: v for k, v in spec.items() if k != "method"}
                maps = attribute(model, x, spec["method"], targets, **opts).detach().cpu().numpy()[:, 0]
                for rec, amap in zip(part.itertuples(index=False), maps):
                    fname = f"sub-{rec.unit}_method-{name}_attribution.nii.gz"
                    img = nib.Nifti1Image(amap.astype(np.float32), affine)
                    img.set_sform(affine, code=1)
                    img.set_qform(affine, code=1)
                    img.header.set_xyzt_units("mm", "sec")
                    nib.save(img, tmp / fname)
                    rows.append({"unit": rec.unit, "subject": rec.subject, "group": rec.group, "label": rec.label,
                                 "prob": rec.prob, "pred": rec.pred, "method": name, "file": fname,
                                 "sum": float(amap.sum()), "sum_abs": float(np.abs(amap).sum()),
                                 "sum_positive": float(amap[amap > 0].sum())})
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "index.tsv", sep="\t", index=False, float_format="%.6g")
    log.info("wrote %d maps (%d units x %d methods) to %s", len(table), len(pred), len(specs), out_dir)
    return table
