"""All QC montages and metrics of one subject: skull strip, tissues, registration per arm."""

from mrixai.qc.montage import run_subject_qc
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
i, o = snakemake.input, snakemake.output
arms = snakemake.params.arms
run_subject_qc(
    snakemake.wildcards.subject,
    i.n4,
    i.mask,
    i.brain,
    i.dseg,
    i.template,
    i.template_mask,
    dict(zip(arms, i.warped_images)),
    dict(zip(arms, i.warped_masks)),
    o.skullstrip,
    o.tissue,
    dict(zip(arms, o.registration)),
    o.metrics,
)
