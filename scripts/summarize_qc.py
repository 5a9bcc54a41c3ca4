"""Group QC table with robust z-scores and outlier flags, and its figure."""

import json

from mrixai.qc.group import summarize_group
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
rows = [json.loads(open(path).read()) for path in snakemake.input.metrics]
summarize_group(rows, snakemake.params.outlier_z, snakemake.output.tsv, snakemake.output.png)
