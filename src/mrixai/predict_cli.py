"""``mrixai predict``: apply trained volume models to a BIDS dataset of new subjects.

``mrixai predict MODELS BIDS_DIR OUTPUT_DIR [options] [-- snakemake args]``

- ``MODELS``: a models folder of one study variant (e.g. ``results/models/registration/reg-syn``):
  every ``*_model.pt`` in it is a run of the ensemble (``--run`` picks some), or one checkpoint file.
- ``BIDS_DIR``: the new subjects (raw BIDS, with or without the label column in participants.tsv).
- ``OUTPUT_DIR``: where the preprocessing (``results/``, ``.snakemake/``) and the predictions land.

The new subjects are preprocessed as the training subjects were: the workflow's own rules run
(Snakemake API, ``--directory OUTPUT_DIR``) with the config stored in the checkpoint (then any
``--configfile``), up to each subject's template-space brain image of the model's registration
arm. Each subject's sample is then built with the crop box, block averaging, normalisation and
mask READ FROM THE CHECKPOINT, and ``OUTPUT_DIR/predictions.tsv`` gets one row per subject and run
plus the ensemble (mean probability), with the group and label when participants.tsv has the
model's label column. ``--attribution METHOD`` adds maps (``OUTPUT_DIR/attribution/``) and an
atlas region table per subject, run and method.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from mrixai.cli import WORKFLOW_DIR, _cores, _label

log = logging.getLogger("mrixai.predict")

ARMS = ("none", "linear", "syn")
CONTRASTS = ("T1w", "T2w")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrixai predict",
        description=(
            "Predict new subjects with trained volume models (one run, or every run of a models "
            "folder as an ensemble). The subjects are preprocessed with the config stored in the "
            "model, samples are built with the grid stored in the model, and OUTPUT_DIR/predictions.tsv "
            "lists each subject's probability per run and for the ensemble (mean probability)."
        ),
        epilog="Arguments after '--' go to Snakemake unchanged (e.g. '-- --keep-going').",
    )
    parser.add_argument("models", metavar="MODELS", type=Path,
                        help="a models folder (e.g. results/models/registration/reg-syn) or one *_model.pt")
    parser.add_argument("bids_dir", metavar="BIDS_DIR", type=Path, help="BIDS dataset of the new subjects (read only)")
    parser.add_argument("output_dir", metavar="OUTPUT_DIR", type=Path,
                        help="where preprocessing and predictions are written (created if missing)")
    parser.add_argument("--run", nargs="+", default=[], metavar="RUN",
                        help="runs of MODELS to use (e.g. split-0_seed-0); default: all, as an ensemble")
    parser.add_argument("--participant-label", "--participant_label", nargs="+", type=_label, metavar="LABEL",
                        help="subjects to predict (without or with 'sub-'); default: all")
    parser.add_argument("--arm", choices=ARMS,
                        help="registration arm the models must have been trained on (refused otherwise)")
    parser.add_argument("--contrast", choices=CONTRASTS,
                        help="contrast the models must have been trained on (refused otherwise)")
    parser.add_argument("--attribution", metavar="METHOD",
                        help="also write attribution maps and atlas region tables: a key of the model "
                             "config's attribution.methods (e.g. lrpb0) or a method name (e.g. gradcam)")
    parser.add_argument("--configfile", nargs="+", type=Path, default=[], metavar="F",
                        help="YAML files overriding the config stored in the model, in order")
    parser.add_argument("--cores", type=_cores, default="all", metavar="N", help="CPU cores for preprocessing")
    parser.add_argument("--device", default="auto", help="device for the networks: auto, cpu, cuda[:N], mps")
    parser.add_argument("--dry-run", "-n", action="store_true",
                        help="check the models and plan the preprocessing; predict nothing")
    return parser


def prediction_config(stored: dict, bids_dir: Path, participant_label: Sequence[str] | None) -> dict:
    """The stored training config pointed at the new dataset.

    Subject selections and QC exclusions of the training cohort do not apply to new subjects.
    """
    cfg = copy.deepcopy(stored)
    cfg["dataset"] = "bids"
    cfg["bids_dir"] = str(bids_dir)
    cfg["participant_label"] = list(participant_label or [])
    cfg["exclude_participant_label"] = []
    qc = dict(cfg.get("qc") or {})
    qc.update(exclude=[], auto_exclude=False)
    cfg["qc"] = qc
    return cfg


def merged_config(base: dict, files: Sequence[Path]) -> dict:
    """``base`` updated, key by key (nested), by every YAML file in order."""

    def update(dst: dict, src: dict) -> None:
        for key, value in src.items():
            if isinstance(value, dict) and isinstance(dst.get(key), dict):
                update(dst[key], value)
            else:
                dst[key] = value

    cfg = copy.deepcopy(base)
    for path in files:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"--configfile {path}: not a YAML mapping")
        update(cfg, data)
    return cfg


def template_image(unit: str, arm: str, contrast: str) -> str:
    """The workflow's template-space brain image of a unit (relative to the output folder)."""
    return f"results/preproc/sub-{unit}/anat/sub-{unit}_space-template_reg-{arm}_desc-brain_{contrast}.nii.gz"


def run_preprocessing(out: Path, configfile: Path, targets: Sequence[str], cores: str, dry_run: bool,
                      extra: Sequence[str]) -> bool:
    """Run the workflow's rules for ``targets`` in ``out`` with ``configfile`` (Snakemake API)."""
    from snakemake.cli import args_to_api, parse_args

    argv = ["--snakefile", str(WORKFLOW_DIR / "Snakefile"), "--directory", str(out), "--cores", cores]
    if dry_run:
        argv.append("--dry-run")
    argv += [*extra, "--", *targets]
    parser, args = parse_args(argv)
    args.configfile = [WORKFLOW_DIR / "config.yaml", configfile, *(Path(p).resolve() for p in (args.configfile or []))]
    return bool(args_to_api(args, parser))


def _method_spec(name: str, methods: dict) -> tuple[str, dict]:
    from mrixai.explain.attribution import METHODS
    from mrixai.explain.maps import check_methods

    if name in methods:
        spec = check_methods({name: methods[name]})[name]
    elif name in METHODS:
        spec = check_methods({name: {"method": name}})[name]
    else:
        raise ValueError(f"--attribution {name!r}: neither a key of the model config's attribution.methods "
                         f"{sorted(methods)} nor a method ({', '.join(METHODS)})")
    return name, spec


def write_attribution(preds, units, samples, table, out: Path, name: str, spec: dict, cfg: dict, device: str) -> None:
    """Maps of every unit under every run and the ensemble mean, and their atlas region table."""
    import nibabel as nib
    import numpy as np
    import pandas as pd
    import torch

    from mrixai.explain.attribution import attribute
    from mrixai.explain.regions import read_label_table, region_metrics, sample_atlas
    from mrixai.learn.data import pick_device
    from mrixai.templates import TemplateFiles

    dev = pick_device(device)
    grid = preds[0].grid
    affine = np.asarray(grid["affine"], float)
    folder = out / "attribution"
    folder.mkdir(parents=True, exist_ok=True)
    target = (cfg.get("attribution") or {}).get("target", "positive")
    opts = {k: v for k, v in spec.items() if k != "method"}
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[:, None]
    maps = {}
    for p in preds:
        model = p.model.to(dev)
        parts = []
        for start in range(0, len(x), 4):
            xb = x[start : start + 4].to(dev)
            targets = torch.ones(len(xb), dtype=torch.long) if target == "positive" else None
            parts.append(attribute(model, xb, spec["method"], targets, **opts).detach().cpu().numpy()[:, 0])
        maps[p.name] = np.concatenate(parts)
    maps["ensemble"] = np.mean(np.stack(list(maps.values())), axis=0)
    tpl = TemplateFiles(out / "results" / "template", float(cfg["resolution_mm"]))
    atlas_img = nib.load(str(tpl.atlas))
    atlas = sample_atlas(np.asarray(atlas_img.dataobj), read_label_table(tpl.atlas_labels), grid,
                         float(abs(np.linalg.det(atlas_img.affine[:3, :3]))) / 1000.0,
                         bool((cfg.get("analysis") or {}).get("merge_hemispheres", True)))
    frames = []
    for run, arr in maps.items():
        for unit, amap in zip(units, arr):
            img = nib.Nifti1Image(amap.astype(np.float32), affine)
            img.set_sform(affine, code=1)
            img.set_qform(affine, code=1)
            nib.save(img, folder / f"sub-{unit}_run-{run.replace('_', '').replace('-', '')}_method-{name}_attribution.nii.gz")
        metrics = region_metrics(arr, atlas)
        n, r = metrics["sum_abs"].shape
        frames.append(pd.DataFrame({
            "unit": np.repeat(list(units), r), "run": run, "method": name,
            "region": np.tile(np.asarray(atlas.names, dtype=object), n), "volume_ml": np.tile(atlas.volume_ml, n),
            **{m: metrics[m].ravel() for m in ("sum_abs", "sum_pos", "density")},
        }))
    regions = pd.concat(frames, ignore_index=True).merge(table[["unit", "run", "prob", "pred"]], on=["unit", "run"])
    regions.to_csv(folder / "regions.tsv", sep="\t", index=False, float_format="%.6g")
    log.info("wrote %s maps and region table of %d subjects to %s", name, len(units), folder)


def predict(argv: Sequence[str] | None = None) -> int:
    """The ``predict`` command; returns the exit status."""
    import numpy as np

    from mrixai.bids import index_bids, read_participants
    from mrixai.learn.predict import (check_ensemble, check_request, find_checkpoints, labels_for,
                                      load_predictor, predict_samples, subject_sample)
    from mrixai.templates import resolve_template_source, template_id

    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    bids_dir, out = args.bids_dir.resolve(), args.output_dir.resolve()
    if not (bids_dir / "participants.tsv").is_file():
        parser.error(f"BIDS_DIR {args.bids_dir}: no participants.tsv; is this a BIDS dataset?")
    if out == bids_dir or bids_dir.is_relative_to(out) or out.is_relative_to(bids_dir):
        parser.error(f"OUTPUT_DIR {args.output_dir} and BIDS_DIR {args.bids_dir} must be separate folders")
    for path in args.configfile:
        if not path.is_file():
            parser.error(f"--configfile {path}: file not found")
    try:
        preds = [load_predictor(p) for p in find_checkpoints(args.models, args.run)]
        check_ensemble(preds)
        for p in preds:
            check_request(p, arm=args.arm, contrast=args.contrast)
        first = preds[0]
        stored = first.ckpt.get("workflow_config")
        if not stored:
            raise ValueError(f"{first.path}: no workflow config stored with the model; retrain the run")
        cfg = merged_config(prediction_config(stored, bids_dir, args.participant_label), args.configfile)
        arm, contrast = first.ckpt["arm"], first.ckpt["contrast"]
        if cfg["contrast"] != contrast:
            raise ValueError(f"the config asks for contrast {cfg['contrast']!r}, but {first.path} was trained on {contrast!r}")
        check_request(first, template=template_id(resolve_template_source(cfg["template"]["source"])))
        index = index_bids(bids_dir, contrast, cfg["participant_label"], filters=cfg.get("bids_filters") or {})
        units = index.units
        if not units:
            raise ValueError(f"{bids_dir}: no {contrast} image of the requested subjects")
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "predict_config.yaml"
        config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        targets = [template_image(u, arm, contrast) for u in units]
        method = None
        if args.attribution:
            method = _method_spec(args.attribution, dict((cfg.get("attribution") or {}).get("methods") or {}))
            from mrixai.templates import TemplateFiles

            tpl = TemplateFiles(Path("results/template"), float(cfg["resolution_mm"]))
            targets += [str(tpl.atlas), str(tpl.atlas_labels)]
        if not run_preprocessing(out, config_path, targets, args.cores, args.dry_run, extra):
            print("mrixai predict: preprocessing failed (see the Snakemake log above)", file=sys.stderr)
            return 1
        if args.dry_run:
            return 0
        samples = np.stack([subject_sample(out / t, first.grid, first.path) for t in targets[: len(units)]])
        table = predict_samples(preds, units, samples, args.device)
        table.insert(1, "subject", [u.split("_ses-")[0] for u in table["unit"]])
        label_cfg = cfg.get("label") or {}
        labels = labels_for(read_participants(bids_dir), units, label_cfg.get("column", ""),
                            label_cfg.get("groups") or {}, first.ckpt["classes"])
        if labels is not None:
            table = table.merge(labels, on="unit", how="left")
            table["correct"] = (table["pred"] == table["label"]).where(table["label"].notna())
            table["label"] = table["label"].astype("Int64")
        table.to_csv(out / "predictions.tsv", sep="\t", index=False, float_format="%.6g")
        (out / "models.json").write_text(json.dumps(
            {"runs": {p.name: str(p.path.resolve()) for p in preds}, "arm": arm, "contrast": contrast,
             "template": first.ckpt["template"], "classes": first.ckpt["classes"]}, indent=2))
        log.info("predicted %d subjects with %d run(s): %s", len(units), len(preds), out / "predictions.tsv")
        if method is not None:
            write_attribution(preds, units, samples, table, out, method[0], method[1], cfg, args.device)
    except ValueError as err:
        print(f"mrixai predict: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(predict())
