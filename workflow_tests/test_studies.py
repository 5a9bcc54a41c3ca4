"""The study registry (mrixai.studies): variants, arms and shared runs of the shipped config, as the
config's comments and the docs describe them, and a new study joining the derived patterns."""

from pathlib import Path

import pytest
import yaml

from mrixai import studies
from mrixai.studies import Study

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_variants_of_the_default_config(config):
    # config.yaml: registration arms none/linear/syn, tissue sets pp1..pp5, PIF baseline vs PIF,
    # transfer pretraining, scratch and fine-tuning.
    assert studies.study_variants(config, "registration") == ["reg-none", "reg-linear", "reg-syn"]
    assert studies.study_variants(config, "tissue") == [f"set-pp{i}" for i in range(1, 6)]
    assert studies.study_variants(config, "pif") == ["model-baseline", "model-pif"]
    assert studies.study_variants(config, "transfer") == ["init-pretrain", "init-scratch", "init-finetune"]


def test_arm_of_each_variant(config):
    # studies.pif.arm: syn; studies.transfer.source_arm: syn, target_arm: none; samples.subimages.arm: linear.
    arm = lambda s, v: studies.variant_arm(config, s, v)  # noqa: E731
    assert [arm("registration", v) for v in ("reg-none", "reg-linear", "reg-syn")] == ["none", "linear", "syn"]
    assert arm("pif", "model-baseline") == arm("pif", "model-pif") == "syn"
    assert arm("transfer", "init-pretrain") == "syn"
    assert arm("transfer", "init-scratch") == arm("transfer", "init-finetune") == "none"
    assert arm("tissue", "set-pp3") == "linear"


def test_arms_follow_the_study_sections(config):
    cfg = {**config, "studies": {"registration": {"arms": ["syn"]}, "pif": {"arm": "linear"},
                                 "transfer": {"source_arm": "linear", "target_arm": "syn"}}}  # fmt: skip
    assert studies.study_variants(cfg, "registration") == ["reg-syn"]
    assert studies.variant_arm(cfg, "pif", "model-pif") == "linear"
    assert studies.variant_arm(cfg, "transfer", "init-pretrain") == "linear"
    assert studies.variant_arm(cfg, "transfer", "init-finetune") == "syn"


def test_shared_runs_of_the_default_config(config):
    # The transfer pretraining trains the registration study's syn model with the same settings, so
    # its runs are shared; the PIF baseline trains without flips (studies.pif.training.flip_p: 0),
    # so it is retrained; variants trained on a subset (scratch, fine-tuning) never are.
    assert studies.shared_runs(config) == {"init-pretrain": "reg-syn"}


def test_no_shared_runs_without_the_registration_study_or_with_more_repeats(config):
    off = {**config, "studies": {**config["studies"], "registration": {"enabled": False}}}
    assert studies.shared_runs(off) == {}
    more = {**config, "studies": {**config["studies"], "transfer": {**config["studies"]["transfer"], "n_repeats": 9}}}
    assert studies.shared_runs(more) == {}


def test_enabled_studies_and_their_kinds(config):
    assert studies.trained_studies(config) == ["registration", "tissue", "pif", "transfer"]
    assert studies.studies_of_kind("volume") == ["registration", "pif", "transfer"]
    assert studies.pattern(studies.studies_of_kind("volume")) == "registration|pif|transfer"
    assert studies.compared_studies() == ["pif", "transfer"]
    # the masking study is off unless switched on
    assert not studies.study_enabled({}, "masking") and studies.study_enabled({}, "pif")


def test_unknown_study_is_named():
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        studies.study_variants({}, "nope")


def test_an_empty_pattern_matches_nothing():
    import re

    assert re.fullmatch(studies.pattern([]), "") is None
    assert re.fullmatch(studies.pattern([]), "reg-syn") is None


def test_a_new_study_joins_the_derived_patterns_and_variants(monkeypatch, config):
    toy = Study(
        "toy", "volume", "Toy study",
        variants=lambda c: [f"depth-{d}" for d in studies.study_config(c, "toy").get("depths", [2, 4])],
        possible_variants=("depth-2", "depth-4", "depth-8"),
        arm=lambda c, v: "linear",
        compared=("depth-2", "depth-4"),
    )  # fmt: skip
    monkeypatch.setitem(studies.STUDIES, "toy", toy)
    assert "toy" in studies.pattern(studies.studies_of_kind("volume")).split("|")
    assert {"depth-2", "depth-4", "depth-8"} <= set(studies.possible_variants("volume"))
    assert studies.study_variants({"studies": {"toy": {"depths": [8]}}}, "toy") == ["depth-8"]
    assert "toy" in studies.trained_studies(config) and "toy" in studies.compared_studies()
    assert studies.variant_arm(config, "toy", "depth-2") == "linear"


def test_a_malformed_study_entry_is_rejected():
    with pytest.raises(ValueError, match="kind 'graph'"):
        Study("x", "graph", "X", variants=lambda c: [], possible_variants=(), arm=lambda c, v: "syn")
    with pytest.raises(ValueError, match="compared variants"):
        Study("x", "volume", "X", variants=lambda c: [], possible_variants=("a",), arm=lambda c, v: "syn",
              compared=("a", "b"))  # fmt: skip


def test_statistics_tables_and_figures_of_each_study():
    # docs/outputs.md: stats/registration_{wilcoxon,friedman}.tsv, tissue_{kruskal,posthoc}.tsv (and the
    # per-model tissue tests), {pif,transfer}_comparison.tsv; a comparison figure per compared study.
    stats = {name: studies.get_study(name).statistics for name in studies.trained_studies({})}
    assert stats["registration"] == ("registration_wilcoxon", "registration_friedman")
    assert {"tissue_kruskal", "tissue_posthoc"} <= set(stats["tissue"])
    assert stats["pif"] == ("pif_comparison",) and stats["transfer"] == ("transfer_comparison",)
    for name in studies.compared_studies():
        assert f"{name}_comparison" in studies.get_study(name).figures
