"""Top regions by sum, density and gain of the primary method."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.top_regions(
    inp.regions, out.png, out.pdf, method=p.method, group=p.group, k=p.k,
    highlight=p.highlight, label=p.labels.get(p.method, p.method),
)
