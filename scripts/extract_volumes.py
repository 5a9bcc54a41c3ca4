"""Volume store of one registration arm."""

from mrixai.learn.store import build_volume_store
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
out = snakemake.output
build_volume_store(
    p.units,
    snakemake.input.images,
    out.npy,
    out.tsv,
    out.json,
    arm=snakemake.wildcards.arm,
    shape=p.shape,
    downsample=p.downsample,
    normalisation=p.normalisation,
    mask=snakemake.input.get("mask"),
)
