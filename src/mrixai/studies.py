"""The registry of studies the workflow runs: one entry per study, from which the rule files derive
their wildcard patterns, variant lists and input functions.

Each :class:`Study` says what kind of samples it trains on (``volume``: template-space volume stores,
trained by ``train_volume_model``; ``subimage``: the 2D subimage sets; ``masking``: the segmentation
study, one job), which variants it compares (read from its section of ``studies``), the registration
arm each variant trains on, whether its runs may be the registration study's own runs (then they
are shared, not retrained), which two variants its comparison figure sets side by side, and the
statistics tables and figures its rules make (targets of the analyse and figures stages), and
optionally the rule file of its own rules, which the Snakefile includes.
Adding a study means one :data:`STUDIES` entry plus its rule file (docs/architecture.md, "Adding a
study"); the shared stage rules (training, summaries) pick the entry up through the derived patterns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

KINDS = ("volume", "subimage", "masking")
ARMS = ("none", "linear", "syn")
SETS = ("pp1", "pp2", "pp3", "pp4", "pp5")


def study_config(config: Mapping, name: str) -> Mapping:
    """The ``studies.<name>`` section of a config (empty when absent)."""
    return ((config.get("studies") or {}).get(name)) or {}


@dataclass(frozen=True)
class Study:
    """One study of the workflow.

    ``variants(config)`` lists the variants the config asks for; ``possible_variants`` every
    variant any config could ask for (the wildcard pattern of the rules); ``arm(config, variant)``
    the registration arm a variant's samples come from.
    """

    name: str
    kind: str
    label: str
    variants: Callable[[Mapping], list[str]]
    possible_variants: tuple[str, ...]
    arm: Callable[[Mapping, str], str]
    enabled_by_default: bool = True
    shares_registration_runs: bool = False
    compared: tuple[str, ...] = ()
    statistics: tuple[str, ...] = ()  # tables under results/stats/, without .tsv
    figures: tuple[str, ...] = ()  # figures under results/figures/, without .png/.pdf
    rules: str = ""  # the study's own rule file, rules/studies/<file>.smk, included by the Snakefile

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"study {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if self.compared and len(self.compared) != 2:
            raise ValueError(f"study {self.name!r}: compared must name two variants, got {self.compared}")
        unknown = [v for v in self.compared if v not in self.possible_variants]
        if unknown:
            raise ValueError(f"study {self.name!r}: compared variants {unknown} are not among {self.possible_variants}")
        if self.rules and (not self.rules.startswith("rules/studies/") or not self.rules.endswith(".smk")):
            raise ValueError(f"study {self.name!r}: rules {self.rules!r} is not a rules/studies/*.smk file")


def _transfer_variants(config: Mapping) -> list[str]:
    """Pretraining is a run of this dataset only with ``source: same``; with ``synthetic`` it is
    trained on the embedded synthetic cohort under its own prefix (rules/transfer_source.smk)."""
    same = study_config(config, "transfer").get("source", "same") == "same"
    return (["init-pretrain"] if same else []) + ["init-scratch", "init-finetune"]


def _transfer_arm(config: Mapping, variant: str) -> str:
    cfg = study_config(config, "transfer")
    return cfg.get("source_arm", "syn") if variant == "init-pretrain" else cfg.get("target_arm", "none")


def _subimage_arm(config: Mapping, variant: str) -> str:
    return ((config.get("samples") or {}).get("subimages") or {}).get("arm", "linear")


STUDIES: dict[str, Study] = {
    study.name: study
    for study in (
        Study(
            "registration",
            "volume",
            "Registration study (Klingenberg et al.)",
            variants=lambda c: [f"reg-{a}" for a in study_config(c, "registration").get("arms", list(ARMS))],
            possible_variants=tuple(f"reg-{a}" for a in ARMS),
            arm=lambda c, v: v.removeprefix("reg-"),
            statistics=("registration_wilcoxon", "registration_friedman"),
            figures=("registration_metrics", "registration_roc", "registration_splits"),
        ),
        Study(
            "tissue",
            "subimage",
            "Tissue ablation study (Tachibana et al.)",
            variants=lambda c: [f"set-{s}" for s in study_config(c, "tissue").get("sets", list(SETS))],
            possible_variants=tuple(f"set-{s}" for s in SETS),
            arm=_subimage_arm,
            statistics=("tissue_kruskal", "tissue_posthoc", "tissue_models-friedman", "tissue_models-wilcoxon"),
            figures=("tissue_fractions",),
        ),
        Study(
            "pif",
            "volume",
            "Patch-individual filters (Eitel et al. 2021)",
            variants=lambda c: ["model-baseline", "model-pif"],
            possible_variants=("model-baseline", "model-pif"),
            arm=lambda c, v: study_config(c, "pif").get("arm", "syn"),
            shares_registration_runs=True,
            compared=("model-baseline", "model-pif"),
            statistics=("pif_comparison",),
            figures=("pif_comparison",),
        ),
        Study(
            "transfer",
            "volume",
            "Transfer learning (Eitel et al. 2019)",
            variants=_transfer_variants,
            possible_variants=("init-pretrain", "init-scratch", "init-finetune"),
            arm=_transfer_arm,
            shares_registration_runs=True,
            compared=("init-scratch", "init-finetune"),
            statistics=("transfer_comparison",),
            figures=("transfer_comparison",),
        ),
        Study(
            "masking",
            "masking",
            "Saliency-guided masking",
            variants=lambda c: [],
            possible_variants=(),
            arm=lambda c, v: "native",
            enabled_by_default=False,
        ),
    )
}


def get_study(name: str) -> Study:
    """The registry entry of ``name``; a ValueError lists the known studies."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known studies: {list(STUDIES)}")
    return STUDIES[name]


def studies_of_kind(*kinds: str) -> list[str]:
    """Names of the registered studies of the given kinds, in registry order."""
    return [s.name for s in STUDIES.values() if s.kind in kinds]


def study_enabled(config: Mapping, name: str) -> bool:
    """Whether ``studies.<name>.enabled`` is on (each study's own default when unset)."""
    return bool(study_config(config, name).get("enabled", get_study(name).enabled_by_default))


def study_rule_files() -> list[str]:
    """The rule files the registered studies name (paths relative to the repository root), in
    registry order and without repeats: the Snakefile includes each."""
    return list(dict.fromkeys(s.rules for s in STUDIES.values() if s.rules))


def study_variants(config: Mapping, name: str) -> list[str]:
    """The variants one study compares under ``config``."""
    return list(get_study(name).variants(config))


def variant_arm(config: Mapping, name: str, variant: str) -> str:
    """The registration arm whose samples a study's variant trains on."""
    return get_study(name).arm(config, variant)


def trained_studies(config: Mapping) -> list[str]:
    """Enabled studies that train over splits (volume and subimage kinds), in registry order."""
    return [s for s in studies_of_kind("volume", "subimage") if study_enabled(config, s)]


def compared_studies() -> list[str]:
    """Studies whose two compared variants get a comparison table and figure."""
    return [s.name for s in STUDIES.values() if s.compared]


def possible_variants(*kinds: str) -> list[str]:
    """Every variant any config could give the studies of ``kinds``, in registry order."""
    return [v for s in studies_of_kind(*kinds) for v in STUDIES[s].possible_variants]


def pattern(names) -> str:
    """A wildcard regex matching exactly ``names`` (one that matches nothing when empty)."""
    names = list(names)
    return "|".join(names) if names else "(?!)"


def study_repeats(config: Mapping, name: str) -> int:
    """Trainings per split of one study: ``studies.<name>.n_repeats``, else ``splits.n_repeats``."""
    return int(study_config(config, name).get("n_repeats", config["splits"]["n_repeats"]))


def same_run_in_registration(config: Mapping, name: str, variant: str) -> str | None:
    """The registration variant whose runs equal (study, variant)'s runs, or None.

    A PIF baseline or a transfer pretraining on an arm the registration study also trains, with
    the same model, settings and no more repeats, would be a bit-identical retraining (runs are
    seeded from the config seed, split and seed): such runs are shared instead.
    """
    from mrixai.learn.options import run_options

    if not get_study(name).shares_registration_runs or not study_enabled(config, "registration"):
        return None
    if study_repeats(config, name) > study_repeats(config, "registration"):
        return None
    source = f"reg-{variant_arm(config, name, variant)}"
    if source not in study_variants(config, "registration"):
        return None
    return source if run_options(config, name, variant) == run_options(config, "registration", source) else None


def shared_runs(config: Mapping) -> dict[str, str]:
    """{variant: registration variant} of every enabled study's runs that are the registration
    study's own runs (copied by share_registration_run rather than retrained)."""
    return {
        variant: source
        for name, study in STUDIES.items()
        if study.shares_registration_runs and study_enabled(config, name)
        for variant in study_variants(config, name)
        if (source := same_run_in_registration(config, name, variant))
    }
