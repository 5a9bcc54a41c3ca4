"""Hippocampal volume vs relevance among true positives."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.hippocampus(inp.points, inp.test, out.png, out.pdf, labels=p.labels)
