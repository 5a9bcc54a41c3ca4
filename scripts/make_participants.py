"""Draw the synthetic cohort's participants table (group, age, sex, severity)."""

from mrixai import synthetic
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
table = synthetic.make_participants(snakemake.params.n_subjects, snakemake.params.seed)
synthetic.write_participants(table, snakemake.output.tsv)
synthetic.write_dataset_description(snakemake.output.description)
