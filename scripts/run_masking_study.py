"""The saliency-guided masking study on every unit's native image, brain mask and tissue map."""

from pathlib import Path

from mrixai.masking.study import run_masking_study
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp, p = snakemake.input, snakemake.params
subjects = [
    {"subject": unit, "image": image, "mask": mask, "dseg": dseg}
    for unit, image, mask, dseg in zip(p.units, inp.images, inp.masks, inp.dsegs)
]
run_masking_study(
    subjects,
    Path(snakemake.output.metrics).parent,
    seed=p.seed,
    device=p.device,
    threads=snakemake.threads,
    figure_dir=Path(snakemake.output.manual).parent,
    **p.options,
)
