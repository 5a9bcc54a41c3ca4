"""Robustness over identical retrainings (Eitel & Ritter 2019): L2 between the runs' mean maps of
their true positives and, separately, of their true negatives, from hand-made runs."""

import math

import numpy as np
import pandas as pd
import pytest

from helpers import write_nifti
from mrixai.explain.aggregate import aggregate_variant, read_mean_maps, robustness_tables
from mrixai.explain.regions import sample_atlas

GRID = (4, 4, 4)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
HALF = 32  # voxels in each half of the 4x4x4 grid: A = x < 2, B = x >= 2


def _atlas():
    labels = np.zeros(GRID, dtype=np.int16)
    labels[:2], labels[2:] = 1, 2
    table = pd.DataFrame({"index": [1, 2], "name": ["Left_A", "Left_B"]})
    meta = {"shape": list(GRID), "offset": [0, 0, 0], "downsample": 1, "template_shape": list(GRID),
            "affine": AFFINE.tolist(), "template_affine": AFFINE.tolist(), "grid": list(GRID)}
    return sample_atlas(labels, table, meta, template_voxel_ml=0.008, merge_hemispheres=True)


def _halves(a, b):
    """A map with value ``a`` on half A and ``b`` on half B."""
    m = np.empty(GRID, dtype=np.float32)
    m[:2], m[2:] = a, b
    return m


def _write_run(folder, subjects):
    """An attribution run directory of one method 'm': subjects are (unit, label, pred, (a, b))."""
    folder.mkdir(parents=True)
    rows = []
    for unit, label, pred, values in subjects:
        name = f"sub-{unit}_method-m_attribution.nii.gz"
        write_nifti(_halves(*values), AFFINE, folder / name)
        rows.append({"unit": unit, "subject": unit, "group": "AD" if label else "CN", "label": label, "prob": 0.5,
                     "pred": pred, "method": "m", "file": name})
    pd.DataFrame(rows).to_csv(folder / "index.tsv", sep="\t", index=False)
    return folder


@pytest.fixture
def hand_runs(tmp_path):
    # Split 0, seed 0: TPs (2, 0) and (2, 2); a TN (0, 3); a FP (5, 5).
    a = _write_run(tmp_path / "split-0_seed-0", [("01", 1, 1, (2, 0)), ("02", 1, 1, (2, 2)),
                                                 ("03", 0, 0, (0, 3)), ("04", 0, 1, (5, 5))])
    # Split 0, seed 1: a TP (4, 0); a FN (1, 1); TNs (1, 2) and (2, 2).
    b = _write_run(tmp_path / "split-0_seed-1", [("01", 1, 1, (4, 0)), ("02", 1, 0, (1, 1)),
                                                 ("03", 0, 0, (1, 2)), ("04", 0, 0, (2, 2))])
    # Split 0, seed 2: no TP (a FN (1, 1)); a TN (0, 1).
    c = _write_run(tmp_path / "split-0_seed-2", [("01", 1, 0, (1, 1)), ("03", 0, 0, (0, 1))])
    # Split 1 has one run: nothing to pair it with.
    d = _write_run(tmp_path / "split-1_seed-0", [("05", 1, 1, (1, 0)), ("06", 0, 0, (0, 1))])
    aggregate_variant([a, b, c, d], _atlas(), AFFINE, tmp_path / "regions.tsv", tmp_path / "means")
    robustness_tables(tmp_path / "regions.tsv", tmp_path / "means", ["m"], [], tmp_path / "l2.tsv",
                      tmp_path / "topk.tsv", tmp_path / "overlap.tsv", k=1)
    return tmp_path


def test_l2_between_true_positive_and_true_negative_mean_maps(hand_runs):
    l2 = pd.read_csv(hand_runs / "l2.tsv", sep="\t")
    assert list(l2.columns) == ["method", "group", "split", "run_a", "run_b", "n_a", "n_b", "l2"]
    assert (l2.split == 0).all() and (l2.method == "m").all()
    got = {(r.group, r.run_a[-1], r.run_b[-1]): r for r in l2.itertuples()}
    # By hand, each mean map divided by its largest |value| (halves A, B):
    #   TP:  seed 0 mean (2, 1) -> (1, 0.5);       seed 1 (4, 0) -> (1, 0);         seed 2 has no TP
    #   TN:  seed 0 (0, 3) -> (0, 1);              seed 1 mean (1.5, 2) -> (0.75, 1); seed 2 (0, 1) -> (0, 1)
    #   all: seed 0 mean (2.25, 2.5) -> (0.9, 1);  seed 1 mean (2, 1.25) -> (1, 0.625)
    #        seed 2 mean (0.5, 1) -> (0.5, 1)
    # and L2 = sqrt(32 * dA^2 + 32 * dB^2).
    expected = {
        ("TP", "0", "1"): math.sqrt(HALF * 0.5**2),
        ("TN", "0", "1"): math.sqrt(HALF * 0.75**2),
        ("TN", "0", "2"): 0.0,
        ("TN", "1", "2"): math.sqrt(HALF * 0.75**2),
        ("all", "0", "1"): math.sqrt(HALF * 0.1**2 + HALF * 0.375**2),
        ("all", "0", "2"): math.sqrt(HALF * 0.4**2),
        ("all", "1", "2"): math.sqrt(HALF * 0.5**2 + HALF * 0.375**2),
    }
    assert set(got) == set(expected)  # no TP pair with seed 2, which has no true positive
    for key, value in expected.items():
        assert got[key].l2 == pytest.approx(value, abs=1e-5), key
    # the subjects behind each mean map
    assert (got[("TP", "0", "1")].n_a, got[("TP", "0", "1")].n_b) == (2, 1)
    assert (got[("TN", "0", "1")].n_a, got[("TN", "0", "1")].n_b) == (1, 2)
    assert (got[("all", "0", "2")].n_a, got[("all", "0", "2")].n_b) == (4, 2)


def test_per_run_outcome_mean_maps_are_written(hand_runs):
    index, maps = read_mean_maps(hand_runs / "means")
    runs = index[index.kind.str.startswith("run")]
    assert set(runs.kind) == {"run", "run-TP", "run-TN"}
    assert ("m", "run-TP", "split-0_seed-2") not in maps
    np.testing.assert_allclose(maps[("m", "run-TN", "split-0_seed-1")], _halves(0.75, 1), rtol=1e-6)
    np.testing.assert_allclose(maps[("m", "run", "split-0_seed-0")], _halves(0.9, 1), rtol=1e-6)


def test_robustness_figure_shows_true_positives_and_true_negatives(hand_runs, tmp_path, monkeypatch):
    from mrixai.figures import make
    from mrixai.report import is_blank

    shown = {}
    render = make.fs.render_table

    def capture(df, *args, **kwargs):
        shown["table"] = df
        return render(df, *args, **kwargs)

    monkeypatch.setattr(make.fs, "render_table", capture)
    png, pdf = tmp_path / "l2.png", tmp_path / "l2.pdf"
    make.robustness_l2(hand_runs / "l2.tsv", png, pdf, labels={"m": "LRP"})
    assert not is_blank(png) and pdf.read_bytes()[:5] == b"%PDF-"
    table = shown["table"].set_index("method")
    assert list(table.columns) == ["true positives: mean L2", "true negatives: mean L2", "all test subjects: mean L2"]
    assert table.loc["LRP", "true positives: mean L2"] == f"{math.sqrt(HALF * 0.5**2):.3g} (1 pair)"
    assert table.loc["LRP", "true negatives: mean L2"].endswith("(3 pairs)")
