"""Tissue study: per-subject fraction of correct slices for CNN1..CNN5."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.tissue_fractions(inp.fractions, inp.kruskal, inp.posthoc, out.png, out.pdf)
