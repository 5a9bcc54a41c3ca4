"""The synthetic cohort's participants and parameters: argument checks, the participants table
(CN/AD, age, sex, severity) with its sidecar, the dataset description, and per-subject seeds.

Each subject's random numbers come from ``SeedSequence(seed, spawn_key=(1, index))`` with the
index taken from its participant_id, so a subject does not depend on how many others there are.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mrixai import __version__
from mrixai.io import write_text


DIAGNOSES = ("CN", "AD")
SEXES = ("M", "F")
#: Keys of the config's ``synthetic`` section that :func:`mrixai.synthetic.generation.generate_subject` needs.
PARAM_KEYS = (
    "shrink_regions",
    "grow_regions",
    "atrophy",
    "max_rotation_deg",
    "max_translation_mm",
    "max_scale",
    "warp_mm",
    "bias_strength",
    "noise",
)
#: Keys of that section it also reads when present (a config without them plants no such effect).
OPTIONAL_PARAM_KEYS = ("intensity_change",)


# ----------------------------------------------------------------------------- argument checks


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_resolution(resolution_mm: float) -> float:
    try:
        res = float(resolution_mm)
    except (TypeError, ValueError):
        raise ValueError(f"resolution_mm must be a positive number, got {resolution_mm!r}") from None
    if not (math.isfinite(res) and 0.5 <= res <= 8):
        raise ValueError(f"resolution_mm must lie in [0.5, 8] mm, got {resolution_mm!r}")
    return res


def _number(params: Mapping, key: str, low: float, high: float) -> float:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"synthetic.{key} must be a number, got {value!r}")
    if not (math.isfinite(float(value)) and low <= float(value) <= high):
        raise ValueError(f"synthetic.{key} must lie in [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _check_params(params: Mapping) -> dict:
    """The config's ``synthetic`` section, checked; extra keys (n_subjects) are ignored."""
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping (the config's synthetic section), got {params!r}")
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"synthetic params lack {missing}; got keys {sorted(params)}")
    out = {
        "atrophy": _number(params, "atrophy", 0.0, 0.9),
        "max_rotation_deg": _number(params, "max_rotation_deg", 0.0, 45.0),
        "max_translation_mm": _number(params, "max_translation_mm", 0.0, 50.0),
        "max_scale": _number(params, "max_scale", 0.0, 0.3),
        "warp_mm": _number(params, "warp_mm", 0.0, 15.0),
        "bias_strength": _number(params, "bias_strength", 0.0, 1.5),
        "noise": _number(params, "noise", 0.0, 0.5),
        # Optional: configs without it plant no signal change.
        "intensity_change": _number({"intensity_change": 0.0, **params}, "intensity_change", -0.5, 0.5),
    }
    for key in ("shrink_regions", "grow_regions"):
        value = params[key]
        if value is None:
            value = []
        if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"synthetic.{key} must be a list of atlas region names, got {value!r}")
        out[key] = list(dict.fromkeys(value))
    both = sorted(set(out["shrink_regions"]) & set(out["grow_regions"]))
    if both:
        raise ValueError(f"regions cannot both shrink and grow: {both}")
    return out


def _subject_index(participant_id: object) -> int:
    match = re.fullmatch(r"sub-[A-Za-z]*0*(\d+)", str(participant_id))
    if not match:
        raise ValueError(f"participant_id must look like 'sub-001' (a number at the end), got {participant_id!r}")
    return int(match.group(1))


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == "n/a"


def _check_row(row: Mapping) -> dict:
    if not isinstance(row, Mapping):
        raise ValueError(f"row must be a mapping (one participants.tsv row), got {row!r}")
    if "participant_id" not in row:
        raise ValueError(f"row has no participant_id: {dict(row)!r}")
    pid = str(row["participant_id"])
    severity = row.get("severity", 0.0)
    severity = 0.0 if _is_missing(severity) else severity
    try:
        severity = float(severity)
    except (TypeError, ValueError):
        raise ValueError(f"severity of {pid} must be a number in [0, 1], got {row.get('severity')!r}") from None
    if not 0.0 <= severity <= 1.0:
        raise ValueError(f"severity of {pid} must be a number in [0, 1], got {row.get('severity')!r}")
    age = row.get("age")
    if _is_missing(age):
        age = None
    else:
        try:
            age = float(age)
        except (TypeError, ValueError):
            raise ValueError(f"age of {pid} must be a number of years, got {age!r}") from None
        if not 0 < age < 130:
            raise ValueError(f"age of {pid} must be a number of years, got {row.get('age')!r}")
    sex = row.get("sex")
    sex = None if _is_missing(sex) else str(sex)
    if sex is not None and sex not in SEXES:
        raise ValueError(f"sex of {pid} must be one of {SEXES} or n/a, got {sex!r}")
    return {
        "participant_id": pid,
        "index": _subject_index(pid),
        "diagnosis": None if _is_missing(row.get("diagnosis")) else str(row.get("diagnosis")),
        "age": age,
        "sex": sex,
        "severity": severity,
    }


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


# ----------------------------------------------------------------------------- participants


def make_participants(n_subjects: int, seed: int) -> pd.DataFrame:
    """Draw the cohort's participants table.

    Columns: ``participant_id`` (sub-001, sub-002, ...), ``diagnosis`` (CN or AD, half each in
    shuffled order; CN gets the odd one out), ``age`` (years; CN ~ N(68, 7), AD ~ N(73, 7), clipped
    to [50, 95]), ``sex`` (M/F, balanced within each group) and ``severity`` (0 for CN, U(0.5, 1)
    for AD) that scales the planted atrophy.
    """
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)) or n_subjects < 2:
        raise ValueError(f"n_subjects must be an integer >= 2 (one per group at least), got {n_subjects!r}")
    seed = _check_seed(seed)
    n = int(n_subjects)
    rng = _rng(seed, 0)
    n_ad = n // 2
    diagnosis = np.array(["CN"] * (n - n_ad) + ["AD"] * n_ad, dtype=object)
    diagnosis = diagnosis[rng.permutation(n)]
    sex = np.empty(n, dtype=object)
    age = np.empty(n)
    severity = np.zeros(n)
    for group, mean_age in (("CN", 68.0), ("AD", 73.0)):
        idx = np.flatnonzero(diagnosis == group)
        sexes = np.array([SEXES[i % 2] for i in range(len(idx))], dtype=object)
        sex[idx] = sexes[rng.permutation(len(idx))]
        age[idx] = np.clip(rng.normal(mean_age, 7.0, len(idx)), 50, 95)
        if group == "AD":
            severity[idx] = rng.uniform(0.5, 1.0, len(idx))
    width = max(3, len(str(n)))
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{i:0{width}d}" for i in range(1, n + 1)],
            "diagnosis": diagnosis.astype(str),
            "age": np.round(age, 1),
            "sex": sex.astype(str),
            "severity": np.round(severity, 3),
        }
    )


PARTICIPANTS_SIDECAR = {
    "participant_id": {"Description": "Unique participant label."},
    "diagnosis": {
        "Description": "Group of the synthetic subject; patients carry planted regional atrophy.",
        "Levels": {"CN": "cognitively normal control", "AD": "Alzheimer's-like patient"},
    },
    "age": {"Description": "Age at scan (drawn; the lateral ventricles grow mildly with it).", "Units": "year"},
    "sex": {
        "Description": "Sex (drawn; males have a slightly larger head).",
        "Levels": {"M": "male", "F": "female"},
    },
    "severity": {
        "Description": "Fraction of the configured atrophy planted in this subject (0 for controls).",
        "Units": "arbitrary",
    },
}


def write_participants(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``participants.tsv`` (tab separated, ``n/a`` for missing) and its JSON sidecar beside it."""
    if not isinstance(df, pd.DataFrame) or "participant_id" not in df.columns:
        raise ValueError(f"df must be a DataFrame with a participant_id column, got {type(df).__name__}")
    path = Path(path)
    if path.suffix != ".tsv":
        raise ValueError(f"path must end in .tsv, got {str(path)!r}")
    write_text(df.to_csv(sep="\t", index=False, na_rep="n/a", lineterminator="\n"), path)
    sidecar = {c: PARTICIPANTS_SIDECAR.get(c, {"Description": c}) for c in df.columns}
    write_text(json.dumps(sidecar, indent=2) + "\n", path.with_suffix(".json"))


def write_dataset_description(path: str | Path) -> None:
    """Write the BIDS ``dataset_description.json`` of the synthetic cohort."""
    path = Path(path)
    if path.name != "dataset_description.json":
        raise ValueError(f"path must be named dataset_description.json, got {str(path)!r}")
    description = {
        "Name": "mrixai synthetic cohort",
        "BIDSVersion": "1.8.0",
        "DatasetType": "raw",
        "License": "CC0",
        "GeneratedBy": [
            {
                "Name": "mrixai",
                "Version": __version__,
                "Description": "Whole heads from ROBEX's head atlas and the MNI152 2009a template with "
                "its tissue priors; random pose, diffeomorphic anatomy, planted regional atrophy, "
                "bias field and Rician noise.",
            }
        ],
    }
    write_text(json.dumps(description, indent=2) + "\n", path)
