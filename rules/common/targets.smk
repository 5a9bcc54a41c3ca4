# Targets of each stage (rule all, preprocess, train, ...) and what the results page collects.


def get_preprocess_output(wildcards):
    """Targets of the preprocess stage: every unit's outputs and the group QC table."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = ["results/qc/group_qc.tsv", "results/qc/group_qc.png"]
    for unit in accepted_units():
        out += subject_outputs(unit)
    return out


def get_final_output(wildcards):
    """Targets of the default target: everything the implemented stages produce."""
    out = get_preprocess_output(wildcards) + get_train_output(wildcards)
    out += get_analysis_output(wildcards) + get_figures_output(wildcards)
    out += get_masking_output(wildcards)
    if config["dataset"] == "synthetic":
        out.append(EFFECT_MASK)
    if not DATASET_PENDING:
        out.append("results/results.md")
    return out


def get_train_output(wildcards):
    """Targets of the train stage: labels, splits and each enabled study's summary."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = [f"{SAMPLES}/labels.tsv", "results/splits/splits.tsv"]
    out += [f"{MODELS}/{s}/summary.tsv" for s in enabled_studies()]
    if study_enabled("tissue"):
        out.append(f"{MODELS}/tissue/fractions.tsv")
    patches = config["samples"]["patches"]
    if patches["enabled"]:
        out.append(f"{SAMPLES}/reg-{patches['arm']}_desc-patches.npy")
    if baseline_enabled():
        out.append(f"{BASELINE}/summary.tsv")
    return out


def get_attribute_output(wildcards):
    """Targets of the attribute stage: every run of the configured studies, explained."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = []
    for study, variant in explained_variants():
        out += [
            p.replace("_metrics.json", "").replace(MODELS, ATTRIBUTION, 1)
            for p in study_runs(study)
            if f"/{study}/{variant}/" in p
        ]
    return out


def get_analysis_output(wildcards):
    """Statistics tables of every enabled study and every explained variant."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = []
    for study in enabled_studies():
        out += [f"{STATS}/{name}.tsv" for name in registry.get_study(study).statistics]
        if study == "registration" and baseline_enabled():
            # the CNN arms against the classical baseline, on the registration study's splits
            out.append(f"{STATS}/registration_baseline.tsv")
    for study, variant in explained_variants():
        base = f"{STATS}/{study}/{variant}"
        out += [
            f"{ATTRIBUTION}/{study}/{variant}_regions.tsv",
            f"{base}_robustness-l2.tsv",
            f"{base}_randomisation.tsv",
            f"{base}_hippocampus-test.tsv",
        ]
        if config["dataset"] == "synthetic":
            out.append(f"{base}_enrichment.tsv")
    return out


def get_figures_output(wildcards):
    """Every figure (PNG and PDF) of the enabled studies and the explained variants."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    names = ["qc_montage"]
    for study in enabled_studies():
        names += list(registry.get_study(study).figures)
    for study, variant in explained_variants():
        kinds = list(ATTRIBUTION_FIGURES)
        if len(lrp_beta_methods()) < 2:
            kinds.remove("beta-overlap")
        if config["dataset"] == "synthetic":
            kinds.append("enrichment")
        names += [f"{study}_{variant}_{kind}" for kind in kinds]
    return [f"{FIGURES}/{n}.{ext}" for n in names for ext in ("png", "pdf")]


def get_masking_output(wildcards):
    """The masking study's tables and figures, when the study is switched on."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    if not STUDY_CFG["masking"]["enabled"]:
        return []
    return [
        f"{MASKING}/metrics.tsv",
        f"{MASKING}/lognormal.tsv",
        f"{FIGURES}/masking_case-saliency.png",
    ]


def get_dataset_output(wildcards):
    """Target of prepare_dataset: the converted public dataset (nothing for synthetic or bids)."""
    if config["dataset"] in PUBLIC_DATASETS:
        return [DATASET_DESCRIPTION]
    return []


def results_page_summaries(wildcards):
    """Run summary of each enabled study, in enabled_studies() order (the headline tables)."""
    return [f"{MODELS}/{s}/summary.tsv" for s in enabled_studies()]


def results_page_tables(wildcards):
    """Statistics and check tables shown on the results page (per-subject region tables left out)."""
    tables = [
        t
        for t in get_analysis_output(wildcards)
        if t.endswith(".tsv") and not t.endswith("_regions.tsv")
    ]
    tables += [t for t in get_masking_output(wildcards) if t.endswith(".tsv")]
    if enabled_studies():
        # who qc.exclude / qc.auto_exclude left out of the learning stages, and why
        tables.append("results/qc/excluded.tsv")
    return tables


def results_page_claims_tables(wildcards):
    """Statistics tables the claims table reads (the page's tables plus the ground-truth ranks,
    the variants' region tables and the masking study's brain-mask Dice)."""
    tables = [t for t in get_analysis_output(wildcards) if t.endswith(".tsv")]
    if config["dataset"] == "synthetic":
        tables += [
            f"{STATS}/{study}/{variant}_planted-ranks.tsv"
            for study, variant in explained_variants()
        ]
    elif explained_variants():
        # nothing planted: the group difference is read from the native regional volumes
        tables += [
            f"{SAMPLES}/desc-regionvolumes_features.tsv",
            f"{SAMPLES}/labels.tsv",
        ]
    masking = [t for t in get_masking_output(wildcards) if t.endswith(".tsv")]
    if masking:
        tables += [f"{MASKING}/metrics.tsv", f"{MASKING}/brain_mask_dice.tsv"]
    return list(dict.fromkeys(tables))


def results_page_claims_switches():
    """Which studies and checks behind the claims are on (mrixai.claims.SWITCHES)."""
    return {
        "registration": study_enabled("registration"),
        "tissue": study_enabled("tissue"),
        "baseline": study_enabled("registration") and baseline_enabled(),
        "transfer": study_enabled("transfer"),
        "attribution": bool(explained_variants()),
        "synthetic": config["dataset"] == "synthetic",
        "masking": bool(STUDY_CFG["masking"]["enabled"]),
    }


def results_page_claims_options():
    """Options of mrixai.claims.claims_table from the config (analysis.claims and the methods)."""
    claims = ANALYSIS_CFG["claims"]
    specs = ATTRIBUTION_CFG["methods"]

    def of_kind(kind):
        return [n for n, spec in specs.items() if spec.get("method") == kind]

    baseline = of_kind("gradient_x_input")
    return {
        "alpha": claims["alpha"],
        "equivalence_margin": claims["equivalence_margin"],
        "top_rank": claims["top_rank"],
        "primary_method": PRIMARY_METHOD,
        "robust_methods": of_kind("guided_backprop"),
        "robustness_baseline": baseline[0] if baseline else "",
        "max_spearman": RANDOMISATION_CFG["max_spearman"],
        "positive_group": GROUPS[1],
        "planted": (
            planted_region_names(None) if config["dataset"] == "synthetic" else []
        ),
    }


def results_page_context():
    """What the results page says about the run it describes."""
    context = {
        "dataset": config["dataset"],
        "seed": config["seed"],
        "contrast": CONTRAST,
    }
    if config["dataset"] == "synthetic":
        context["subjects"] = config["synthetic"]["n_subjects"]
        context["atrophy"] = config["synthetic"]["atrophy"]
        context["intensity change"] = config["synthetic"]["intensity_change"]
    split_cfg = config["splits"]
    context["splits"] = f"{split_cfg['method']}, {N_SPLITS} splits x {N_REPEATS} seeds"
    return context
