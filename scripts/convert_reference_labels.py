"""A unit's reference labels (studies.masking.reference_labels) as the masking study's brain mask and tissue map."""

import logging

from mrixai.masking.reference import write_reference_labels
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, out = snakemake.input, snakemake.output
counts = write_reference_labels(inp.dseg, inp.lut, out.mask, out.dseg)
logging.getLogger(__name__).info("%s -> voxels %s", inp.dseg, counts)
