# Input functions of the figures and of the masking study.

METHOD_LABELS = {
    name: str((spec or {}).get("label", name))
    for name, spec in ATTRIBUTION_CFG["methods"].items()
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
    for k, v in STUDY_CFG["masking"].items()
    if k not in ("enabled", "training", "reference_labels")
}
# A labelled derivatives folder (e.g. DLMUSE) the masking study trains on and is scored against
# instead of the pipeline's own masks and tissue maps; a relative path is taken from bids_dir.
MASKING_REFERENCE = (
    STUDY_CFG["masking"].get("reference_labels")
    if STUDY_CFG["masking"]["enabled"]
    else None
)
if MASKING_REFERENCE and not os.path.isabs(MASKING_REFERENCE):
    if config["dataset"] == "synthetic":
        raise ValueError(
            "studies.masking.reference_labels is relative to bids_dir, which the synthetic dataset "
            f"does not use: give an absolute path, got {MASKING_REFERENCE!r}"
        )
    MASKING_REFERENCE = os.path.join(BIDS_DIR, MASKING_REFERENCE)
MASKING_REF = f"{MASKING}/reference/sub-{{subject}}/anat/sub-{{subject}}"


def masking_inputs(wildcards):
    """Native bias-corrected images (with skull), brain masks and tissue maps of every unit (the
    masks and maps of studies.masking.reference_labels when it is set)."""
    ref = MASKING_REF if MASKING_REFERENCE else PRE
    return {
        "images": [f"{PRE.format(subject=u)}_desc-n4_{CONTRAST}.nii.gz" for u in UNITS],
        "masks": [f"{ref.format(subject=u)}_desc-brain_mask.nii.gz" for u in UNITS],
        "dsegs": [f"{ref.format(subject=u)}_dseg.nii.gz" for u in UNITS],
    }


def masking_reference_inputs(wildcards):
    """A unit's reference label image and its folder's label table (dseg.tsv)."""
    from mrixai.masking.reference import find_reference_dseg

    return {
        "dseg": str(find_reference_dseg(MASKING_REFERENCE, wildcards.subject)),
        "lut": os.path.join(MASKING_REFERENCE, "dseg.tsv"),
    }
