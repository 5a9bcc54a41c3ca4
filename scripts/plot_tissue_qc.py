"""Montage of the GM / WM / CSF label map over the skull-stripped image."""

from mrixai.qc import plot_tissue_montage
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
plot_tissue_montage(
    snakemake.input.image, snakemake.input.dseg, snakemake.output[0], f"sub-{snakemake.wildcards.subject}: tissues"
)
