# Paths and input functions of the derivatives sink (rules/derivatives.smk), kept apart from
# rules/common.smk: the mapping itself is mrixai.derivatives.
import os as _os

from mrixai import derivatives as _deriv  # noqa: E402
from mrixai.templates import template_id as _template_id  # noqa: E402

DERIV = "results/derivatives"
# TemplateFlow ID of the template actually used (nilearn's 2009a copy or a TemplateFlow cache)
TEMPLATE_ID = _template_id(TEMPLATE_SOURCE)
RAW_ROOT = SYNTH_BIDS if config["dataset"] == "synthetic" else BIDS_DIR
DERIV_PARAMETERS = {
    k: config[k]
    for k in ("bias_correction", "skullstrip", "segmentation", "registration_params")
}
EXPLAINED_MEANS = {
    f"{study}/{variant}": f"{ATTRIBUTION}/{study}/{variant}_means"
    for study, variant in explained_variants()
}


def deriv_raw_paths():
    """Each unit's raw image, relative to the raw dataset (for the sidecars' bids:raw: URIs)."""
    return {u: _os.path.relpath(RAW[u], RAW_ROOT) for u in UNITS}


def deriv_raw_link(dataset):
    """The raw dataset's location relative to a derivatives dataset (its DatasetLinks raw)."""
    return _os.path.relpath(RAW_ROOT, f"{DERIV}/{dataset}")


def preproc_derivative_sources(wildcards):
    """Every working file the preprocessing derivatives dataset holds."""
    raw = deriv_raw_paths()
    return [
        str(e.source)
        for u in UNITS
        for e in _deriv.preproc_exports(
            u, PRE.format(subject=u), raw[u], CONTRAST, ARMS, TEMPLATE_ID, RES
        )
    ]


def truth_derivative_sources(wildcards):
    """The synthetic cohort's ground-truth files the truth derivatives dataset holds."""
    native = [str(e.source) for u in UNITS for e in _deriv.truth_exports(u, TRUTH)]
    return {"native": native, "effect": EFFECT_MASK, "regions": PLANTED_REGIONS_MASK}


def attribution_derivative_sources(wildcards):
    """The group mean map folders of every explained variant."""
    return list(EXPLAINED_MEANS.values())


def get_preproc_derivatives_output(wildcards):
    """The preprocessing derivatives dataset (nothing while a public dataset is being prepared)."""
    return [] if DATASET_PENDING else [f"{DERIV}/mrixai-preproc"]


def get_derivatives_output(wildcards):
    """Every derivatives dataset this configuration makes."""
    if DATASET_PENDING:
        return []
    out = get_preproc_derivatives_output(wildcards)
    if config["dataset"] == "synthetic":
        out.append(f"{DERIV}/mrixai-truth")
    if EXPLAINED_MEANS:
        out.append(f"{DERIV}/mrixai-attribution")
    return out
