"""A region's relevance vs its native volume (Boehle et al.'s hippocampus check; permutation test)."""

from mrixai.explain.neuro import hippocampus_check
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
volumes = {key.removeprefix("vol_"): path for key, path in inp.items() if key.startswith("vol_")}
hippocampus_check(
    inp.regions,
    volumes,
    snakemake.output.points,
    snakemake.output.test,
    method=p.method,
    region=p.region,
    metric=p.metric,
    n_permutations=p.permutations,
    seed=p.seed,
    max_exact=p.exact_limit,
    outcomes=p.outcomes,
    volume_measure=p.volume_measure,
    direction=p.direction,
)
