# Samples, splits and the studies' training runs, derived from the study registry (mrixai.studies).

SPLITS = config["splits"]
N_SPLITS = int(SPLITS["n_splits"])
N_REPEATS = int(SPLITS["n_repeats"])
STUDY_CFG = config["studies"]

# Wildcard patterns of the studies trained on volume stores (e.g. "registration|pif|transfer").
VOLUME_STUDIES = registry.studies_of_kind("volume")
VOLUME_STUDY_PATTERN = registry.pattern(VOLUME_STUDIES)
# Studies trained over splits (each gets a run summary), studies comparing two variants (a comparison
# table and figure) and studies whose runs may be the registration study's own.
TRAINED_STUDY_PATTERN = registry.pattern(registry.studies_of_kind("volume", "subimage"))
COMPARED_STUDY_PATTERN = registry.pattern(registry.compared_studies())
SHARING_STUDY_PATTERN = registry.pattern(
    name for name, study in registry.STUDIES.items() if study.shares_registration_runs
)
GROUPS = list(config["label"]["groups"])


def study_enabled(study):
    """Whether a study is switched on in the config (mrixai.studies.study_enabled)."""
    return registry.study_enabled(config, study)


def study_training(study):
    """Training settings of a study (mrixai.learn.options.study_training)."""
    return learn_study_training(config, study)


def study_variants(study):
    """The variants one study compares (each trained over every split and seed)."""
    return registry.study_variants(config, study)


def variant_arm(study, variant):
    """Registration arm whose volumes a (study, variant) trains on."""
    return registry.variant_arm(config, study, variant)


def volume_store_files(arm):
    """The volume store of one arm: array, index and grid sidecar."""
    base = f"{SAMPLES}/reg-{arm}_desc-volumes"
    return {"npy": f"{base}.npy", "tsv": f"{base}.tsv", "json": f"{base}.json"}


def store_images(wildcards):
    """Images that go into the volume store of ``wildcards.arm``."""
    return template_images(wildcards.arm)


def store_mask(wildcards):
    """The template brain mask for arms listed in samples.volumes.template_mask, else nothing."""
    arms = config["samples"]["volumes"]["template_mask"]
    return {"mask": str(TEMPLATE.mask)} if wildcards.arm in arms else {}


def subimage_inputs(wildcards):
    """Template-space whole-head images and tissue maps the subimage store is cut from."""
    arm = wildcards.arm
    heads = [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_desc-n4_{CONTRAST}.nii.gz"
        for u in UNITS
    ]
    return {"images": heads, "dsegs": template_dsegs(arm)}


TRANSFER_CFG = STUDY_CFG["transfer"]
# same: pretrain on this dataset's source_arm; synthetic: on the embedded synthetic cohort's AD vs CN,
# generated and processed under TRANSFER_SOURCE_DIR (rules/transfer_source.smk).
TRANSFER_SOURCE = TRANSFER_CFG["source"] if study_enabled("transfer") else "same"
TRANSFER_SOURCE_DIR = "results/transfer-source"


def _transfer_source_config():
    from mrixai.learn.options import transfer_source_config

    return transfer_source_config(config)


TRANSFER_SOURCE_CONFIG = (
    _transfer_source_config() if TRANSFER_SOURCE == "synthetic" else {}
)


def run_store(wildcards):
    """The volume store a training run reads, and for fine-tuning the pretrained checkpoint."""
    files = volume_store_files(variant_arm(wildcards.study, wildcards.variant))
    if wildcards.variant == "init-finetune":
        # same: split k's pretraining (on split k's training partition, so no test subject of split
        # k is seen); another cohort shares none of this dataset's subjects, so one pretraining per
        # seed (the source's split 0) initialises every split's fine-tuning with that seed.
        same = TRANSFER_SOURCE == "same"
        source = "" if same else f"{TRANSFER_SOURCE_DIR}/"
        files["init"] = (
            f"{source}{MODELS}/transfer/init-pretrain/{RUN}_model.pt".format(
                split=wildcards.split if same else 0, seed=wildcards.seed
            )
        )
    return files


def run_options(wildcards):
    """Model name, model options, training settings and data options of one training run."""
    options = learn_run_options(config, wildcards.study, wildcards.variant)
    return {**options, "arm": variant_arm(wildcards.study, wildcards.variant)}


def _run_study(wildcards):
    return getattr(wildcards, "study", "tissue")


def study_threads(study):
    """CPU threads of one study's training jobs (its `training.threads`)."""
    return int(study_training(study)["threads"])


def study_gpu(study):
    """1 when the study trains on a CUDA device (the SLURM plugin reads `gpu`)."""
    return int(str(study_training(study)["device"]).startswith("cuda"))


def training_threads(wildcards):
    """CPU threads of a training job (the study's `training.threads`)."""
    return study_threads(_run_study(wildcards))


def training_gpu(wildcards):
    """1 when the run's study trains on a CUDA device."""
    return study_gpu(_run_study(wildcards))


def study_repeats(study):
    """Trainings per split of one study: `studies.<study>.n_repeats`, else `splits.n_repeats`."""
    return registry.study_repeats(config, study)


def study_runs(study):
    """Metric files of every run of one study (every variant x split x seed)."""
    return expand(
        f"{MODELS}/{study}/{{variant}}/{RUN}_metrics.json",
        variant=study_variants(study),
        split=range(N_SPLITS),
        seed=range(study_repeats(study)),
    )


def summary_inputs(wildcards):
    """Everything a study's summary collects."""
    return study_runs(wildcards.study)


def tissue_fractions(wildcards):
    """Per-subject slice fractions of every tissue-study run."""
    return [p.replace("_metrics.json", "_fractions.tsv") for p in study_runs("tissue")]


def enabled_studies():
    """Studies that train over splits and are switched on, in registry order."""
    return registry.trained_studies(config)


# {variant: registration variant} of runs that are the registration study's own (shared, not retrained).
SHARED_VARIANTS = registry.shared_runs(config)


def shared_run_source(wildcards):
    """Files of the registration run that a shared run reuses."""
    base = f"{MODELS}/registration/{SHARED_VARIANTS[wildcards.variant]}/{RUN}".format(
        split=wildcards.split, seed=wildcards.seed
    )
    return {
        "model": f"{base}_model.pt",
        "history": f"{base}_history.tsv",
        "predictions": f"{base}_predictions.tsv",
        "metrics": f"{base}_metrics.json",
    }


TRAINED_VARIANTS = registry.pattern(
    v for v in registry.possible_variants("volume") if v not in SHARED_VARIANTS
)
SHARED_VARIANT_PATTERN = registry.pattern(SHARED_VARIANTS)
