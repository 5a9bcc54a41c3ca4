"""How a volume study's run is trained: model, model options and training settings from the config.

Light (no torch import), so the workflow's input functions can call it while planning; the
training scripts pass its result to :class:`mrixai.learn.train.TrainConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping

def study_training(config: Mapping, study: str) -> dict:
    """Training settings of ``study``: the config's `training` (config.yaml holds every key), then
    the study's optional overrides `studies.<study>.training`.

    The PIF study's published choice (Eitel et al. 2021: translation only, no sagittal flips, for
    the baseline too) is config.yaml's `studies.pif.training.flip_p: 0.0`, so a `training.flip_p`
    of an overlay does not reach it.
    """
    if "training" not in config:
        raise ValueError("config has no `training` block (config.yaml holds every training setting)")
    merged = dict(config["training"])
    merged.update(((config.get("studies") or {}).get(study) or {}).get("training") or {})
    return merged


def run_options(config: Mapping, study: str, variant: str) -> dict:
    """Model name, model options, training settings and data options of one volume-study run.

    ``study`` is registration, pif or transfer and ``variant`` one of its variants (e.g.
    ``model-pif``, ``init-finetune``). The PIF variant builds ``boehle3d_pif`` with the study's
    ``patch_size`` and ``overlap``; fine-tuning in the transfer study freezes
    ``studies.transfer.freeze_blocks`` blocks  and, like
    training from scratch, uses ``n_train_per_group`` training participants per group.
    """
    cfg = (config.get("studies") or {}).get(study) or {}
    model = cfg.get("model", "boehle3d")
    options: dict = {}
    training = study_training(config, study)
    n_per_group = None
    if study == "pif" and variant == "model-pif":
        model = "boehle3d_pif"
        options = {"patch_size": cfg["patch_size"], "overlap": cfg["overlap"]}
    if study == "transfer" and variant != "init-pretrain":
        n_per_group = cfg["n_train_per_group"]
        if variant == "init-finetune":
            training["freeze_blocks"] = cfg["freeze_blocks"]
    return {"model": model, "model_options": options, "training": training, "n_train_per_group": n_per_group}


#: Where the transfer study's pretraining comes from (`studies.transfer.source`).
TRANSFER_SOURCES = ("same", "synthetic")

#: Groups of the embedded synthetic cohort, the source task when `studies.transfer.source` is synthetic.
SYNTHETIC_LABEL = {"column": "diagnosis", "groups": {"CN": "diagnosis == 'CN'", "AD": "diagnosis == 'AD'"}}


def transfer_source_config(config: Mapping) -> dict:
    """The complete config of the transfer study's source workflow when `studies.transfer.source`
    is synthetic: ``config`` with the embedded synthetic cohort (its `synthetic` block) as the
    dataset, its AD vs CN groups as the label, only ``source_arm`` registered, and only the transfer
    study switched on, with the same arm as its source and target (so its ``init-pretrain`` runs
    are the pretraining on the whole training partition of each split). Splits, seeds, training
    settings and preprocessing stay those of ``config``, so split ``k`` seed ``s`` of the source
    initialises split ``k`` seed ``s`` of the fine-tuning.
    """
    import copy

    studies = config["studies"]
    transfer = dict(studies["transfer"])
    source = transfer["source"]
    if source not in TRANSFER_SOURCES:
        raise ValueError(f"studies.transfer.source must be one of {TRANSFER_SOURCES}, got {source!r}")
    arm = transfer["source_arm"]
    out = copy.deepcopy(dict(config))
    out.update(
        dataset="synthetic",
        bids_dir=None,
        participant_label=[],
        exclude_participant_label=[],
        bids_filters={"ses": None, "acq": None, "run": None, "rec": None},
        label=copy.deepcopy(SYNTHETIC_LABEL),
        registration=[arm],
    )
    out["qc"] = {**(config.get("qc") or {}), "exclude": []}
    out["baseline"] = {**(config.get("baseline") or {}), "enabled": False}
    out["attribution"] = {**(config.get("attribution") or {}), "studies": []}
    out["samples"] = copy.deepcopy(dict(config.get("samples") or {}))
    out["samples"].setdefault("patches", {})
    out["samples"]["patches"] = {**out["samples"]["patches"], "enabled": False}
    out["samples"]["volumes"] = {**(out["samples"].get("volumes") or {}), "template_mask": [
        a for a in config["samples"]["volumes"]["template_mask"] if a == arm]}
    out["studies"] = {
        name: {**copy.deepcopy(dict(settings or {})), "enabled": False} for name, settings in studies.items()
    }
    if "masking" in out["studies"]:
        out["studies"]["masking"]["reference_labels"] = None
    out["studies"]["transfer"] = {
        **copy.deepcopy(transfer), "enabled": True, "source": "same", "source_arm": arm, "target_arm": arm,
    }
    return out
