"""Exact Wilcoxon and Friedman tests between registration arms, and each arm's mean ROC."""

from mrixai.analysis import registration_tests
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
out, p = snakemake.output, snakemake.params
registration_tests(
    snakemake.input.summary,
    list(snakemake.input.metrics),
    out.wilcoxon,
    out.friedman,
    out.roc,
    exact_limit=p.exact_limit,
    permutations=p.permutations,
    seed=p.seed,
)
