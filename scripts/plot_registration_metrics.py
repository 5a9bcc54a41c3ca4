"""Registration study: balanced accuracy, sensitivity and specificity per arm."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.registration_metrics(inp.summary, inp.wilcoxon, out.png, out.pdf, baseline=inp.get("baseline"))
