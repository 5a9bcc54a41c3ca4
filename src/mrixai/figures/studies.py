"""Figures of the learning studies: registration arms, mean ROC, per-split results, tissue ablation
(pp1..pp5), PIF / transfer comparisons, and tables rendered as figures.

Every function writes a PNG and a PDF through :func:`mrixai.figures.common.save_figure` and returns the
paths written. Inputs are the tables of :mod:`mrixai.stats` and the studies' ``summary.tsv``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt

from mrixai.figures.common import color_for, format_p, save_figure, significance_stars, styled
from mrixai.stats import subject_means

log = logging.getLogger(__name__)

#: Order of the registration arms on every registration figure.
ARM_ORDER: tuple[str, ...] = ("none", "linear", "syn")

#: Axis labels (with units) of the run metrics.
METRIC_LABELS: Mapping[str, str] = {
    "balanced_accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "roc_auc": "ROC AUC",
    "accuracy": "accuracy",
    "wall_time_s": "training wall time (s)",
    "epochs_run": "epochs until early stopping",
    "best_epoch": "best epoch",
    "fraction_correct": "fraction of correctly classified slices",
}

#: Metrics bounded by [0, 1] (plotted on a fixed 0..1 axis).
_UNIT_INTERVAL_METRICS = frozenset({"balanced_accuracy", "sensitivity", "specificity", "roc_auc", "accuracy"})

#: Half-width of the horizontal jitter of single points, as a fraction of the group spacing.
JITTER = 0.08

#: Seed of the (purely cosmetic) jitter, so that a figure is the same on every run.
JITTER_SEED = 0

#: Significance level above which no bracket is drawn on the tissue box plot.
ALPHA = 0.05


def _metric_label(metric: str, labels: Mapping[str, str] | None = None) -> str:
    """The display label of a metric (``labels`` first, then ``METRIC_LABELS``, else the name)."""
    if labels and metric in labels:
        return labels[metric]
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ValueError naming missing columns of ``df``."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(df.columns)}")


def _arm_column(summary: pd.DataFrame) -> pd.Series:
    """The registration arm of each run: the ``arm`` column, else the variant without ``reg-``."""
    if "arm" in summary.columns and summary["arm"].notna().all():
        return summary["arm"].astype(str)
    _require(summary, ["variant"], "summary")
    return summary["variant"].astype(str).str.replace(r"^reg-", "", regex=True)


def _ordered(values: Sequence[str], order: Sequence[str]) -> list[str]:
    """``values`` (distinct) in ``order`` first, the rest sorted after."""
    present = list(dict.fromkeys(str(v) for v in values))
    return [v for v in order if v in present] + sorted(v for v in present if v not in order)


def _jitter(n: int, rng: np.random.Generator, width: float = JITTER) -> np.ndarray:
    """``n`` horizontal offsets in [-width, width]."""
    return rng.uniform(-width, width, size=n)


def _bracket(ax: plt.Axes, x1: float, x2: float, y: float, height: float, text: str, fontsize: float = 8) -> None:
    """A significance bracket from ``x1`` to ``x2`` at ``y`` with ``text`` above it."""
    ax.plot([x1, x1, x2, x2], [y, y + height, y + height, y], color="0.2", linewidth=0.9, clip_on=False)
    ax.text((x1 + x2) / 2, y + height, text, ha="center", va="bottom", fontsize=fontsize, color="0.1")


# ----------------------------------------------------------------------------------------------
# registration study
# ----------------------------------------------------------------------------------------------
@styled
def plot_registration_metrics(
    summary: pd.DataFrame,
    tests: pd.DataFrame | None,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    metrics: Sequence[str] = ("balanced_accuracy", "sensitivity", "specificity"),
    p_column: str = "p_value",
    baseline: pd.DataFrame | None = None,
) -> list[Path]:
    """Grouped bars (mean +- SE over runs) of the metrics per registration arm, with the paired
    Wilcoxon p-values of ``tests`` (:func:`mrixai.stats.paired_tests`) as brackets above the bar pairs.

    ``baseline`` (the linear baseline's summary, one run per split and feature set) adds one
    hatched bar per feature set after the CNN arms, labelled as a linear model.
    """
    _require(summary, list(metrics), "summary")
    arms_of_runs = _arm_column(summary)
    arms = _ordered(arms_of_runs.unique(), ARM_ORDER)
    baseline_sets: list[tuple[str, pd.DataFrame]] = []
    if baseline is not None and len(baseline):
        _require(baseline, ["variant", *metrics], "baseline summary")
        baseline_sets = [(_baseline_label(part), part) for _, part in baseline.groupby("variant", sort=True)]
    variant_of_arm = {}
    if "variant" in summary.columns:
        for arm in arms:
            variant_of_arm.update({str(v): arm for v in summary.loc[arms_of_runs == arm, "variant"].unique()})
    variant_of_arm.update({arm: arm for arm in arms})

    n_arms = len(arms)
    n_bars = n_arms + len(baseline_sets)
    width = 0.8 / n_bars
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(metrics) + 1.5), 4.6))
    centre = {}
    for i, (label, runs) in enumerate(baseline_sets):
        means, ses = _mean_se(runs, metrics)
        xs = np.arange(len(metrics)) + (n_arms + i - (n_bars - 1) / 2) * width
        ax.bar(xs, means, width=width * 0.92, yerr=ses, capsize=3, color="0.85" if i % 2 == 0 else "0.65",
               hatch="//", edgecolor="0.25", linewidth=0.6, error_kw={"elinewidth": 0.9, "ecolor": "0.2"},
               label=f"{label} (n = {len(runs)} splits)")
    for i, arm in enumerate(arms):
        runs = summary[arms_of_runs == arm]
        means, ses = [], []
        for metric in metrics:
            values = pd.to_numeric(runs[metric], errors="coerce").dropna()
            means.append(values.mean() if len(values) else np.nan)
            ses.append(values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0)
        xs = np.arange(len(metrics)) + (i - (n_bars - 1) / 2) * width
        for j, metric in enumerate(metrics):
            centre[(arm, metric)] = xs[j]
        ax.bar(xs, means, width=width * 0.92, yerr=ses, capsize=3, color=color_for(i),
               edgecolor="0.25", linewidth=0.6, error_kw={"elinewidth": 0.9, "ecolor": "0.2"},
               label=f"{arm} (n = {len(runs)} runs)")

    # p-value brackets, stacked above each metric's bars
    top = 1.0
    if tests is not None and len(tests):
        _require(tests, ["metric", "variant_a", "variant_b", p_column], "tests")
        step, height = 0.075, 0.02
        for j, metric in enumerate(metrics):
            rows = tests[tests["metric"] == metric]
            rows = rows.assign(
                _a=rows["variant_a"].astype(str).map(variant_of_arm),
                _b=rows["variant_b"].astype(str).map(variant_of_arm),
            ).dropna(subset=["_a", "_b"])
            rows = rows.assign(_span=[abs(arms.index(a) - arms.index(b)) for a, b in zip(rows["_a"], rows["_b"])])
            level = 0
            for _, row in rows.sort_values(["_span", "_a"]).iterrows():
                y = 1.04 + level * step
                x1, x2 = sorted((centre[(row["_a"], metric)], centre[(row["_b"], metric)]))
                _bracket(ax, x1, x2, y, height, format_p(row[p_column]), fontsize=7.5)
                level += 1
                top = max(top, y + height + 0.06)
    ax.set_ylim(0, max(1.05, top))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.axhline(0.5, color="0.5", linestyle=":", linewidth=0.9, zorder=0)
    ax.set_xticks(np.arange(len(metrics)), [_metric_label(m) for m in metrics])
    ax.set_ylabel("score (mean ± SE over runs)")
    ax.grid(axis="x", visible=False)
    ptxt = "Holm-adjusted" if p_column == "p_holm" else "unadjusted"
    ax.set_title(f"Test performance by registration arm\n(brackets: Wilcoxon signed-rank over splits, {ptxt} p)")
    handles, labels = ax.get_legend_handles_labels()
    order = list(range(len(baseline_sets), len(labels))) + list(range(len(baseline_sets)))
    ax.legend([handles[k] for k in order], [labels[k] for k in order], loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="CNN by registration arm / linear baseline" if baseline_sets else "registration")
    return save_figure(fig, out_png, out_pdf)


def _mean_se(runs: pd.DataFrame, metrics: Sequence[str]) -> tuple[list[float], list[float]]:
    """Mean and standard error over the runs of each metric (SE 0 for a single run)."""
    means, ses = [], []
    for metric in metrics:
        values = pd.to_numeric(runs[metric], errors="coerce").dropna()
        means.append(values.mean() if len(values) else np.nan)
        ses.append(values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0)
    return means, ses


#: Figure names of the baseline's models and feature sets.
BASELINE_MODELS: Mapping[str, str] = {"svm": "linear SVM", "logistic": "logistic regression"}
BASELINE_FEATURES: Mapping[str, str] = {"gm": "GM maps", "volumes": "regional volumes"}


def _baseline_label(runs: pd.DataFrame) -> str:
    """``"linear SVM: GM maps (syn)"`` from a baseline feature set's runs (model, variant, arm)."""
    variant = str(runs["variant"].iloc[0])
    model = str(runs["model"].iloc[0]) if "model" in runs else "linear model"
    label = f"{BASELINE_MODELS.get(model, model)}: {BASELINE_FEATURES.get(variant, variant)}"
    if "arm" in runs and variant == "gm":
        label += f" ({runs['arm'].iloc[0]})"
    return label


@styled
def plot_mean_roc(
    rocs: Mapping[str, pd.DataFrame],
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    aucs: Mapping[str, tuple[float, float]] | None = None,
) -> list[Path]:
    """Mean ROC curve per arm (``arm -> mean_roc`` table) with a +-1 SE band and the chance diagonal;
    the legend gives AUC mean +- sd (``aucs``) and the number of curves."""
    if not rocs:
        raise ValueError("plot_mean_roc needs at least one arm's mean ROC table")
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    ax.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=0.9, label="chance")
    for i, arm in enumerate(_ordered(list(rocs), ARM_ORDER)):
        roc = rocs[arm]
        _require(roc, ["fpr", "mean_tpr", "se_tpr", "n_curves"], f"mean ROC of {arm!r}")
        n = int(roc["n_curves"].iloc[0]) if len(roc) else 0
        label = f"{arm}"
        if aucs and arm in aucs:
            mean, sd = aucs[arm]
            label += f": AUC {mean:.2f} ± {sd:.2f}" if np.isfinite(sd) else f": AUC {mean:.2f}"
        label += f" (n = {n})"
        color = color_for(i)
        ax.plot(roc["fpr"], roc["mean_tpr"], color=color, linewidth=1.8, label=label)
        se = roc["se_tpr"].fillna(0.0)
        ax.fill_between(roc["fpr"], np.clip(roc["mean_tpr"] - se, 0, 1), np.clip(roc["mean_tpr"] + se, 0, 1),
                        color=color, alpha=0.18, linewidth=0)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 − specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title("Mean ROC over runs (band: ±1 SE)")
    ax.legend(loc="lower right", frameon=True, framealpha=0.9)
    return save_figure(fig, out_png, out_pdf)


@styled
def plot_per_split(
    summary: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    metric: str = "balanced_accuracy",
) -> list[Path]:
    """One line per arm through its per-split means of ``metric``, seeds as small jittered points."""
    _require(summary, ["split", metric], "summary")
    arms_of_runs = _arm_column(summary)
    arms = _ordered(arms_of_runs.unique(), ARM_ORDER)
    splits = sorted(pd.to_numeric(summary["split"]).unique())
    rng = np.random.default_rng(JITTER_SEED)
    dodge = 0.36 / max(len(arms), 1)
    fig, ax = plt.subplots(figsize=(max(5.5, 0.7 * len(splits) + 3.5), 4.2))
    for i, arm in enumerate(arms):
        runs = summary[arms_of_runs == arm]
        offset = (i - (len(arms) - 1) / 2) * dodge
        split_num = pd.to_numeric(runs["split"])
        values = pd.to_numeric(runs[metric], errors="coerce")
        color = color_for(i)
        ax.scatter(split_num + offset + dodge * 0.3 + _jitter(len(runs), rng, dodge * 0.15), values, s=14, color=color,
                   alpha=0.55, linewidth=0, zorder=2)
        means = values.groupby(split_num).mean()
        n_seeds = values.groupby(split_num).count()
        seeds = f"{n_seeds.min()}" if n_seeds.min() == n_seeds.max() else f"{n_seeds.min()}–{n_seeds.max()}"
        ax.plot(means.index + offset, means.to_numpy(), marker="o", markersize=5, color=color, linewidth=1.6,
                zorder=3, label=f"{arm} ({seeds} seed(s) per split)")
    ax.set_xticks(splits, [str(int(s)) for s in splits])
    ax.set_xlabel("split")
    ax.set_ylabel(_metric_label(metric))
    if metric in _UNIT_INTERVAL_METRICS:
        ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"{_metric_label(metric).capitalize()} per split\n(line: mean over seeds; points: single runs)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------------------
# tissue ablation study
# ----------------------------------------------------------------------------------------------
def _set_sort_key(name: str) -> tuple:
    """Sort pp1, pp2, ..., pp10 numerically."""
    digits = re.findall(r"\d+", name)
    return (int(digits[-1]) if digits else 0, name)


@styled
def plot_tissue_fractions(
    fractions: pd.DataFrame,
    kw_row: pd.DataFrame | pd.Series | Mapping,
    posthoc: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    labels: Mapping[str, str] | None = None,
    value: str = "fraction_correct",
    group: str = "set",
    subject: str = "unit",
) -> list[Path]:
    """Box plot with jittered points of the per-subject fraction of correct slices per image set, the
    Kruskal-Wallis H and p in the title and Steel-Dwass significance brackets (p < ``ALPHA``) with stars.
    """
    means = subject_means(fractions, value, group, subject)
    _require(posthoc, ["group_a", "group_b", "p_value"], "posthoc")
    sets = sorted(means[group].unique(), key=_set_sort_key)
    if labels is None:
        labels = {s: f"CNN{k + 1} ({s})" for k, s in enumerate(sets)}
    if isinstance(kw_row, pd.DataFrame):
        if len(kw_row) != 1:
            raise ValueError(f"kw_row must hold one row, got {len(kw_row)}")
        kw_row = kw_row.iloc[0]
    h, p = float(kw_row.get("H", np.nan)), float(kw_row.get("p_value", np.nan))

    data = [means.loc[means[group] == s, value].to_numpy(dtype=float) for s in sets]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.25 * len(sets) + 1.5), 5.0))
    xs = np.arange(1, len(sets) + 1)
    box = ax.boxplot(data, positions=xs, widths=0.55, patch_artist=True, showfliers=False,
                     medianprops={"color": "0.1", "linewidth": 1.5})
    for i, patch in enumerate(box["boxes"]):
        patch.set_facecolor(color_for(i))
        patch.set_alpha(0.35)
    rng = np.random.default_rng(JITTER_SEED)
    for i, values in enumerate(data):
        ax.scatter(xs[i] + _jitter(len(values), rng, 0.15), values, s=12, color=color_for(i), alpha=0.8,
                   linewidth=0, zorder=3)
    ax.set_xticks(xs, [f"{labels.get(s, s)}\nn = {len(d)}" for s, d in zip(sets, data)])
    ax.set_xlabel("image set")
    ax.set_ylabel(f"{_metric_label(value)}\n(per subject, mean over splits)")

    sig = posthoc[pd.to_numeric(posthoc["p_value"], errors="coerce") < ALPHA]
    sig = sig[sig["group_a"].astype(str).isin(sets) & sig["group_b"].astype(str).isin(sets)]
    position = {s: x for s, x in zip(sets, xs)}
    top = 1.0
    if len(sig):
        spans = [(abs(position[str(a)] - position[str(b)]), str(a), str(b), pv)
                 for a, b, pv in zip(sig["group_a"], sig["group_b"], sig["p_value"])]
        step, height = 0.06, 0.015
        for level, (_, a, b, pv) in enumerate(sorted(spans)):
            y = 1.03 + level * step
            x1, x2 = sorted((position[a], position[b]))
            _bracket(ax, x1, x2, y, height, significance_stars(pv), fontsize=9)
            top = y + height + 0.05
        note = "brackets: Steel-Dwass p < 0.05 (* < 0.05, ** < 0.01, *** < 0.001)"
    else:
        note = "no pair significant (Steel-Dwass)"
    ax.set_ylim(-0.03, max(1.05, top))
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.grid(axis="x", visible=False)
    ax.set_title(f"Correct slices per subject by image set\nKruskal-Wallis H = {h:.2f}, {format_p(p)}")
    fig.text(0.01, -0.01, note, ha="left", va="top", fontsize=8, color="0.3")
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------------------
# PIF and transfer studies
# ----------------------------------------------------------------------------------------------
@styled
def plot_variant_comparison(
    summary: pd.DataFrame,
    variant_a: str,
    variant_b: str,
    metrics: Sequence[str],
    tests: pd.DataFrame | None,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    labels: Mapping[str, str] | None = None,
    pair_by: Sequence[str] = ("split", "seed"),
) -> list[Path]:
    """One panel per metric comparing two variants: box + points, paired runs (same ``pair_by`` keys)
    joined by lines, the test and p-value of ``tests`` (:func:`mrixai.stats.variant_comparison`) in the
    panel title. ``labels`` may rename metrics and variants.
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("plot_variant_comparison needs at least one metric")
    pair_by = list(pair_by)
    _require(summary, ["variant", *metrics], "summary")
    for v in (variant_a, variant_b):
        if v not in set(summary["variant"].astype(str)):
            raise ValueError(f"variant {v!r} not in the summary (it has {sorted(summary['variant'].unique())})")
    labels = dict(labels or {})
    name_a, name_b = labels.get(variant_a, variant_a), labels.get(variant_b, variant_b)
    keys = [k for k in pair_by if k in summary.columns]
    runs_a = summary[summary["variant"].astype(str) == variant_a]
    runs_b = summary[summary["variant"].astype(str) == variant_b]
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.9 * len(metrics) + 0.6, 4.2), squeeze=False)
    rng = np.random.default_rng(JITTER_SEED)
    for ax, metric in zip(axes[0], metrics):
        va = pd.to_numeric(runs_a[metric], errors="coerce")
        vb = pd.to_numeric(runs_b[metric], errors="coerce")
        box = ax.boxplot([va.dropna(), vb.dropna()], positions=[0, 1], widths=0.45, patch_artist=True,
                         showfliers=False, medianprops={"color": "0.1", "linewidth": 1.4})
        for i, patch in enumerate(box["boxes"]):
            patch.set_facecolor(color_for(i))
            patch.set_alpha(0.3)
        if keys:
            merged = pd.merge(runs_a[keys + [metric]], runs_b[keys + [metric]], on=keys, suffixes=("_a", "_b"))
            for _, row in merged.iterrows():
                ax.plot([0, 1], [row[f"{metric}_a"], row[f"{metric}_b"]], color="0.55", linewidth=0.8,
                        alpha=0.7, zorder=2)
        ax.scatter(_jitter(len(va), rng, 0.03), va, s=18, color=color_for(0), zorder=3, linewidth=0)
        ax.scatter(1 + _jitter(len(vb), rng, 0.03), vb, s=18, color=color_for(1), zorder=3, linewidth=0)
        ax.set_xticks([0, 1], [f"{name_a}\nn = {va.notna().sum()}", f"{name_b}\nn = {vb.notna().sum()}"])
        ax.set_xlim(-0.5, 1.5)
        ax.set_ylabel(_metric_label(metric, labels))
        ax.grid(axis="x", visible=False)
        title = _metric_label(metric, labels)
        if tests is not None and len(tests):
            _require(tests, ["metric", "p_value"], "tests")
            row = tests[tests["metric"] == metric]
            if len(row):
                test = str(row["test"].iloc[0]) if "test" in row else "test"
                test = {"wilcoxon": "Wilcoxon", "mannwhitneyu": "Mann-Whitney"}.get(test, test)
                title += f"\n{test} {format_p(float(row['p_value'].iloc[0]))}"
        ax.set_title(title, fontsize=10)
    fig.suptitle(f"{name_a} vs {name_b} (lines join runs with the same split and seed)")
    fig.tight_layout()
    return save_figure(fig, out_png, out_pdf)


# ----------------------------------------------------------------------------------------------
# tables
# ----------------------------------------------------------------------------------------------
def _wrap_header(name: str, width: int) -> str:
    """Wrap a column name at spaces and underscores (kept) into lines of about ``width`` characters."""
    tokens = re.findall(r"[^_\s]+_?|\s+", str(name))
    lines, line = [], ""
    for token in tokens:
        if token.isspace():
            token = " "
        if line and len(line) + len(token.rstrip()) > width:
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    if line:
        lines.append(line.rstrip())
    return "\n".join(lines) if lines else str(name)


def _format_cell(value: object, float_format: str) -> str:
    """A cell as text: floats with ``float_format``, NaN as an empty cell."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return float_format.format(float(value))
    return str(value)


@styled
def render_table(
    df: pd.DataFrame,
    out_png: str | Path,
    out_pdf: str | Path | None = None,
    title: str = "",
    float_format: str = "{:.3g}",
    header_width: int = 12,
) -> list[Path]:
    """Render a table as a figure (wrapped column headers, height growing with the number of rows)."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"render_table needs a pandas DataFrame, got {type(df).__name__}")
    try:
        float_format.format(1.5)
    except (ValueError, IndexError, KeyError) as err:
        raise ValueError(f"bad float_format {float_format!r}: {err}") from err
    headers = [_wrap_header(c, header_width) for c in df.columns]
    cells = [[_format_cell(v, float_format) for v in row] for row in df.itertuples(index=False)]
    header_lines = max((h.count("\n") + 1 for h in headers), default=1)
    # column widths from the longest text, in characters
    widths = []
    for j, h in enumerate(headers):
        longest = max([len(line) for line in h.split("\n")] + [len(r[j]) for r in cells] + [3])
        widths.append(longest)
    char_in = 0.075
    fig_w = min(max(4.0, sum(widths) * char_in + 0.4 * len(widths)), 22.0)
    row_in = 0.26
    fig_h = max(1.5, (len(cells) + header_lines * 0.7 + 1) * row_in + (0.5 if title else 0.1))
    fig, ax = plt.subplots(figsize=(fig_w, fig_h))
    ax.axis("off")
    if not cells:
        ax.text(0.5, 0.5, "(no rows)", ha="center", va="center", fontsize=10, transform=ax.transAxes)
    else:
        total = float(sum(widths))
        table = ax.table(cellText=cells, colLabels=headers, colWidths=[w / total for w in widths],
                         loc="upper center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        n_rows = len(cells) + header_lines * 0.7
        for (r, c), cell in table.get_celld().items():
            cell.set_linewidth(0.4)
            cell.set_edgecolor("0.7")
            if r == 0:
                cell.set_height(header_lines * 0.7 / (n_rows + 0.5))
                cell.set_facecolor("#e8eef5")
                cell.set_text_props(weight="bold")
            else:
                cell.set_height(1.0 / (n_rows + 0.5))
                if r % 2 == 0:
                    cell.set_facecolor("#f7f7f7")
    if title:
        ax.set_title(title, fontsize=11, loc="left")
    return save_figure(fig, out_png, out_pdf)
