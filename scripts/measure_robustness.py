"""Robustness of the explanations over identical retrainings (L2 and top-k overlap tables)."""

from mrixai.explain.aggregate import robustness_tables
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
out, p = snakemake.output, snakemake.params
robustness_tables(
    snakemake.input.regions,
    snakemake.input.maps,
    p.methods,
    p.beta_methods,
    out.l2,
    out.topk,
    out.overlap,
    k=p.k,
)
