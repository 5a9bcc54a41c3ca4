"""Write the template-space mask of the regions where atrophy was planted (ground truth)."""

from pathlib import Path
from mrixai import synthetic
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
synthetic.write_effect_mask(
    Path(snakemake.input.template[0]).parent, snakemake.params.resolution_mm, snakemake.params.synthetic, snakemake.output[0]
)
