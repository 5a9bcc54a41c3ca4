"""Registration study: balanced accuracy per split."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.registration_splits(inp.summary, out.png, out.pdf)
