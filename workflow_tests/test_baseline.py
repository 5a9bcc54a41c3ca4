"""The linear baseline: accuracy on a problem with a known Bayes rate, no use of test rows, the
features it is fitted on, the paired comparison with the CNN, its figure and its rules."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import norm

from helpers import write_nifti
from conftest import REPO, TINY, run_snakemake
from mrixai.figures import studies
from mrixai.stats import compare_with_cnn
from mrixai.learn.baseline import (
    build_gm_features,
    collect_region_volumes,
    fit_linear,
    run_baseline,
)

MODELS = ("svm", "logistic")


def _gaussians(rng, n_per_group, direction, scale):
    """Two spherical Gaussians (before ``scale``) whose means differ by ``direction``."""
    y = np.repeat([0, 1], n_per_group)
    x = rng.normal(size=(len(y), len(direction))) + np.outer(y, direction)
    return x * scale, y


def _balanced_accuracy(y, pred):
    return 0.5 * ((pred[y == 1] == 1).mean() + (pred[y == 0] == 0).mean())


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("seed", [0, 1])
def test_reaches_the_bayes_rate_of_two_gaussians(model, seed):
    # Equal spherical covariances, means 2 apart: the best rule is linear and its balanced accuracy
    # is Phi(2 / 2) = 0.841. Features on scales 0.1..10 (standardisation must undo them).
    rng = np.random.default_rng(seed)
    p = 10
    direction = rng.normal(size=p)
    direction *= 2.0 / np.linalg.norm(direction)
    scale = rng.uniform(0.1, 10, p)
    x, y = _gaussians(rng, 150, direction, scale)
    xt, yt = _gaussians(rng, 2000, direction, scale)
    search = fit_linear(x, y, [f"s{i}" for i in range(len(y))], model=model)
    bayes = norm.cdf(1.0)
    ba = _balanced_accuracy(yt, search.predict(xt))
    # 4000 test rows: sampling SE about 0.006; 300 training rows in 10 dimensions lose a few points.
    assert bayes - 0.06 <= ba <= bayes + 0.025, ba


@pytest.mark.parametrize("model", MODELS)
def test_stays_at_chance_when_the_groups_do_not_differ(model):
    rng = np.random.default_rng(3)
    x, y = _gaussians(rng, 100, np.zeros(20), 1.0)
    xt, yt = _gaussians(rng, 2000, np.zeros(20), 1.0)
    search = fit_linear(x, y, [f"s{i}" for i in range(len(y))], model=model)
    assert abs(_balanced_accuracy(yt, search.predict(xt)) - 0.5) < 0.06


def test_standardises_with_the_rows_it_is_fitted_on():
    rng = np.random.default_rng(5)
    x, y = _gaussians(rng, 20, np.full(4, 0.5), np.array([1.0, 5.0, 100.0, 0.01]))
    x += np.array([3.0, -7.0, 1000.0, 0.0])
    search = fit_linear(x, y, [f"s{i}" for i in range(len(y))], inner_folds=4)
    scaler = search.best_estimator_.named_steps["scale"]
    np.testing.assert_allclose(scaler.mean_, x.mean(axis=0))
    np.testing.assert_allclose(scaler.scale_, x.std(axis=0))


def _split_problem(tmp_path, rng, corrupt_test=False):
    """A volumes-style feature table and one split (units 0-29 train/val, 30-39 test)."""
    n = 40
    units = [f"{i:03d}" for i in range(n)]
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 6)) + np.outer(y, [1.0, 0.5, 0, 0, 0, 0])
    partition = np.array(["train"] * 24 + ["val"] * 6 + ["test"] * 10)
    splits = pd.DataFrame({"split": 0, "unit": units, "subject": units, "group": np.where(y, "AD", "CN"),
                           "label": y, "partition": partition})
    splits.to_csv(tmp_path / "splits.tsv", sep="\t", index=False)
    return units, x, y, partition


def _write_volumes(path, units, x):
    table = pd.DataFrame(x, columns=[f"region{k}" for k in range(x.shape[1])])
    table.insert(0, "unit", units)
    table.insert(1, "subject", units)
    table.insert(2, "brain_volume_ml", 1400.0)
    table.to_csv(path, sep="\t", index=False)


@pytest.mark.parametrize("model", MODELS)
def test_test_rows_never_influence_the_fit(tmp_path, model):
    # Corrupting the test units' features (huge values, shuffled) leaves the chosen C, its inner
    # score and every training unit's score unchanged; only the test predictions move.
    rng = np.random.default_rng(11)
    units, x, y, partition = _split_problem(tmp_path, rng)
    test = partition == "test"
    bad = x.copy()
    bad[test] = rng.permutation(bad[test]) * 1e4 + 50.0
    results = {}
    for name, data in (("clean", x), ("corrupt", bad)):
        _write_volumes(tmp_path / f"{name}.tsv", units, data)
        out = {"predictions": tmp_path / f"{name}_pred.tsv", "metrics": tmp_path / f"{name}_metrics.json"}
        metrics = run_baseline("volumes", {"tsv": tmp_path / f"{name}.tsv"}, tmp_path / "splits.tsv", 0, out,
                               model=model, c_grid=[1e-3, 1e-2, 1e-1, 1, 10], inner_folds=3)
        results[name] = (metrics, pd.read_csv(out["predictions"], sep="\t", dtype={"unit": str}))
    (m1, p1), (m2, p2) = results["clean"], results["corrupt"]
    assert m1["C"] == m2["C"] and m1["inner_score"] == m2["inner_score"]
    fit = p1["partition"] != "test"
    np.testing.assert_array_equal(p1.loc[fit, "score"], p2.loc[fit, "score"])
    assert not np.allclose(p1.loc[~fit, "score"], p2.loc[~fit, "score"])


def test_a_run_writes_the_cnn_runs_format(tmp_path):
    rng = np.random.default_rng(2)
    units, x, y, partition = _split_problem(tmp_path, rng)
    _write_volumes(tmp_path / "v.tsv", units, x)
    out = {"predictions": tmp_path / "pred.tsv", "metrics": tmp_path / "metrics.json"}
    run_baseline("volumes", {"tsv": tmp_path / "v.tsv"}, tmp_path / "splits.tsv", 0, out, inner_folds=3,
                 run_info={"arm": "native"})
    pred = pd.read_csv(out["predictions"], sep="\t", dtype={"unit": str})
    assert list(pred["unit"]) == units
    assert {"unit", "subject", "group", "label", "partition", "prob", "pred", "correct"} <= set(pred.columns)
    metrics = json.loads(out["metrics"].read_text())
    assert (metrics["study"], metrics["variant"], metrics["arm"], metrics["split"], metrics["seed"]) == (
        "baseline", "volumes", "native", 0, 0)
    # metrics recomputed by hand from the test predictions
    test = pred[pred["partition"] == "test"]
    tp = int(((test.pred == 1) & (test.label == 1)).sum())
    tn = int(((test.pred == 0) & (test.label == 0)).sum())
    assert metrics["sensitivity"] == pytest.approx(tp / (test.label == 1).sum())
    assert metrics["specificity"] == pytest.approx(tn / (test.label == 0).sum())
    pos, neg = test.loc[test.label == 1, "prob"].to_numpy(), test.loc[test.label == 0, "prob"].to_numpy()
    auc = np.mean([(a > b) + 0.5 * (a == b) for a in pos for b in neg])
    assert metrics["roc_auc"] == pytest.approx(auc)
    assert metrics["n_train"] == 30 and metrics["n_test"] == 10 and metrics["C"] > 0


def test_refuses_training_units_with_one_participant_in_a_group():
    x = np.zeros((5, 2))
    with pytest.raises(ValueError, match="2 participants per group"):
        fit_linear(x, np.array([0, 0, 0, 0, 1]), ["a", "b", "c", "d", "e"])


def test_inner_folds_keep_the_sessions_of_a_participant_together():
    # Two sessions per participant with identical features: a fold holding one session in training
    # and the other in validation would score perfectly on pure noise labels.
    rng = np.random.default_rng(4)
    n_subjects = 20
    x_subj = rng.normal(size=(n_subjects, 30))
    y_subj = np.arange(n_subjects) % 2
    x = np.repeat(x_subj, 2, axis=0)
    y = np.repeat(y_subj, 2)
    groups = np.repeat([f"s{i}" for i in range(n_subjects)], 2)
    search = fit_linear(x, y, groups, c_grid=[1e3], inner_folds=5)
    assert search.best_score_ < 0.85


def test_gm_features_are_block_means_inside_the_template_mask(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    mask = np.zeros((6, 6, 6), np.uint8)
    mask[1:5, 1:5, 1:5] = 1  # the 4x4x4 crop's 2x2x2 blocks are all inside
    mask[1:3, 1:3, 1:3] = 0  # ... but one block is outside
    write_nifti(mask, affine, tmp_path / "mask.nii.gz")
    maps = []
    for k in range(2):
        gm = np.zeros((6, 6, 6), np.float32)
        gm[1:5, 1:5, 1:5] = 0.1 * (k + 1)
        gm[3:5, 3:5, 3:5] = 0.8
        gm[3, 3, 3] = 1.6  # clipped to 1
        maps.append(tmp_path / f"gm{k}.nii.gz")
        write_nifti(gm, affine, maps[-1])
    x = build_gm_features(["01", "02"], maps, tmp_path / "mask.nii.gz", tmp_path / "f.npy", tmp_path / "f.tsv",
                          arm="syn", shape=(4, 4, 4), downsample=2)
    assert x.shape == (2, 7)
    # the block at the far corner: seven voxels at 0.8 and one clipped to 1.0
    assert np.isclose(x[0], (7 * 0.8 + 1.0) / 8).sum() == 1
    assert np.isclose(x[1], 0.2).sum() == 6 and np.isclose(x[0], 0.1).sum() == 6
    index = pd.read_csv(tmp_path / "f.tsv", sep="\t", dtype={"unit": str})
    assert list(index["unit"]) == ["01", "02"]


def test_regional_volumes_are_divided_by_the_brain_volume(tmp_path):
    tables, qcs = [], []
    for k, (tiv, hip) in enumerate([(1000.0, 4.0), (1500.0, 3.0)]):
        pd.DataFrame({"region": ["Hippocampus", "Amygdala"], "label_ml": [9.0, 2.0], "gm_ml": [hip, 1.5]}).to_csv(
            tmp_path / f"v{k}.tsv", sep="\t", index=False)
        (tmp_path / f"q{k}.json").write_text(json.dumps({"brain_volume_ml": tiv}))
        tables.append(tmp_path / f"v{k}.tsv")
        qcs.append(tmp_path / f"q{k}.json")
    out = collect_region_volumes(["01", "02"], tables, qcs, tmp_path / "out.tsv")
    assert out["Hippocampus"].tolist() == pytest.approx([0.004, 0.002])
    assert out["Amygdala"].tolist() == pytest.approx([0.0015, 0.001])
    (tmp_path / "q1.json").write_text(json.dumps({"gm_fraction": 0.4}))
    with pytest.raises(ValueError, match="q1.json: brain_volume_ml"):
        collect_region_volumes(["01", "02"], tables, qcs, tmp_path / "out.tsv")


def test_compares_the_best_cnn_arm_split_by_split():
    cnn = []
    for split in range(4):
        for seed, shift in ((0, -0.02), (1, 0.02)):
            cnn.append({"variant": "reg-syn", "split": split, "seed": seed, "balanced_accuracy": 0.9 + shift,
                        "roc_auc": 0.95})
            cnn.append({"variant": "reg-none", "split": split, "seed": seed, "balanced_accuracy": 0.6 + shift,
                        "roc_auc": 0.7})
    base = [{"variant": "gm", "split": s, "seed": 0, "balanced_accuracy": 0.8 + 0.01 * s, "roc_auc": 0.9}
            for s in range(4)]
    table = compare_with_cnn(pd.DataFrame(cnn), pd.DataFrame(base), metrics=("balanced_accuracy", "roc_auc"))
    row = table.set_index("metric").loc["balanced_accuracy"]
    assert row["cnn_variant"] == "reg-syn" and row["baseline"] == "gm"
    assert row["n"] == 4 and row["unit"] == "split"
    # seeds averaged per split: 0.9 each; baseline mean 0.815
    assert row["mean_cnn"] == pytest.approx(0.9) and row["mean_baseline"] == pytest.approx(0.815)
    assert row["n_cnn_better"] == 4 and row["p_value"] == pytest.approx(2 / 16)


def test_registration_figure_shows_the_baseline_beside_the_arms(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    summary = pd.DataFrame([{"variant": f"reg-{a}", "arm": a, "split": s, "seed": 0, "balanced_accuracy": 0.7,
                             "sensitivity": 0.7, "specificity": 0.7} for a in ("none", "syn") for s in range(3)])
    baseline = pd.DataFrame([{"variant": v, "arm": arm, "model": "svm", "split": s, "seed": 0,
                              "balanced_accuracy": 0.8, "sensitivity": 0.8, "specificity": 0.8}
                             for v, arm in (("gm", "syn"), ("volumes", "native")) for s in range(3)])
    captured = {}
    real = studies.save_figure

    def keep(fig, *args):
        captured["fig"] = fig
        return real(fig, *args)

    monkeypatch.setattr(studies, "save_figure", keep)
    paths = studies.plot_registration_metrics(summary, None, tmp_path / "m.png", baseline=baseline)
    assert paths and (tmp_path / "m.png").stat().st_size > 0
    labels = [t.get_text() for t in captured["fig"].axes[0].get_legend().get_texts()]
    assert labels == ["none (n = 3 runs)", "syn (n = 3 runs)", "linear SVM: GM maps (syn) (n = 3 splits)",
                      "linear SVM: regional volumes (n = 3 splits)"]
    heights = sorted({round(p.get_height(), 6) for p in captured["fig"].axes[0].patches})
    assert heights == [0.7, 0.8]


@pytest.mark.slow
def test_dry_run_plans_one_baseline_fit_per_feature_set_and_split(tmp_path):
    n_splits = 3
    config = {**TINY, "splits": {**TINY["splits"], "n_splits": n_splits}}
    proc = run_snakemake(tmp_path, "-n", "--cores", "1", "--quiet", "rules", config=config)
    counts = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    features = yaml.safe_load((REPO / "config.yaml").read_text())["baseline"]["features"]
    assert counts.get("train_baseline") == n_splits * len(features), counts
    for rule in ("summarize_baseline", "compare_with_baseline", "plot_registration_metrics"):
        assert counts.get(rule) == 1, (rule, counts)
    off = run_snakemake(tmp_path / "off", "-n", "--cores", "1", "--quiet", "rules",
                        config={**config, "baseline": {"enabled": False}})
    assert "train_baseline" not in off.stdout


def test_a_gm_arm_that_is_not_produced_stops_the_run(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "--cores", "1", config={**TINY, "registration": ["none", "linear"],
                         "studies": {**TINY["studies"], "registration": {"arms": ["none", "linear"]},
                                     "pif": {"arm": "linear"}, "transfer": {"source_arm": "linear"}}},
                         check=False)
    assert proc.returncode != 0 and "baseline.gm_arm 'syn'" in proc.stderr + proc.stdout


@pytest.mark.parametrize("model", MODELS)
def test_on_equal_inner_scores_the_smallest_c_wins(model):
    # Groups 20 standard deviations apart: every C separates every inner fold perfectly.
    rng = np.random.default_rng(6)
    x, y = _gaussians(rng, 10, np.full(3, 20.0 / math.sqrt(3)), 1.0)
    search = fit_linear(x, y, [f"s{i}" for i in range(len(y))], model=model, c_grid=[10, 0.01, 1], inner_folds=5)
    assert np.all(search.cv_results_["mean_test_score"] == 1.0)
    assert search.best_params_["clf__C"] == 0.01


def _check_baseline_runs(res):
    """Every (feature set, split) fitted once, on that split's training + validation units only."""
    features = yaml.safe_load((REPO / "config.yaml").read_text())["baseline"]["features"]
    splits = pd.read_csv(res / "splits" / "splits.tsv", sep="\t", dtype={"unit": str, "subject": str})
    summary = pd.read_csv(res / "models" / "baseline" / "summary.tsv", sep="\t")
    expected = sorted((f, int(s)) for f in features for s in splits["split"].unique())
    assert sorted(zip(summary["variant"], summary["split"].astype(int))) == expected
    assert summary["balanced_accuracy"].between(0, 1).all() and (summary["C"] > 0).all()
    for rec in summary.itertuples():
        part = splits[splits["split"] == rec.split]
        pred = pd.read_csv(res / "models" / "baseline" / rec.variant / f"split-{rec.split}_seed-0_predictions.tsv",
                           sep="\t", dtype={"unit": str})
        assert set(pred.loc[pred.partition == "test", "unit"]) == set(part.loc[part.partition == "test", "unit"])
        assert rec.n_train == int(part["partition"].isin(["train", "val"]).sum())
    return features, splits


@pytest.mark.slow
def test_tiny_run_fits_the_baseline_on_every_split_and_compares_it(tiny_run):
    res = tiny_run[0] / "results"
    features, splits = _check_baseline_runs(res)
    table = pd.read_csv(res / "stats" / "registration_baseline.tsv", sep="\t")
    assert set(table["baseline"]) == set(features) and (table["unit"] == "split").all()
    assert (table["n"] <= splits["split"].nunique()).all()
    assert table["cnn_variant"].str.startswith("reg-").all()


def test_a_best_c_at_the_edge_of_the_grid_is_named_only_when_it_beats_its_neighbour():
    from mrixai.learn.baseline import edge_of_grid

    grid = [0.01, 0.1, 1.0]
    assert edge_of_grid(grid, [0.9, 0.8, 0.7]) == "smallest"
    assert edge_of_grid(grid, [0.7, 0.8, 0.9]) == "largest"
    assert edge_of_grid(grid, [0.8, 0.8, 0.7]) is None  # tied with its neighbour: the smallest wins by rule
    assert edge_of_grid(grid, [0.7, 0.9, 0.8]) is None  # inside the grid
    assert edge_of_grid([1.0], [0.9]) is None
