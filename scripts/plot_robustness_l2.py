"""Robustness table: L2 distance between mean maps of identical retrainings."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.robustness_l2(inp.l2, out.png, out.pdf, labels=p.labels)
