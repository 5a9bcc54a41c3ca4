"""Montage of the template's outline over the subject warped by one registration arm."""

from mrixai.qc import plot_registration_montage
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
w = snakemake.wildcards
plot_registration_montage(
    snakemake.input.image, snakemake.input.template, snakemake.output[0], f"sub-{w.subject}: registration, arm {w.arm}"
)
