"""Write the template-space ground truth of the planted effect: where it changes the image, and its regions."""

from pathlib import Path

from mrixai.synthetic import truth
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
truth.write_effect_mask(
    Path(snakemake.input.template[0]).parent,
    snakemake.params.resolution_mm,
    snakemake.params.synthetic,
    snakemake.output.effect,
    head_model_dir=Path(snakemake.input.head_model[0]).parent,
    threshold=snakemake.params.threshold,
    out_regions=snakemake.output.regions,
)
