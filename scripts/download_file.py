"""Fetch one raw-data file (resumable, retried, checksummed) into results/downloads/."""

from mrixai.datasets.download import fetch
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
options = snakemake.config["downloads"]
fetch(
    p.url,
    snakemake.output[0],
    sha256=p.sha256,
    retries=options["retries"],
    backoff_s=options["backoff_s"],
    timeout_s=options["timeout_s"],
    progress_interval_s=options["progress_interval_s"],
)
