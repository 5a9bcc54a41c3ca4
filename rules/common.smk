# Shared paths and input functions. Rules only name functions defined here: no lambdas in rules.
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, f"{workflow.basedir}/src")
# Scripts import the project's package; jobs (conda envs included) find it through PYTHONPATH.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (f"{workflow.basedir}/src", os.getenv("PYTHONPATH", "")) if p
    )
)
from mrixai.bids import UNIT_ID_PATTERN  # noqa: E402
from mrixai.datasets.download import file_name  # noqa: E402
from mrixai.synthetic.head import HEAD_MODEL_FILES  # noqa: E402
from mrixai.synthetic.cohort import OPTIONAL_PARAM_KEYS, PARAM_KEYS  # noqa: E402
from mrixai.templates import TISSUES, TemplateFiles  # noqa: E402
from mrixai.templates import resolve_template_source  # noqa: E402
from mrixai.learn.options import run_options as learn_run_options  # noqa: E402
from mrixai.learn.options import study_training as learn_study_training  # noqa: E402

CONTRAST = config["contrast"]
RES = float(config["resolution_mm"])
REPRO = bool(config.get("reproducible", True))
ARMS = list(config["registration"])
PKG = f"{workflow.basedir}/src/mrixai"

TEMPLATE = TemplateFiles(Path("results/template"), RES)
# nilearn's bundled template, or an offline TemplateFlow cache when configured and present.
TEMPLATE_SOURCE = resolve_template_source(config["template"]["source"])
SYNTH_BIDS = "results/synthetic/bids"
# Public datasets are downloaded (rules/download.smk) and converted into a BIDS dir under results/.
PUBLIC_DATASETS = ("ixi", "oasis1")
DOWNLOADS = "results/downloads"
BIDS_DIR = (
    f"results/{config['dataset']}/bids"
    if config["dataset"] in PUBLIC_DATASETS
    else config.get("bids_dir")
)
DATASET_DESCRIPTION = f"{BIDS_DIR}/dataset_description.json"
# What generating a subject depends on: not n_subjects (adding subjects must not regenerate the
# others) nor the ground truth's threshold. Optional keys only when set (non-zero), so that a run made
# before they existed is not regenerated for a value that changes nothing.
SYNTH_PARAMS = {k: config["synthetic"][k] for k in PARAM_KEYS} | {
    k: config["synthetic"][k] for k in OPTIONAL_PARAM_KEYS if config["synthetic"].get(k)
}
HEAD_MODEL = {
    k: f"results/synthetic/headmodel/{v}" for k, v in HEAD_MODEL_FILES.items()
}
TRUTH = f"{SYNTH_BIDS}/derivatives/truth"
EFFECT_MASK = f"{TRUTH}/space-template_desc-effect_mask.nii.gz"
PLANTED_REGIONS_MASK = f"{TRUTH}/space-template_desc-plantedregions_mask.nii.gz"
PRE = "results/preproc/sub-{subject}/anat/sub-{subject}"
QC = "results/qc/sub-{subject}/sub-{subject}"
LOGS = "results/logs"
BENCH = "results/benchmarks"

# Each skull-stripping backend has its own conda env.
SKULLSTRIP_ENV = {
    "deepbet": "../envs/deepbet.yaml",
    "robex": "../envs/robex.yaml",
    "fsl_bet": "../envs/fsl.yaml",
}[config["skullstrip"]["method"]]

# ANTs is single-threaded in reproducible mode, so its rules ask for one core then.
ANTS_THREADS = 1 if REPRO else 2
# Memory and runtime scale with the number of voxels, i.e. with (2 mm / resolution)^3.
VOXEL_SCALE = (2.0 / RES) ** 3


def mem_mb(base):
    """Memory request (MB) for a job that needs ``base`` MB at 2 mm."""
    return int(base * max(1.0, VOXEL_SCALE))


def runtime_min(base):
    """Runtime request (minutes) for a job that takes ``base`` minutes at 2 mm."""
    return int(max(1, round(base * max(1.0, VOXEL_SCALE))))


def pkg(*modules):
    """Package modules a script uses, listed as inputs so that editing them reruns the rule."""
    return [f"{PKG}/{m}" for m in modules]


def _synthetic_units():
    n = int(config.get("synthetic", {}).get("n_subjects", 40))
    units = [f"{i:03d}" for i in range(1, n + 1)]
    for key in ("participant_label", "exclude_participant_label"):
        labels = [str(s).removeprefix("sub-") for s in config.get(key) or []]
        unknown = sorted(set(labels) - set(units))
        if unknown:
            raise ValueError(
                f"{key} names subjects the synthetic cohort does not have: {unknown} "
                f"(it has {units[0]}..{units[-1]})"
            )
        if key == "participant_label" and labels:
            units = [u for u in units if u in labels]
        elif key == "exclude_participant_label":
            units = [u for u in units if u not in labels]
    if not units:
        raise ValueError(
            "exclude_participant_label leaves no synthetic subject to process"
        )
    return units


def _bids_index():
    from mrixai.bids import index_bids

    if not BIDS_DIR:
        raise ValueError("dataset is 'bids' but bids_dir is not set in the config")
    return index_bids(
        BIDS_DIR,
        CONTRAST,
        config.get("participant_label") or [],
        exclude_participant_label=config.get("exclude_participant_label") or [],
        filters=config.get("bids_filters") or {},
    )


def _validated_units(index):
    """Check every raw image now, before any job runs; returns the units that passed.

    Results are cached by file size and modification time, so only new or changed files are
    read again. With validation.on_error=fail a bad file stops the run here, naming it.
    """
    from mrixai.validate import validate_dataset

    table = validate_dataset(
        index,
        RES,
        config["validation"]["max_voxel_ratio"],
        config["validation"]["on_error"],
        "results/validation/report.tsv",
        "results/validation/accepted.tsv",
        cache_tsv="results/validation/.cache.tsv",
    )
    return sorted(table.loc[table["status"] == "ok", "unit"].astype(str))


# A public dataset not yet converted: this run only downloads and converts it (every target asks
# for its dataset_description.json, written last); the next run indexes it like dataset: bids.
DATASET_PENDING = config["dataset"] in PUBLIC_DATASETS and not os.path.exists(
    DATASET_DESCRIPTION
)
if config["dataset"] == "synthetic":
    # The pipeline generates these files itself; correct_bias still checks each one as it loads it.
    UNITS = _synthetic_units()
    RAW = {u: f"{SYNTH_BIDS}/sub-{u}/anat/sub-{u}_{CONTRAST}.nii.gz" for u in UNITS}
elif DATASET_PENDING:
    UNITS, RAW = [], {}
    print(
        f"dataset {config['dataset']}: {BIDS_DIR} does not exist yet, so this run downloads and "
        "converts it; run snakemake again to process it",
        file=sys.stderr,
    )
else:
    BIDS_INDEX = _bids_index()
    UNITS = _validated_units(BIDS_INDEX)
    RAW = {u: str(BIDS_INDEX.images[u].path) for u in UNITS}


# Units left out of labels, splits and everything after them (they are still preprocessed and
# QC'd). qc.exclude is checked here, before any job runs; qc.auto_exclude makes the group QC table
# an input of make_labels, which writes every exclusion and its reason to results/qc/excluded.tsv.
QC_EXCLUDE = list(config["qc"].get("exclude") or [])
QC_AUTO_EXCLUDE = bool(config["qc"].get("auto_exclude", False))
if QC_EXCLUDE and UNITS:
    from mrixai.selection import manual_exclusions

    manual_exclusions(QC_EXCLUDE, UNITS)  # raises naming labels that match no unit


def labels_qc_input(wildcards):
    """The group QC table, when QC auto-exclusion is on (make_labels then waits for all QC)."""
    return {"qc": "results/qc/group_qc.tsv"} if QC_AUTO_EXCLUDE else {}


def raw_image(wildcards):
    """The raw image of one unit (subject, or subject_ses-X)."""
    return RAW[wildcards.subject]


def accepted_units():
    """Units to process: every synthetic subject, or the BIDS units that passed validation."""
    return UNITS


def probsegs(prefix):
    """Tissue probability map paths for a path prefix, keyed by tissue."""
    return {t: f"{prefix}_label-{t}_probseg.nii.gz" for t in TISSUES}


def arm_transforms(wildcards):
    """Transform files that map the template into one subject, for every configured arm."""
    base = f"results/preproc/sub-{wildcards.subject}/anat/sub-{wildcards.subject}"
    xfm = f"{base}_from-{CONTRAST}_to-template_mode-image"
    files = {}
    if "none" in ARMS:
        files["centre"] = f"{xfm}_reg-none_xfm.mat"
    if "linear" in ARMS or "syn" in ARMS:
        files["affine"] = f"{xfm}_reg-linear_xfm.mat"
    if "syn" in ARMS:
        files["warp"] = f"{xfm}_reg-syn_xfm.nii.gz"
    return files


def arm_transform(wildcards):
    """Transform files that map the template into one subject for the arm ``wildcards.arm`` only."""
    files = arm_transforms(wildcards)
    keep = {"none": ["centre"], "linear": ["affine"], "syn": ["affine", "warp"]}
    return {k: files[k] for k in keep[wildcards.arm]}


def none_arm_output():
    """The none arm's transform as a named output, when that arm is configured."""
    xfm = f"{PRE}_from-{CONTRAST}_to-template_mode-image_reg-none_xfm.mat"
    return {"centre": xfm} if "none" in ARMS else {}


def warped(suffix):
    """Template-space outputs of one kind, one per configured arm (subject left as a wildcard)."""
    return expand(
        f"{PRE}_space-template_reg-{{arm}}_{suffix}.nii.gz",
        arm=ARMS,
        allow_missing=True,
    )


def subject_outputs(unit):
    """Every preprocessing and QC file of one unit."""
    pre = PRE.format(subject=unit)
    qc = QC.format(subject=unit)
    out = [
        f"{pre}_desc-n4_{CONTRAST}.nii.gz",
        f"{pre}_desc-brain_mask.nii.gz",
        f"{pre}_dseg.nii.gz",
        *probsegs(pre).values(),
        f"{qc}_desc-skullstrip_qc.png",
        f"{qc}_desc-tissue_qc.png",
    ]
    for arm in ARMS:
        tpl = f"{pre}_space-template_reg-{arm}"
        out += [
            f"{tpl}_desc-brain_{CONTRAST}.nii.gz",
            f"{tpl}_dseg.nii.gz",
            f"{qc}_reg-{arm}_desc-registration_qc.png",
        ]
    return out


def qc_metrics(wildcards):
    """Per-subject QC metric files of all accepted units."""
    return [f"{QC.format(subject=u)}_qc.json" for u in accepted_units()]


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


# ---- Learning: samples, splits, studies ---------------------------------------------------------
SAMPLES = "results/samples"
MODELS = "results/models"
RUN = "split-{split}_seed-{seed}"
PARTICIPANTS = (
    f"{SYNTH_BIDS}/participants.tsv"
    if config["dataset"] == "synthetic"
    else f"{BIDS_DIR}/participants.tsv"
)
SPLITS = config.get("splits", {})
N_SPLITS = int(SPLITS.get("n_splits", 10))
N_REPEATS = int(SPLITS.get("n_repeats", 5))
STUDY_CFG = config.get("studies", {})
VOLUME_STUDIES = ("registration", "pif", "transfer")


def study_enabled(study):
    """Whether a study is switched on in the config (all are by default)."""
    return bool(STUDY_CFG.get(study, {}).get("enabled", True))


def study_training(study):
    """Training settings of a study (mrixai.learn.options.study_training)."""
    return learn_study_training(config, study)


def study_variants(study):
    """The variants one study compares (each trained over every split and seed)."""
    cfg = STUDY_CFG.get(study, {})
    if study == "registration":
        return [f"reg-{a}" for a in cfg.get("arms", ["none", "linear", "syn"])]
    if study == "pif":
        return ["model-baseline", "model-pif"]
    if study == "transfer":
        return ["init-pretrain", "init-scratch", "init-finetune"]
    return [f"set-{s}" for s in cfg.get("sets", ["pp1", "pp2", "pp3", "pp4", "pp5"])]


def variant_arm(study, variant):
    """Registration arm whose volumes a (study, variant) trains on."""
    cfg = STUDY_CFG.get(study, {})
    if study == "registration":
        return variant.removeprefix("reg-")
    if study == "pif":
        return cfg.get("arm", "syn")
    if variant == "init-pretrain":
        return cfg.get("source_arm", "syn")
    return cfg.get("target_arm", "none")


def check_study_arms():
    """Every arm a study trains on must be produced by preprocessing."""
    for study in VOLUME_STUDIES:
        if not study_enabled(study):
            continue
        for variant in study_variants(study):
            arm = variant_arm(study, variant)
            if arm not in ARMS:
                raise ValueError(
                    f"studies.{study} ({variant}) trains on arm {arm!r}, which is not in registration: {ARMS}"
                )
    sub_arm = config.get("samples", {}).get("subimages", {}).get("arm", "linear")
    if study_enabled("tissue") and sub_arm not in ARMS:
        raise ValueError(
            f"samples.subimages.arm {sub_arm!r} is not in registration: {ARMS}"
        )


check_study_arms()

GROUPS = list(config["label"]["groups"])
if len(GROUPS) != 2:
    raise ValueError(
        f"label.groups must name exactly two groups, got {GROUPS}. "
        "Stacked --configfile files merge dictionaries, so groups from config.yaml stay: "
        "give one complete config file instead."
    )


def volume_store_files(arm):
    """The volume store of one arm: array, index and grid sidecar."""
    base = f"{SAMPLES}/reg-{arm}_desc-volumes"
    return {"npy": f"{base}.npy", "tsv": f"{base}.tsv", "json": f"{base}.json"}


def template_images(arm):
    """Every unit's template-space brain image of one arm."""
    return [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_desc-brain_{CONTRAST}.nii.gz"
        for u in UNITS
    ]


def template_dsegs(arm):
    """Every unit's template-space tissue map of one arm."""
    return [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_dseg.nii.gz" for u in UNITS
    ]


def store_images(wildcards):
    """Images that go into the volume store of ``wildcards.arm``."""
    return template_images(wildcards.arm)


def store_mask(wildcards):
    """The template brain mask for arms listed in samples.volumes.template_mask, else nothing."""
    arms = config.get("samples", {}).get("volumes", {}).get("template_mask", [])
    return {"mask": str(TEMPLATE.mask)} if wildcards.arm in arms else {}


def subimage_inputs(wildcards):
    """Template-space whole-head images and tissue maps the subimage store is cut from."""
    arm = wildcards.arm
    heads = [
        f"{PRE.format(subject=u)}_space-template_reg-{arm}_desc-n4_{CONTRAST}.nii.gz"
        for u in UNITS
    ]
    return {"images": heads, "dsegs": template_dsegs(arm)}


def run_store(wildcards):
    """The volume store a training run reads, and for fine-tuning the pretrained checkpoint."""
    files = volume_store_files(variant_arm(wildcards.study, wildcards.variant))
    if wildcards.variant == "init-finetune":
        files["init"] = f"{MODELS}/transfer/init-pretrain/{RUN}_model.pt".format(
            split=wildcards.split, seed=wildcards.seed
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
    return int(STUDY_CFG.get(study, {}).get("n_repeats", N_REPEATS))


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
    """Studies switched on in the config, in a fixed order."""
    return [
        s for s in ("registration", "tissue", "pif", "transfer") if study_enabled(s)
    ]


def get_train_output(wildcards):
    """Targets of the train stage: labels, splits and each enabled study's summary."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = [f"{SAMPLES}/labels.tsv", "results/splits/splits.tsv"]
    out += [f"{MODELS}/{s}/summary.tsv" for s in enabled_studies()]
    if study_enabled("tissue"):
        out.append(f"{MODELS}/tissue/fractions.tsv")
    patches = config.get("samples", {}).get("patches", {})
    if patches.get("enabled", False):
        out.append(f"{SAMPLES}/reg-{patches.get('arm', 'syn')}_desc-patches.npy")
    if baseline_enabled():
        out.append(f"{BASELINE}/summary.tsv")
    return out


# ---- Classical baseline (rules/baseline.smk) ----------------------------------------------------
BASELINE_CFG = config.get("baseline", {})
BASELINE = f"{MODELS}/baseline"


def baseline_enabled():
    """Whether the linear baseline runs (it runs on the registration study's splits)."""
    return bool(BASELINE_CFG.get("enabled", True))


def baseline_feature_sets():
    """The baseline's feature sets (gm, volumes)."""
    return list(BASELINE_CFG.get("features", ["gm", "volumes"]))


def baseline_gm_arm():
    """Registration arm whose template-space GM maps are the gm features."""
    return BASELINE_CFG.get("gm_arm", "syn")


def baseline_gm_downsample():
    """Block-average factor of the gm features: baseline.gm_downsample, else the volume store's."""
    own = BASELINE_CFG.get("gm_downsample")
    if own is not None:
        return int(own)
    return int(config.get("samples", {}).get("volumes", {}).get("downsample", 1))


def check_baseline():
    """The arms the baseline's features need must be produced by preprocessing."""
    if not baseline_enabled():
        return
    features = baseline_feature_sets()
    if "gm" in features and baseline_gm_arm() not in ARMS:
        raise ValueError(
            f"baseline.gm_arm {baseline_gm_arm()!r} is not in registration: {ARMS}"
        )
    if "volumes" in features and not {"linear", "syn"} & set(ARMS):
        raise ValueError(
            "baseline feature set 'volumes' needs the linear or syn registration arm "
            f"(the atlas is warped to each subject); registration is {ARMS}"
        )


check_baseline()


def baseline_arm(wildcards):
    """What a baseline run's features come from: the GM maps' arm, or native for volumes."""
    return baseline_gm_arm() if wildcards.features == "gm" else "native"


def gm_feature_inputs(wildcards):
    """Every unit's template-space GM probability map of one arm, and the template brain mask."""
    return {
        "maps": [
            f"{PRE.format(subject=u)}_space-template_reg-{wildcards.arm}_label-GM_probseg.nii.gz"
            for u in UNITS
        ],
        "mask": str(TEMPLATE.mask),
    }


def region_volume_inputs(wildcards):
    """Every unit's native regional volume table and QC metrics (for its brain-mask volume)."""
    return {
        "tables": list(region_volume_tables(wildcards).values()),
        "qc": [f"{QC.format(subject=u)}_qc.json" for u in UNITS],
    }


def baseline_feature_files(wildcards):
    """The feature matrix one baseline run reads."""
    if wildcards.features == "gm":
        base = f"{SAMPLES}/reg-{baseline_gm_arm()}_desc-gmfeatures"
        return {"npy": f"{base}.npy", "tsv": f"{base}.tsv"}
    return {"tsv": f"{SAMPLES}/desc-regionvolumes_features.tsv"}


def baseline_runs(wildcards):
    """Metric files of every baseline run (feature set x split; one deterministic fit per split)."""
    return expand(
        f"{BASELINE}/{{features}}/split-{{split}}_seed-0_metrics.json",
        features=baseline_feature_sets(),
        split=range(N_SPLITS),
    )


def registration_figure_baseline(wildcards):
    """The baseline summary the registration metrics figure shows beside the CNN arms, if any."""
    return {"baseline": f"{BASELINE}/summary.tsv"} if baseline_enabled() else {}


def _same_run_in_registration(study, variant):
    """The registration variant whose runs equal (study, variant)'s runs, or None.

    A PIF baseline or a transfer pretraining on an arm the registration study also trains,
    with the same model, settings and no more repeats, would be a bit-identical retraining
    (runs are seeded from the config seed, split and seed): such runs are shared instead.
    """
    if study == "registration" or not study_enabled("registration"):
        return None
    if study_repeats(study) > study_repeats("registration"):
        return None
    source = f"reg-{variant_arm(study, variant)}"
    if source not in study_variants("registration"):
        return None
    mine = run_options(SimpleNamespace(study=study, variant=variant))
    theirs = run_options(SimpleNamespace(study="registration", variant=source))
    return source if mine == theirs else None


SHARED_VARIANTS = {
    variant: source
    for study in ("pif", "transfer")
    if study_enabled(study)
    for variant in study_variants(study)
    if (source := _same_run_in_registration(study, variant))
}


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


def _variant_pattern(variants):
    """A wildcard regex matching exactly ``variants`` (one that matches nothing when empty)."""
    return "|".join(variants) if variants else "(?!)"


ALL_VOLUME_VARIANTS = [
    "reg-none",
    "reg-linear",
    "reg-syn",
    "model-baseline",
    "model-pif",
    "init-pretrain",
    "init-scratch",
    "init-finetune",
]
TRAINED_VARIANTS = _variant_pattern(
    [v for v in ALL_VOLUME_VARIANTS if v not in SHARED_VARIANTS]
)
SHARED_VARIANT_PATTERN = _variant_pattern(list(SHARED_VARIANTS))


# ---- Attribution -----------------------------------------------------------------------------
ATTRIBUTION = "results/attribution"
ATTRIBUTION_CFG = config.get("attribution", {})


def attribution_inputs(wildcards):
    """A run's checkpoint, predictions and the volume store it was trained on."""
    run = f"{MODELS}/{wildcards.study}/{wildcards.variant}/split-{wildcards.split}_seed-{wildcards.seed}"
    files = volume_store_files(variant_arm(wildcards.study, wildcards.variant))
    files.update(model=f"{run}_model.pt", predictions=f"{run}_predictions.tsv")
    return files


def attribution_gpu():
    """1 when attribution is configured to run on a CUDA device."""
    return int(str(ATTRIBUTION_CFG.get("device", "auto")).startswith("cuda"))


def get_attribute_output(wildcards):
    """Targets of the attribute stage: every run of the configured studies, explained."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = []
    for study in ATTRIBUTION_CFG.get("studies", ["registration"]):
        if study_enabled(study):
            out += [
                p.replace("_metrics.json", "").replace(MODELS, ATTRIBUTION, 1)
                for p in study_runs(study)
            ]
    return out


# ---- Analysis: atlas metrics, checks, statistics -----------------------------------------------
STATS = "results/stats"
FIGURES = "results/figures"
ANALYSIS_CFG = config.get("analysis", {})
METHOD_NAMES = list(ATTRIBUTION_CFG.get("methods", {}))
PRIMARY_METHOD = ANALYSIS_CFG.get("primary_method", "lrpb0")
RANDOMISATION_CFG = ANALYSIS_CFG.get("randomisation", {})
RANDOMISATION_METHODS = RANDOMISATION_CFG.get(
    "methods", [m for m in ("lrpb0", "gbp", "gxi", "gradcam") if m in METHOD_NAMES]
)
HIPPOCAMPUS_CFG = ANALYSIS_CFG.get("hippocampus", {})
for _name, _value in (
    ("primary_method", [PRIMARY_METHOD]),
    ("randomisation.methods", RANDOMISATION_METHODS),
):
    _unknown = [m for m in _value if m not in METHOD_NAMES]
    if _unknown:
        raise ValueError(
            f"analysis.{_name}: {_unknown} not among attribution.methods {METHOD_NAMES}"
        )


def lrp_beta_methods():
    """Configured alpha-beta LRP methods, ordered by beta (for the top-10 overlap across betas)."""
    specs = ATTRIBUTION_CFG.get("methods", {})
    betas = {
        name: float(spec.get("beta", 0))
        for name, spec in specs.items()
        if spec.get("method") == "lrp_alphabeta"
    }
    return sorted(betas, key=betas.get)


def explained_variants():
    """(study, variant) pairs whose runs are explained and analysed."""
    return [
        (study, variant)
        for study in ATTRIBUTION_CFG.get("studies", ["registration"])
        if study_enabled(study)
        for variant in study_variants(study)
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


def volume_transforms(wildcards):
    """Native->template transforms whose inverse carries the atlas into a unit's native space."""
    files = arm_transforms(wildcards)
    if "warp" in files:
        return {
            "affine": files["affine"],
            "inverse_warp": files["warp"].replace(
                f"from-{CONTRAST}_to-template", f"from-template_to-{CONTRAST}"
            ),
        }
    if "affine" in files:
        return {"affine": files["affine"]}
    raise ValueError(
        "regional volumes need the linear or syn registration arm; registration is "
        f"{ARMS}"
    )


def region_volume_tables(wildcards):
    """Native regional volume tables of every unit."""
    return {
        u: f"{PRE.format(subject=u)}_atlas-Neuromorphometrics_morph.tsv" for u in UNITS
    }


def hippocampus_inputs(wildcards):
    return {
        "regions": f"{ATTRIBUTION}/{wildcards.study}/{wildcards.variant}_regions.tsv",
        **{f"vol_{u}": p for u, p in region_volume_tables(wildcards).items()},
    }


def get_analysis_output(wildcards):
    """Statistics tables of every enabled study and every explained variant."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    out = []
    if study_enabled("registration"):
        out += [
            f"{STATS}/registration_wilcoxon.tsv",
            f"{STATS}/registration_friedman.tsv",
        ]
        if baseline_enabled():
            out.append(f"{STATS}/registration_baseline.tsv")
    if study_enabled("tissue"):
        out += [f"{STATS}/tissue_kruskal.tsv", f"{STATS}/tissue_posthoc.tsv"]
        out += [
            f"{STATS}/tissue_models-friedman.tsv",
            f"{STATS}/tissue_models-wilcoxon.tsv",
        ]
    out += [
        f"{STATS}/{s}_comparison.tsv" for s in ("pif", "transfer") if study_enabled(s)
    ]
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
    masking = [t for t in get_masking_output(wildcards) if t.endswith(".tsv")]
    if masking:
        tables += [f"{MASKING}/metrics.tsv", f"{MASKING}/brain_mask_dice.tsv"]
    return list(dict.fromkeys(tables))


def results_page_claims_switches():
    """Which studies and checks behind the claims are on (mrixai.claims.SWITCHES)."""
    return {
        "registration": study_enabled("registration"),
        "tissue": study_enabled("tissue"),
        "transfer": study_enabled("transfer"),
        "attribution": bool(explained_variants()),
        "synthetic": config["dataset"] == "synthetic",
        "masking": bool(STUDY_CFG.get("masking", {}).get("enabled", False)),
    }


def results_page_claims_options():
    """Options of mrixai.claims.claims_table from the config (analysis.claims and the methods)."""
    claims = ANALYSIS_CFG.get("claims", {})
    specs = ATTRIBUTION_CFG.get("methods", {})

    def of_kind(kind):
        return [n for n, spec in specs.items() if spec.get("method") == kind]

    baseline = of_kind("gradient_x_input")
    return {
        "alpha": claims.get("alpha", 0.05),
        "equivalence_margin": claims.get("equivalence_margin", 0.05),
        "top_rank": claims.get("top_rank", 10),
        "primary_method": PRIMARY_METHOD,
        "robust_methods": of_kind("guided_backprop"),
        "robustness_baseline": baseline[0] if baseline else "",
        "max_spearman": RANDOMISATION_CFG.get("max_spearman", 0.5),
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


def registration_metric_files(wildcards):
    """Per-run metric files (with ROC points) of the registration study."""
    return study_runs("registration")


def planted_region_names(wildcards):
    """Atlas names of the synthetic cohort's planted regions (merged hemispheres if configured)."""
    from mrixai.explain.regions import planted_regions

    synth = config.get("synthetic", {})
    return planted_regions(
        synth.get("shrink_regions", []),
        synth.get("grow_regions", []),
        ANALYSIS_CFG.get("merge_hemispheres", True),
    )


# ---- Figures ---------------------------------------------------------------------------------
METHOD_LABELS = {
    name: str((spec or {}).get("label", name))
    for name, spec in ATTRIBUTION_CFG.get("methods", {}).items()
}
QC_MONTAGE_ARM = "syn" if "syn" in ARMS else ARMS[-1]
COMPARED_VARIANTS = {
    "pif": ["model-baseline", "model-pif"],
    "transfer": ["init-scratch", "init-finetune"],
}


def comparison_variants(wildcards):
    """The two variants a PIF or transfer comparison figure sets side by side."""
    return COMPARED_VARIANTS[wildcards.study]


def qc_montage_images(wildcards):
    """Template-space brains of every unit in the QC montage's arm."""
    return template_images(QC_MONTAGE_ARM)


def variant_store_json(wildcards):
    """Grid sidecar of the volume store a variant was trained and explained on."""
    return volume_store_files(variant_arm(wildcards.study, wildcards.variant))["json"]


ATTRIBUTION_FIGURES = [
    "class-maps",
    "outcome-maps",
    "run-maps",
    "top-regions",
    "beta-overlap",
    "hippocampus",
    "robustness-l2",
    "robustness-topk",
    "randomisation",
]


def get_figures_output(wildcards):
    """Every figure (PNG and PDF) of the enabled studies and the explained variants."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    names = ["qc_montage"]
    if study_enabled("registration"):
        names += ["registration_metrics", "registration_roc", "registration_splits"]
    if study_enabled("tissue"):
        names.append("tissue_fractions")
    names += [f"{s}_comparison" for s in ("pif", "transfer") if study_enabled(s)]
    for study, variant in explained_variants():
        kinds = list(ATTRIBUTION_FIGURES)
        if len(lrp_beta_methods()) < 2:
            kinds.remove("beta-overlap")
        if config["dataset"] == "synthetic":
            kinds.append("enrichment")
        names += [f"{study}_{variant}_{kind}" for kind in kinds]
    return [f"{FIGURES}/{n}.{ext}" for n in names for ext in ("png", "pdf")]


# ---- Masking study ----------------------------------------------------------------------------
MASKING = "results/masking"
MASKING_OPTIONS = {
    k: v
    for k, v in STUDY_CFG.get("masking", {}).items()
    if k not in ("enabled", "training")
}


def masking_inputs(wildcards):
    """Native bias-corrected images (with skull), brain masks and tissue maps of every unit."""
    return {
        "images": [f"{PRE.format(subject=u)}_desc-n4_{CONTRAST}.nii.gz" for u in UNITS],
        "masks": [f"{PRE.format(subject=u)}_desc-brain_mask.nii.gz" for u in UNITS],
        "dsegs": [f"{PRE.format(subject=u)}_dseg.nii.gz" for u in UNITS],
    }


def get_masking_output(wildcards):
    """The masking study's tables and figures, when the study is switched on."""
    if DATASET_PENDING:
        return [DATASET_DESCRIPTION]
    if not STUDY_CFG.get("masking", {}).get("enabled", False):
        return []
    return [
        f"{MASKING}/metrics.tsv",
        f"{MASKING}/lognormal.tsv",
        f"{FIGURES}/masking_case-saliency.png",
    ]


# ---- Public datasets: downloads and conversion (rules/download.smk) ----------------------------


def dataset_urls(dataset):
    """{file name: URL} of every file a public dataset needs (names must be distinct)."""
    cfg = config[dataset]
    if dataset == "ixi":
        if CONTRAST not in cfg["contrasts"] and config["dataset"] == "ixi":
            raise ValueError(
                f"contrast is {CONTRAST} but ixi.contrasts is {cfg['contrasts']}: add it there"
            )
        urls = [cfg["urls"][c] for c in cfg["contrasts"]] + [
            cfg["urls"]["demographics"]
        ]
    else:
        urls = list(cfg["archives"]) + [cfg["clinical"]]
    names = [file_name(u) for u in urls]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"{dataset}: several files are called {twice}; file names must be distinct"
        )
    return dict(zip(names, urls))


DOWNLOAD_URLS = {d: dataset_urls(d) for d in PUBLIC_DATASETS if config["dataset"] == d}
DOWNLOAD_NAMES = _variant_pattern(
    [re.escape(n) for urls in DOWNLOAD_URLS.values() for n in urls]
)


def download_url(wildcards):
    """Where one file of a public dataset comes from."""
    return DOWNLOAD_URLS[wildcards.dataset][wildcards.filename]


def download_sha256(wildcards):
    """The configured sha256 of one downloaded file, or None."""
    return config[wildcards.dataset]["sha256"].get(wildcards.filename)


def _downloaded(dataset, url):
    return f"{DOWNLOADS}/{dataset}/{file_name(url)}"


def ixi_downloads(wildcards):
    """The IXI archives (in ixi.contrasts order) and the demographics file."""
    cfg = config["ixi"]
    return {
        "archives": [_downloaded("ixi", cfg["urls"][c]) for c in cfg["contrasts"]],
        "demographics": _downloaded("ixi", cfg["urls"]["demographics"]),
    }


def oasis1_downloads(wildcards):
    """The OASIS-1 disc archives and the clinical table."""
    cfg = config["oasis1"]
    return {
        "archives": [_downloaded("oasis1", u) for u in cfg["archives"]],
        "clinical": _downloaded("oasis1", cfg["clinical"]),
    }


def dataset_sources(dataset):
    """URLs recorded in a converted dataset's dataset_description.json."""
    return list(dataset_urls(dataset).values())


def get_dataset_output(wildcards):
    """Target of prepare_dataset: the converted public dataset (nothing for synthetic or bids)."""
    if config["dataset"] in PUBLIC_DATASETS:
        return [DATASET_DESCRIPTION]
    return []
