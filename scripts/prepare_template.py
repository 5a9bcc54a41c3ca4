"""Put the MNI152 2009 template, tissue priors and atlas on the grid of resolution_mm."""

from pathlib import Path

from mrixai.templates import prepare_template
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
prepare_template(
    Path(snakemake.output.t1w).parent,
    p.resolution_mm,
    source=p.template["source"],
    templateflow_home=p.template["templateflow_home"],
)
