"""Group labels for learning: a participants.tsv column and named groups as pandas query strings."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import pandas as pd

log = logging.getLogger(__name__)

LABEL_COLUMNS = ("unit", "subject", "group", "label", "sex", "age")


def unit_subject(unit: str) -> str:
    """The participant a processing unit belongs to: ``"01_ses-2"`` -> ``"01"``."""
    return str(unit).split("_ses-")[0]


def assign_groups(
    participants: pd.DataFrame,
    units: Sequence[str],
    column: str,
    groups: Mapping[str, str],
    min_per_group: int = 2,
) -> pd.DataFrame:
    """Label every unit whose participant matches exactly one group query.

    ``participants`` is a participants.tsv table (``participant_id`` with the ``sub-`` prefix);
    ``groups`` maps a group name to a pandas query string, in label order (the first group gets
    label 0, the second label 1). Units whose participant is in no group are left out and
    counted in the log; a participant matching two groups, fewer than two groups, an unknown
    ``column`` or a group with fewer than ``min_per_group`` participants is a ``ValueError``.

    Returns columns ``unit, subject, group, label, sex, age`` (sex/age empty when missing).
    """
    if len(groups) != 2:
        raise ValueError(f"label.groups must name exactly two groups, got {list(groups)!r}")
    if "participant_id" not in participants.columns:
        raise ValueError("participants.tsv has no participant_id column")
    if column not in participants.columns:
        raise ValueError(
            f"label.column {column!r} is not a participants.tsv column; columns are "
            f"{sorted(participants.columns)}"
        )
    table = participants.copy()
    table["subject"] = table["participant_id"].astype(str).str.removeprefix("sub-")
    table = table.drop_duplicates("subject").set_index("subject", drop=False)
    member: dict[str, list[str]] = {}
    for name, query in groups.items():
        try:
            hits = table.query(query, engine="python")
        except Exception as err:  # pandas raises many types for a bad query
            raise ValueError(f"label.groups.{name}: cannot evaluate query {query!r}: {err}") from err
        for subject in hits["subject"]:
            member.setdefault(subject, []).append(name)
    both = {s: g for s, g in member.items() if len(g) > 1}
    if both:
        raise ValueError(f"participants in more than one group (queries overlap): {both}")
    rows = []
    missing = []
    for unit in units:
        subject = unit_subject(unit)
        if subject not in table.index:
            missing.append(unit)
            continue
        names = member.get(subject)
        if not names:
            continue
        rec = table.loc[subject]
        rows.append(
            {
                "unit": str(unit),
                "subject": subject,
                "group": names[0],
                "label": list(groups).index(names[0]),
                "sex": rec.get("sex", None),
                "age": rec.get("age", None),
            }
        )
    if missing:
        raise ValueError(f"units without a participants.tsv row: {missing}")
    out = pd.DataFrame(rows, columns=list(LABEL_COLUMNS))
    left_out = len(units) - len(out)
    counts = out.groupby("group")["subject"].nunique().reindex(list(groups), fill_value=0)
    log.info(
        "labels from column %r: %s; %d of %d units in no group, left out",
        column,
        ", ".join(f"{g}={n}" for g, n in counts.items()),
        left_out,
        len(units),
    )
    small = {g: int(n) for g, n in counts.items() if n < min_per_group}
    if small:
        raise ValueError(
            f"too few participants in group(s) {small} for the requested splits "
            f"(need at least {min_per_group} per group)"
        )
    return out
