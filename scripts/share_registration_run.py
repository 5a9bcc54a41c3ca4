"""Reuse a registration-study run as an identical run of the PIF or transfer study."""

from mrixai.learn.run import share_run
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
keys = ("model", "history", "predictions", "metrics")
share_run(
    {k: snakemake.input[k] for k in keys},
    {k: snakemake.output[k] for k in keys},
    snakemake.wildcards.study,
    snakemake.wildcards.variant,
)
