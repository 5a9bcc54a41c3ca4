"""Write the explained variants' group mean attribution maps as a BIDS-derivatives dataset."""

from mrixai.derivatives import export_attribution
from mrixai.provenance import code_commit, code_url
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
export_attribution(
    snakemake.output[0],
    dict(zip(p.variants, snakemake.input.means)),
    p.template_id,
    p.resolution_mm,
    commit=code_commit(snakemake.scriptdir),
    url=code_url(snakemake.scriptdir),
)
