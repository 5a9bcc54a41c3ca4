"""3D patch store cut from one arm's volume store."""

from mrixai.learn.store import build_patch_store
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
build_patch_store(
    snakemake.input.npy,
    snakemake.input.tsv,
    snakemake.output.npy,
    snakemake.output.tsv,
    size=p.size,
    stride=p.stride,
    min_brain_fraction=p.min_brain_fraction,
)
