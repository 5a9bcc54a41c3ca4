"""PIF vs baseline, or fine-tuning vs training from scratch."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.variant_comparison(p.variants, inp.summary, inp.comparison, out.png, out.pdf)
