# mrixai: explainable CNN diagnosis on structural brain MRI, from raw data to figures.
# Run: snakemake --cores 2 (or --profile profiles/local); see README.md.
import sys

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


validate(config, "src/mrixai/schemas/config.schema.yaml")
sys.path.insert(0, f"{workflow.basedir}/src")
from mrixai.config import check_config  # noqa: E402
from mrixai.configfiles import replace_label_groups  # noqa: E402

# Stacked config files merge dictionaries; label.groups is taken whole from the last file that names
# groups (a module, such as the transfer study's source, has its own config and no files).
if not workflow.modifier.skip_configfile:
    replace_label_groups(
        config, [*workflow.configfiles, *(workflow.overwrite_configfiles or [])]
    )

# Cross-checks the schema cannot express (two groups, study arms, baseline, attribution methods).
check_config(config)


include: "rules/common.smk"


wildcard_constraints:
    subject=UNIT_ID_PATTERN,
    arm="none|linear|syn",
    tissue="GM|WM|CSF",
    split="[0-9]+",
    seed="[0-9]+",
    set="pp[1-5]",


include: "rules/template.smk"
include: "rules/synthetic.smk"
include: "rules/download.smk"
include: "rules/preprocess.smk"
include: "rules/register.smk"
include: "rules/qc.smk"
include: "rules/samples.smk"
include: "rules/learn.smk"
include: "rules/baseline.smk"
include: "rules/explain.smk"
include: "rules/analysis.smk"
include: "rules/figures.smk"
include: "rules/masking.smk"
include: "rules/results.smk"
include: "rules/derivatives_inputs.smk"
include: "rules/derivatives.smk"
include: "rules/transfer_source.smk"


# Rule files of the studies in the registry (mrixai.studies; a study's `rules=`).
for study_rules in registry.study_rule_files():

    include: study_rules


rule all:
    default_target: True
    input:
        get_final_output,
        get_derivatives_output,


rule preprocess:
    input:
        get_preprocess_output,
        get_preproc_derivatives_output,


rule train:
    input:
        get_train_output,


rule attribute:
    input:
        get_attribute_output,


rule analyse:
    input:
        get_analysis_output,


rule figures:
    input:
        get_figures_output,
