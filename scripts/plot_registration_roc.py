"""Registration study: mean ROC per arm."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.registration_roc(inp.roc, inp.summary, out.png, out.pdf)
