"""The saliency-guided masking study, end to end: :func:`run_masking_study`.

1. Subjects are split (seeded) into train / test (``test_fraction``) and the training part again
   into train / validation (``val_fraction``). Selected axial slices (:mod:`.slices`) of the
   masked images (non-brain zeroed) train a 2D U-Net on the tissue labels (:mod:`.train`).
2. On the test slices three cases are segmented: ``manual`` (the image times the subject's brain
   mask), ``none`` (the raw head image) and ``saliency``: the guided-backprop saliency of the raw
   slice (:mod:`.saliency`), enhanced and smooth-thresholded, places a template built from the
   training masks (:mod:`.placement`); the image times the placed mask is segmented again. With
   ``tune_on_validation`` the threshold centre and the placement's area weight are chosen among
   ``tuning_centres`` x ``tuning_area_weights`` by the Dice of the placed masks against the
   validation subjects' brain masks (never the test subjects'); otherwise ``threshold_centre``
   and ``area_weight`` are used as given.
3. Per-class metrics of each case (``metrics.tsv``), the Dice of the placed brain mask against
   the subject's mask (``brain_mask_dice.tsv``, with the template placed at the slice centre as a
   no-information baseline), the log-normal check of the saliency magnitude (``lognormal.tsv``;
   over whole slices, ``region`` slice, and inside the true brain mask, ``region`` brain),
   the training history, the split, a checkpoint, a summary with run times, and one figure per
   case plus a histogram of the log saliency (PNG + PDF). ``threshold_sensitivity.tsv`` gives
   the brain-mask Dice of every (centre, area weight) of the tuning grid on the validation and
   the test slices, and the per-class Dice of the second segmentation on the test slices at
   every centre with the chosen weight, so the choice can be judged on the data.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from mrixai.io import atomic_path
from mrixai.learn.train import library_versions
from mrixai.masking.metrics import CLASS_NAMES, class_metrics, lognormal_fit, mask_dice
from mrixai.masking.placement import Placement, build_template, paste, place_template_weights, template_bank
from mrixai.masking.saliency import (
    enhance_saliency,
    guided_backprop_saliency,
    smooth_threshold,
)
from mrixai.masking.slices import (
    SUBJECT_KEYS,
    SliceSet,
    extract_slices,
    normalise_slices,
)
from mrixai.masking.train import predict_labels, train_segmenter

log = logging.getLogger(__name__)

CASES = ("manual", "saliency", "none")


def split_subjects(
    subjects: Sequence[str], test_fraction: float, val_fraction: float, seed: int
) -> dict[str, list[str]]:
    """Seeded subject-level split into ``train``, ``val`` and ``test`` (each non-empty)."""
    for name, value in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    if len(set(subjects)) != len(subjects):
        raise ValueError(f"subject ids must be unique, got {list(subjects)}")
    if len(subjects) < 3:
        raise ValueError(f"need at least 3 subjects (train, validation, test), got {len(subjects)}")
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    n_test = min(max(1, round(test_fraction * len(order))), len(order) - 2)
    rest = order[n_test:]
    n_val = min(max(1, round(val_fraction * len(rest))), len(rest) - 1)
    return {"train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]), "test": sorted(order[:n_test])}


def _write_tsv(df: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log.info("wrote %s", path)


def _masked_input(slices: SliceSet, masks: np.ndarray, percentile: float) -> np.ndarray:
    return normalise_slices(slices.image * masks, percentile)


def load_split_slices(
    by_id: dict[str, dict],
    split: dict[str, list[str]],
    min_brain_fraction: float,
    slice_step: int,
    parts: Sequence[str] = ("train", "val", "test"),
) -> dict[str, SliceSet]:
    """The selected slices of the subjects of each of ``parts`` of ``split`` (only those are read),
    tissue labels kept only inside the brain mask."""
    sets = {k: extract_slices([by_id[s] for s in split[k]], min_brain_fraction, slice_step) for k in parts}
    for sl in sets.values():
        sl.dseg = np.where(sl.mask, sl.dseg, 0).astype(np.uint8)  # tissue only inside the brain
    return sets


def train_study_segmenter(train: SliceSet, val: SliceSet, normalise_percentile: float, **options):
    """The study's segmenter: trained on the masked ``train`` slices, early-stopped on the masked
    ``val`` slices (``options``: the keywords of :func:`mrixai.masking.train.train_segmenter`)."""
    return train_segmenter(
        _masked_input(train, train.mask, normalise_percentile),
        train.dseg,
        _masked_input(val, val.mask, normalise_percentile),
        val.dseg,
        **options,
    )


def tuning_grid(
    tune_on_validation: bool,
    tuning_centres: Sequence[float],
    tuning_area_weights: Sequence[float],
    threshold_centre: float,
    area_weight: float,
) -> tuple[list[float], list[float]]:
    """The threshold centres and area weights the placement is tried with (one pair without tuning)."""
    if not tune_on_validation:
        return [float(threshold_centre)], [float(area_weight)]
    centres, weights = [float(c) for c in tuning_centres], [float(w) for w in tuning_area_weights]
    if not centres or not weights:
        raise ValueError(f"tuning needs centres and area weights, got {tuning_centres!r}, {tuning_area_weights!r}")
    return centres, weights


def choose_placement(val_dice: dict[tuple[float, float], float], threshold_centre: float) -> tuple[float, float]:
    """The (centre, area weight) of the best validation Dice; ties go to the centre nearest ``threshold_centre``."""
    return max(val_dice, key=lambda key: (val_dice[key], -abs(key[0] - threshold_centre)))


def placement_grid(
    enhanced: np.ndarray,
    bank,
    centres: Sequence[float],
    weights: Sequence[float],
    width: float,
    one_sided: bool,
    score: str,
) -> dict[tuple[float, float], list[Placement]]:
    """Placements of every slice for every (threshold centre, area weight)."""
    out: dict[tuple[float, float], list[Placement]] = {(c, w): [] for c in centres for w in weights}
    for centre in centres:
        for slice_map in smooth_threshold(enhanced, centre, width, one_sided):
            for weight, placement in zip(weights, place_template_weights(slice_map, bank, weights, score)):
                out[(centre, weight)].append(placement)
    return out


def run_masking_study(
    subjects: list[dict],
    out_dir: str | Path,
    *,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    min_brain_fraction: float = 0.7,
    slice_step: int = 2,
    normalise_percentile: float = 99.0,
    base_channels: int = 8,
    depth: int = 3,
    max_epochs: int = 12,
    min_epochs: int = 3,
    patience: int = 4,
    batch_size: int = 16,
    learning_rate: float = 0.1,
    momentum: float = 0.9,
    flip_p: float = 0.5,
    saliency_target: str = "brain_logits",
    log_offset: float = 1e-3,
    threshold_centre: float = 2.0,
    threshold_width: float = 0.5,
    threshold_one_sided: bool = False,
    area_weight: float = 0.5,
    tune_on_validation: bool = True,
    tuning_centres: Sequence[float] = (1.0, 1.25, 1.5, 1.75, 2.0),
    tuning_area_weights: Sequence[float] = (0.5, 0.6, 0.7, 0.8),
    template_threshold: float = 0.5,
    template_scales: Sequence[float] = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2),
    template_angles: Sequence[float] = (-10.0, 0.0, 10.0),
    placement_score: str = "dice",
    lognormal_sample: int = 5000,
    n_example_slices: int = 4,
    device: str = "cpu",
    threads: int = 1,
    figures: bool = True,
    figure_dir: str | Path | None = None,
) -> dict[str, pd.DataFrame]:
    """Run the whole saliency-guided masking study on ``subjects`` and write its outputs to ``out_dir``.

    Args:
        subjects: one record per subject with keys ``subject`` (id), ``image`` (bias-corrected head
            image), ``mask`` (brain mask) and ``dseg`` (tissue labels 0..3), paths on one grid.
        out_dir: folder for ``metrics.tsv``, ``brain_mask_dice.tsv``, ``lognormal.tsv``,
            ``threshold_sensitivity.tsv``, ``history.tsv``, ``splits.tsv``, ``summary.json``, ``model.pt`` and the figures
            ``masking_case-<case>.png/.pdf`` and ``masking_lognormal.png/.pdf``.
        seed: seeds the split, the training and the log-normal subsamples.
        figures: whether to draw the figures; ``figure_dir``: where (default ``out_dir``).
        (other keywords): see the modules :mod:`.slices`, :mod:`.train`, :mod:`.saliency` and
            :mod:`.placement`; ``template_scales`` / ``template_angles`` are searched at placement.

    Returns:
        The tables ``metrics``, ``brain_mask_dice``, ``threshold_sensitivity``, ``lognormal``,
        ``history`` and ``splits``.
    """
    started = time.perf_counter()
    timing: dict[str, float] = {}
    if not subjects:
        raise ValueError("no subjects given")
    for record in subjects:
        missing = [key for key in SUBJECT_KEYS if key not in record]
        if missing:
            raise ValueError(f"subject record lacks {missing}: {record!r}")
    if not isinstance(n_example_slices, int) or n_example_slices < 1:
        raise ValueError(f"n_example_slices must be an integer >= 1, got {n_example_slices!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    by_id = {str(r["subject"]): r for r in subjects}
    split = split_subjects(list(by_id), test_fraction, val_fraction, seed)
    log.info("split: %d train, %d validation, %d test subjects", *(len(split[k]) for k in ("train", "val", "test")))
    sets = load_split_slices(by_id, split, min_brain_fraction, slice_step)
    timing["load"] = time.perf_counter() - started

    # 1. the segmenter, trained on masked slices
    tick = time.perf_counter()
    train, val, test = sets["train"], sets["val"], sets["test"]
    model, history, fit_summary = train_study_segmenter(
        train,
        val,
        normalise_percentile,
        seed=seed,
        base_channels=base_channels,
        depth=depth,
        max_epochs=max_epochs,
        min_epochs=min_epochs,
        patience=patience,
        batch_size=batch_size,
        learning_rate=learning_rate,
        momentum=momentum,
        flip_p=flip_p,
        device=device,
        threads=threads,
    )
    timing["train"] = time.perf_counter() - tick
    dev = fit_summary["device"]

    # 2. saliency on the raw slices, enhancement, template placement (tuned on validation slices)
    tick = time.perf_counter()
    template = build_template(train.mask, template_threshold)
    bank = template_bank(template, test.image.shape[1:], template_scales, template_angles)
    centres, weights = tuning_grid(tune_on_validation, tuning_centres, tuning_area_weights, threshold_centre, area_weight)
    grid: dict[str, dict] = {}
    saliency_sets: dict[str, np.ndarray] = {}
    enhanced_sets: dict[str, np.ndarray] = {}
    for name, sl in (("validation", val), ("test", test)):
        x = normalise_slices(sl.image, normalise_percentile)
        saliency_sets[name] = guided_backprop_saliency(model, x, saliency_target, batch_size, dev)
        enhanced_sets[name] = enhance_saliency(saliency_sets[name], log_offset)
        grid[name] = placement_grid(
            enhanced_sets[name], bank, centres, weights, threshold_width, threshold_one_sided, placement_score
        )
    val_dice = {key: mask_dice(np.stack([p.mask for p in pl]), val.mask) for key, pl in grid["validation"].items()}
    chosen_centre, chosen_weight = choose_placement(val_dice, threshold_centre)
    log.info(
        "placement: threshold centre %g, area weight %g (validation brain-mask Dice %.3f)",
        chosen_centre, chosen_weight, val_dice[(chosen_centre, chosen_weight)],
    )  # fmt: skip
    raw = normalise_slices(test.image, normalise_percentile)
    saliency, enhanced = saliency_sets["test"], enhanced_sets["test"]
    thresholded = smooth_threshold(enhanced, chosen_centre, threshold_width, threshold_one_sided)
    placements = grid["test"][(chosen_centre, chosen_weight)]
    placed = np.stack([p.mask for p in placements])
    centre_top, centre_left = (np.array(test.image.shape[1:]) - template.shape) // 2
    centred = paste(template, test.image.shape[1:], int(centre_top), int(centre_left))
    timing["saliency_and_placement"] = time.perf_counter() - tick

    # 3. segmentation of the three cases and their metrics
    tick = time.perf_counter()
    inputs = {
        "manual": _masked_input(test, test.mask, normalise_percentile),
        "saliency": _masked_input(test, placed, normalise_percentile),
        "none": raw,
    }
    preds = {case: predict_labels(model, x, batch_size, dev) for case, x in inputs.items()}
    rows = []
    for case in CASES:
        table = class_metrics(preds[case], test.dseg)
        table.insert(0, "case", case)
        table["n_slices"] = len(test)
        rows.append(table)
    metrics = pd.concat(rows, ignore_index=True)
    timing["segment"] = time.perf_counter() - tick

    tick = time.perf_counter()
    sensitivity = []
    for name, sl in (("validation", val), ("test", test)):
        for (centre, weight), pl in grid[name].items():
            masks = np.stack([p.mask for p in pl])
            row = {
                "set": name,
                "threshold_centre": centre,
                "threshold_width": threshold_width,
                "area_weight": weight,
                "brain_mask_dice": mask_dice(masks, sl.mask),
                "brain_mask_dice_slice_mean": float(np.mean([mask_dice(m, t) for m, t in zip(masks, sl.mask)])),
            }
            if name == "test" and weight == chosen_weight:
                x = _masked_input(test, masks, normalise_percentile)
                seg = class_metrics(predict_labels(model, x, batch_size, dev), test.dseg)
                row.update({f"dice_{r['class']}": r["dice"] for _, r in seg.iterrows()})
            row["selected"] = bool(centre == chosen_centre and weight == chosen_weight)
            sensitivity.append(row)
    sensitivity = pd.DataFrame(sensitivity)
    timing["threshold_sensitivity"] = time.perf_counter() - tick

    mask_rows = []
    for method, masks in (("saliency", placed), ("template_centre", np.broadcast_to(centred, test.mask.shape))):
        per_slice = np.array([mask_dice(m, t) for m, t in zip(masks, test.mask)])
        for subject in [*split["test"], "all"]:
            sel = np.ones(len(test), bool) if subject == "all" else test.subject == subject
            mask_rows.append(
                {
                    "method": method,
                    "subject": subject,
                    "n_slices": int(sel.sum()),
                    "dice": mask_dice(masks[sel], test.mask[sel]),
                    "dice_slice_mean": float(per_slice[sel].mean()),
                    "dice_slice_min": float(per_slice[sel].min()),
                }
            )
    brain_dice = pd.DataFrame(mask_rows)

    ln_rows = []
    for i, subject in enumerate([*split["test"], "all"]):
        sel = np.ones(len(test), bool) if subject == "all" else test.subject == subject
        for region, values in (("slice", saliency[sel]), ("brain", saliency[sel][test.mask[sel]])):
            ln_rows.append({"subject": subject, "region": region, **lognormal_fit(np.abs(values), lognormal_sample, seed + i)})
    lognormal = pd.DataFrame(ln_rows)
    splits = pd.DataFrame([{"subject": s, "set": k} for k, ids in split.items() for s in ids])

    _write_tsv(metrics, out / "metrics.tsv")
    _write_tsv(brain_dice, out / "brain_mask_dice.tsv")
    _write_tsv(lognormal, out / "lognormal.tsv")
    _write_tsv(sensitivity, out / "threshold_sensitivity.tsv")
    _write_tsv(history, out / "history.tsv")
    _write_tsv(splits, out / "splits.tsv")
    options = {
        "seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction,
        "min_brain_fraction": min_brain_fraction, "slice_step": slice_step,
        "normalise_percentile": normalise_percentile, "base_channels": base_channels, "depth": depth,
        "max_epochs": max_epochs, "min_epochs": min_epochs, "patience": patience, "batch_size": batch_size,
        "learning_rate": learning_rate, "momentum": momentum, "flip_p": flip_p,
        "saliency_target": saliency_target, "log_offset": log_offset, "threshold_centre": threshold_centre,
        "threshold_width": threshold_width, "threshold_one_sided": threshold_one_sided,
        "area_weight": area_weight, "tune_on_validation": tune_on_validation,
        "tuning_centres": [float(c) for c in tuning_centres],
        "tuning_area_weights": [float(w) for w in tuning_area_weights],
        "template_threshold": template_threshold, "template_scales": [float(s) for s in template_scales],
        "template_angles": [float(a) for a in template_angles],
        "placement_score": placement_score,
    }  # fmt: skip
    with atomic_path(out / "model.pt") as tmp:
        torch.save(
            {
                "state_dict": model.state_dict(),
                "optimizer_state": fit_summary["optimizer_state"],
                "epoch": fit_summary["best_epoch"],
                "config": options,
                "seed": seed,
                "versions": library_versions(),
            },
            tmp,
        )

    if figures:
        tick = time.perf_counter()
        from mrixai.masking.figures import plot_case, plot_lognormal

        fig_dir = Path(figure_dir) if figure_dir is not None else out
        examples = np.unique(np.linspace(0, len(test) - 1, n_example_slices).round().astype(int))
        for case in CASES:
            extra = None
            if case == "saliency":
                extra = {"saliency": saliency, "enhanced": enhanced, "thresholded": thresholded, "placed": placed}
            plot_case(
                case, inputs[case], preds[case], test, examples, fig_dir / f"masking_case-{case}.png",
                fig_dir / f"masking_case-{case}.pdf", extra=extra, class_names=CLASS_NAMES,
            )  # fmt: skip
        plot_lognormal(
            np.abs(saliency), lognormal.query("subject == 'all' and region == 'slice'").iloc[0].to_dict(), fig_dir / "masking_lognormal.png",
            fig_dir / "masking_lognormal.pdf", seed=seed, sample_size=lognormal_sample,
        )  # fmt: skip
        timing["figures"] = time.perf_counter() - tick
    timing["total"] = time.perf_counter() - started
    summary = {
        "n_subjects": {k: len(v) for k, v in split.items()},
        "n_slices": {k: len(v) for k, v in sets.items()},
        "template_pixels": int(template.sum()),
        "training": {k: v for k, v in fit_summary.items() if k != "optimizer_state"},
        "placement": {
            "threshold_centre": chosen_centre,
            "area_weight": chosen_weight,
            "validation_brain_mask_dice": val_dice[(chosen_centre, chosen_weight)],
        },
        "placement_scales": pd.Series([p.scale for p in placements]).value_counts().sort_index().to_dict(),
        "seconds": timing,
        "options": options,
    }
    with atomic_path(out / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2, default=str))
    log.info("masking study done in %.0f s", timing["total"])
    return {
        "metrics": metrics,
        "brain_mask_dice": brain_dice,
        "threshold_sensitivity": sensitivity,
        "lognormal": lognormal,
        "history": history,
        "splits": splits,
    }
