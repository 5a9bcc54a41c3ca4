"""Write the synthetic ground truth as a BIDS-derivatives dataset."""

from mrixai.derivatives import export_truth
from mrixai.provenance import code_commit, code_url
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
export_truth(
    snakemake.output[0],
    p.units,
    p.truth,
    snakemake.input.effect,
    snakemake.input.regions,
    p.raw_link,
    p.template_id,
    p.resolution_mm,
    commit=code_commit(snakemake.scriptdir),
    url=code_url(snakemake.scriptdir),
)
