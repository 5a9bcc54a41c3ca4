"""Train the tissue study's 2D CNN on one subimage set."""

from mrixai.learn.tissue import train_on_subimages
from mrixai.learn.train import TrainConfig
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
w = snakemake.wildcards
p = snakemake.params
cfg = TrainConfig(model=p.model, **p.training)
train_on_subimages(
    snakemake.input.store,
    w.set,
    snakemake.input.splits,
    int(w.split),
    int(w.seed),
    cfg,
    dict(snakemake.output.items()),
    run_info={"study": "tissue", "variant": f"set-{w.set}", "model": p.model, "base_seed": p.seed},
    max_repeat=p.max_repeat,
)
