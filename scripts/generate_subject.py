"""Generate one synthetic subject: T1w and T2w whole-head scans plus native-space ground truth."""

from pathlib import Path
import pandas as pd

from mrixai.synthetic.generation import generate_subject
from mrixai.workflow import setup_logging

log = setup_logging(snakemake.log[0])
table = pd.read_csv(snakemake.input.participants, sep="\t", dtype={"participant_id": str})
row = table.loc[table["participant_id"] == f"sub-{snakemake.wildcards.subject}"]
if len(row) != 1:
    raise ValueError(f"sub-{snakemake.wildcards.subject} is not in {snakemake.input.participants}")
drawn = generate_subject(
    row.iloc[0].to_dict(),
    Path(snakemake.input.headmodel[0]).parent,
    Path(snakemake.input.template[0]).parent,
    snakemake.params.resolution_mm,
    snakemake.params.synthetic,
    snakemake.params.seed,
    snakemake.output.t1w,
    snakemake.output.t2w,
    snakemake.output.dseg,
    snakemake.output.mask,
)
log.info("drawn: %s", drawn)
