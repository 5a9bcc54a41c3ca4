"""SyN registration to the template, initialised by the affine (the syn arm)."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import register_syn  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

register_syn(
    snakemake.input.brain,
    TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm),
    snakemake.input.affine,
    snakemake.output.warp,
    snakemake.output.inverse,
    p.iterations,
    p.gradient_step,
)
