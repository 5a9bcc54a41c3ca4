"""Train one CNN of the registration, PIF or transfer study on whole volumes."""

from mrixai.learn.run import train_config, train_on_volumes
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
w = snakemake.wildcards
run = snakemake.params.run
cfg = train_config(run)
train_on_volumes(
    snakemake.input.npy,
    snakemake.input.tsv,
    snakemake.input.splits,
    int(w.split),
    int(w.seed),
    cfg,
    dict(snakemake.output.items()),
    run_info={"study": w.study, "variant": w.variant, "arm": run["arm"], "model": run["model"],
              "base_seed": snakemake.params.seed},
    init_checkpoint=snakemake.input.get("init"),
    n_train_per_group=run["n_train_per_group"],
    store_json=snakemake.input.json,
    contrast=snakemake.config["contrast"],
    template=snakemake.params.template,
    workflow_config=snakemake.config,
)
