"""The masking study's options chosen on the development cohort's validation subjects.

Usage: .venv/bin/python benchmarks/masking_tuning.py --workdir DIR [--cores 1] [--threads 1]
       [--configfile FILE ...] [--page OUT.md] [--dry-run]

1. Runs the workflow's preprocessing in DIR for the masking study alone (the other studies switched off
   by an overlay) on ``config.yaml`` + ``configs/development.yaml`` (the development cohort, seed 1)
   + any ``--configfile`` overlays: the native bias-corrected images, brain masks and tissue maps of
   the study's training and validation subjects (its test subjects are not needed, so not processed).
2. Splits the subjects as the study does (:func:`mrixai.masking.study.split_subjects`, seeded by the
   cohort's seed) and reads the slices of the training and validation subjects only: the study's test
   subjects are never loaded (:func:`scoring_split`).
3. Trains the study's segmenter once with the current options and scores every candidate value of one
   option at a time (``CANDIDATES``, the others at their current values) by the Dice of the placed brain
   masks against the validation subjects' masks, pooled over their slices, with the threshold centre
   and area weight tuned on those slices as the study does (``tune_on_validation``). Options that do not
   change the training reuse the one model; ``min_brain_fraction`` changes the training slices, so each
   of its values trains its own model, scored both on its own validation slices and on the validation
   slices of the smallest candidate fraction (the widest set, the same for every value): only the latter
   compares the values on the same slices, and it decides.
4. Writes DIR/masking-tuning.tsv and a Markdown page from it (DIR/masking-tuning.md or --page).

Choice rule: the value with the highest validation Dice, except that the current value is kept when it
lies within ``TIE_TOLERANCE`` of the best (a difference that size is within the spread between
validation subjects); the ``chosen`` column marks the choice.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mrixai.masking.metrics import mask_dice  # noqa: E402
from mrixai.masking.placement import build_template, template_bank  # noqa: E402
from mrixai.masking.saliency import enhance_saliency, guided_backprop_saliency  # noqa: E402
from mrixai.masking.slices import SliceSet, normalise_slices  # noqa: E402
from mrixai.masking.unet import UNet2d  # noqa: E402
from mrixai.learn.data import pick_device  # noqa: E402
from mrixai.masking.study import (  # noqa: E402
    choose_placement,
    load_split_slices,
    placement_grid,
    split_subjects,
    train_study_segmenter,
    tuning_grid,
)
from mrixai.results_page import markdown_table  # noqa: E402

#: Candidate values of each option, varied one at a time around the current defaults.
CANDIDATES: dict[str, list] = {
    "saliency_target": ["brain_logits", "brain_margin", "brain_softmax"],
    "log_offset": [1e-3, 1e-2, 1e-1],
    "template_angles": [[-10, 0, 10], [-15, -10, -5, 0, 5, 10, 15]],
    "placement_score": ["dice", "ncc"],
    "min_brain_fraction": [0.5, 0.6, 0.7],
}
#: Validation-Dice differences below this keep the current value.
TIE_TOLERANCE = 0.005
#: The keywords of the study's training (mrixai.masking.train.train_segmenter) read from the options.
TRAIN_KEYS = (
    "base_channels", "depth", "max_epochs", "min_epochs", "patience", "batch_size", "learning_rate", "momentum",
    "flip_p",
)  # fmt: skip


def scoring_split(subject_ids: Sequence[str], test_fraction: float, val_fraction: float, seed: int) -> dict:
    """The study's split less its test subjects: ``train`` (fits the segmenter and the template) and
    ``val`` (early stopping and every score of this benchmark)."""
    split = split_subjects(list(subject_ids), test_fraction, val_fraction, seed)
    return {"train": split["train"], "val": split["val"]}


def masking_options(config: dict) -> dict:
    """The study's keywords from a loaded config (``studies.masking`` less ``enabled`` and ``training``)."""
    return {k: v for k, v in config["studies"]["masking"].items() if k not in ("enabled", "training")}


def _value_text(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(f"{float(v):g}" for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _placement_dice(
    model, val: SliceSet, template: np.ndarray, options: dict, batch_size: int, device, saliency_cache: dict
) -> tuple[float, float, float]:
    """Validation Dice of the placed masks at the (centre, weight) the study would choose, and that pair."""
    key = (id(model), id(val), options["saliency_target"])
    if key not in saliency_cache:
        x = normalise_slices(val.image, options["normalise_percentile"])
        saliency_cache[key] = guided_backprop_saliency(model, x, options["saliency_target"], batch_size, device)
    enhanced = enhance_saliency(saliency_cache[key], options["log_offset"])
    bank = template_bank(template, val.image.shape[1:], options["template_scales"], options["template_angles"])
    centres, weights = tuning_grid(
        options["tune_on_validation"], options["tuning_centres"], options["tuning_area_weights"],
        options["threshold_centre"], options["area_weight"],
    )  # fmt: skip
    grid = placement_grid(
        enhanced, bank, centres, weights, options["threshold_width"], options["threshold_one_sided"],
        options["placement_score"],
    )  # fmt: skip
    dice = {pair: mask_dice(np.stack([p.mask for p in pl]), val.mask) for pair, pl in grid.items()}
    centre, weight = choose_placement(dice, options["threshold_centre"])
    return dice[(centre, weight)], centre, weight


def score_options(
    records: list[dict],
    options: dict,
    seed: int,
    candidates: dict[str, list] | None = None,
    device: str = "cpu",
    threads: int = 1,
    log=print,
    model_dir: Path | None = None,
) -> pd.DataFrame:
    """One row per (option, candidate value): the validation Dice of the placed brain masks.

    ``records`` are the study's subject records (``subject``, ``image``, ``mask``, ``dseg``) in the
    workflow's order; ``options`` the study's current keywords. Only the subjects of
    :func:`scoring_split` are read. With ``model_dir`` each trained segmenter is kept there and reused
    by a later call whose training (seed, split, slices, training options) is the same.
    """
    candidates = CANDIDATES if candidates is None else candidates
    unknown = sorted(set(candidates) - set(options))
    if unknown:
        raise ValueError(f"candidate options {unknown} are not options of the masking study")
    torch.set_num_threads(threads)
    by_id = {str(r["subject"]): r for r in records}
    split = scoring_split(list(by_id), options["test_fraction"], options["val_fraction"], seed)
    train_kw = {k: options[k] for k in TRAIN_KEYS}
    batch_size = int(options["batch_size"])
    fractions = sorted({float(options["min_brain_fraction"]), *map(float, candidates.get("min_brain_fraction", []))})
    widest = fractions[0]
    cache: dict = {}
    models: dict[float, tuple] = {}

    def fitted(fraction: float):
        """(model, device, train slices, val slices) of the study run with ``min_brain_fraction``."""
        if fraction not in models:
            sets = load_split_slices(by_id, split, fraction, options["slice_step"], parts=("train", "val"))
            key = {"seed": seed, "split": split, "min_brain_fraction": fraction, "slice_step": options["slice_step"],
                   "normalise_percentile": options["normalise_percentile"], **train_kw}  # fmt: skip
            path = None if model_dir is None else Path(model_dir) / f"segmenter_fraction-{fraction:g}.pt"
            stored = torch.load(path, weights_only=False) if path is not None and path.is_file() else None
            if stored is not None and stored["key"] == json.loads(json.dumps(key)):
                dev = pick_device(device)
                model = UNet2d(1, 4, train_kw["base_channels"], train_kw["depth"]).to(dev)
                model.load_state_dict(stored["state_dict"])
                model.eval()
                log(f"min_brain_fraction {fraction:g}: segmenter reused from {path}")
            else:
                tick = time.perf_counter()
                model, _, summary = train_study_segmenter(
                    sets["train"], sets["val"], options["normalise_percentile"], seed=seed, device=device,
                    threads=threads, **train_kw,
                )  # fmt: skip
                dev = summary["device"]
                log(f"min_brain_fraction {fraction:g}: trained in {time.perf_counter() - tick:.0f} s "
                    f"({len(sets['train'])} training, {len(sets['val'])} validation slices)")  # fmt: skip
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    torch.save({"key": json.loads(json.dumps(key)), "state_dict": model.state_dict()}, path)
            template = build_template(sets["train"].mask, options["template_threshold"])
            models[fraction] = (model, dev, template, sets["val"])
        return models[fraction]

    widest_val = None
    rows = []
    for option, values in candidates.items():
        for value in values:
            opts = {**options, option: value}
            fraction = float(opts["min_brain_fraction"])
            model, dev, template, val = fitted(fraction)
            tick = time.perf_counter()
            dice, centre, weight = _placement_dice(model, val, template, opts, batch_size, dev, cache)
            row = {
                "option": option,
                "value": _value_text(value),
                "current": _value_text(value) == _value_text(options[option]),
                "validation_dice": dice,
                "threshold_centre": centre,
                "area_weight": weight,
                "n_subjects": len(split["val"]),
                "n_slices": len(val),
            }
            if option == "min_brain_fraction":
                if widest_val is None:
                    widest_val = load_split_slices(by_id, split, widest, options["slice_step"], parts=("val",))["val"]
                row["dice_on_widest"] = _placement_dice(model, widest_val, template, opts, batch_size, dev, cache)[0]
                row["n_slices_widest"] = len(widest_val)
            row["seconds"] = time.perf_counter() - tick
            rows.append(row)
            log(f"{option} = {row['value']}: validation Dice {dice:.4f} (centre {centre:g}, weight {weight:g})")
    return mark_choices(pd.DataFrame(rows))


def mark_choices(table: pd.DataFrame, tolerance: float = TIE_TOLERANCE) -> pd.DataFrame:
    """``table`` with ``chosen`` set on one row per option: the highest score (``dice_on_widest`` for
    ``min_brain_fraction``, else ``validation_dice``), or the ``current`` row when it lies within
    ``tolerance`` of the highest."""
    table = table.copy()
    table["chosen"] = False
    for option, group in table.groupby("option", sort=False):
        score = group["dice_on_widest"] if option == "min_brain_fraction" else group["validation_dice"]
        best = score.idxmax()
        kept = group.index[group["current"].astype(bool)]
        pick = kept[0] if len(kept) and score[best] - score[kept[0]] < tolerance else best
        table.loc[pick, "chosen"] = True
    return table


def render_page(table: pd.DataFrame, source: Path, seed: int) -> str:
    """The Markdown page of a tuning table."""
    shown = table.drop(columns=["seconds"], errors="ignore").fillna("")
    n_sub = int(table["n_subjects"].iloc[0])
    return (
        "# Masking study: options chosen on the development cohort\n\n"
        f"_Generated by benchmarks/masking_tuning.py from {source.name}; do not edit by hand._\n\n"
        f"The development cohort (the embedded synthetic cohort drawn with seed {seed}), split as the study "
        f"splits it; every score is the Dice of the saliency-placed brain masks against the brain masks of the "
        f"{n_sub} validation subjects, pooled over their slices (`n_slices`), at the threshold centre and area "
        "weight the study would choose on those slices. The test subjects are never read. One option is "
        "varied at a time, the others at their current values (`current` marks the value in config.yaml "
        "when the benchmark ran). `min_brain_fraction` changes the training slices, so each of its values "
        "trains its own segmenter and is scored on its own validation slices (`validation_dice`) and on "
        "those of the smallest fraction tried (`dice_on_widest`, the same slices for every value), which "
        "decides. `chosen`: the highest score, or the current value when it lies within "
        f"{TIE_TOLERANCE:g} of the highest.\n\n" + markdown_table(shown, digits=4)
    )


def development_records(workdir: Path, config: dict) -> list[dict]:
    """The masking study's subject records of the synthetic cohort preprocessed in ``workdir``."""
    if config.get("dataset", "synthetic") != "synthetic":
        raise ValueError(f"the tuning runs on the synthetic development cohort, got dataset {config['dataset']!r}")
    n = int(config["synthetic"].get("n_subjects", 40))
    units = [f"{i:03d}" for i in range(1, n + 1)]
    wanted = config.get("participant_label") or []
    units = [u for u in units if not wanted or u in wanted]
    contrast = config["contrast"]
    pre = workdir / "results" / "preproc"
    return [
        {
            "subject": u,
            "image": pre / f"sub-{u}" / "anat" / f"sub-{u}_desc-n4_{contrast}.nii.gz",
            "mask": pre / f"sub-{u}" / "anat" / f"sub-{u}_desc-brain_mask.nii.gz",
            "dseg": pre / f"sub-{u}" / "anat" / f"sub-{u}_dseg.nii.gz",
        }
        for u in units
    ]


OVERLAY = {"studies": {s: {"enabled": False} for s in ("registration", "tissue", "pif", "transfer")}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--configfile", type=Path, nargs="*", default=[], help="overlays after the development config")
    ap.add_argument("--cores", default="1", help="cores of the preprocessing run")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the training and saliency")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    ap.add_argument("--page", type=Path, help="where to write the Markdown page (default DIR/masking-tuning.md)")
    ap.add_argument("--options", nargs="*", choices=sorted(CANDIDATES), help="score only these options; the "
                    "rows of the others in an existing TSV are kept")  # fmt: skip
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    over = workdir / "masking_tuning.yaml"
    over.write_text(yaml.safe_dump(OVERLAY))
    configfiles = [ROOT / "config.yaml", ROOT / "configs" / "development.yaml", *args.configfile, over]
    config: dict = {}
    for path in configfiles:
        _merge(config, yaml.safe_load(path.read_text()) or {})
    records = development_records(workdir, config)
    options = masking_options(config)
    used = scoring_split([r["subject"] for r in records], options["test_fraction"], options["val_fraction"],
                         int(config["seed"]))  # fmt: skip
    needed = set(used["train"]) | set(used["val"])  # the test subjects are not even preprocessed
    targets = [str(r[k]) for r in records if r["subject"] in needed for k in ("image", "mask", "dseg")]
    cmd = [sys.executable, "-m", "snakemake", *[str(Path(t).relative_to(workdir)) for t in targets],
           "--cores", args.cores, "--rerun-incomplete", "--snakefile", str(ROOT / "Snakefile"),
           "--directory", str(workdir), "--configfile", *map(str, configfiles)]  # fmt: skip
    if args.dry_run:
        cmd.append("-n")
    subprocess.run(cmd, check=True)
    if args.dry_run:
        return 0
    candidates = {k: v for k, v in CANDIDATES.items() if not args.options or k in args.options}
    table = score_options(records, options, int(config["seed"]), candidates, device=args.device,
                          threads=args.threads, model_dir=workdir / "masking-tuning-models")  # fmt: skip
    tsv = workdir / "masking-tuning.tsv"
    if args.options and tsv.is_file():
        kept = pd.read_csv(tsv, sep="\t")
        table = pd.concat([kept[~kept.option.isin(list(candidates))], table], ignore_index=True)
        order = {k: i for i, k in enumerate(CANDIDATES)}
        table = table.sort_values("option", key=lambda c: c.map(order), kind="stable").reset_index(drop=True)
    table.to_csv(tsv, sep="\t", index=False, float_format="%.6g")
    page = args.page or workdir / "masking-tuning.md"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(render_page(pd.read_csv(tsv, sep="\t"), tsv, int(config["seed"])))
    print(page.read_text())
    return 0


def _merge(base: dict, extra: dict) -> None:
    """Snakemake's --configfile merge: nested dicts updated key by key, other values replaced."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


if __name__ == "__main__":
    raise SystemExit(main())
