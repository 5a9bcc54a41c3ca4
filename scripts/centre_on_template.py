"""The none arm: a translation that puts the image's field of view on the template grid's centre."""

from pathlib import Path

from mrixai.preproc.register import centering_transform
from mrixai.templates import TemplateFiles
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
p = snakemake.params
centering_transform(snakemake.input.image, TemplateFiles(Path(snakemake.input.template[0]).parent, p.resolution_mm), snakemake.output[0])
