"""Label the units from participants.tsv with the configured groups."""

import pandas as pd

from mrixai.io import atomic_path
from mrixai.learn.labels import assign_groups
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
participants = pd.read_csv(snakemake.input.participants, sep="\t", dtype={"participant_id": str})
labels = assign_groups(participants, p.units, p.column, dict(p.groups), p.min_per_group)
with atomic_path(snakemake.output.tsv) as tmp:
    labels.to_csv(tmp, sep="\t", index=False)
