"""Label the units from participants.tsv with the configured groups, after QC exclusions."""

import pandas as pd

from mrixai.io import atomic_path
from mrixai.learn.labels import assign_groups
from mrixai.selection import select_learning_units
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
# The group QC table is an input only when qc.auto_exclude is on.
units = select_learning_units(
    p.units, p.exclude, snakemake.input.get("qc"), p.outlier_z, snakemake.output.excluded
)
participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype={"participant_id": str})
labels = assign_groups(participants, units, p.column, dict(p.groups), p.min_per_group)
with atomic_path(snakemake.output.tsv) as tmp:
    labels.to_csv(tmp, sep="\t", index=False)
