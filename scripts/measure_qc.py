"""Per-subject QC metrics: brain volume, tissue fractions, similarity to the template per arm."""

import json

from mrixai.io import write_text
from mrixai.qc import subject_metrics
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
i = snakemake.input
arms = snakemake.params.arms
metrics = subject_metrics(
    snakemake.wildcards.subject,
    i.mask,
    i.dseg,
    i.template_mask,
    dict(zip(arms, i.warped_masks)),
    warped_images=dict(zip(arms, i.warped_images)),
    template_image_path=i.template,
)
write_text(json.dumps(metrics, indent=2, default=float), snakemake.output[0])
