"""Write the template-space mask of the regions where atrophy was planted (ground truth)."""

from mrixai import synthetic
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
synthetic.write_effect_mask(
    snakemake.params.template_dir, snakemake.params.resolution_mm, snakemake.params.synthetic, snakemake.output[0]
)
