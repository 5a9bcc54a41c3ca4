"""Attribution maps of one trained run's test subjects, every configured method."""

import torch

from mrixai.explain.maps import explain_run
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
i, p = snakemake.input, snakemake.params
explain_run(i.model, i.npy, i.tsv, i.json, i.predictions, snakemake.output[0], p.methods,
            target=p.target, device=p.device)
