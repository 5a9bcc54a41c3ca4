# Output folders, path templates, resource scaling and the package-module inputs of rules.

CONTRAST = config["contrast"]
RES = float(config["resolution_mm"])
REPRO = bool(config["reproducible"])
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
SAMPLES = "results/samples"
MODELS = "results/models"
RUN = "split-{split}_seed-{seed}"
PARTICIPANTS = (
    f"{SYNTH_BIDS}/participants.tsv"
    if config["dataset"] == "synthetic"
    else f"{BIDS_DIR}/participants.tsv"
)
BASELINE = f"{MODELS}/baseline"
ATTRIBUTION = "results/attribution"
STATS = "results/stats"
FIGURES = "results/figures"
MASKING = "results/masking"

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


def pkg_of(script, *extra):
    """Package modules ``scripts/<script>`` imports, directly or through the package
    (mrixai.envcheck.package_modules), plus ``extra`` modules the rule depends on otherwise,
    listed as inputs so that editing one reruns the rule. Derived, so the list cannot go stale.
    """
    modules = package_modules(
        f"{workflow.basedir}/scripts/{script}", f"{workflow.basedir}/src"
    )
    return [f"{PKG}/{m}" for m in sorted(set(modules) | set(extra))]
