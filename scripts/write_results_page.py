"""The run's results page (results/results.md) from its summaries and statistics tables."""

from mrixai import __version__
from mrixai.provenance import code_commit
from mrixai.results_page import write_results_page
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
# the code that wrote the page (read here, not passed as a param, so a new commit alone reruns nothing)
commit = code_commit(snakemake.scriptdir)
code = f"mrixai {__version__}" + (f", commit {commit}" if commit else "")
write_results_page(
    snakemake.output.md,
    summaries=dict(zip(snakemake.params.studies, snakemake.input.summaries)),
    tables=list(snakemake.input.tables),
    context={**snakemake.params.context, "code": code},
    claims=snakemake.input.claims,
    alpha=snakemake.params.alpha,
)
