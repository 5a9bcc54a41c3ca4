"""Ground truth: relevance enrichment in the planted-effect regions."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.enrichment(inp.table, out.png, out.pdf, group=p.group, labels=p.labels)
