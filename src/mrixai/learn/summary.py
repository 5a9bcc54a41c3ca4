"""Study-level tables: one row per training run, and concatenated per-run tables."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from mrixai.io import atomic_path

log = logging.getLogger(__name__)


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Write a TSV atomically."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def summarize_runs(metric_files: list[str | Path], out_tsv: str | Path) -> pd.DataFrame:
    """One row per run (ROC points left out), logged as mean balanced accuracy per variant."""
    rows = []
    for path in metric_files:
        m = json.loads(Path(path).read_text())
        m.pop("roc", None)
        rows.append(m)
    table = pd.DataFrame(rows)
    write_table(table, out_tsv)
    keys = [k for k in ("study", "variant") if k in table]
    if keys:
        log.info("balanced accuracy per variant:\n%s",
                 table.groupby(keys)["balanced_accuracy"].agg(["mean", "std", "count"]).round(3))
    return table


def collect_tables(files: list[str | Path], out_tsv: str | Path) -> pd.DataFrame:
    """Concatenate TSV tables with the same columns into one."""
    if not files:
        raise ValueError("no tables to collect")
    table = pd.concat([pd.read_csv(f, sep="\t", dtype={"unit": str}) for f in files], ignore_index=True)
    write_table(table, out_tsv)
    return table
