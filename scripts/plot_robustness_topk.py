"""Robustness table: top-k region overlap between identical retrainings."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.robustness_topk(inp.topk, out.png, out.pdf, labels=p.labels)
