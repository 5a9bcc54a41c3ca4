"""The claims table (results/stats/claims.tsv): each paper's claim checked on the run's tables."""

from mrixai.claims import write_claims
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
write_claims(
    snakemake.output.tsv,
    list(snakemake.input.tables),
    dict(snakemake.params.switches),
    **dict(snakemake.params.options),
)
