"""The figure rules' entry points: read the pipeline's tables and maps, call one plot function.

One function per figure rule; each takes file paths (inputs and the PNG/PDF outputs) and plain
options, so the scripts stay one call long.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mrixai.explain.aggregate import read_mean_maps
from mrixai.explain.regions import to_sample_grid
from mrixai.figures import attribution as fa
from mrixai.figures import studies as fs

log = logging.getLogger(__name__)

Path_ = str | Path


def _tsv(path: Path_) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype={"unit": str, "subject": str})


def registration_metrics(
    summary: Path_, wilcoxon: Path_, out_png: Path_, out_pdf: Path_, baseline: Path_ | None = None
) -> None:
    """Bar chart of balanced accuracy, sensitivity and specificity per arm with Wilcoxon p-values,
    and the linear baseline's feature sets (``baseline`` summary) beside them."""
    tests = _tsv(wilcoxon)
    fs.plot_registration_metrics(_tsv(summary), tests, out_png, out_pdf,
                                 baseline=_tsv(baseline) if baseline else None)


def registration_roc(roc: Path_, summary: Path_, out_png: Path_, out_pdf: Path_) -> None:
    """Mean ROC per arm with a standard-error band; AUC mean +- sd in the legend."""
    table, runs = _tsv(roc), _tsv(summary)
    rocs = {v.removeprefix("reg-"): part.drop(columns="variant") for v, part in table.groupby("variant")}
    aucs = {
        v.removeprefix("reg-"): (float(part["roc_auc"].mean()), float(part["roc_auc"].std(ddof=1)))
        for v, part in runs.groupby("variant")
    }
    fs.plot_mean_roc(rocs, out_png, out_pdf, aucs=aucs)


def registration_splits(summary: Path_, out_png: Path_, out_pdf: Path_) -> None:
    """Balanced accuracy of every split (seeds as points) per arm."""
    fs.plot_per_split(_tsv(summary), out_png, out_pdf)


def tissue_fractions(fractions: Path_, kruskal: Path_, posthoc: Path_, out_png: Path_, out_pdf: Path_) -> None:
    """Box plot of the per-subject fraction of correct slices for CNN1..CNN5, Steel-Dwass marks."""
    fs.plot_tissue_fractions(_tsv(fractions), _tsv(kruskal), _tsv(posthoc), out_png, out_pdf)


VARIANT_LABELS = {
    "model-baseline": "baseline CNN",
    "model-pif": "PIF CNN",
    "init-scratch": "from scratch",
    "init-finetune": "fine-tuned",
    "wall_time_s": "training time (s)",
    "epochs_run": "epochs to early stop",
    "balanced_accuracy": "balanced accuracy",
}


def variant_comparison(
    variants: Sequence[str], summary: Path_, comparison: Path_, out_png: Path_, out_pdf: Path_
) -> None:
    """PIF vs baseline (time, epochs, accuracy), or fine-tuning vs scratch."""
    a, b = variants
    fs.plot_variant_comparison(
        _tsv(summary), a, b, ["wall_time_s", "epochs_run", "balanced_accuracy"], _tsv(comparison),
        out_png, out_pdf, labels=VARIANT_LABELS,
    )


def template_on_grid(template_nii: Path_, store_json: Path_) -> tuple[np.ndarray, np.ndarray]:
    """The template image on a store's sample grid, and that grid's affine."""
    meta = json.loads(Path(store_json).read_text())
    data = np.asanyarray(nib.load(template_nii).dataobj, dtype=np.float32)
    return to_sample_grid(data, meta), np.asarray(meta["affine"], dtype=float)


def mean_maps(
    maps_dir: Path_,
    template_nii: Path_,
    store_json: Path_,
    out_png: Path_,
    out_pdf: Path_,
    *,
    kind: str,
    methods: Sequence[str],
    labels: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
    title: str = "",
    n_slices: int = 5,
) -> None:
    """Mean maps of one ``kind`` (group, outcome or run) for ``methods`` over template slices.

    ``names`` fixes the row order of a method's maps (e.g. the two groups); absent ones are skipped
    (an outcome nobody had).
    """
    index, maps = read_mean_maps(maps_dir)
    labels = dict(labels or {})
    template, affine = template_on_grid(template_nii, store_json)
    rows: dict[str, dict[str, np.ndarray]] = {}
    for method in methods:
        present = sorted({name for (m, k, name) in maps if m == method and k == kind})
        order = [n for n in (names or present) if n in present]
        if not order:
            raise ValueError(f"{maps_dir}: no {kind} mean maps of method {method!r}")
        sizes = {r.name: r.n for r in index.itertuples() if r.method == method and r.kind == kind}
        key = labels.get(method, method)
        rows[key] = {f"{n} (n={sizes[n]})": maps[(method, kind, n)] for n in order}
    fa.plot_mean_maps(rows, template, out_png, out_pdf, affine=affine, n_slices=n_slices, title=title)


def top_regions(
    regions: Path_, out_png: Path_, out_pdf: Path_, *, method: str, group: str, k: int,
    highlight: Sequence[str] = (), label: str = "",
) -> None:
    """Top-k atlas regions by sum, density and gain of one method among one group's subjects."""
    table = _tsv(regions)
    part = table[(table["method"] == method) & (table["group"] == group)]
    if part.empty:
        raise ValueError(f"{regions}: no rows of method {method!r} and group {group!r}")
    fa.plot_top_regions(
        part, out_png, out_pdf, k=k, highlight=highlight,
        title=f"Top-{k} regions, {label or method}, {group} test subjects ({part['unit'].nunique()} units, "
        f"{part['run'].nunique()} runs)",
    )


def beta_overlap(overlap: Path_, out_png: Path_, out_pdf: Path_, *, metric: str, k: int,
                 labels: Mapping[str, str] | None = None) -> None:
    """Top-k region overlap between LRP beta values."""
    table = _tsv(overlap)
    table = table[table["metric"] == metric].drop(columns="metric")
    if table.empty:
        raise ValueError(f"{overlap}: no rows for metric {metric!r} (fewer than two LRP beta methods?)")
    labels = dict(labels or {})
    table = table.assign(method_a=table["method_a"].map(lambda m: labels.get(m, m)),
                         method_b=table["method_b"].map(lambda m: labels.get(m, m)))
    fa.plot_overlap_matrix(table, out_png, out_pdf, k=k,
                           title=f"Top-{k} regions by {metric} shared between LRP beta values")


def hippocampus(points: Path_, test: Path_, out_png: Path_, out_pdf: Path_, *,
                labels: Mapping[str, str] | None = None) -> None:
    """A region's native volume vs its relevance (by default hippocampal grey matter among true
    positives; the test table's region and outcomes say which)."""
    df, result = _tsv(points), _tsv(test).iloc[0].to_dict()
    label = (labels or {}).get(result["method"], result["method"])
    region = str(result.get("region", "Hippocampus"))
    outcomes = str(result.get("outcomes", "TP") or "TP")
    who = {"TP": "true positives"}.get(outcomes, f"outcomes {outcomes}")
    if len(df) < 3:
        note = pd.DataFrame({"note": [f"{len(df)} subject(s) ({who}) among the test subjects of all runs: "
                                      f"too few to correlate {region} volume with relevance"]})
        fs.render_table(note, out_png, out_pdf, title=f"{region} volume vs relevance ({label})")
        return
    fa.plot_hippocampus(
        df, result, out_png, out_pdf,
        title=f"{region} volume vs relevance ({label}, {who})",
        region=region,
        point_label=who.removesuffix("s") if outcomes == "TP" else who,
    )


L2_GROUP_LABELS = {"TP": "true positives", "TN": "true negatives", "all": "all test subjects"}


def robustness_l2(l2: Path_, out_png: Path_, out_pdf: Path_, *, labels: Mapping[str, str] | None = None) -> None:
    """The L2-distance table as a figure: per method (rows) and subject group (columns: true
    positives, true negatives, all test subjects), the mean ± sd over run pairs and their number."""
    table = _tsv(l2)
    if "group" not in table.columns:  # a table written before the per-outcome distances
        table = table.assign(group="all")
    if table.empty:
        wide = pd.DataFrame({"note": ["fewer than two runs: no pairwise distances"]})
    else:
        stats = table.groupby(["method", "group"], sort=False)["l2"].agg(["count", "mean", "std"]).reset_index()
        stats["cell"] = [
            f"{m:.3g}" + ("" if pd.isna(sd) else f" ± {sd:.2g}") + f" ({n} pair{'' if n == 1 else 's'})"
            for m, sd, n in zip(stats["mean"], stats["std"], stats["count"])
        ]
        order = [g for g in L2_GROUP_LABELS if g in set(stats["group"])]
        order += [g for g in dict.fromkeys(stats["group"]) if g not in order]
        wide = stats.pivot(index="method", columns="group", values="cell")
        wide = wide.reindex(index=list(dict.fromkeys(stats["method"])), columns=order).fillna("no pair")
        wide.columns = [f"{L2_GROUP_LABELS.get(g, g)}: mean L2" for g in order]
        wide = wide.reset_index()
        wide["method"] = wide["method"].map(lambda m: (labels or {}).get(m, m))
    fs.render_table(wide, out_png, out_pdf,
                    title="L2 distance between max-scaled mean maps of identical retrainings, per outcome")


def robustness_topk(topk: Path_, out_png: Path_, out_pdf: Path_, *, labels: Mapping[str, str] | None = None) -> None:
    """Mean top-k region intersection across run pairs, per method (rows) and metric (columns)."""
    table = _tsv(topk)
    if table.empty:
        wide = pd.DataFrame({"note": ["fewer than two runs: no overlap"]})
        k = "k"
    else:
        k = int(table["k"].iloc[0])
        # Pairs are formed within splits; pool them: pair-weighted mean, and the sd of the split means.
        pooled = table.assign(w=table["n_pairs"] * table["mean_overlap"]).groupby(["method", "metric"], sort=False)
        summary = pooled.agg(w=("w", "sum"), n=("n_pairs", "sum"), sd=("mean_overlap", "std")).reset_index()
        summary["cell"] = [
            f"{w / n:.1f}" + ("" if pd.isna(sd) else f" ± {sd:.1f}") for w, n, sd in zip(summary.w, summary.n, summary.sd)
        ]
        wide = summary.pivot(index="method", columns="metric", values="cell").reset_index()
        wide["method"] = wide["method"].map(lambda m: (labels or {}).get(m, m))
    fs.render_table(wide, out_png, out_pdf,
                    title=f"Mean top-{k} region overlap between identical retrainings (± sd over splits)")


def enrichment(table: Path_, out_png: Path_, out_pdf: Path_, *, group: str,
               labels: Mapping[str, str] | None = None) -> None:
    """Enrichment of positive relevance in the planted-effect mask, per method (one point per run)."""
    df = _tsv(table)
    df = df[df["group"] == group]
    per_run = df.groupby(["method", "run"], sort=False, as_index=False)["enrichment"].mean()
    per_run["method"] = per_run["method"].map(lambda m: (labels or {}).get(m, m))
    fa.plot_enrichment(per_run, out_png, out_pdf,
                       title=f"Positive relevance in the planted effect relative to its volume ({group})")


def randomisation(table: Path_, out_png: Path_, out_pdf: Path_, *, threshold: float,
                  labels: Mapping[str, str] | None = None) -> None:
    """Spearman correlation of trained vs randomised-model maps per method."""
    df = _tsv(table)
    df["method"] = df["method"].map(lambda m: (labels or {}).get(m, m))
    fa.plot_randomisation(df, out_png, out_pdf, threshold=threshold)


def qc_montage(images: Sequence[Path_], units: Sequence[str], out_png: Path_, out_pdf: Path_, *,
               title: str = "") -> None:
    """Mid-axial slice of every unit's template-space brain (one arm)."""
    arrays = [np.asanyarray(nib.as_closest_canonical(nib.load(p)).dataobj, dtype=np.float32) for p in images]
    fa.plot_qc_montage(arrays, [f"sub-{u}" for u in units], out_png, out_pdf, title=title)
