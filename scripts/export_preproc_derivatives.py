"""Write the preprocessing BIDS-derivatives dataset (hardlinks of the working outputs, sidecars)."""

from mrixai.derivatives import export_preproc
from mrixai.provenance import code_commit, code_url
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
export_preproc(
    snakemake.output[0],
    p.prefixes,
    p.raw_paths,
    p.raw_link,
    p.contrast,
    p.arms,
    p.template_id,
    p.resolution_mm,
    p.parameters,
    commit=code_commit(snakemake.scriptdir),
    url=code_url(snakemake.scriptdir),
)
