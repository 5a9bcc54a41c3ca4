"""The tissue study's 2D subimage sets pp1..pp5 of one registration arm."""

from mrixai.learn.subimages import build_subimage_store
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
build_subimage_store(
    p.units,
    snakemake.input.images,
    snakemake.input.dsegs,
    snakemake.output[0],
    size=p.size,
    extent=p.extent,
    step=p.step,
    n_angles=p.n_angles,
    seed=p.seed,
)
