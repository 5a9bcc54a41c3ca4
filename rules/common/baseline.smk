# The classical baseline (rules/baseline.smk): a linear model on GM maps or regional volumes.

BASELINE_CFG = config["baseline"]


def baseline_enabled():
    """Whether the linear baseline runs (it runs on the registration study's splits)."""
    return bool(BASELINE_CFG["enabled"])


def baseline_feature_sets():
    """The baseline's feature sets (gm, volumes)."""
    return list(BASELINE_CFG["features"])


def baseline_gm_arm():
    """Registration arm whose template-space GM maps are the gm features."""
    return BASELINE_CFG["gm_arm"]


def baseline_gm_downsample():
    """Block-average factor of the gm features: baseline.gm_downsample, else the volume store's."""
    own = BASELINE_CFG.get("gm_downsample")
    if own is not None:
        return int(own)
    return int(config["samples"]["volumes"]["downsample"])


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
