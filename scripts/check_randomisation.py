"""Model-randomisation sanity check: maps of a re-initialised model vs the trained model's."""

from mrixai.explain.randomisation import randomisation_check
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
randomisation_check(
    inp.model,
    inp.npy,
    inp.tsv,
    inp.run,
    p.methods,
    p.names,
    snakemake.output.tsv,
    seed=p.seed,
    draws=p.draws,
    device=p.device,
    target=p.target,
)
