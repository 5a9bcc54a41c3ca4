"""Kruskal-Wallis and Steel-Dwass tests across the tissue study's image sets."""

from mrixai.analysis import tissue_tests
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
tissue_tests(snakemake.input.fractions, snakemake.output.kruskal, snakemake.output.posthoc)
