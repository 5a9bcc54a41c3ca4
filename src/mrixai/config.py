"""Cross-checks of a workflow config that its JSON schema cannot express.

The schema checks each key on its own (types, ranges, enums); :func:`check_config` checks that keys
agree with each other, before any job is planned: the label names two groups, every arm a study or
the baseline trains on is produced by preprocessing (``registration``), and the attribution methods
the analysis names are configured. Each error is a ValueError naming the key and the bad value.
"""

from __future__ import annotations

from collections.abc import Mapping

from mrixai.studies import STUDIES, studies_of_kind, study_enabled, study_variants, variant_arm

def check_config(config: Mapping) -> None:
    """Raise ValueError naming the key if the config's keys contradict each other."""
    check_study_names(config)
    check_study_arms(config)
    check_groups(config)
    check_baseline(config)
    check_analysis_methods(config)


def check_groups(config: Mapping) -> None:
    """``label.groups`` names exactly two groups."""
    groups = list(config["label"]["groups"])
    if len(groups) != 2:
        raise ValueError(
            f"label.groups must name exactly two groups, got {groups}."
        )


def check_study_names(config: Mapping) -> None:
    """Every section under ``studies`` names a study of the registry (the schema accepts any name
    so that a study added to the registry needs no schema entry)."""
    unknown = [name for name in (config.get("studies") or {}) if name not in STUDIES]
    if unknown:
        raise ValueError(
            f"studies.{unknown[0]}: no such study in the registry (src/mrixai/studies.py); known studies: {list(STUDIES)}"
        )


def check_study_arms(config: Mapping) -> None:
    """Every arm an enabled study trains on is in ``registration``."""
    arms = list(config["registration"])
    for study in studies_of_kind("volume"):
        if not study_enabled(config, study):
            continue
        for variant in study_variants(config, study):
            arm = variant_arm(config, study, variant)
            if arm not in arms:
                raise ValueError(
                    f"studies.{study} ({variant}) trains on arm {arm!r}, which is not in registration: {arms}"
                )
    for study in studies_of_kind("subimage"):
        sub_arm = config["samples"]["subimages"]["arm"]
        if study_enabled(config, study) and sub_arm not in arms:
            raise ValueError(f"samples.subimages.arm {sub_arm!r} is not in registration: {arms}")


def check_baseline(config: Mapping) -> None:
    """The arms the classical baseline's feature sets need are in ``registration``."""
    baseline = config["baseline"]
    if not baseline["enabled"]:
        return
    arms = list(config["registration"])
    features = list(baseline["features"])
    gm_arm = baseline["gm_arm"]
    if "gm" in features and gm_arm not in arms:
        raise ValueError(f"baseline.gm_arm {gm_arm!r} is not in registration: {arms}")
    if "volumes" in features and not {"linear", "syn"} & set(arms):
        raise ValueError(
            "baseline feature set 'volumes' needs the linear or syn registration arm "
            f"(the atlas is warped to each subject); registration is {arms}"
        )


def randomisation_methods(config: Mapping) -> list[str]:
    """``analysis.randomisation.methods`` (config.yaml holds it)."""
    return list(config["analysis"]["randomisation"]["methods"])


def check_analysis_methods(config: Mapping) -> None:
    """The methods ``analysis`` names are keys of ``attribution.methods``."""
    configured = list(config["attribution"]["methods"])
    primary = config["analysis"]["primary_method"]
    for name, value in (("primary_method", [primary]), ("randomisation.methods", randomisation_methods(config))):
        unknown = [m for m in value if m not in configured]
        if unknown:
            raise ValueError(f"analysis.{name}: {unknown} not among attribution.methods {configured}")
