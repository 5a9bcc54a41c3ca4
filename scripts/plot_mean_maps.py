"""Mean attribution maps (per class, outcome or run) over template slices."""

from mrixai.figures import make
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
make.mean_maps(
    inp.maps, inp.template, inp.store, out.png, out.pdf,
    kind=p.kind, methods=p.methods, labels=p.labels, names=p.names,
    title=f"{snakemake.wildcards.study} {snakemake.wildcards.variant}: mean maps per {p.kind}",
)
