"""One table with a row per training run of a study."""

from mrixai.learn.summary import summarize_runs
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
summarize_runs(snakemake.input.metrics, snakemake.output.tsv)
