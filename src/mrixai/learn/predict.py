"""Apply trained volume models to new subjects (the step after training, as ``clinicadl predict``).

A volume-model checkpoint (:func:`mrixai.learn.run.train_on_volumes`) carries everything a
prediction needs, so a model folder copied to another machine predicts without the training
``results/``: the sample grid (crop box, block averaging, normalisation, template grid, kept
voxels of a masked store), the registration arm, contrast, template ID, class names in label
order, the network's constructor arguments and the workflow config it was trained with.

This module reads those checkpoints, refuses ones that do not fit the request or each other
(naming both), builds each new subject's sample from its template-space brain image with the
grid read from the checkpoint (:func:`mrixai.learn.store.volume_sample`, as the store does), and
writes per-run and ensemble (mean probability) predictions. The command line is
:mod:`mrixai.predict_cli`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from mrixai.grid import crop_or_pad
from mrixai.learn.data import pick_device
from mrixai.learn.networks import build_model
from mrixai.learn.store import volume_sample
from mrixai.learn.train import load_checkpoint, predict_proba

log = logging.getLogger(__name__)

#: Checkpoint fields prediction reads (written by train_on_volumes, checkpoint format 1).
REQUIRED = ("sample_grid", "arm", "contrast", "template", "classes", "model", "state_dict")
#: Sample-grid fields that must agree between a checkpoint and a request, or within an ensemble.
GRID_KEYS = ("shape", "offset", "downsample", "normalisation", "template_shape")
ENSEMBLE = "ensemble"
#: Voxel-to-world tolerance (mm) when comparing template grids.
AFFINE_ATOL = 1e-3


@dataclass
class Predictor:
    """One trained run: its name (file name less ``_model.pt``), checkpoint path, model and fields."""

    name: str
    path: Path
    model: torch.nn.Module
    ckpt: dict

    @property
    def grid(self) -> dict:
        return self.ckpt["sample_grid"]


def find_checkpoints(models: str | Path, runs: Sequence[str] = ()) -> list[Path]:
    """The ``*_model.pt`` files of a models folder (all runs, or those named in ``runs``), or one file."""
    models = Path(models)
    if models.is_file():
        if runs:
            raise ValueError(f"{models}: --run selects runs of a models folder, not of one checkpoint file")
        return [models]
    if not models.is_dir():
        raise ValueError(f"{models}: no such models folder or checkpoint file")
    found = {p.name.removesuffix("_model.pt"): p for p in sorted(models.glob("*_model.pt"))}
    if not found:
        raise ValueError(f"{models}: no trained run (*_model.pt) in this folder")
    if not runs:
        return list(found.values())
    unknown = sorted(set(runs) - set(found))
    if unknown:
        raise ValueError(f"{models}: no run {unknown}; runs here: {sorted(found)}")
    return [found[r] for r in runs]


def load_predictor(path: str | Path) -> Predictor:
    """Rebuild the network of a checkpoint from the constructor arguments it stores.

    A checkpoint written before these fields existed is refused with a message saying so (retrain
    it, or rerun the training rule, to get one that can predict).
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    missing = [k for k in REQUIRED if k not in ckpt or ckpt[k] is None]
    if missing:
        raise ValueError(
            f"{path}: this checkpoint lacks {missing}, which prediction needs (it predates them or "
            "was not trained on whole volumes); retrain the run to predict with it"
        )
    spec = ckpt["model"]
    model = build_model(spec["name"], tuple(spec["input_shape"]), int(spec["n_classes"]), **spec.get("options", {}))
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return Predictor(path.name.removesuffix("_model.pt").removesuffix(".pt"), path, model, ckpt)


def _describe(pred: Predictor, key: str) -> str:
    value = pred.grid[key] if key in GRID_KEYS or key in ("template_affine", "keep") else pred.ckpt[key]
    if key == "keep":
        value = "no mask" if value is None else f"mask of {int(torch.as_tensor(value).sum())} voxels"
    return f"{pred.path} has {key} {value!r}" if key != "keep" else f"{pred.path} has {value}"


def _same(a: object, b: object, key: str) -> bool:
    if key == "template_affine":
        return np.allclose(np.asarray(a, float), np.asarray(b, float), atol=AFFINE_ATOL)
    if key == "keep":
        if a is None or b is None:
            return a is None and b is None
        return bool(torch.equal(torch.as_tensor(a), torch.as_tensor(b)))
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        return [float(x) for x in a] == [float(x) for x in b]  # type: ignore[union-attr]
    return a == b


def check_request(pred: Predictor, arm: str | None = None, contrast: str | None = None,
                  template: str | None = None) -> None:
    """Refuse a checkpoint whose arm, contrast or template is not the requested one (naming both)."""
    for key, want in (("arm", arm), ("contrast", contrast), ("template", template)):
        if want is not None and pred.ckpt[key] != want:
            raise ValueError(f"requested {key} {want!r}, but {pred.path} was trained with {key} {pred.ckpt[key]!r}")


def check_ensemble(preds: Sequence[Predictor]) -> None:
    """Every run of an ensemble must share arm, contrast, template, classes and sample grid."""
    if not preds:
        raise ValueError("no trained run to predict with")
    first = preds[0]
    for other in preds[1:]:
        for key in ("arm", "contrast", "template", "classes"):
            if other.ckpt[key] != first.ckpt[key]:
                raise ValueError(f"runs of one ensemble differ in {key}: {_describe(first, key)}, {_describe(other, key)}")
        for key in (*GRID_KEYS, "template_affine", "keep"):
            if not _same(first.grid.get(key), other.grid.get(key), key):
                raise ValueError(
                    f"runs of one ensemble differ in their sample grid ({key}): "
                    f"{_describe(first, key)}, {_describe(other, key)}"
                )


def check_image_grid(path: str | Path, grid: Mapping, where: str | Path = "the checkpoint") -> nib.Nifti1Image:
    """Load a template-space image and check it lies on the checkpoint's template grid."""
    img = nib.load(str(path))
    shape, affine = tuple(img.shape[:3]), img.affine
    want_shape = tuple(int(s) for s in grid["template_shape"])
    want_affine = np.asarray(grid["template_affine"], float)
    if shape != want_shape or not np.allclose(affine, want_affine, atol=AFFINE_ATOL):
        raise ValueError(
            f"{path}: template grid {shape} (affine diagonal {np.diag(affine)[:3].tolist()}) differs from the grid "
            f"{want_shape} (affine diagonal {np.diag(want_affine)[:3].tolist()}) that {where} was trained on; "
            "preprocess with the model's config (resolution_mm, template)"
        )
    return img


def subject_sample(path: str | Path, grid: Mapping, where: str | Path = "the checkpoint") -> np.ndarray:
    """A subject's sample from its template-space brain image, with the grid a checkpoint recorded."""
    img = check_image_grid(path, grid, where)
    data = np.asarray(img.dataobj, dtype=np.float32)
    box = crop_or_pad(data, grid["shape"], grid["offset"])
    keep = grid.get("keep")
    keep = None if keep is None else torch.as_tensor(keep).numpy().astype(bool)
    try:
        return volume_sample(box, int(grid["downsample"]), grid["normalisation"], keep)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def predict_samples(preds: Sequence[Predictor], units: Sequence[str], samples: np.ndarray,
                    device: str = "auto", batch_size: int = 8) -> pd.DataFrame:
    """Positive-class probability of every unit under every run, and the ensemble's mean.

    Returns a long table ``unit, run, prob, pred, pred_group``; ``run`` is a run's name or
    ``ensemble`` (the mean of the runs' probabilities, thresholded at 0.5).
    """
    check_ensemble(preds)
    dev = pick_device(device)
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    expected = tuple(preds[0].ckpt["model"]["input_shape"])
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"samples of shape {tuple(x.shape[1:])}, but {preds[0].path} expects {expected}")
    classes = list(preds[0].ckpt["classes"])
    probs = {}
    for p in preds:
        model = p.model.to(dev)
        precision = p.ckpt.get("config", {}).get("precision", "auto")
        probs[p.name] = predict_proba(model, x, np.arange(len(x)), dev, batch_size, precision)
    probs[ENSEMBLE] = np.mean(np.stack(list(probs.values())), axis=0)
    rows = []
    for run, prob in probs.items():
        for unit, pr in zip(units, prob):
            pred = int(pr >= 0.5)
            rows.append({"unit": str(unit), "run": run, "prob": float(pr), "pred": pred, "pred_group": classes[pred]})
    return pd.DataFrame(rows)


def labels_for(participants: pd.DataFrame, units: Sequence[str], column: str,
               groups: Mapping[str, str], classes: Sequence[str]) -> pd.DataFrame | None:
    """Group and label of every unit, when participants.tsv has the label column; else None.

    ``groups`` are the pandas queries of the config the model was trained with, in label order;
    their names must be the checkpoint's ``classes``. Units in no group get no label.
    """
    from mrixai.learn.labels import assign_groups

    if column not in participants.columns:
        log.info("participants.tsv has no %r column: predictions without labels", column)
        return None
    if list(groups) != list(classes):
        raise ValueError(f"label.groups {list(groups)} are not the model's classes {list(classes)} (in label order)")
    return assign_groups(participants, units, column, groups, min_per_group=0)[["unit", "group", "label"]]
