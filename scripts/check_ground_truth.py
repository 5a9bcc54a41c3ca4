"""Enrichment of relevance in the planted-effect mask and the planted regions' ranks."""

from mrixai.explain.groundtruth import ground_truth_check
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
ground_truth_check(
    list(inp.runs),
    inp.regions,
    inp.effect,
    inp.brain,
    inp.store,
    p.planted,
    snakemake.output.enrichment,
    snakemake.output.ranks,
    positive_group=p.positive_group,
    rank_metric=p.rank_metric,
    regions_mask=inp.planted_regions,
    atlas=inp.atlas,
    labels=inp.labels,
    merge_hemispheres=p.merge_hemispheres,
)
