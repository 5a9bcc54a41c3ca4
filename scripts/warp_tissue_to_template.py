"""Resample the tissue label map and probabilities onto the template, once per registration arm."""

from pathlib import Path

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.register import transform_list, warp_tissue_to_template  # noqa: E402
from mrixai.templates import TemplateFiles  # noqa: E402

i, o = snakemake.input, snakemake.output
template = TemplateFiles(Path(i.template[0]).parent, p.resolution_mm)
for k, arm in enumerate(p.arms):
    warp_tissue_to_template(
        template,
        transform_list(arm, i.get("affine"), i.get("warp"), i.get("centre")),
        i.dseg,
        {"GM": i.gm, "WM": i.wm, "CSF": i.csf},
        o.dseg[k],
        {"GM": o.gm[k], "WM": o.wm[k], "CSF": o.csf[k]},
    )
