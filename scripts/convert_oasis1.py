"""Convert the downloaded OASIS-1 disc archives and table into a BIDS dataset."""

from pathlib import Path

from mrixai.datasets.oasis import convert_oasis1
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
i = snakemake.input
convert_oasis1(
    list(i.archives),
    i.clinical,
    Path(snakemake.output.description).parent,
    sources=snakemake.params.sources,
)
