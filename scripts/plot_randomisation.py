"""Model-randomisation check per method."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.randomisation(inp.table, out.png, out.pdf, threshold=p.threshold, labels=p.labels)
