# mrixai: explainable CNN diagnosis on structural brain MRI, from raw data to figures.
# Run: snakemake --cores 2 (or --profile profiles/local); see README.md.
import os

from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "src/mrixai/schemas/config.schema.yaml")

# Scripts import the project's package; conda envs get it through PYTHONPATH.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (f"{workflow.basedir}/src", os.environ.get("PYTHONPATH", "")) if p
)


include: "rules/common.smk"
include: "rules/template.smk"
include: "rules/synthetic.smk"
include: "rules/preprocess.smk"
include: "rules/register.smk"
include: "rules/qc.smk"


rule all:
    input:
        get_final_output,
    default_target: True


rule preprocess:
    input:
        get_preprocess_output,
