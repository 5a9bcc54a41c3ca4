"""Montage of the brain-mask outline over the bias-corrected head."""

from mrixai.qc import plot_mask_montage
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
plot_mask_montage(
    snakemake.input.image, snakemake.input.mask, snakemake.output[0], f"sub-{snakemake.wildcards.subject}: skull strip"
)
