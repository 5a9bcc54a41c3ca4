"""Skull-strip the bias-corrected image with the configured backend."""

from mrixai.preproc.skullstrip import run_strip_skull
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
run_strip_skull(
    snakemake.input.image,
    snakemake.output.mask,
    snakemake.output.brain,
    p.method,
    p.threshold,
    p.n_dilate,
    snakemake.threads,
    p.seed,
)
