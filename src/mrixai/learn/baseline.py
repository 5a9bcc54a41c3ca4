"""The classical baseline beside the CNNs: a linear model on grey-matter maps or regional volumes.

ClinicaDL's evaluation (Wen et al. 2020) found a linear SVM on template-space grey-matter maps
(Samper-Gonzalez et al. 2018) as good as most CNNs, so every CNN study reports one on the same folds.
Per split, one model is fitted on the training and validation units (the baseline has no early
stopping, so the CNN's validation subjects are training data here); its one hyper-parameter C is
chosen by inner stratified cross-validation over those units only (folds grouped by participant, so
the sessions of one participant stay in one fold), and features are standardised inside the inner
folds and the final fit with statistics of the rows being fitted. Test units are only predicted.

Two feature sets:

- ``gm``: template-space GM probability maps of one registration arm, on the volume store's crop,
  block-averaged like it, at the sample voxels inside the template brain mask;
- ``volumes``: native regional GM volumes (atlas warped to each subject) divided by the subject's
  native brain-mask volume.

The model is deterministic, so each split gives one fit, written as seed 0 of that split in the
CNN runs' format (``split-<k>_seed-0_metrics.json`` and ``_predictions.tsv``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.grid import crop_offset, on_sample_grid
from mrixai.io import atomic_path
from mrixai.learn.labels import unit_subject
from mrixai.learn.metrics import classification_metrics, roc_points
from mrixai.learn.splits import check_no_leakage
from mrixai.learn.summary import write_table

log = logging.getLogger(__name__)

MODELS = ("svm", "logistic")
FEATURE_SETS = ("gm", "volumes")
VOLUME_MEASURES = ("gm_ml", "label_ml")


# ---- features ---------------------------------------------------------------------------------
def build_gm_features(
    units: Sequence[str],
    gm_maps: Sequence[str | Path],
    mask: str | Path,
    out_npy: str | Path,
    out_tsv: str | Path,
    *,
    arm: str,
    shape: Sequence[int],
    downsample: int,
) -> np.ndarray:
    """Write the GM feature matrix (units x sample voxels inside the mask, float32) and its index.

    Each template-space GM probability map is cropped or padded (centred) to ``shape`` and
    block-averaged by ``downsample``, as the volume store does with the brain images; the features
    are the sample voxels of which at least half lies inside the template brain ``mask``.
    """
    if len(units) != len(gm_maps) or not units:
        raise ValueError(f"need one GM map per unit, got {len(units)} units and {len(gm_maps)} maps")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive integers, got {shape!r}")
    if not isinstance(downsample, int) or downsample < 1 or any(s % downsample for s in shape):
        raise ValueError(f"downsample must be an integer >= 1 dividing every edge of {shape}, got {downsample!r}")
    mask_img = nib.load(str(mask))
    offset = crop_offset(mask_img.shape[:3], shape)
    keep = on_sample_grid(np.asarray(mask_img.dataobj) > 0, shape, offset, downsample) >= 0.5
    if not keep.any():
        raise ValueError(f"{mask}: the brain mask is empty on the {shape} / {downsample} sample grid")
    features = np.empty((len(units), int(keep.sum())), dtype=np.float32)
    for i, path in enumerate(gm_maps):
        img = nib.load(str(path))
        if img.shape[:3] != mask_img.shape[:3] or not np.allclose(img.affine, mask_img.affine, atol=1e-3):
            raise ValueError(f"{path}: grid {img.shape} differs from the template mask's {mask_img.shape} ({mask})")
        data = np.clip(np.asarray(img.dataobj, dtype=np.float32), 0.0, 1.0)
        features[i] = on_sample_grid(data, shape, offset, downsample)[keep]
    with atomic_path(out_npy) as tmp:
        np.save(tmp, features)
    index = pd.DataFrame({"row": range(len(units)), "unit": list(units),
                          "subject": [unit_subject(u) for u in units], "arm": arm})
    with atomic_path(out_tsv) as tmp:
        index.to_csv(tmp, sep="\t", index=False)
    log.info("GM features of %d units (reg-%s): %d sample voxels inside %s", len(units), arm, features.shape[1], mask)
    return features


def collect_region_volumes(
    units: Sequence[str],
    volume_tables: Sequence[str | Path],
    qc_files: Sequence[str | Path],
    out_tsv: str | Path,
    measure: str = "gm_ml",
) -> pd.DataFrame:
    """One row per unit: each atlas region's ``measure`` divided by the native brain-mask volume.

    ``volume_tables`` are the per-unit tables of :func:`mrixai.explain.volumes.native_region_volumes`
    (``region, label_ml, gm_ml``); ``qc_files`` the per-unit QC JSONs, whose ``brain_volume_ml`` (the
    native skull-stripping mask's volume) is the intracranial volume the regions are divided by.
    """
    if measure not in VOLUME_MEASURES:
        raise ValueError(f"baseline.volume_measure must be one of {VOLUME_MEASURES}, got {measure!r}")
    if not (len(units) == len(volume_tables) == len(qc_files)) or not units:
        raise ValueError(f"need one volume table and one QC file per unit, got {len(units)} units, "
                         f"{len(volume_tables)} tables and {len(qc_files)} QC files")
    rows, regions = [], None
    for unit, table_path, qc_path in zip(units, volume_tables, qc_files):
        table = pd.read_csv(table_path, sep="\t")
        missing = {"region", measure} - set(table.columns)
        if missing:
            raise ValueError(f"{table_path}: lacks column(s) {sorted(missing)}")
        if regions is None:
            regions = list(table["region"])
        elif list(table["region"]) != regions:
            raise ValueError(f"{table_path}: regions differ from those of {volume_tables[0]}")
        qc = json.loads(Path(qc_path).read_text())
        tiv = float(qc.get("brain_volume_ml", np.nan))
        if not np.isfinite(tiv) or tiv <= 0:
            raise ValueError(f"{qc_path}: brain_volume_ml must be a positive number, got {qc.get('brain_volume_ml')!r}")
        rows.append({"unit": unit, "subject": unit_subject(unit), "brain_volume_ml": tiv,
                     **dict(zip(regions, table[measure].to_numpy(float) / tiv))})
    out = pd.DataFrame(rows)
    with atomic_path(out_tsv) as tmp:
        out.to_csv(tmp, sep="\t", index=False, float_format="%.8g")
    log.info("regional %s of %d units, %d regions, divided by the brain-mask volume", measure, len(out), len(regions))
    return out


def load_features(features: str, files: dict) -> tuple[list[str], np.ndarray]:
    """Units and feature matrix of one feature set: ``gm`` (``npy`` and ``tsv``) or ``volumes`` (``tsv``)."""
    if features == "gm":
        index = pd.read_csv(files["tsv"], sep="\t", dtype={"unit": str, "subject": str})
        x = np.load(files["npy"])
        if x.ndim != 2 or len(x) != len(index):
            raise ValueError(f"{files['npy']}: expected a {len(index)} x features matrix, got shape {x.shape}")
        return list(index["unit"]), np.asarray(x[index["row"].to_numpy()], dtype=np.float64)
    if features == "volumes":
        table = pd.read_csv(files["tsv"], sep="\t", dtype={"unit": str, "subject": str})
        cols = [c for c in table.columns if c not in ("unit", "subject", "brain_volume_ml")]
        if not cols:
            raise ValueError(f"{files['tsv']}: no region columns")
        x = table[cols].to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"{files['tsv']}: non-finite regional volumes in rows {np.flatnonzero(~np.isfinite(x).all(1)).tolist()}")
        return list(table["unit"]), x
    raise ValueError(f"baseline feature set must be one of {FEATURE_SETS}, got {features!r}")


# ---- model ------------------------------------------------------------------------------------
def make_estimator(model: str):
    """Standardisation followed by the linear classifier (class weights balanced, as ClinicaML's SVM)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if model == "svm":
        clf = SVC(kernel="linear", class_weight="balanced")
    elif model == "logistic":
        clf = LogisticRegression(class_weight="balanced", max_iter=5000)  # L2 penalty by default
    else:
        raise ValueError(f"baseline.model must be one of {MODELS}, got {model!r}")
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def fit_linear(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    *,
    model: str = "svm",
    c_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
    inner_folds: int = 5,
):
    """Choose C by inner stratified cross-validation on (``x``, ``y``) and refit on all of it.

    Folds are :class:`sklearn.model_selection.StratifiedGroupKFold` over ``groups`` (participants),
    unshuffled, so the fit is deterministic; ``inner_folds`` is lowered to the smaller group's number
    of participants when that is less. Folds are scored by balanced accuracy; among equal scores the
    smallest C (strongest regularisation) wins. Returns the fitted
    :class:`sklearn.model_selection.GridSearchCV`.
    """
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups).astype(str)
    if x.ndim != 2 or len(x) != len(y) or len(y) != len(groups):
        raise ValueError(f"x {x.shape}, y {y.shape} and groups {groups.shape} do not match")
    grid = sorted(float(c) for c in c_grid)
    if not grid or grid[0] <= 0:
        raise ValueError(f"baseline.c_grid must hold positive numbers, got {list(c_grid)!r}")
    if set(np.unique(y)) != {0, 1}:
        raise ValueError(f"the training units must hold both labels 0 and 1, got {sorted(set(y.tolist()))}")
    per_class = min(len(set(groups[y == k])) for k in (0, 1))
    folds = min(int(inner_folds), per_class)
    if folds < 2:
        raise ValueError(f"inner cross-validation needs >= 2 participants per group in training, the smaller has {per_class}")
    if folds < inner_folds:
        log.warning("inner cross-validation: %d folds instead of %d (the smaller group has %d participants)",
                    folds, inner_folds, per_class)
    search = GridSearchCV(make_estimator(model), {"clf__C": grid}, scoring="balanced_accuracy",
                          cv=StratifiedGroupKFold(n_splits=folds), refit=True, n_jobs=1)
    search.fit(x, y, groups=groups)
    scores = np.asarray(search.cv_results_["mean_test_score"], dtype=float)
    log.info("inner %d-fold CV over C %s: balanced accuracy %s; chosen C = %g", folds, grid,
             np.round(scores, 3).tolist(), search.best_params_["clf__C"])
    edge = edge_of_grid(grid, scores)
    if edge:
        log.warning("chosen C = %g is the %s value of baseline.c_grid %s and scored higher than its neighbour: "
                    "a C beyond the grid may score higher still (widen baseline.c_grid)",
                    search.best_params_["clf__C"], edge, grid)
    return search


def edge_of_grid(grid: Sequence[float], scores: Sequence[float]) -> str | None:
    """"smallest" or "largest" when the best score is at that end of the sorted grid and strictly
    above its neighbour's (a tie with the neighbour is no sign that the optimum lies beyond); else None."""
    scores = np.asarray(scores, dtype=float)
    if len(grid) < 2:
        return None
    best = int(np.argmax(scores))  # the first maximum: the smallest C among equal scores
    if best == 0 and scores[0] > scores[1]:
        return "smallest"
    if best == len(grid) - 1 and scores[-1] > scores[-2]:
        return "largest"
    return None


def positive_scores(estimator, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(decision value, probability-like score of label 1): the logistic model's probability, or for
    the SVM the logistic function of its decision value (>= 0.5 exactly where the SVM says 1)."""
    from scipy.special import expit
    from sklearn.linear_model import LogisticRegression

    score = estimator.decision_function(x)
    if isinstance(estimator.named_steps["clf"], LogisticRegression):
        return score, estimator.predict_proba(x)[:, 1]
    return score, expit(score)


def run_baseline(
    features: str,
    feature_files: dict,
    splits_tsv: str | Path,
    split: int,
    out: dict,
    *,
    model: str = "svm",
    c_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0),
    inner_folds: int = 5,
    run_info: dict | None = None,
) -> dict:
    """Fit and test the baseline on one split; ``out`` has ``predictions`` and ``metrics`` paths.

    The predictions table has one row per unit of the split (every partition) as the CNN runs'
    (``unit, subject, group, label, partition, prob, pred, correct``) plus the decision ``score``;
    the metrics JSON holds the test metrics, the chosen C and the inner CV score.
    """
    table = pd.read_csv(splits_tsv, sep="\t", dtype={"unit": str, "subject": str})
    check_no_leakage(table, split)
    rows = table[table["split"] == split].reset_index(drop=True)
    units, x = load_features(features, feature_files)
    row_of = {u: i for i, u in enumerate(units)}
    missing = sorted(set(rows["unit"]) - set(row_of))
    if missing:
        raise ValueError(f"{features} features lack units of split {split}: {missing}")
    x = x[[row_of[u] for u in rows["unit"]]]
    fit_rows = rows["partition"].isin(["train", "val"]).to_numpy()
    search = fit_linear(x[fit_rows], rows.loc[fit_rows, "label"].to_numpy(), rows.loc[fit_rows, "subject"],
                        model=model, c_grid=c_grid, inner_folds=inner_folds)
    score, prob = positive_scores(search.best_estimator_, x)
    pred = rows[["unit", "subject", "group", "label", "partition"]].assign(
        prob=prob, score=score, pred=(prob >= 0.5).astype(int))
    pred["correct"] = pred["pred"] == pred["label"]
    test = pred[pred["partition"] == "test"]
    metrics = {"study": "baseline", "variant": features, "model": model, **(run_info or {}),
               "split": int(split), "seed": 0,
               **classification_metrics(test["label"].to_numpy(), test["prob"].to_numpy()),
               "C": float(search.best_params_["clf__C"]), "inner_score": float(search.best_score_),
               "inner_folds": int(search.n_splits_), "n_features": int(x.shape[1]),
               "n_train": int(fit_rows.sum()), "n_val": 0, "n_test": int(len(test)),
               "roc": roc_points(test["label"], test["prob"]).to_dict("list")}
    write_table(pred, out["predictions"])
    with atomic_path(out["metrics"]) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2, default=float))
    log.info("baseline %s (%s) split %d: C %g, test balanced accuracy %.3f, AUC %.3f", features, model, split,
             metrics["C"], metrics["balanced_accuracy"], metrics["roc_auc"])
    return metrics
