"""Resample the brain image, mask, label map and tissue probabilities onto the template for one arm."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import transform_list, warp_to_template  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

i, o = snakemake.input, snakemake.output
transforms = transform_list(
    snakemake.wildcards.arm, i.get("affine"), i.get("warp"), i.get("centre")
)
warp_to_template(
    TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm),
    transforms,
    i.brain,
    i.mask,
    i.dseg,
    {"GM": i.gm, "WM": i.wm, "CSF": i.csf},
    o.brain,
    o.mask,
    o.dseg,
    {"GM": o.gm, "WM": o.wm, "CSF": o.csf},
)
