"""The run's results page (results/results.md) from its summaries and statistics tables."""

from mrixai.results_page import write_results_page
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
write_results_page(
    snakemake.output.md,
    summaries=dict(zip(snakemake.params.studies, snakemake.input.summaries)),
    tables=list(snakemake.input.tables),
    context=snakemake.params.context,
    claims=snakemake.input.claims,
    alpha=snakemake.params.alpha,
)
