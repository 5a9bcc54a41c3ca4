"""Affine registration of the skull-stripped image to the template (the linear arm)."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import register_affine  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

register_affine(
    snakemake.input.brain, TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm), snakemake.output[0], p.iterations
)
