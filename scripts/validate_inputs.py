"""Check every raw image and the participants table; write the report and the accepted list."""

from mrixai.bids import index_bids
from mrixai.validate import validate_dataset
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
index = index_bids(p.bids_dir, p.contrast, p.participant_label)
validate_dataset(
    index, p.resolution_mm, p.max_voxel_ratio, p.on_error, snakemake.output.report, snakemake.output.accepted
)
