"""mrixai: reproducible, explainable CNN diagnosis on structural brain MRI.

The logic of the Snakemake workflow lives here, one concern per module, so that it can be tested
without Snakemake. The workflow's scripts only read the ``snakemake`` object and call one function.
"""

__version__ = "0.1.0"
