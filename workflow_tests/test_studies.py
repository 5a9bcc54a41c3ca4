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


def test_a_malformed_rule_file_is_rejected():
    for bad in ("x.py", "rules/x.smk"):
        with pytest.raises(ValueError, match="not a rules/studies/\\*.smk file"):
            Study("x", "volume", "X", variants=lambda c: [], possible_variants=(), arm=lambda c, v: "syn", rules=bad)


def test_the_shipped_registry_names_only_existing_rule_files():
    for path in studies.study_rule_files():
        assert (REPO / path).is_file(), path


# A toy volume study, as a user would add it: one registry entry (two variants on the linear arm, a
# statistics table its own rules make) and one rule file.
TOY_ENTRY = '''

STUDIES["toy"] = Study(
    "toy",
    "volume",
    "Toy depth study",
    variants=lambda c: ["depth-2", "depth-4"],
    possible_variants=("depth-2", "depth-4"),
    arm=lambda c, v: "linear",
    statistics=("toy_notes",),
    rules="rules/studies/toy.smk",
)
'''

TOY_RULES = '''# The toy study: a note per training run, and a table listing the notes.


def toy_notes(wildcards):
    """The note of every run of the toy study (each variant x split x seed)."""
    return [p.replace("_metrics.json", "_note.txt") for p in study_runs("toy")]


rule note_toy_run:
    input:
        metrics=f"{MODELS}/toy/{{variant}}/{RUN}_metrics.json",
    output:
        note=f"{MODELS}/toy/{{variant}}/{RUN}_note.txt",
    log:
        f"{LOGS}/note_toy_run/{{variant}}/{RUN}.log",
    benchmark:
        f"{BENCH}/note_toy_run/{{variant}}/{RUN}.tsv"
    wildcard_constraints:
        variant=registry.pattern(registry.get_study("toy").possible_variants),
    conda:
        "../../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    shell:
        "cp {input.metrics} {output.note} 2> {log}"


rule collect_toy_notes:
    input:
        notes=toy_notes,
    output:
        tsv=f"{STATS}/toy_notes.tsv",
    log:
        f"{LOGS}/collect_toy_notes.log",
    benchmark:
        f"{BENCH}/collect_toy_notes.tsv"
    conda:
        "../../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=100,
        runtime=1,
    shell:
        "ls {input.notes} > {output.tsv} 2> {log}"
'''


def _tree(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (caches and snakemake's own folder left out)."""
    import hashlib

    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file() and not {"__pycache__", ".snakemake"} & set(p.parts)
    }


def _planned_jobs(workdir: Path, repo: Path, config: dict) -> list[dict]:
    """The jobs of a dry run of ``repo`` on ``config``: rule, outputs and wildcards of each."""
    import sys

    from conftest import run_snakemake

    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        from plan_diff import parse_dry_run
    finally:
        sys.path.pop(0)
    proc = run_snakemake(workdir, "-n", "--cores", "1", config=config, repo=repo)
    jobs = []
    for line in parse_dry_run(proc.stdout, repo):
        if line.startswith("PARAMS\t"):
            continue
        rule, *fields = line.split("\t")
        job = dict(field.split("=", 1) for field in fields)
        wildcards = dict(w.split("=", 1) for w in job["wildcards"].split(", ") if "=" in w)
        jobs.append({"rule": rule, "output": job["output"], "wildcards": wildcards})
    return jobs


@pytest.mark.slow
def test_adding_a_toy_study_touches_only_the_registry_and_one_rule_file(tmp_path):
    import subprocess
    from collections import Counter

    from conftest import TINY

    # a copy of the tracked files, as a user's checkout
    repo = tmp_path / "repo"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    for name in filter(None, tracked.stdout.split("\0")):
        if (REPO / name).is_file():
            (repo / name).parent.mkdir(parents=True, exist_ok=True)
            (repo / name).write_bytes((REPO / name).read_bytes())
    before_tree = _tree(repo)
    before = _planned_jobs(tmp_path / "work-before", repo, TINY)

    # the toy study: one registry entry and one rule file, nothing else
    registry = repo / "src" / "mrixai" / "studies.py"
    registry.write_text(registry.read_text() + TOY_ENTRY)
    (repo / "rules" / "studies").mkdir(exist_ok=True)
    (repo / "rules" / "studies" / "toy.smk").write_text(TOY_RULES)
    after_tree = _tree(repo)
    changed = {p for p in before_tree.keys() | after_tree.keys() if before_tree.get(p) != after_tree.get(p)}
    assert changed == {"src/mrixai/studies.py", "rules/studies/toy.smk"}

    # the schema takes the toy's section with no entry of its own: three trainings per split
    toy_config = {**TINY, "studies": {**TINY["studies"], "toy": {"n_repeats": 3}}}
    after = _planned_jobs(tmp_path / "work-after", repo, toy_config)

    # the environment checks read the study's rule file too
    from mrixai.envcheck import parse_rules

    toy_envs = {r.name: r.conda for r in parse_rules(repo) if r.name in ("note_toy_run", "collect_toy_notes")}
    assert toy_envs == {"note_toy_run": ["envs/learn.yaml"], "collect_toy_notes": ["envs/learn.yaml"]}

    # TINY: one split; the toy's two variants x 3 seeds -> 6 training runs, each with a note
    runs = {(v, "0", s) for v in ("depth-2", "depth-4") for s in ("0", "1", "2")}

    def toy_runs(rule):
        return [
            (j["wildcards"]["variant"], j["wildcards"]["split"], j["wildcards"]["seed"])
            for j in after
            if j["rule"] == rule and j["wildcards"].get("study", "toy") == "toy" and "/toy/" in j["output"]
        ]

    trained = toy_runs("train_volume_model")
    assert sorted(trained) == sorted(runs)  # each run planned once
    assert sorted(toy_runs("note_toy_run")) == sorted(runs)
    assert [j["wildcards"] for j in after if j["rule"] == "summarize_study" and "/toy/" in j["output"]] == [
        {"study": "toy"}
    ]
    assert [j["output"] for j in after if j["rule"] == "collect_toy_notes"] == ["results/stats/toy_notes.tsv"]

    # every other study keeps its jobs: the same count per rule and study
    def counts(jobs):
        return Counter((j["rule"], j["wildcards"].get("study")) for j in jobs if "toy" not in j["output"])

    assert counts(after) == counts(before)
    assert len(before) == sum(counts(before).values())  # the untouched workflow planned no toy job


def test_a_study_section_the_registry_does_not_know_is_named():
    from mrixai.config import check_study_names

    check_study_names({"studies": {name: {} for name in studies.STUDIES}})
    with pytest.raises(ValueError, match=r"studies\.nope: no such study in the registry"):
        check_study_names({"studies": {"registration": {}, "nope": {"enabled": True}}})
