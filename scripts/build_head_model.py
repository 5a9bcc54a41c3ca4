"""Build the whole-head model (ROBEX head + template tissues) the synthetic subjects are drawn from."""

from pathlib import Path
import os

os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

from mrixai.synthetic.head import build_head_model  # noqa: E402
from mrixai.workflow import setup_logging  # noqa: E402

setup_logging(snakemake.log[0])
build_head_model(
    Path(snakemake.input.template[0]).parent, snakemake.params.resolution_mm, Path(snakemake.output.T1w).parent, snakemake.params.seed
)
