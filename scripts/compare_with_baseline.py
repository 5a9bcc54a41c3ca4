"""Best registration-study CNN arm against each baseline feature set, paired by split."""

import pandas as pd

from mrixai.stats import compare_with_cnn
from mrixai.learn.summary import write_table
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp = snakemake.input
table = compare_with_cnn(pd.read_csv(inp.cnn, sep="\t"), pd.read_csv(inp.baseline, sep="\t"))
write_table(table, snakemake.output.tsv)
