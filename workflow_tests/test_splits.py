"""Labels and splits: groups from query strings, stratification, and no subject leakage."""

import logging

import numpy as np
import pandas as pd
import pytest

from mrixai.learn.labels import assign_groups
from mrixai.learn.splits import LeakageError, check_no_leakage, make_splits


def _participants(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{i:03d}" for i in range(n)],
            "age": rng.uniform(20, 90, n).round(1),
            "sex": rng.choice(["M", "F"], n),
        }
    )


def test_groups_from_queries_leave_out_the_middle_and_count_it(caplog):
    caplog.set_level(logging.INFO)
    part = _participants()
    units = [p.removeprefix("sub-") for p in part["participant_id"]]
    labels = assign_groups(part, units, "age", {"young": "age < 35", "old": "age >= 55"})
    young = set(part.loc[part.age < 35, "participant_id"].str[4:])
    old = set(part.loc[part.age >= 55, "participant_id"].str[4:])
    assert set(labels.loc[labels.group == "young", "subject"]) == young
    assert set(labels.loc[labels.group == "old", "subject"]) == old
    assert (labels.loc[labels.group == "old", "label"] == 1).all()
    left_out = len(part) - len(young) - len(old)
    assert f"{left_out} of {len(part)} units in no group" in caplog.text


def test_sessions_follow_their_participant():
    part = _participants(6)
    units = ["000_ses-1", "000_ses-2", "001", "002", "003", "004", "005"]
    labels = assign_groups(part, units, "age", {"a": "age < 200", "b": "age > 1000"}, min_per_group=0)
    assert labels.loc[labels.unit == "000_ses-2", "subject"].item() == "000"


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"a": "age < 60", "b": "age > 50"}, "more than one group"),
        ({"a": "age < 21", "b": "age >= 21"}, "too few participants"),
        ({"a": "agee < 3", "b": "age > 3"}, "cannot evaluate query"),
        ({"a": "age < 3"}, "exactly two groups"),
    ],
)
def test_bad_group_definitions_are_errors(groups, message):
    part = _participants()
    part.loc[0, "age"] = 20.5
    units = [p.removeprefix("sub-") for p in part["participant_id"]]
    with pytest.raises(ValueError, match=message):
        assign_groups(part, units, "age", groups, min_per_group=3)


def test_unknown_column_is_named():
    part = _participants()
    with pytest.raises(ValueError, match="'diagnosis' is not a participants.tsv column"):
        assign_groups(part, ["000"], "diagnosis", {"a": "x", "b": "y"})


def _labels(n=40, sessions=False):
    part = _participants(n, seed=3)
    part["diagnosis"] = np.where(np.arange(n) % 2 == 0, "CN", "AD")
    units = [p.removeprefix("sub-") for p in part["participant_id"]]
    if sessions:
        units = [f"{u}_ses-{k}" for u in units for k in (1, 2)]
    return assign_groups(part, units, "diagnosis", {"CN": "diagnosis == 'CN'", "AD": "diagnosis == 'AD'"})


@pytest.mark.parametrize("method", ["shuffle", "kfold"])
def test_splits_keep_every_session_of_a_subject_in_one_partition(method):
    labels = _labels(30, sessions=True)
    table = make_splits(labels, 5, method, 0.2, 0.2, seed=1)
    per_subject = table.groupby(["split", "subject"])["partition"].nunique()
    assert (per_subject == 1).all()
    assert len(table) == 5 * len(labels)


def test_kfold_puts_each_subject_in_test_exactly_once():
    labels = _labels(40)
    table = make_splits(labels, 5, "kfold", seed=2)
    test_counts = table[table.partition == "test"].groupby("subject").size()
    assert len(test_counts) == 40 and (test_counts == 1).all()


def test_splits_are_stratified_by_group_and_sex():
    labels = _labels(40)
    table = make_splits(labels, 10, "shuffle", 0.25, 0.2, seed=5)
    n_test = table[table.partition == "test"].groupby("split").size()
    assert (n_test == 10).all()
    # Each stratum (group x sex) sends close to its share (25 %) to test in every split.
    merged = table.merge(labels[["unit", "sex"]], on="unit")
    for (split, group, sex), part in merged.groupby(["split", "group", "sex"]):
        share = (part.partition == "test").mean()
        assert abs(share - 0.25) <= 0.5 / len(part) + 0.13, (split, group, sex, share, len(part))
    # Splits differ from each other.
    sets = {tuple(sorted(p.subject)) for _, p in table[table.partition == "test"].groupby("split")}
    assert len(sets) == 10


def test_splits_are_reproducible():
    labels = _labels(40)
    a = make_splits(labels, 3, seed=9)
    b = make_splits(labels, 3, seed=9)
    pd.testing.assert_frame_equal(a, b)


def test_too_few_subjects_for_a_split_is_an_error():
    labels = _labels(40).query("group == 'CN' or subject in ['001', '003']")
    with pytest.raises(ValueError, match="has no participant of group"):
        make_splits(labels, 1, "shuffle", 0.2, 0.2, seed=0)


def test_a_planted_subject_in_two_partitions_is_refused():
    labels = _labels(20, sessions=True)
    table = make_splits(labels, 2, seed=0)
    check_no_leakage(table)  # a clean table passes
    leaky = table.copy()
    # Move one session of a test subject to the training partition of split 1.
    test_unit = leaky[(leaky.split == 1) & (leaky.partition == "test")].iloc[0]
    leaky.loc[(leaky.split == 1) & (leaky.unit == test_unit.unit), "partition"] = "train"
    with pytest.raises(LeakageError, match=f"sub-{test_unit.subject}"):
        check_no_leakage(leaky, split=1)
    check_no_leakage(leaky, split=0)  # the other split is untouched
