"""Subject-level, stratified, repeated splits into train / validation / test, and the leakage check.

Every session of a participant lands in the same partition: splits are drawn over participants
(``subject``) and then expanded to their units. Stratification is by group, sex and (where ages
are known) age bins: participants are ordered by stratum with a random order inside each
stratum, and every partition takes evenly spaced positions of that order, so each stratum is
shared out in proportion (systematic sampling). Two methods:

- ``shuffle``: ``n_splits`` independent random splits with ``test_fraction`` of the participants
  in test and ``val_fraction`` of the rest in validation (the registration study's design);
- ``kfold``: ``n_splits``-fold cross-validation, every participant in test exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PARTITIONS = ("train", "val", "test")
SPLIT_COLUMNS = ("split", "unit", "subject", "group", "label", "partition")


class LeakageError(ValueError):
    """A participant appears in more than one partition of a split."""


def _strata(subjects: pd.DataFrame, age_bins: Sequence[float] | None) -> pd.Series:
    key = subjects["group"].astype(str)
    if "sex" in subjects and subjects["sex"].notna().all():
        key = key + "|" + subjects["sex"].astype(str)
    age = pd.to_numeric(subjects.get("age"), errors="coerce") if "age" in subjects else None
    if age is not None and age.notna().all() and age_bins:
        key = key + "|" + pd.cut(age, list(age_bins), include_lowest=True).astype(str)
    return key


def _stratified_order(subjects: pd.DataFrame, strata: pd.Series, rng: np.random.Generator) -> np.ndarray:
    """Positions of ``subjects`` ordered by stratum, randomly inside each stratum."""
    noise = rng.random(len(subjects))
    order = np.lexsort((noise, strata.to_numpy()))
    return order


def _spaced(n_items: int, n_take: int, offset: float) -> np.ndarray:
    """Boolean mask of ``n_take`` evenly spaced positions out of ``n_items`` (shifted by ``offset``)."""
    if n_take <= 0:
        return np.zeros(n_items, bool)
    pos = (np.arange(n_items) + offset) * n_take / n_items
    return np.floor(pos + n_take / n_items) > np.floor(pos)


def make_splits(
    labels: pd.DataFrame,
    n_splits: int,
    method: str = "shuffle",
    test_fraction: float = 0.2,
    val_fraction: float = 0.2,
    seed: int = 0,
    age_bins: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Split the labelled units (``labels`` from :func:`mrixai.learn.labels.assign_groups`).

    Returns one row per (split, unit) with its partition. Raises ``ValueError`` when a partition
    would lack a group (too few participants for the requested split).
    """
    if method not in ("shuffle", "kfold"):
        raise ValueError(f"splits.method must be 'shuffle' or 'kfold', got {method!r}")
    if not isinstance(n_splits, int) or n_splits < 1 or (method == "kfold" and n_splits < 2):
        raise ValueError(f"n_splits must be an integer >= 1 (>= 2 for kfold), got {n_splits!r}")
    for name, frac in (("test_fraction", test_fraction), ("val_fraction", val_fraction)):
        if not 0 < frac < 1:
            raise ValueError(f"{name} must lie in (0, 1), got {frac!r}")
    subjects = labels.drop_duplicates("subject").reset_index(drop=True)
    strata = _strata(subjects, age_bins)
    n = len(subjects)
    rng = np.random.default_rng(seed)
    rows = []
    base_order = _stratified_order(subjects, strata, rng)
    for split in range(n_splits):
        partition = np.full(n, "train", dtype=object)
        if method == "kfold":
            order = base_order
            test = np.zeros(n, bool)
            test[order[np.arange(n) % n_splits == split]] = True
        else:
            order = _stratified_order(subjects, strata, rng)
            test = np.zeros(n, bool)
            test[order[_spaced(n, max(2, round(n * test_fraction)), rng.random())]] = True
        partition[test] = "test"
        rest = order[~test[order]]
        n_val = max(2, round(len(rest) * val_fraction))
        partition[rest[_spaced(len(rest), n_val, rng.random())]] = "val"
        assigned = subjects.assign(partition=partition)
        for part in PARTITIONS:
            have = set(assigned.loc[assigned["partition"] == part, "group"])
            lacking = sorted(set(subjects["group"]) - have)
            if lacking:
                raise ValueError(
                    f"split {split}: the {part} partition has no participant of group(s) {lacking}; "
                    f"{n} participants are too few for this split (lower n_splits or change the fractions)"
                )
        part_of = dict(zip(assigned["subject"], assigned["partition"]))
        for rec in labels.itertuples(index=False):
            rows.append(
                {
                    "split": split,
                    "unit": rec.unit,
                    "subject": rec.subject,
                    "group": rec.group,
                    "label": int(rec.label),
                    "partition": part_of[rec.subject],
                }
            )
    table = pd.DataFrame(rows, columns=list(SPLIT_COLUMNS))
    counts = table.drop_duplicates(["split", "subject"]).groupby(["partition", "group"]).size() / n_splits
    log.info("%d %s splits of %d participants; mean per partition/group: %s", n_splits, method, n,
             counts.round(1).to_dict())
    check_no_leakage(table)
    return table


def check_no_leakage(table: pd.DataFrame, split: int | None = None) -> None:
    """Raise :class:`LeakageError` if a participant (any of its sessions) is in two partitions.

    Checks one ``split`` or all of them; also refuses a unit listed twice in one split.
    """
    rows = table if split is None else table[table["split"] == split]
    if rows.empty:
        raise LeakageError(f"split {split} has no rows in the split table")
    parts = rows.groupby(["split", "subject"])["partition"].nunique()
    leaked = parts[parts > 1]
    if not leaked.empty:
        details = [
            f"split {s}: sub-{subj} in {sorted(rows[(rows['split'] == s) & (rows['subject'] == subj)]['partition'].unique())}"
            for s, subj in leaked.index
        ]
        raise LeakageError("subject leakage between partitions, refusing to train: " + "; ".join(details))
    dup = rows.duplicated(["split", "unit"])
    if dup.any():
        raise LeakageError(f"units listed twice in one split: {sorted(rows.loc[dup, 'unit'].unique())}")
    bad = set(rows["partition"]) - set(PARTITIONS)
    if bad:
        raise LeakageError(f"unknown partition names {sorted(bad)} (expected {PARTITIONS})")
