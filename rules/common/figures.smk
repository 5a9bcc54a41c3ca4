# Input functions of the figures and of the masking study.

METHOD_LABELS = {
    name: str((spec or {}).get("label", name))
    for name, spec in ATTRIBUTION_CFG.get("methods", {}).items()
}
QC_MONTAGE_ARM = "syn" if "syn" in ARMS else ARMS[-1]

# The two variants each compared study's comparison table and figure set side by side.
COMPARED_VARIANTS = {
    s: list(registry.get_study(s).compared) for s in registry.compared_studies()
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
