"""Convert the downloaded IXI archives and demographics into a BIDS dataset."""

from pathlib import Path

from mrixai.datasets.ixi import convert_ixi
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
i = snakemake.input
convert_ixi(
    dict(zip(snakemake.params.contrasts, i.archives)),
    i.demographics,
    Path(snakemake.output.description).parent,
    sources=snakemake.params.sources,
)
