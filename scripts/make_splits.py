"""Subject-level stratified splits of the labelled units."""

import pandas as pd

from mrixai.io import atomic_path
from mrixai.learn.splits import make_splits
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
labels = pd.read_csv(snakemake.input.labels, sep="\t", dtype={"unit": str, "subject": str})
table = make_splits(
    labels, p.n_splits, p.method, p.test_fraction, p.val_fraction, p.seed, list(p.age_bins) or None
)
with atomic_path(snakemake.output.tsv) as tmp:
    table.to_csv(tmp, sep="\t", index=False)
