"""Classification metrics of one run: balanced accuracy, sensitivity, specificity, ROC AUC and ROC points.

Label 1 is the "positive" group (the second group named in ``label.groups``, e.g. AD or old).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, int]:
    """Counts of true/false positives/negatives."""
    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    return {
        "tp": int(((y_true == 1) & (y_pred == 1)).sum()),
        "fn": int(((y_true == 1) & (y_pred == 0)).sum()),
        "tn": int(((y_true == 0) & (y_pred == 0)).sum()),
        "fp": int(((y_true == 0) & (y_pred == 1)).sum()),
    }


def classification_metrics(y_true: np.ndarray, prob: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Balanced accuracy, sensitivity, specificity and ROC AUC from positive-class probabilities."""
    y_true = np.asarray(y_true).astype(int)
    prob = np.asarray(prob, dtype=float)
    c = confusion(y_true, prob >= threshold)
    sens = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else np.nan
    spec = c["tn"] / (c["tn"] + c["fp"]) if c["tn"] + c["fp"] else np.nan
    auc = roc_auc_score(y_true, prob) if len(np.unique(y_true)) == 2 else np.nan
    return {
        "balanced_accuracy": float(np.nanmean([sens, spec])),
        "sensitivity": float(sens),
        "specificity": float(spec),
        "roc_auc": float(auc),
        "accuracy": float((y_true == (prob >= threshold)).mean()) if len(y_true) else np.nan,
        "n": int(len(y_true)),
        **c,
    }


def roc_points(y_true: np.ndarray, prob: np.ndarray) -> pd.DataFrame:
    """The ROC curve's points (false positive rate, true positive rate, threshold)."""
    fpr, tpr, thr = roc_curve(np.asarray(y_true).astype(int), np.asarray(prob, dtype=float))
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thr})
