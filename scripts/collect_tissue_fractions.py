"""All per-subject fractions of correctly classified slices of the tissue study."""

from mrixai.learn.summary import collect_tables
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
collect_tables(snakemake.input.fractions, snakemake.output.tsv)
