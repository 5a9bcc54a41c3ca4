"""How a volume study's run is trained: model, model options and training settings from the config.

Light (no torch import), so the workflow's input functions can call it while planning; the
training scripts pass its result to :class:`mrixai.learn.train.TrainConfig`.
"""

from __future__ import annotations

from collections.abc import Mapping

# Training settings a study gets when the config names none (`training`, then
# `studies.<study>.training` override them).
TRAINING_DEFAULTS = {
    "device": "auto",
    "precision": "auto",
    "threads": 1,
    "batch_size": 8,
    "learning_rate": 1e-4,
    "weight_decay": 0.0,
    "max_epochs": 50,
    "min_epochs": 1,
    "patience": 8,
    "flip_p": 0.5,
    "max_shift": 2,
}

# Published training choices of a study that the shared `training` block does not override (only
# the study's own `studies.<study>.training` does). PIF (Eitel et al. 2021): translation only, no
# sagittal flips. A patch individual filter is tied to one place of the brain; a flip moves
# left-hemisphere content into the right hemisphere's patches. Both variants of the PIF study (the
# baseline too) train without flips, so the comparison differs only in the last convolution.
STUDY_TRAINING_DEFAULTS = {"pif": {"flip_p": 0.0}}

# Feature blocks frozen while fine-tuning in the transfer study (Eitel et al. 2019 let every layer
# re-learn); `studies.transfer.freeze_blocks` > 0 freezes the first blocks instead.
TRANSFER_FREEZE_BLOCKS = 0


def study_training(config: Mapping, study: str) -> dict:
    """Training settings of ``study``: :data:`TRAINING_DEFAULTS`, then the config's `training`,
    then :data:`STUDY_TRAINING_DEFAULTS` of the study, then `studies.<study>.training`."""
    merged = dict(TRAINING_DEFAULTS)
    merged.update(config.get("training") or {})
    merged.update(STUDY_TRAINING_DEFAULTS.get(study, {}))
    merged.update(((config.get("studies") or {}).get(study) or {}).get("training") or {})
    return merged


def run_options(config: Mapping, study: str, variant: str) -> dict:
    """Model name, model options, training settings and data options of one volume-study run.

    ``study`` is registration, pif or transfer and ``variant`` one of its variants (e.g.
    ``model-pif``, ``init-finetune``). The PIF variant builds ``boehle3d_pif`` with the study's
    ``patch_size`` and ``overlap``; fine-tuning in the transfer study freezes
    ``studies.transfer.freeze_blocks`` blocks (default :data:`TRANSFER_FREEZE_BLOCKS`) and, like
    training from scratch, uses ``n_train_per_group`` training participants per group.
    """
    cfg = (config.get("studies") or {}).get(study) or {}
    model = cfg.get("model", "boehle3d")
    options: dict = {}
    training = study_training(config, study)
    n_per_group = None
    if study == "pif" and variant == "model-pif":
        model = "boehle3d_pif"
        options = {"patch_size": cfg.get("patch_size", 2), "overlap": cfg.get("overlap", True)}
    if study == "transfer" and variant != "init-pretrain":
        n_per_group = cfg.get("n_train_per_group", 6)
        if variant == "init-finetune":
            training["freeze_blocks"] = cfg.get("freeze_blocks", TRANSFER_FREEZE_BLOCKS)
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

    studies = config.get("studies") or {}
    transfer = dict(studies.get("transfer") or {})
    source = transfer.get("source", "same")
    if source not in TRANSFER_SOURCES:
        raise ValueError(f"studies.transfer.source must be one of {TRANSFER_SOURCES}, got {source!r}")
    arm = transfer.get("source_arm", "syn")
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
        a for a in ((config.get("samples") or {}).get("volumes") or {}).get("template_mask", []) if a == arm]}
    out["studies"] = {
        name: {**copy.deepcopy(dict(settings or {})), "enabled": False} for name, settings in studies.items()
    }
    if "masking" in out["studies"]:
        out["studies"]["masking"]["reference_labels"] = None
    out["studies"]["transfer"] = {
        **copy.deepcopy(transfer), "enabled": True, "source": "same", "source_arm": arm, "target_arm": arm,
    }
    return out
