"""PIF vs baseline, or fine-tuning vs training from scratch (seeds averaged per split)."""

from mrixai.analysis import compare_variants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
compare_variants(
    snakemake.wildcards.study,
    snakemake.input.summary,
    snakemake.output.tsv,
    exact_limit=p.exact_limit,
    permutations=p.permutations,
    seed=p.seed,
)
