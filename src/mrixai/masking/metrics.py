"""Segmentation metrics per class and the log-normal check of the saliency magnitude.

:func:`class_metrics` treats each class one-vs-rest over all given pixels (pooled):
accuracy ``(TP + TN) / all``, specificity ``TN / (TN + FP)``, sensitivity ``TP / (TP + FN)``,
Dice ``2 TP / (2 TP + FP + FN)`` (NaN where the denominator is 0).

:func:`lognormal_fit` fits ``scipy.stats.lognorm`` (location fixed at 0) to one random subsample of
the positive magnitudes and runs the Kolmogorov-Smirnov test of the fitted law on a second,
disjoint subsample, so the p-value is not inflated by testing on the fitting data. A normal law
fitted and tested the same way is reported for comparison.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

log = logging.getLogger(__name__)

#: Tissue classes of the pipeline's dseg (fMRIPrep order).
CLASS_NAMES: Mapping[int, str] = {0: "background", 1: "GM", 2: "WM", 3: "CSF"}


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def class_metrics(pred: np.ndarray, truth: np.ndarray, class_names: Mapping[int, str] = CLASS_NAMES) -> pd.DataFrame:
    """One row per class: class, tp, fp, tn, fn, accuracy, specificity, sensitivity, dice."""
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} differ in shape")
    if pred.size == 0:
        raise ValueError("empty label arrays")
    rows = []
    for label, name in class_names.items():
        p, t = pred == label, truth == label
        tp, fp = int((p & t).sum()), int((p & ~t).sum())
        fn, tn = int((~p & t).sum()), int((~p & ~t).sum())
        rows.append(
            {
                "class": name,
                "tp": tp,
                "fp": fp,
                "tn": tn,
                "fn": fn,
                "accuracy": _ratio(tp + tn, tp + fp + tn + fn),
                "specificity": _ratio(tn, tn + fp),
                "sensitivity": _ratio(tp, tp + fn),
                "dice": _ratio(2 * tp, 2 * tp + fp + fn),
            }
        )
    return pd.DataFrame(rows)


def mask_dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice of two binary masks (1 if both are empty)."""
    if a.shape != b.shape:
        raise ValueError(f"masks {a.shape} and {b.shape} differ in shape")
    a, b = a.astype(bool), b.astype(bool)
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2.0 * (a & b).sum() / total)


def lognormal_fit(values: np.ndarray, sample_size: int = 5000, seed: int = 0) -> dict:
    """Log-normal fit and KS goodness of fit of the positive ``values`` (see the module docstring).

    Returns n (positive values), n_fit, n_test, sigma (lognorm shape), scale (``exp(mu)``), mu,
    ks_d, ks_p, normal_ks_d, normal_ks_p.
    """
    if not isinstance(sample_size, int) or sample_size < 10:
        raise ValueError(f"sample_size must be an integer >= 10, got {sample_size!r}")
    flat = np.asarray(values, dtype=np.float64).ravel()
    positive = flat[np.isfinite(flat) & (flat > 0)]
    if positive.size < 20:
        raise ValueError(f"need at least 20 positive values for a log-normal fit, got {positive.size}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(positive.size)
    n_each = min(sample_size, positive.size // 2)
    fit_part, test_part = positive[order[:n_each]], positive[order[n_each : 2 * n_each]]
    sigma, _, scale = stats.lognorm.fit(fit_part, floc=0)
    ks = stats.kstest(test_part, "lognorm", args=(sigma, 0, scale))
    mean, sd = stats.norm.fit(fit_part)
    ks_norm = stats.kstest(test_part, "norm", args=(mean, sd))
    return {
        "n": int(positive.size),
        "n_fit": int(n_each),
        "n_test": int(test_part.size),
        "sigma": float(sigma),
        "scale": float(scale),
        "mu": float(np.log(scale)),
        "ks_d": float(ks.statistic),
        "ks_p": float(ks.pvalue),
        "normal_ks_d": float(ks_norm.statistic),
        "normal_ks_p": float(ks_norm.pvalue),
    }
