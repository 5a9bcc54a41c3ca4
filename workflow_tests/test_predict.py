"""Prediction on new subjects: checkpoints carry the sample grid, samples are rebuilt from it, and
mismatched or old checkpoints are refused; end to end, a run of the tiny workflow predicts new
generated subjects and reproduces its own test predictions from the raw scans."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, TINY, shipped_train_config
from mrixai.learn.predict import (
    ENSEMBLE,
    check_ensemble,
    check_request,
    load_predictor,
    predict_samples,
    subject_sample,
)
from mrixai.learn.run import train_on_volumes
from mrixai.learn.splits import make_splits
from mrixai.learn.store import build_volume_store, normalise, sample_grid_record
from mrixai.learn.train import load_checkpoint

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
TEMPLATE_AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


def _images(tmp_path, n=12, shape=(20, 22, 18), signal=True):
    """Brains (a uniform box of random intensities) on one 2 mm template grid; odd units carry a bright cube."""
    rng = np.random.default_rng(3)
    units, paths = [], []
    for i in range(n):
        data = np.zeros(shape, np.float32)
        data[4:16, 5:17, 3:15] = rng.uniform(100, 200, (12, 12, 12))
        if signal and i % 2:
            data[8:12, 9:13, 7:11] += 150
        path = tmp_path / f"sub-{i:02d}_space-template_desc-brain_T1w.nii.gz"
        nib.save(nib.Nifti1Image(data, TEMPLATE_AFFINE), path)
        units.append(f"{i:02d}")
        paths.append(path)
    return units, paths


def _store(tmp_path, units, paths, mask=None, **kw):
    out = {k: tmp_path / f"reg-syn_desc-volumes.{k}" for k in ("npy", "tsv", "json")}
    opts = {"shape": (16, 16, 16), "downsample": 2, "normalisation": "zscore", **kw}
    build_volume_store(units, paths, out["npy"], out["tsv"], out["json"], arm="syn", mask=mask, **opts)
    return out


@pytest.mark.parametrize("normalisation", ["zscore", "minmax"])
@pytest.mark.parametrize("masked", [False, True])
def test_samples_rebuilt_from_a_checkpointed_grid_equal_the_store(tmp_path, normalisation, masked):
    units, paths = _images(tmp_path, n=4)
    mask = None
    if masked:
        m = np.zeros((20, 22, 18), np.uint8)
        m[6:14, 7:15, 5:13] = 1
        mask = tmp_path / "mask.nii.gz"
        nib.save(nib.Nifti1Image(m, TEMPLATE_AFFINE), mask)
    out = _store(tmp_path, units, paths, mask=mask, normalisation=normalisation)
    record = sample_grid_record(out["json"])
    # the record survives a checkpoint round trip (weights_only load), without the mask file
    keep = record.pop("keep")
    torch.save({"sample_grid": {**record, "keep": None if keep is None else torch.from_numpy(keep)}}, tmp_path / "c.pt")
    if mask is not None:
        mask.unlink()
    grid = load_checkpoint(tmp_path / "c.pt")["sample_grid"]
    store = np.load(out["npy"])
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(subject_sample(path, grid), store[i])
    # and by hand: image 1's centred 16^3 box (offset (2, 3, 1)) in 2^3 blocks, normalised inside the brain
    data = np.asarray(nib.load(paths[1]).dataobj, np.float32)[2:18, 3:19, 1:17]
    blocks = data.reshape(8, 2, 8, 2, 8, 2).mean((1, 3, 5))
    expected = normalise(blocks, normalisation)
    if masked:  # mask voxels 6..13, 7..14, 5..12 -> sample voxels (6-2)/2.., i.e. 2..5 on every axis
        inside = np.zeros((8, 8, 8), bool)
        inside[2:6, 2:6, 2:6] = True
        expected = np.where(inside, expected, 0)
    np.testing.assert_allclose(subject_sample(paths[1], grid), expected, atol=1e-5)


def test_an_image_off_the_template_grid_is_refused_naming_it(tmp_path):
    units, paths = _images(tmp_path, n=2)
    grid = sample_grid_record(_store(tmp_path, units, paths)["json"])
    other = tmp_path / "sub-x_1mm.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((40, 44, 36), np.float32), np.diag([1.0, 1.0, 1.0, 1.0])), other)
    with pytest.raises(ValueError, match="sub-x_1mm.nii.gz.*differs from the grid"):
        subject_sample(other, grid)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two runs (seeds 0 and 1) of a small CNN trained on a store built from NIfTI images."""
    tmp = tmp_path_factory.mktemp("predict")
    units, paths = _images(tmp, n=12)
    store = _store(tmp, units, paths, downsample=1)
    y = np.arange(12) % 2
    labels = pd.DataFrame({"unit": units, "subject": units, "group": np.where(y == 1, "AD", "CN"), "label": y,
                           "sex": "F", "age": 70})
    make_splits(labels, 1, seed=0).to_csv(tmp / "splits.tsv", sep="\t", index=False)
    cfg = shipped_train_config(max_epochs=2, device="cpu")
    models = tmp / "models"
    models.mkdir()
    for seed in (0, 1):
        out = {k: models / f"split-0_seed-{seed}_{k}.{'pt' if k == 'model' else 'tsv' if k != 'metrics' else 'json'}"
               for k in ("model", "history", "predictions", "metrics")}
        train_on_volumes(store["npy"], store["tsv"], tmp / "splits.tsv", 0, seed, cfg, out,
                         run_info={"study": "registration", "variant": "reg-syn", "arm": "syn"},
                         store_json=store["json"], contrast="T1w", template="MNI152NLin2009aSym",
                         workflow_config={"contrast": "T1w", "label": {"column": "diagnosis",
                                                                       "groups": {"CN": "x == 0", "AD": "x == 1"}}})
    return tmp, units, paths, models


def test_checkpoint_carries_what_prediction_needs(trained):
    _, _, _, models = trained
    ckpt = load_checkpoint(models / "split-0_seed-0_model.pt")
    assert ckpt["arm"] == "syn" and ckpt["contrast"] == "T1w" and ckpt["template"] == "MNI152NLin2009aSym"
    assert ckpt["classes"] == ["CN", "AD"]  # label order: CN is label 0
    grid = ckpt["sample_grid"]
    assert grid["shape"] == [16, 16, 16] and grid["offset"] == [2, 3, 1] and grid["downsample"] == 1
    assert grid["normalisation"] == "zscore" and grid["keep"] is None
    assert ckpt["model"] == {"name": "boehle3d", "input_shape": [16, 16, 16], "n_classes": 2, "options": {}}
    assert ckpt["workflow_config"]["label"]["column"] == "diagnosis"


def test_runs_predict_their_own_subjects_from_the_images(trained):
    """Samples rebuilt from the images give the probabilities the training run wrote, for every run;
    the ensemble is the mean of the runs."""
    _, units, paths, models = trained
    preds = [load_predictor(models / f"split-0_seed-{s}_model.pt") for s in (0, 1)]
    samples = np.stack([subject_sample(p, preds[0].grid) for p in paths])
    table = predict_samples(preds, units, samples, device="cpu")
    for pred in preds:
        written = pd.read_csv(models / f"{pred.name}_predictions.tsv", sep="\t", dtype={"unit": str})
        got = table[table["run"] == pred.name].set_index("unit")["prob"]
        np.testing.assert_allclose(got.loc[written["unit"]].to_numpy(), written["prob"].to_numpy(), atol=1e-5)
    wide = table.pivot(index="unit", columns="run", values="prob")
    np.testing.assert_allclose(wide[ENSEMBLE], (wide[preds[0].name] + wide[preds[1].name]) / 2, atol=1e-12)
    ens = table[table["run"] == ENSEMBLE]
    assert (ens["pred"] == (ens["prob"] >= 0.5)).all()
    assert set(ens["pred_group"]) <= {"CN", "AD"}


def _altered(src: Path, dst: Path, grid: dict | None = None, **changes) -> Path:
    """A copy of a checkpoint with some sample-grid and top-level fields changed."""
    ckpt = load_checkpoint(src)
    ckpt["sample_grid"].update(grid or {})
    ckpt.update(changes)
    torch.save(ckpt, dst)
    return dst


def test_mismatched_checkpoints_are_refused_naming_both(trained, tmp_path):
    _, _, _, models = trained
    good = load_predictor(models / "split-0_seed-0_model.pt")
    with pytest.raises(ValueError, match=r"requested arm 'linear', but .*split-0_seed-0_model.pt was trained with arm 'syn'"):
        check_request(good, arm="linear")
    with pytest.raises(ValueError, match="requested contrast 'T2w'.*contrast 'T1w'"):
        check_request(good, contrast="T2w")
    shifted = load_predictor(_altered(good.path, tmp_path / "shifted_model.pt", grid={"offset": [0, 3, 1]}))
    with pytest.raises(ValueError, match="sample grid") as err:
        check_ensemble([good, shifted])
    assert str(good.path) in str(err.value) and str(shifted.path) in str(err.value)
    assert "[2, 3, 1]" in str(err.value) and "[0, 3, 1]" in str(err.value)
    linear = load_predictor(_altered(good.path, tmp_path / "linear_model.pt", arm="linear"))
    with pytest.raises(ValueError, match="differ in arm") as err:
        check_ensemble([good, linear])
    assert "'syn'" in str(err.value) and "'linear'" in str(err.value)


def test_a_checkpoint_without_prediction_fields_is_refused(trained, tmp_path):
    _, _, _, models = trained
    ckpt = load_checkpoint(models / "split-0_seed-0_model.pt")
    for key in ("sample_grid", "arm", "contrast", "template", "model", "workflow_config", "format"):
        ckpt.pop(key)
    torch.save(ckpt, tmp_path / "old_model.pt")
    with pytest.raises(ValueError, match=r"old_model.pt: this checkpoint lacks \['sample_grid'.*retrain"):
        load_predictor(tmp_path / "old_model.pt")


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mrixai.cli", "predict", *args], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def test_predict_help_and_refusal_before_any_preprocessing(trained, tmp_path):
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "MODELS" in proc.stdout and "--attribution" in proc.stdout
    assert "mrixai predict" in subprocess.run([sys.executable, "-m", "mrixai.cli", "--help"], env=ENV,
                                              capture_output=True, text=True).stdout
    _, _, _, models = trained
    bids = tmp_path / "bids"
    bids.mkdir()
    (bids / "participants.tsv").write_text("participant_id\nsub-01\n")
    proc = cli(str(models), str(bids), str(tmp_path / "out"), "--arm", "linear", cwd=tmp_path)
    assert proc.returncode == 2
    assert "requested arm 'linear'" in proc.stderr and "arm 'syn'" in proc.stderr and "split-0_seed-0_model.pt" in proc.stderr
    assert not (tmp_path / "out").exists()


# --- end to end on the tiny workflow run ------------------------------------------------------


def _new_subjects(work: Path, bids: Path) -> list[str]:
    """Two subjects the tiny cohort never had (another seed), in a BIDS dataset without labels."""
    from mrixai.synthetic import cohort, generation

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    params = {**cfg["synthetic"], **TINY["synthetic"]}
    params = {k: params[k] for k in cohort.PARAM_KEYS} | {
        k: params[k] for k in cohort.OPTIONAL_PARAM_KEYS if params.get(k)
    }
    res = work / "results"
    rows = [{"participant_id": "sub-901", "age": 66.0, "sex": "F", "severity": 0.0},
            {"participant_id": "sub-902", "age": 75.0, "sex": "M", "severity": 0.9}]
    for row in rows:
        sub = row["participant_id"]
        anat = bids / sub / "anat"
        anat.mkdir(parents=True)
        generation.generate_subject(row, res / "synthetic" / "headmodel", res / "template", float(cfg["resolution_mm"]),
                                   params, 4242, anat / f"{sub}_T1w.nii.gz", anat / f"{sub}_T2w.nii.gz",
                                   bids / "truth" / f"{sub}_dseg.nii.gz", bids / "truth" / f"{sub}_mask.nii.gz")
    shutil.rmtree(bids / "truth")
    pd.DataFrame([{k: r[k] for k in ("participant_id", "age", "sex")} for r in rows]).to_csv(
        bids / "participants.tsv", sep="\t", index=False)
    shutil.copy(res / "synthetic" / "bids" / "dataset_description.json", bids / "dataset_description.json")
    return ["901", "902"]


@pytest.mark.slow
def test_tiny_run_predicts_new_subjects_and_reproduces_its_test_predictions(tiny_run, tmp_path):
    check_prediction_on_a_workflow_run(tiny_run[0], tmp_path)


def check_prediction_on_a_workflow_run(work: Path, tmp_path: Path) -> None:
    """Predict with the reg-linear runs of the workflow run in ``work``: (a) new generated subjects
    without labels, (b) the runs' own test subjects from their raw scans; a mismatched arm is refused."""
    # the model folder alone, copied away from the training results (as to another machine)
    models = tmp_path / "models"
    shutil.copytree(work / "results" / "models" / "registration" / "reg-linear", models,
                    ignore=shutil.ignore_patterns("*_history.tsv", "*_metrics.json"))
    runs = sorted(p.name.removesuffix("_model.pt") for p in models.glob("*_model.pt"))
    assert len(runs) == TINY["splits"]["n_repeats"]

    # (a) new generated subjects, no label column
    new = _new_subjects(work, tmp_path / "new_bids")
    proc = cli(str(models), str(tmp_path / "new_bids"), str(tmp_path / "out_new"), "--cores", "2",
               "--attribution", "gradcam", cwd=tmp_path, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-6000:]
    table = pd.read_csv(tmp_path / "out_new" / "predictions.tsv", sep="\t", dtype={"unit": str, "subject": str})
    assert "label" not in table.columns
    assert sorted(table["unit"].unique()) == new and sorted(table["run"].unique()) == sorted([*runs, ENSEMBLE])
    assert table["prob"].between(0, 1).all()
    wide = table.pivot(index="unit", columns="run", values="prob")
    np.testing.assert_allclose(wide[ENSEMBLE], wide[runs].mean(axis=1), atol=1e-5)
    maps = sorted(p.name for p in (tmp_path / "out_new" / "attribution").glob("*.nii.gz"))
    assert len(maps) == len(new) * (len(runs) + 1)
    regions = pd.read_csv(tmp_path / "out_new" / "attribution" / "regions.tsv", sep="\t", dtype={"unit": str})
    assert "Hippocampus" in set(regions["region"]) and (regions["sum_abs"] >= 0).all()

    # (b) the run's own test subjects, from the raw scans, preprocessed afresh
    written = {r: pd.read_csv(models / f"{r}_predictions.tsv", sep="\t", dtype={"unit": str}) for r in runs}
    test_units = sorted(written[runs[0]].query("partition == 'test'")["unit"])
    proc = cli(str(models), str(work / "results" / "synthetic" / "bids"), str(tmp_path / "out_test"),
               "--participant-label", *test_units, "--cores", "2", "--arm", "linear", cwd=tmp_path, timeout=3000)
    assert proc.returncode == 0, proc.stderr[-6000:]
    table = pd.read_csv(tmp_path / "out_test" / "predictions.tsv", sep="\t", dtype={"unit": str})
    for run in runs:
        got = table[table["run"] == run].set_index("unit")
        ref = written[run].set_index("unit").loc[test_units]
        np.testing.assert_allclose(got.loc[test_units, "prob"], ref["prob"], atol=1e-5)
        assert (got.loc[test_units, "label"] == ref["label"]).all()  # labels from participants.tsv

    # a mismatched request is refused naming both
    proc = cli(str(models), str(tmp_path / "new_bids"), str(tmp_path / "out_bad"), "--arm", "syn", cwd=tmp_path)
    assert proc.returncode == 2 and "requested arm 'syn'" in proc.stderr and "arm 'linear'" in proc.stderr
