"""Resample the bias-corrected whole-head image onto the template, for one registration arm."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import transform_list, warp_head_to_template  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

i = snakemake.input
template = TemplateFiles(Path(i.template[0]).parent, p.resolution_mm)
warp_head_to_template(
    template,
    transform_list(snakemake.wildcards.arm, i.get("affine"), i.get("warp"), i.get("centre")),
    i.head,
    snakemake.output.head,
)
