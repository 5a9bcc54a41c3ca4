"""Native regional volumes of every unit, divided by its brain-mask volume: the baseline's features."""

from mrixai.learn.baseline import collect_region_volumes
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
collect_region_volumes(p.units, list(inp.tables), list(inp.qc), snakemake.output.tsv, measure=p.measure)
