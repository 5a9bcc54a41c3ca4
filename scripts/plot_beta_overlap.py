"""Top-k region overlap between LRP beta values."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.beta_overlap(inp.overlap, out.png, out.pdf, metric=p.metric, k=p.k, labels=p.labels)
