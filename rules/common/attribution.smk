# Attribution, atlas metrics and statistics: the explained variants and what their rules read.

ATTRIBUTION_CFG = config["attribution"]


def attribution_inputs(wildcards):
    """A run's checkpoint, predictions and the volume store it was trained on."""
    run = f"{MODELS}/{wildcards.study}/{wildcards.variant}/split-{wildcards.split}_seed-{wildcards.seed}"
    files = volume_store_files(variant_arm(wildcards.study, wildcards.variant))
    files.update(model=f"{run}_model.pt", predictions=f"{run}_predictions.tsv")
    return files


def attribution_gpu():
    """1 when attribution is configured to run on a CUDA device."""
    return int(str(ATTRIBUTION_CFG["device"]).startswith("cuda"))


ANALYSIS_CFG = config["analysis"]
METHOD_NAMES = list(ATTRIBUTION_CFG["methods"])
PRIMARY_METHOD = ANALYSIS_CFG["primary_method"]
RANDOMISATION_CFG = ANALYSIS_CFG["randomisation"]
RANDOMISATION_METHODS = randomisation_methods(config)
HIPPOCAMPUS_CFG = ANALYSIS_CFG["hippocampus"]


def lrp_beta_methods():
    """Configured alpha-beta LRP methods, ordered by beta (for the top-10 overlap across betas)."""
    specs = ATTRIBUTION_CFG["methods"]
    betas = {
        name: float(spec.get("beta", 0))
        for name, spec in specs.items()
        if spec.get("method") == "lrp_alphabeta"
    }
    return sorted(betas, key=betas.get)


def explained_variants():
    """(study, variant) pairs whose runs are explained and analysed."""
    arms = ATTRIBUTION_CFG.get("registration_arms")
    return [
        (study, variant)
        for study in ATTRIBUTION_CFG["studies"]
        if study_enabled(study)
        for variant in study_variants(study)
        if study != "registration" or not arms or variant_arm(study, variant) in arms
    ]


def variant_runs(study, variant):
    """Attribution directories of every run of one variant."""
    return expand(
        f"{ATTRIBUTION}/{study}/{variant}/{RUN}",
        split=range(N_SPLITS),
        seed=range(study_repeats(study)),
    )


def aggregate_inputs(wildcards):
    """Attribution runs of a variant, the atlas and the store grid they were computed on."""
    arm = variant_arm(wildcards.study, wildcards.variant)
    return {
        "runs": variant_runs(wildcards.study, wildcards.variant),
        "atlas": str(TEMPLATE.atlas),
        "labels": str(TEMPLATE.atlas_labels),
        "store": volume_store_files(arm)["json"],
    }


def ground_truth_inputs(wildcards):
    """What the planted-effect check reads for one variant."""
    files = aggregate_inputs(wildcards)
    files.update(
        regions=f"{ATTRIBUTION}/{wildcards.study}/{wildcards.variant}_regions.tsv",
        effect=EFFECT_MASK,
        planted_regions=PLANTED_REGIONS_MASK,
        brain=str(TEMPLATE.mask),
    )
    return files


def first_run(wildcards):
    """Checkpoint, attribution and store of a variant's first run (split 0, seed 0)."""
    run = "split-0_seed-0"
    arm = variant_arm(wildcards.study, wildcards.variant)
    store = volume_store_files(arm)
    return {
        "model": f"{MODELS}/{wildcards.study}/{wildcards.variant}/{run}_model.pt",
        "run": f"{ATTRIBUTION}/{wildcards.study}/{wildcards.variant}/{run}",
        "npy": store["npy"],
        "tsv": store["tsv"],
    }


def hippocampus_inputs(wildcards):
    return {
        "regions": f"{ATTRIBUTION}/{wildcards.study}/{wildcards.variant}_regions.tsv",
        **{f"vol_{u}": p for u, p in region_volume_tables(wildcards).items()},
    }


def registration_metric_files(wildcards):
    """Per-run metric files (with ROC points) of the registration study."""
    return study_runs("registration")


def planted_region_names(wildcards):
    """Atlas names of the synthetic cohort's planted regions (merged hemispheres if configured)."""
    from mrixai.explain.regions import planted_regions

    synth = config["synthetic"]
    return planted_regions(
        synth["shrink_regions"],
        synth["grow_regions"],
        ANALYSIS_CFG["merge_hemispheres"],
    )
