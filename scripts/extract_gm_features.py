"""Template-space grey-matter maps of one arm as the baseline's feature matrix."""

from mrixai.learn.baseline import build_gm_features
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out, p = snakemake.input, snakemake.output, snakemake.params
build_gm_features(p.units, list(inp.maps), inp.mask, out.npy, out.tsv, arm=snakemake.wildcards.arm,
                  shape=p.shape, downsample=int(p.downsample))
