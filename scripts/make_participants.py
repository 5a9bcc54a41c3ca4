"""Draw the synthetic cohort's participants table (group, age, sex, severity)."""

from mrixai.synthetic import cohort
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
table = cohort.make_participants(snakemake.params.n_subjects, snakemake.params.seed)
cohort.write_participants(table, snakemake.output.tsv)
cohort.write_dataset_description(snakemake.output.description)
