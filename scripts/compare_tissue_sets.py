"""The tissue study's image sets: Kruskal-Wallis and Steel-Dwass over subjects (as published), and
exact Friedman and Wilcoxon tests over splits at the level of trained models."""

from mrixai.analysis import tissue_tests
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
out, p = snakemake.output, snakemake.params
tissue_tests(
    snakemake.input.fractions,
    out.kruskal,
    out.posthoc,
    out.models,
    out.model_friedman,
    out.model_pairs,
    exact_limit=p.exact_limit,
    permutations=p.permutations,
    seed=p.seed,
)
