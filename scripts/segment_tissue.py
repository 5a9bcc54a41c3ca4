"""Segment GM / WM / CSF with Atropos, priors brought in through the inverse affine."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.segment import run_segment_tissue  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

out = snakemake.output
run_segment_tissue(
    snakemake.input.brain,
    snakemake.input.mask,
    TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm),
    snakemake.input.affine,
    out.dseg,
    {"GM": out.gm, "WM": out.wm, "CSF": out.csf},
    p.prior_weight,
    p.mrf,
    p.iterations,
)
