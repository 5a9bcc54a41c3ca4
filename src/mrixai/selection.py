"""Which units reach the learning stages: the QC exclusion list and automatic QC exclusion.

Two sources, both written to one table (``unit``, ``subject``, ``source``, ``reason``):

- ``qc.exclude``: labels the user lists after looking at the QC pages. A subject label
  (``01``) leaves out every unit of that subject; a unit ID (``01_ses-2``) only that session.
- ``qc.auto_exclude``: units whose group-QC flags mean *bad quality* (see
  :data:`FAILURE_DIRECTIONS`). Only metrics that measure a processing failure count:

  * ``brain_volume_ml`` in either direction: far too small is an over-eager skull strip (brain
    cut away), far too large an under-stripped head (scalp or neck left in the mask);
  * ``dice_template_<arm>`` and ``ncc_template_<arm>`` of the *registered* arms (``linear``,
    ``syn``), low side only: a registered brain that overlaps or correlates poorly with the
    template is a failed registration; an unusually good match is not a defect.

  Not counted: the ``none`` arm's metrics (its images are only padded/cropped onto the template
  grid, so low overlap measures head position and size, not a failure), and the tissue fractions
  (they follow anatomy: atrophy raises the CSF fraction, which is the very effect an AD or ageing
  study looks for, so excluding on it would bias the comparison).

The subjects left out still go through preprocessing and QC; only labels, splits and everything
after them skip them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai.io import atomic_path
from mrixai.learn.labels import unit_subject

log = logging.getLogger(__name__)

EXCLUSION_COLUMNS = ("unit", "subject", "source", "reason")
#: Metric name pattern -> which side of the robust z means failure ("low", "high" or "both").
FAILURE_DIRECTIONS = {
    r"brain_volume_ml": "both",
    r"(dice|ncc)_template_(linear|syn)": "low",
}


def failure_direction(metric: str) -> str | None:
    """Which side of ``metric``'s robust z means a processing failure; None if it never does."""
    for pattern, side in FAILURE_DIRECTIONS.items():
        if re.fullmatch(pattern, metric):
            return side
    return None


def auto_exclusions(group_qc: pd.DataFrame, outlier_z: float) -> pd.DataFrame:
    """Units whose QC metrics show a failure: robust ``|z| > outlier_z`` on the failure side.

    ``group_qc`` is the group QC table (:func:`mrixai.qc.group.summarize_group`): a ``subject`` column
    of unit IDs, the metrics and their ``z_<metric>`` columns. Metrics that never mean failure
    (see the module docstring) are ignored. Returns one row per excluded unit, with the failing
    metrics, their values and z in ``reason``.
    """
    if isinstance(outlier_z, bool) or not isinstance(outlier_z, (int, float)) or not outlier_z > 0:
        raise ValueError(f"qc.outlier_z must be a positive number, got {outlier_z!r}")
    if "subject" not in group_qc.columns:
        raise ValueError(
            f"the group QC table has no 'subject' column (columns: {list(group_qc.columns)})"
        )
    used = {}
    for col in group_qc.columns:
        if col.startswith("z_") and col[2:] in group_qc.columns:
            side = failure_direction(col[2:])
            if side is not None:
                used[col[2:]] = side
    ignored = [c[2:] for c in group_qc.columns if c.startswith("z_") and c[2:] not in used]
    log.info(
        "QC auto-exclusion at |robust z| > %g uses %s; ignores %s",
        outlier_z,
        ", ".join(f"{m} ({s})" for m, s in used.items()) or "no metric",
        ", ".join(ignored) or "nothing",
    )
    rows = []
    for _, rec in group_qc.iterrows():
        reasons = []
        for metric, side in used.items():
            z = pd.to_numeric(rec[f"z_{metric}"], errors="coerce")
            if not np.isfinite(z):
                continue
            if (side in ("low", "both") and z < -outlier_z) or (
                side in ("high", "both") and z > outlier_z
            ):
                where = "below" if z < 0 else "above"
                reasons.append(
                    f"{metric} = {float(rec[metric]):.4g} (robust z {z:+.1f}, {where} the median "
                    f"by more than {outlier_z:g})"
                )
        if reasons:
            unit = str(rec["subject"])
            rows.append(
                {
                    "unit": unit,
                    "subject": unit_subject(unit),
                    "source": "qc.auto_exclude",
                    "reason": "; ".join(reasons),
                }
            )
    return pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))


def manual_exclusions(labels: Sequence[str], units: Sequence[str]) -> pd.DataFrame:
    """Units named by ``qc.exclude``: a subject label (with or without ``sub-``) or a unit ID.

    Raises ValueError naming every label that matches no unit of ``units``.
    """
    units = [str(u) for u in units]
    rows, unknown = [], []
    for raw in labels:
        if not isinstance(raw, str):
            raise ValueError(f"qc.exclude {raw!r} must be text; quote it in YAML ('01', not 01)")
        label = raw.removeprefix("sub-")
        hits = [u for u in units if u == label or unit_subject(u) == label]
        if not hits:
            unknown.append(raw)
        for unit in hits:
            rows.append(
                {
                    "unit": unit,
                    "subject": unit_subject(unit),
                    "source": "qc.exclude",
                    "reason": f"listed in qc.exclude ({raw})",
                }
            )
    if unknown:
        raise ValueError(
            f"qc.exclude names subjects or units that are not processed: {', '.join(unknown)} "
            f"(processed: {', '.join(units) if len(units) <= 20 else f'{len(units)} units'})"
        )
    return pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))


def select_learning_units(
    units: Sequence[str],
    exclude: Sequence[str] = (),
    group_qc_tsv: str | Path | None = None,
    outlier_z: float = 3.0,
    out_tsv: str | Path | None = None,
) -> list[str]:
    """The units that go on to labels and splits, after ``qc.exclude`` and QC auto-exclusion.

    ``group_qc_tsv`` (the group QC table) turns automatic exclusion on; None leaves it off.
    Every excluded unit is logged with its reasons and, when ``out_tsv`` is given, written there
    (one row per unit; a unit excluded for several reasons has them joined). Raises ValueError if
    nothing is left.
    """
    units = [str(u) for u in units]
    parts = [manual_exclusions(exclude, units)]
    if group_qc_tsv is not None:
        table = pd.read_csv(group_qc_tsv, sep="\t", dtype={"subject": str}, na_values=["n/a"])
        parts.append(auto_exclusions(table, outlier_z))
    parts = [p for p in parts if not p.empty]
    if parts:
        excluded = (
            pd.concat(parts, ignore_index=True)
            .groupby("unit", sort=True, as_index=False)
            .agg({"subject": "first", "source": ",".join, "reason": "; ".join})
        )
    else:
        excluded = pd.DataFrame(columns=list(EXCLUSION_COLUMNS))
    excluded = excluded[excluded["unit"].isin(units)]
    for rec in excluded.itertuples():
        log.warning("left out of the learning stages: %s (%s)", rec.unit, rec.reason)
    log.info("%d of %d units excluded after QC", len(excluded), len(units))
    if out_tsv is not None:
        with atomic_path(out_tsv) as tmp:
            excluded.to_csv(tmp, sep="\t", index=False)
    kept = [u for u in units if u not in set(excluded["unit"])]
    if not kept:
        raise ValueError("qc.exclude and qc.auto_exclude leave no unit for the learning stages")
    return kept
