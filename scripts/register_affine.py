"""Affine registration to the template (the linear arm), and the none arm's centring translation."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import centering_transform, register_affine  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

template = TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm)
register_affine(snakemake.input.brain, template, snakemake.output.affine, p.iterations)
if "centre" in snakemake.output.keys():
    centering_transform(snakemake.input.brain, template, snakemake.output.centre)
