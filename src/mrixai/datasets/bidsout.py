"""Writing the top-level files of a converted BIDS dataset, and converting into it atomically."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from mrixai.io import atomic_path

log = logging.getLogger(__name__)

BIDS_VERSION = "1.9.0"


@contextlib.contextmanager
def bids_dataset(out_dir: str | Path) -> Iterator[Path]:
    """Yield a scratch directory beside ``out_dir``; it replaces ``out_dir`` only if the block succeeds.

    A failed conversion (a damaged archive, a wrong spreadsheet) leaves no partial dataset, and
    an earlier complete one at ``out_dir`` is replaced only by a complete new one.
    """
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        yield tmp


def write_participants(table: pd.DataFrame, bids_dir: Path, columns: dict[str, str]) -> Path:
    """Write ``participants.tsv`` (missing values as ``n/a``) and its ``participants.json`` sidecar.

    ``columns`` maps each column after ``participant_id`` to its description.
    """
    missing = [c for c in ("participant_id", *columns) if c not in table.columns]
    if missing:
        raise ValueError(f"participants table lacks columns {missing}")
    table = table[["participant_id", *columns]].sort_values("participant_id")
    path = bids_dir / "participants.tsv"
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    sidecar = {"participant_id": {"Description": "BIDS participant label"}}
    sidecar.update({name: {"Description": text} for name, text in columns.items()})
    (bids_dir / "participants.json").write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def write_description(bids_dir: Path, name: str, license_: str, acknowledge: str, sources: list[str]) -> Path:
    """Write ``dataset_description.json`` of a raw dataset converted by mrixai."""
    description = {
        "Name": name,
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "raw",
        "License": license_,
        "HowToAcknowledge": acknowledge,
        "GeneratedBy": [{"Name": "mrixai", "Description": "converted from the public archives"}],
        "SourceDatasets": [{"URL": s} for s in sources],
    }
    path = bids_dir / "dataset_description.json"
    path.write_text(json.dumps(description, indent=2) + "\n")
    return path
