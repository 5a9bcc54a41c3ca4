"""PIF vs baseline, or fine-tuning vs training from scratch."""

from mrixai.analysis import compare_variants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
compare_variants(snakemake.wildcards.study, snakemake.input.summary, snakemake.output.tsv)
