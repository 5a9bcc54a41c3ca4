"""Fit the linear baseline on one split's training units (C by inner CV) and test it."""

from mrixai.learn.baseline import run_baseline
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p, w = snakemake.input, snakemake.params, snakemake.wildcards
files = {k: inp[k] for k in ("npy", "tsv") if k in inp.keys()}
run_baseline(w.features, files, inp.splits, int(w.split), dict(snakemake.output.items()), model=p.model,
             c_grid=list(p.c_grid), inner_folds=int(p.inner_folds), run_info={"arm": p.arm})
