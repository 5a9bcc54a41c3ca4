"""Group QC montage of the template-space brains."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.qc_montage(list(inp.images), p.units, out.png, out.pdf, title=f"Template-space brains, reg-{p.arm}")
