"""From attribution runs to region tables, mean maps, ground-truth, randomisation and hippocampus checks."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import write_nifti
from mrixai.analysis import registration_tests
from mrixai.explain.aggregate import aggregate_variant, parse_run, read_mean_maps, robustness_tables
from mrixai.explain.groundtruth import ground_truth_check
from mrixai.explain.neuro import hippocampus_check
from mrixai.explain.randomisation import randomisation_check, randomise_weights
from mrixai.explain.regions import sample_atlas
from mrixai.learn.train import load_checkpoint, model_from_checkpoint

GRID = (4, 4, 4)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def atlas_fixture():
    """Template grid 4x4x4 (downsample 1): region A = x < 2 (32 voxels), region B = x >= 2."""
    labels = np.zeros(GRID, dtype=np.int16)
    labels[:2] = 1
    labels[2:] = 2
    table = pd.DataFrame({"index": [1, 2], "name": ["Left_A", "Left_B"]})
    meta = {"shape": list(GRID), "offset": [0, 0, 0], "downsample": 1, "template_shape": list(GRID),
            "affine": AFFINE.tolist(), "template_affine": AFFINE.tolist(), "grid": list(GRID)}
    return sample_atlas(labels, table, meta, template_voxel_ml=0.008, merge_hemispheres=True), meta


def write_run(folder, units, groups, preds, maps):
    """An attribution run directory as the attribute_model rule writes it (one method, 'm')."""
    folder.mkdir(parents=True)
    rows = []
    for unit, group, pred, amap in zip(units, groups, preds, maps):
        name = f"sub-{unit}_method-m_attribution.nii.gz"
        write_nifti(amap.astype(np.float32), AFFINE, folder / name)
        label = int(group == "AD")
        rows.append({"unit": unit, "subject": unit, "group": group, "label": label, "prob": 0.5, "pred": pred,
                     "method": "m", "file": name})
    pd.DataFrame(rows).to_csv(folder / "index.tsv", sep="\t", index=False)


def region_a_map(value):
    amap = np.zeros(GRID, dtype=np.float32)
    amap[:2] = value
    return amap


def test_runs_become_a_region_table_and_count_weighted_mean_maps(tmp_path):
    atlas, _ = atlas_fixture()
    # Run 1: AD subject with relevance 2 in A (a TP), CN subject with 1 in A (a TN).
    write_run(tmp_path / "split-0_seed-0", ["01", "02"], ["AD", "CN"], [1, 0], [region_a_map(2), region_a_map(1)])
    # Run 2: two AD subjects with 4 in A (one TP, one FN), one CN with 1 (a FP).
    write_run(tmp_path / "split-1_seed-0", ["03", "04", "05"], ["AD", "AD", "CN"], [1, 0, 1],
              [region_a_map(4), region_a_map(4), region_a_map(1)])
    runs = [tmp_path / "split-1_seed-0", tmp_path / "split-0_seed-0"]
    regions = aggregate_variant(runs, atlas, AFFINE, tmp_path / "regions.tsv", tmp_path / "means")
    a = regions[regions.region == "A"].set_index("unit")
    # 32 voxels of 0.008 ml: sum |relevance| = 32 x value, density = value / 0.008 ml.
    assert a.loc["01", "sum_abs"] == pytest.approx(64) and a.loc["03", "density"] == pytest.approx(4 / 0.008)
    # Gain is relative to the controls of the same run: 2/1 in run 1, 4/1 in run 2.
    assert a.loc["01", "gain"] == pytest.approx(2) and a.loc["04", "gain"] == pytest.approx(4)
    assert list(a.loc[["01", "04", "05"], "outcome"]) == ["TP", "FN", "FP"]
    assert (regions[regions.region == "B"].sum_abs == 0).all()
    assert set(regions.run) == {"split-0_seed-0", "split-1_seed-0"} and parse_run("x/split-1_seed-0") == (1, 0)
    index, maps = read_mean_maps(tmp_path / "means")
    # The AD mean pools subjects over runs: (2 + 4 + 4) / 3 inside A.
    np.testing.assert_allclose(maps[("m", "group", "AD")][0, 0, 0], 10 / 3, rtol=1e-6)
    np.testing.assert_allclose(maps[("m", "outcome", "TP")][0, 0, 0], 3, rtol=1e-6)
    assert index.set_index(["kind", "name"]).loc[("group", "AD"), "n"] == 3
    # Per-run means are max-scaled: 1 inside A whatever the run's scale.
    assert maps[("m", "run", "split-1_seed-0")].max() == pytest.approx(1)
    assert not list(tmp_path.glob(".*partial*"))


def test_relevance_in_the_planted_mask_is_enriched_and_its_region_ranks_first(tmp_path):
    atlas, meta = atlas_fixture()
    (tmp_path / "store.json").write_text(json.dumps(meta))
    effect = np.zeros(GRID, dtype=np.uint8)
    effect[:2] = 1  # region A is the planted effect: half the brain
    write_nifti(effect, AFFINE, tmp_path / "effect.nii.gz")
    write_nifti(np.ones(GRID, dtype=np.uint8), AFFINE, tmp_path / "brain.nii.gz")
    planted = np.zeros(GRID, dtype=np.uint8)
    planted[:1] = 1  # the planted regions: a quarter of the brain, half of the effect mask
    write_nifti(planted, AFFINE, tmp_path / "planted.nii.gz")
    labels = np.zeros(GRID, dtype=np.int16)
    labels[:2], labels[2:] = 1, 2  # the atlas of atlas_fixture, as files
    write_nifti(labels, AFFINE, tmp_path / "atlas.nii.gz")
    pd.DataFrame({"index": [1, 2], "name": ["Left_A", "Left_B"]}).to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    uniform = np.ones(GRID, dtype=np.float32)
    write_run(tmp_path / "split-0_seed-0", ["01", "02"], ["AD", "CN"], [1, 0], [region_a_map(3), uniform])
    aggregate_variant([tmp_path / "split-0_seed-0"], atlas, AFFINE, tmp_path / "regions.tsv", tmp_path / "means")
    enrich, ranks = ground_truth_check(
        [tmp_path / "split-0_seed-0"], tmp_path / "regions.tsv", tmp_path / "effect.nii.gz",
        tmp_path / "brain.nii.gz", tmp_path / "store.json", ["A", "B"], tmp_path / "e.tsv", tmp_path / "r.tsv",
        positive_group="AD", regions_mask=tmp_path / "planted.nii.gz", atlas=tmp_path / "atlas.nii.gz",
        labels=tmp_path / "atlas.tsv",
    )
    by_unit = enrich.set_index("unit")
    # All relevance inside a mask of half the brain: enrichment 1 / 0.5 = 2; uniform relevance: 1.
    assert by_unit.loc["01", "enrichment"] == pytest.approx(2) and by_unit.loc["02", "enrichment"] == pytest.approx(1)
    # Half of that relevance in the planted regions, a quarter of the brain: 0.5 / 0.25 = 2; uniform: 1.
    assert by_unit.loc["01", "enrichment_regions"] == pytest.approx(2)
    assert by_unit.loc["02", "enrichment_regions"] == pytest.approx(1)
    assert ranks.set_index("region").loc["A", "rank"] == 1
    # the planted effect covers all of A and none of B: a map equal to it would rank A first
    assert ranks.set_index("region")["rank_of_effect"].to_dict() == {"A": 1, "B": 2}
    with pytest.raises(ValueError, match="Nope"):
        ground_truth_check([tmp_path / "split-0_seed-0"], tmp_path / "regions.tsv", tmp_path / "effect.nii.gz",
                           tmp_path / "brain.nii.gz", tmp_path / "store.json", ["Nope"], tmp_path / "e2.tsv",
                           tmp_path / "r2.tsv", positive_group="AD")


def explain(tmp, model_path, methods, folder):
    from mrixai.explain.maps import explain_run

    explain_run(model_path, tmp / "v.npy", tmp / "v.tsv", tmp / "v.json", tmp / "run_predictions", folder,
                methods, device="cpu")


def test_randomisation_check_sees_a_model_change_and_no_change(tiny_volume_run):
    tmp, out, _ = tiny_volume_run
    methods = {"gbp": {"method": "guided_backprop"}, "lrpb0": {"method": "lrp_alphabeta", "beta": 0}}
    explain(tmp, out["model"], methods, tmp / "trained")
    changed = randomisation_check(out["model"], tmp / "v.npy", tmp / "v.tsv", tmp / "trained", methods,
                                  ["gbp", "lrpb0"], tmp / "rand.tsv", seed=5, device="cpu")
    # A checkpoint whose weights already are the seed-5 re-initialisation: maps must not change.
    ckpt = load_checkpoint(out["model"])
    model, _ = model_from_checkpoint(out["model"])
    ckpt["state_dict"] = randomise_weights(model, 5).state_dict()
    torch.save(ckpt, tmp / "random_model.pt")
    explain(tmp, tmp / "random_model.pt", methods, tmp / "random")
    same = randomisation_check(tmp / "random_model.pt", tmp / "v.npy", tmp / "v.tsv", tmp / "random", methods,
                               ["gbp", "lrpb0"], tmp / "same.tsv", seed=5, device="cpu")
    assert np.allclose(same.spearman, 1.0, atol=1e-6) and np.allclose(same.spearman_abs, 1.0, atol=1e-6)
    assert (changed.spearman < 0.99).all() and changed.spearman.between(-1, 1).all()
    assert (changed.spearman_abs < 0.99).all() and changed.spearman_abs.between(-1, 1).all()
    n_test = int((pd.read_csv(out["predictions"], sep="\t").partition == "test").sum())
    assert len(changed) == 2 * n_test and set(changed.seed) == {5}
    # Two draws: seeds 5 and 6; the seed-5 draw is the one above, the seed-6 model is another one.
    two = randomisation_check(out["model"], tmp / "v.npy", tmp / "v.tsv", tmp / "trained", methods,
                              ["gbp", "lrpb0"], tmp / "rand2.tsv", seed=5, draws=2, device="cpu")
    assert len(two) == 4 * n_test and set(two.seed) == {5, 6}
    key = ["method", "unit"]
    first = two[two.seed == 5].set_index(key).sort_index()
    np.testing.assert_allclose(first.spearman_abs, changed.set_index(key).sort_index().spearman_abs, atol=1e-9)
    assert not np.allclose(two[two.seed == 6].set_index(key).sort_index().spearman_abs, first.spearman_abs)
    with pytest.raises(ValueError, match="draws"):
        randomisation_check(out["model"], tmp / "v.npy", tmp / "v.tsv", tmp / "trained", methods, ["gbp"],
                            tmp / "x.tsv", draws=0, device="cpu")
    with pytest.raises(ValueError, match="not in attribution.methods"):
        randomisation_check(out["model"], tmp / "v.npy", tmp / "v.tsv", tmp / "trained", methods, ["ig"],
                            tmp / "x.tsv", device="cpu")


def _hippocampus_inputs(tmp_path, relevance=None):
    """Regions table and volume tables of 6 units; unit 06 is a false negative (left out).

    Volumes 3.0, 3.2, ..., 3.8 ml for units 01..05; relevance ``relevance(i, vol)`` in both runs
    (default: falling linearly with volume, the second run offset by 0.01).
    """
    rows, volumes = [], {}
    for i, unit in enumerate(["01", "02", "03", "04", "05", "06"]):
        vol = 3.0 + 0.2 * i
        path = tmp_path / f"{unit}.tsv"
        pd.DataFrame({"region": ["Hippocampus", "Amygdala"], "label_ml": [vol + 1, 1], "gm_ml": [vol, 1]}).to_csv(
            path, sep="\t", index=False)
        volumes[unit] = path
        for run in ("split-0_seed-0", "split-1_seed-0"):
            outcome = "FN" if unit == "06" else "TP"
            value = 10 - vol if relevance is None else relevance(i, vol)
            rows.append({"run": run, "unit": unit, "method": "m", "region": "Hippocampus", "outcome": outcome,
                         "sum_abs": value + (0.01 if run.startswith("split-1") else 0)})
    pd.DataFrame(rows).to_csv(tmp_path / "regions.tsv", sep="\t", index=False)
    return volumes


def test_hippocampal_relevance_correlates_with_volume_among_true_positives(tmp_path):
    volumes = _hippocampus_inputs(tmp_path)
    # An exact linear relation among 5 equally spaced volumes: of the 5! = 120 orderings of the
    # relevances only the observed one (r = -1) and its reversal (r = +1) reach |r| = 1 -> the exact
    # p is 2/120 whatever the seed.
    for seed in range(20):
        result = hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                                   method="m", n_permutations=999, seed=seed)
        assert result["n"] == 5 and result["r"] == pytest.approx(-1.0)
        assert result["p"] == pytest.approx(2 / 120) and result["p_method"] == "exact"
    test = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert (test.loc[0, "unit"], test.loc[0, "p_method"], test.loc[0, "n"]) == ("subject", "exact", 5)
    points = pd.read_csv(tmp_path / "p.tsv", sep="\t", dtype={"unit": str})
    assert list(points.n_runs) == [2] * 5 and "06" not in set(points.unit)
    with pytest.raises(ValueError, match="no region 'Amygdalae'"):
        hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                          method="m", region="Amygdalae")


def test_region_check_takes_the_chosen_outcomes_and_volume_measure(tmp_path):
    volumes = _hippocampus_inputs(tmp_path)
    # TP and FN: all six units, the FN unit 06 too (relevance 10 - 4.0 on the same line); label_ml is
    # gm_ml + 1, a shift that keeps r = -1. Six equally spaced points: 2 of the 6! = 720 orderings
    # reach |r| = 1.
    result = hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                               method="m", outcomes=["TP", "FN"], volume_measure="label_ml")
    assert result["n"] == 6 and result["r"] == pytest.approx(-1.0) and result["p"] == pytest.approx(2 / 720)
    points = pd.read_csv(tmp_path / "p.tsv", sep="\t", dtype={"unit": str})
    assert list(points.unit) == ["01", "02", "03", "04", "05", "06"]
    assert points.volume_ml.tolist() == pytest.approx([4.0, 4.2, 4.4, 4.6, 4.8, 5.0])
    test = pd.read_csv(tmp_path / "t.tsv", sep="\t")
    assert (test.loc[0, "outcomes"], test.loc[0, "volume_measure"]) == ("TP+FN", "label_ml")
    # only the false negative: one subject, too few for a correlation
    result = hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                               method="m", outcomes=["FN"])
    assert result["n"] == 1 and np.isnan(result["r"])
    for bad in ({"outcomes": ["old"]}, {"outcomes": []}, {"volume_measure": "csf_ml"}, {"direction": "up"}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                              method="m", **bad)


def test_hippocampus_monte_carlo_p_is_within_its_error_of_the_exact_p_for_20_seeds(tmp_path):
    import itertools
    import math

    # a noisy negative relation: relevance 10 - vol plus a fixed zig-zag
    volumes = _hippocampus_inputs(tmp_path, relevance=lambda i, vol: 10 - vol + 0.15 * (-1) ** i)
    points_x = np.array([3.0, 3.2, 3.4, 3.6, 3.8])
    points_y = np.array([10 - v + 0.15 * (-1) ** i + 0.005 for i, v in enumerate(points_x)])
    r_obs = np.corrcoef(points_x, points_y)[0, 1]
    # brute force over all 120 orderings of the relevances
    null = [np.corrcoef(points_x, points_y[list(order)])[0, 1] for order in itertools.permutations(range(5))]
    exact = sum(abs(r) >= abs(r_obs) - 1e-12 for r in null) / len(null)
    assert 0.02 < exact < 0.5  # a case where the Monte-Carlo p is not trivially 1/(m+1) or 1
    m = 4000
    # (1 + b) / (1 + m) with b ~ Binomial(m, exact): 6 standard errors plus the +1 bias bound it
    # for practically every seed (a miss has probability < 1e-8)
    margin = 6 * math.sqrt(exact * (1 - exact) / m) + 1 / (m + 1)
    for seed in range(20):
        result = hippocampus_check(tmp_path / "regions.tsv", volumes, tmp_path / "p.tsv", tmp_path / "t.tsv",
                                   method="m", n_permutations=m, seed=seed, max_exact=100)
        assert result["p_method"] == "permutation" and result["permutations"] == m
        assert result["r"] == pytest.approx(r_obs)
        assert abs(result["p"] - exact) <= margin, (seed, result["p"], exact)


def test_registration_tests_pair_arms_by_split_and_average_rocs(tmp_path):
    rows, metrics = [], []
    for split in range(4):
        for arm, acc in (("none", 0.5), ("syn", 0.9)):
            rows.append({"study": "registration", "variant": f"reg-{arm}", "arm": arm, "split": split, "seed": 0,
                         "balanced_accuracy": acc + 0.01 * split, "sensitivity": acc, "specificity": acc,
                         "roc_auc": acc})
            fpr, tpr = ([0, 0, 1], [0, 1, 1]) if arm == "syn" else ([0, 1], [0, 1])
            record = {"variant": f"reg-{arm}", "roc": {"fpr": fpr, "tpr": tpr}}
            path = tmp_path / f"{arm}_{split}.json"
            path.write_text(json.dumps(record))
            metrics.append(path)
    pd.DataFrame(rows).to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    registration_tests(tmp_path / "summary.tsv", metrics, tmp_path / "w.tsv", tmp_path / "f.tsv", tmp_path / "roc.tsv")
    w = pd.read_csv(tmp_path / "w.tsv", sep="\t").set_index("metric")
    # syn beats none in all 4 splits: exact two-sided Wilcoxon p = 2 / 2^4.
    assert w.loc["balanced_accuracy", "p_value"] == pytest.approx(2 / 16)
    assert w.loc["balanced_accuracy", "mean_diff"] == pytest.approx(0.4)
    assert (w.loc["balanced_accuracy", "n"], w.loc["balanced_accuracy", "unit"]) == (4, "split")
    assert w.loc["balanced_accuracy", "method"] == "exact"
    # one family of 4 metrics x 1 pair, each p = 2/16: Holm multiplies the smallest by 4 -> 0.5 for all
    assert w["p_holm"].tolist() == pytest.approx([0.5] * 4)
    roc = pd.read_csv(tmp_path / "roc.tsv", sep="\t")
    syn = roc[roc.variant == "reg-syn"]
    # A perfect ranking: TPR 1 from the first false-positive rate on (the curve starts at (0, 0)).
    assert np.allclose(syn[syn.fpr > 0].mean_tpr, 1.0) and np.allclose(roc[roc.variant == "reg-none"].mean_tpr,
                                                           roc[roc.variant == "reg-none"].fpr)


def test_registration_tests_of_one_arm_write_tables_without_tests(tmp_path):
    """configs/groundtruth.yaml trains the syn arm only: no pair to test, but the tables the figures read exist."""
    rows, metrics = [], []
    for split in range(3):
        rows.append({"study": "registration", "variant": "reg-syn", "arm": "syn", "split": split, "seed": 0,
                     "balanced_accuracy": 0.9, "sensitivity": 0.9, "specificity": 0.9, "roc_auc": 0.9})
        path = tmp_path / f"syn_{split}.json"
        path.write_text(json.dumps({"variant": "reg-syn", "roc": {"fpr": [0, 0, 1], "tpr": [0, 1, 1]}}))
        metrics.append(path)
    pd.DataFrame(rows).to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    registration_tests(tmp_path / "summary.tsv", metrics, tmp_path / "w.tsv", tmp_path / "f.tsv", tmp_path / "roc.tsv")
    w = pd.read_csv(tmp_path / "w.tsv", sep="\t")
    assert w.empty and {"variant_a", "variant_b", "p_value", "p_holm"} <= set(w.columns)
    f = pd.read_csv(tmp_path / "f.tsv", sep="\t")
    assert f.p_value.isna().all() and f.note.str.contains(">= 3 variants").all()
    assert set(pd.read_csv(tmp_path / "roc.tsv", sep="\t").variant) == {"reg-syn"}


def test_robustness_of_identical_runs_is_perfect(tmp_path):
    atlas, _ = atlas_fixture()
    for run in ("split-0_seed-0", "split-0_seed-1"):
        write_run(tmp_path / run, ["01", "02"], ["AD", "CN"], [1, 0], [region_a_map(2), region_a_map(1)])
    aggregate_variant([tmp_path / "split-0_seed-0", tmp_path / "split-0_seed-1"], atlas, AFFINE,
                      tmp_path / "regions.tsv", tmp_path / "means")
    robustness_tables(tmp_path / "regions.tsv", tmp_path / "means", ["m"], [], tmp_path / "l2.tsv",
                      tmp_path / "topk.tsv", tmp_path / "overlap.tsv", k=1)
    l2 = pd.read_csv(tmp_path / "l2.tsv", sep="\t")
    topk = pd.read_csv(tmp_path / "topk.tsv", sep="\t")
    # one pair of runs, compared over their true positives, their true negatives and all subjects
    assert sorted(l2.group) == ["TN", "TP", "all"] and l2.l2.abs().max() == pytest.approx(0)
    assert (topk.mean_overlap == 1).all() and set(topk.metric) == {"sum_abs", "density", "gain"}


def test_hippocampus_figure_says_so_when_there_are_too_few_true_positives(tmp_path):
    from mrixai.figures import make
    from mrixai.report import is_blank

    pd.DataFrame(columns=["unit", "relevance", "n_runs", "volume_ml"]).to_csv(tmp_path / "p.tsv", sep="\t", index=False)
    pd.DataFrame([{"method": "m", "region": "Hippocampus", "metric": "sum_abs", "permutations": 99,
                   "r": float("nan"), "p": float("nan"), "n": 0}]).to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    make.hippocampus(tmp_path / "p.tsv", tmp_path / "t.tsv", tmp_path / "h.png", tmp_path / "h.pdf")
    assert not is_blank(tmp_path / "h.png") and (tmp_path / "h.pdf").read_bytes()[:5] == b"%PDF-"


def test_registration_friedman_of_three_arms_is_exact(tmp_path):
    """none < linear = syn in each of 3 splits: exact Friedman p = 3/27 (see test_stats), not 0.050."""
    rows, metrics = [], []
    for split in range(3):
        for arm, acc in (("none", 0.7 + 0.1 * split), ("linear", 1.0), ("syn", 1.0)):
            rows.append({"study": "registration", "variant": f"reg-{arm}", "arm": arm, "split": split, "seed": 0,
                         "balanced_accuracy": acc, "sensitivity": acc, "specificity": acc, "roc_auc": acc})
            path = tmp_path / f"{arm}_{split}.json"
            path.write_text(json.dumps({"variant": f"reg-{arm}", "roc": {"fpr": [0, 1], "tpr": [0, 1]}}))
            metrics.append(path)
    pd.DataFrame(rows).to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    registration_tests(tmp_path / "summary.tsv", metrics, tmp_path / "w.tsv", tmp_path / "f.tsv", tmp_path / "roc.tsv")
    f = pd.read_csv(tmp_path / "f.tsv", sep="\t")
    assert f["p_value"].tolist() == pytest.approx([3 / 27] * 4)
    assert set(f["method"]) == {"exact"} and set(f["unit"]) == {"split"} and set(f["n"]) == {3}
    w = pd.read_csv(tmp_path / "w.tsv", sep="\t")
    tied = w[(w.variant_a == "reg-linear") & (w.variant_b == "reg-syn")]
    assert (tied["p_value"] == 1.0).all()  # tied at 1.000 in every split: no evidence either way
    below = w[(w.variant_a == "reg-none") & (w.variant_b == "reg-syn")]
    assert below["p_value"].tolist() == pytest.approx([2 / 8] * 4)  # the smallest p 3 blocks allow


def test_tissue_tests_write_subject_and_model_level_tables(tmp_path):
    from mrixai.analysis import tissue_tests

    rows = []
    for split in range(3):
        for seed in range(2):
            for k, name in enumerate(["pp1", "pp2", "pp3"]):
                for i in range(4):
                    rows.append({"set": name, "unit": f"{split}{i:02d}", "group": "AD" if i % 2 else "CN",
                                 "split": split, "seed": seed, "n_slices": 10,
                                 "fraction_correct": 0.2 + 0.25 * k + 0.02 * i + 0.01 * seed})
    pd.DataFrame(rows).to_csv(tmp_path / "fractions.tsv", sep="\t", index=False)
    outs = [tmp_path / f"{n}.tsv" for n in ("kw", "posthoc", "models", "mf", "mp")]
    tissue_tests(tmp_path / "fractions.tsv", *outs)
    kw, posthoc, models, mf, mp = (pd.read_csv(o, sep="\t") for o in outs)
    # subject level: 12 distinct test subjects per set (4 per split), 36 values
    assert (kw.loc[0, "unit"], kw.loc[0, "n"], kw.loc[0, "method"]) == ("subject", 36, "asymptotic")
    assert {"unit", "n", "method", "p_value"} <= set(posthoc.columns)
    # model level: 3 sets x 3 splits x 2 seeds; pp1 < pp2 < pp3 in every split -> exact p = 1/36
    assert len(models) == 18
    row = mf.set_index("metric").loc["fraction_correct"]
    assert (row["n"], row["unit"], row["method"]) == (3, "split", "exact")
    assert row["p_value"] == pytest.approx(1 / 36)
    assert set(mp["unit"]) == {"split"} and set(mp["n"]) == {3} and set(mp["method"]) == {"exact"}


def test_study_comparison_averages_seeds_per_split(tmp_path):
    from mrixai.analysis import compare_variants

    rows = []
    for split in range(4):
        for seed in range(2):
            for variant, shift in (("model-baseline", 0.0), ("model-pif", 0.05)):
                rows.append({"variant": variant, "split": split, "seed": seed,
                             "balanced_accuracy": 0.6 + shift + 0.01 * split + 0.1 * seed,
                             "roc_auc": 0.7, "sensitivity": 0.7, "specificity": 0.7,
                             "wall_time_s": 100 - 10 * shift * 20, "epochs_run": 10, "best_epoch": 5})
    pd.DataFrame(rows).to_csv(tmp_path / "summary.tsv", sep="\t", index=False)
    table = compare_variants("pif", tmp_path / "summary.tsv", tmp_path / "c.tsv").set_index("metric")
    # 4 splits (not 8 runs) per variant; pif above baseline in all 4 -> exact p = 2/16
    assert table.loc["balanced_accuracy", "n"] == 4 and table.loc["balanced_accuracy", "unit"] == "split"
    assert table.loc["balanced_accuracy", "p_value"] == pytest.approx(2 / 16)
    assert table.loc["wall_time_s", "p_value"] == pytest.approx(2 / 16)
    assert table.loc["roc_auc", "p_value"] == 1.0
    # Holm over the 7 metrics: two p of 2/16 -> 7 x 2/16 = 0.875 for both, the rest stay 1
    assert table.loc["balanced_accuracy", "p_holm"] == pytest.approx(0.875)
    assert table.loc["epochs_run", "p_holm"] == 1.0


def test_tissue_tests_name_the_file_that_lacks_a_column(tmp_path):
    from mrixai.analysis import tissue_tests

    pd.DataFrame({"set": ["pp1"], "unit": ["01"], "fraction_correct": [0.5]}).to_csv(
        tmp_path / "fractions.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match=r"fractions\.tsv.*\['split', 'seed'\]"):
        tissue_tests(tmp_path / "fractions.tsv", tmp_path / "a.tsv", tmp_path / "b.tsv")
