"""Reorient the raw image to RAS and correct its bias field with N4."""

from mrixai.preproc.antsio import configure_ants
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
configure_ants(snakemake.threads, p.reproducible, p.seed)

from mrixai.preproc.bias import run_correct_bias  # noqa: E402

run_correct_bias(
    snakemake.input.image,
    snakemake.output[0],
    p.resolution_mm,
    p.max_voxel_ratio,
    p.shrink_factor,
    p.iterations,
    p.spline_distance_mm,
)
