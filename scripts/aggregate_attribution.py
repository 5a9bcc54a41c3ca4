"""Region table and mean maps (per class, outcome and run) of one variant's attribution runs."""

import json
from pathlib import Path

from mrixai.explain.aggregate import aggregate_variant
from mrixai.explain.regions import load_sample_atlas
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp = snakemake.input
atlas = load_sample_atlas(inp.atlas, inp.labels, inp.store, snakemake.params.merge_hemispheres)
aggregate_variant(
    list(inp.runs),
    atlas,
    json.loads(Path(inp.store).read_text())["affine"],
    snakemake.output.regions,
    snakemake.output.maps,
)
