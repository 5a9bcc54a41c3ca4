"""Sample stores, augmentation, the trainer and a training run's refusal to start on leakage."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from helpers import write_nifti
from mrixai.learn.data import augment
from mrixai.learn.metrics import classification_metrics
from mrixai.learn.run import train_on_volumes
from mrixai.learn.splits import LeakageError, make_splits
from mrixai.learn.store import (
    block_mean,
    build_patch_store,
    build_volume_store,
    crop_offset,
    crop_or_pad,
    normalise,
    sample_grid_affine,
)
from mrixai.learn.train import fit, load_checkpoint, model_from_checkpoint
from conftest import shipped_train_config


def test_crop_or_pad_matches_numpy_padding():
    data = np.arange(5 * 6 * 7, dtype=np.float32).reshape(5, 6, 7)
    shape = (7, 4, 7)
    off = crop_offset(data.shape, shape)
    assert off == (-1, 1, 0)
    expected = np.pad(data, ((1, 1), (0, 0), (0, 0)))[:, 1:5, :]
    np.testing.assert_array_equal(crop_or_pad(data, shape, off), expected)


def test_block_mean_and_sample_grid_affine_agree_on_world_coordinates():
    affine = np.array([[2.0, 0, 0, -90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    shape, image_shape, factor = (8, 8, 8), (11, 10, 9), 2
    off = crop_offset(image_shape, shape)
    grid_affine = sample_grid_affine(affine, off, factor)
    # Put a coordinate ramp (world x) into the template grid; block averages must equal the world x
    # of the sample voxel centre, since averaging a linear ramp gives its value at the block centre.
    ijk = np.indices(image_shape).reshape(3, -1)
    world_x = (affine[:3, :3] @ ijk + affine[:3, 3:])[0].reshape(image_shape)
    sample = block_mean(crop_or_pad(world_x, shape, off), factor)
    sijk = np.indices(sample.shape).reshape(3, -1)
    expected = (grid_affine[:3, :3] @ sijk + grid_affine[:3, 3:])[0].reshape(sample.shape)
    inside = crop_or_pad(np.ones(image_shape), shape, off)
    full = block_mean(inside, factor) == 1
    np.testing.assert_allclose(sample[full], expected[full], atol=1e-4)


@pytest.mark.parametrize("method", ["zscore", "minmax"])
def test_normalise_inside_the_brain_only(method):
    rng = np.random.default_rng(0)
    data = np.zeros((10, 10, 10), np.float32)
    data[2:8, 2:8, 2:8] = rng.normal(500, 50, (6, 6, 6)).clip(1)
    out = normalise(data, method)
    brain = data > 0
    assert (out[~brain] == 0).all()
    if method == "zscore":
        assert abs(out[brain].mean()) < 1e-5 and abs(out[brain].std() - 1) < 1e-4
    else:
        assert out[brain].min() >= 0 and out[brain].max() <= 1
    with pytest.raises(ValueError, match="must be one of"):
        normalise(data, "robust")


def _write_volumes(tmp_path, n=6, shape=(20, 22, 18)):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    paths, units = [], []
    rng = np.random.default_rng(1)
    for i in range(n):
        data = np.zeros(shape, np.float32)
        data[4:16, 5:17, 3:15] = rng.uniform(100, 200, (12, 12, 12))
        path = tmp_path / f"sub-{i:02d}.nii.gz"
        write_nifti(data, affine, path)
        paths.append(path)
        units.append(f"{i:02d}")
    return units, paths


def test_volume_store_round_trip_and_patch_store(tmp_path):
    units, paths = _write_volumes(tmp_path)
    out = {k: tmp_path / f"store.{k}" for k in ("npy", "tsv", "json")}
    build_volume_store(units, paths, out["npy"], out["tsv"], out["json"], arm="syn", shape=(16, 16, 16),
                       downsample=2, normalisation="zscore")
    store = np.load(out["npy"], mmap_mode="r")
    assert store.shape == (6, 8, 8, 8) and store.dtype == np.float32
    index = pd.read_csv(out["tsv"], sep="\t", dtype={"unit": str})
    assert index["unit"].tolist() == units and (index["arm"] == "syn").all()
    meta = json.loads(out["json"].read_text())
    assert meta["grid"] == [8, 8, 8] and meta["offset"] == [2, 3, 1]
    # Sample 3 is the z-scored block average of image 3's centred crop.
    data = nib.load(paths[3]).get_fdata(dtype=np.float32)
    expected = normalise(block_mean(data[2:18, 3:19, 1:17], 2), "zscore")
    np.testing.assert_allclose(store[3], expected, atol=1e-5)
    assert not list(tmp_path.glob(".*partial*"))
    build_patch_store(out["npy"], out["tsv"], tmp_path / "p.npy", tmp_path / "p.tsv", size=4, stride=4)
    patches = np.load(tmp_path / "p.npy")
    pidx = pd.read_csv(tmp_path / "p.tsv", sep="\t", dtype={"unit": str})
    assert patches.shape == (6 * 8, 4, 4, 4)
    r = pidx[(pidx.unit == "03") & (pidx.x == 4) & (pidx.y == 0) & (pidx.z == 4)].row.item()
    np.testing.assert_array_equal(patches[r], store[3, 4:8, 0:4, 4:8])


def test_volume_store_inside_the_template_mask_shares_one_outline(tmp_path, caplog):
    units, paths = _write_volumes(tmp_path, n=3)
    # Each subject's own brain outline differs: subject 1 has an extra slab (14 % of its brain) outside the mask.
    data = nib.load(paths[1]).get_fdata(dtype=np.float32)
    data[16:18, 5:17, 3:15] = 150.0
    write_nifti(data, np.diag([2.0, 2.0, 2.0, 1.0]), paths[1])
    mask = np.zeros((20, 22, 18), np.uint8)
    mask[4:16, 5:17, 3:15] = 1  # the brain box of _write_volumes
    mask_path = tmp_path / "mask.nii.gz"
    write_nifti(mask, np.diag([2.0, 2.0, 2.0, 1.0]), mask_path)
    out = {k: tmp_path / f"store.{k}" for k in ("npy", "tsv", "json")}
    build_volume_store(units, paths, out["npy"], out["tsv"], out["json"], arm="syn", shape=(20, 22, 18),
                       mask=mask_path)
    store = np.load(out["npy"])
    # Every sample is non-zero exactly inside the mask (the extra slab is gone) ...
    for sample in store:
        np.testing.assert_array_equal(sample != 0, mask.astype(bool))
    # ... and holds the subject's z-scored image there (normalised over its own brain, slab included).
    expected = np.where(mask > 0, normalise(data, "zscore"), 0)
    np.testing.assert_allclose(store[1], expected, atol=1e-5)
    # On a coarser sample grid a sample voxel is kept when at least half of it lies in the mask.
    build_volume_store(units, paths, out["npy"], out["tsv"], out["json"], arm="syn", shape=(20, 22, 18),
                       downsample=2, mask=mask_path)
    coarse = np.load(out["npy"])[1]
    kept = block_mean(mask.astype(np.float32), 2) >= 0.5
    np.testing.assert_allclose(coarse, np.where(kept, normalise(block_mean(data, 2), "zscore"), 0), atol=1e-5)
    assert json.loads(out["json"].read_text())["mask"] == str(mask_path)
    # A brain mostly outside the mask (e.g. a failed registration) is named in a warning.
    moved = np.zeros_like(data)
    moved[12:20, 5:17, 3:15] = 150.0
    write_nifti(moved, np.diag([2.0, 2.0, 2.0, 1.0]), paths[2])
    with caplog.at_level("WARNING", logger="mrixai.learn.store"):
        build_volume_store(units, paths, out["npy"], out["tsv"], out["json"], arm="syn", shape=(20, 22, 18),
                           mask=mask_path)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "sub-02.nii.gz" in warned[0] and "outside the mask" in warned[0]
    write_nifti(mask[:-1], np.diag([2.0, 2.0, 2.0, 1.0]), mask_path)
    with pytest.raises(ValueError, match="mask.nii.gz: grid"):
        build_volume_store(units, paths, tmp_path / "b.npy", tmp_path / "b.tsv", tmp_path / "b.json",
                           arm="syn", shape=(20, 22, 18), mask=mask_path)


def test_volume_store_names_an_image_on_another_grid(tmp_path):
    units, paths = _write_volumes(tmp_path, n=2)
    write_nifti(np.ones((20, 22, 19), np.float32), np.diag([2.0, 2, 2, 1]), paths[1])
    with pytest.raises(ValueError, match="sub-01.nii.gz: grid"):
        build_volume_store(units, paths, tmp_path / "a.npy", tmp_path / "a.tsv", tmp_path / "a.json",
                           arm="none", shape=(16, 16, 16))


def test_augment_flips_and_shifts_without_wrapping():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 9, 9, 9)
    x[:, :, 1, 4, 4] = 1.0  # a point near the left edge
    flipped = augment(x, gen, flip_p=1.0, max_shift=0)
    assert (flipped[:, 0, 7, 4, 4] == 1).all()
    shifted = augment(x, gen, flip_p=0.0, max_shift=2)
    pos = torch.nonzero(shifted[:, 0] == 1)
    # The point moves by at most 2 voxels per axis; shifts below -1 push it out (zero-filled, no wrap).
    kept = pos[:, 0].unique().numel()
    assert kept < 64 and (shifted.sum((1, 2, 3, 4)) <= 1).all()
    assert (pos[:, 1] <= 3).all() and ((pos[:, 2:] - 4).abs() <= 2).all()
    assert not (shifted[:, 0, 7:] == 1).any()
    mixed = augment(x, gen, flip_p=0.5, max_shift=0)
    n_flipped = int((mixed[:, 0, 7, 4, 4] == 1).sum())
    assert 16 <= n_flipped <= 48


def _blob_task(n=48, shape=(16, 18, 16), seed=0):
    """Class 1 volumes carry a bright blob in one hemisphere-like region; class 0 do not."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 9:13, 6:10, 6:10] += 1.5
    return x, y


def test_fit_learns_a_planted_difference_and_is_deterministic():
    x, y = _blob_task(96)
    train, val, test = np.arange(0, 64), np.arange(64, 80), np.arange(80, 96)
    cfg = shipped_train_config(batch_size=8, learning_rate=1e-3, weight_decay=0.0, max_epochs=12, patience=12,
                               min_epochs=3, max_shift=1, flip_p=0.0, device="cpu")
    model, history, summary = fit(x, y, train, val, cfg, seed=11)
    from mrixai.learn.train import predict_proba

    prob = predict_proba(model, torch.from_numpy(x), test, torch.device("cpu"))
    assert classification_metrics(y[test], prob)["balanced_accuracy"] >= 0.875
    # The kept weights are those of the best validation epoch.
    assert history.val_balanced_accuracy.max() == summary["best_val_balanced_accuracy"]
    assert history.loc[summary["best_epoch"] - 1, "val_balanced_accuracy"] == summary["best_val_balanced_accuracy"]
    model2, history2, _ = fit(x, y, train, val, cfg, seed=11)
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(history.drop(columns="seconds"), history2.drop(columns="seconds"))


def test_early_stopping_respects_patience():
    """Once an epoch has beaten chance, training stops `patience` epochs after the best one. (With
    shuffled labels the run may never beat chance on validation and then, by design, runs to
    max_epochs: the earlier version of this test depended on how the floats fell on the machine.)"""
    x, y = _blob_task()
    # A learnable task at a learning rate that beats chance within a few epochs (seeds 0-3 here: best
    # epoch 3-11, stopped at 5-13).
    cfg = shipped_train_config(batch_size=8, learning_rate=1e-3, weight_decay=0.0, max_epochs=30, patience=2,
                               min_epochs=1, flip_p=0.0, max_shift=2, device="cpu")  # fmt: skip
    _, history, summary = fit(x, y, np.arange(32), np.arange(32, 48), cfg, seed=0)
    assert history.val_balanced_accuracy.max() > 0.5
    assert summary["epochs_run"] == summary["best_epoch"] + 2 < 30
    assert len(history) == summary["epochs_run"]


def test_a_run_still_at_chance_is_not_stopped_early(caplog):
    x, y = _blob_task()
    val = np.arange(32, 48)
    x[val] = x[val[0]]  # identical validation inputs: one prediction for all, balanced accuracy 0.5
    # min_epochs above patience: the stale count is already past patience when stopping is first allowed.
    cfg = shipped_train_config(max_epochs=8, patience=2, min_epochs=4, device="cpu")
    with caplog.at_level("INFO", logger="mrixai.learn.train"):
        _, history, summary = fit(x, y, np.arange(32), val, cfg, seed=0)
    assert (history.val_balanced_accuracy == 0.5).all()
    assert summary["epochs_run"] == 8  # patience 2 and min_epochs 4 would have stopped it after epoch 4
    assert caplog.text.count("not stopping early") == 1


def _run_setup(tmp_path, n=24):
    x, y = _blob_task(n, shape=(16, 18, 16))
    units = [f"{i:03d}" for i in range(n)]
    np.save(tmp_path / "v.npy", x)
    pd.DataFrame({"row": range(n), "unit": units, "subject": units, "arm": "syn"}).to_csv(
        tmp_path / "v.tsv", sep="\t", index=False)
    labels = pd.DataFrame({"unit": units, "subject": units, "group": np.where(y == 1, "AD", "CN"),
                           "label": y, "sex": "F", "age": 70})
    make_splits(labels, 2, seed=0).to_csv(tmp_path / "splits.tsv", sep="\t", index=False)
    out = {k: tmp_path / f"run_{k}" for k in ("model", "history", "predictions", "metrics")}
    return out


def test_training_run_writes_a_weights_only_checkpoint_and_test_predictions(tmp_path):
    out = _run_setup(tmp_path)
    cfg = shipped_train_config(max_epochs=3, patience=3, device="cpu", learning_rate=3e-3)
    metrics = train_on_volumes(tmp_path / "v.npy", tmp_path / "v.tsv", tmp_path / "splits.tsv", 1, 0, cfg, out,
                               run_info={"study": "registration", "variant": "reg-syn", "base_seed": 42})
    ckpt = load_checkpoint(out["model"])
    assert {"state_dict", "optimizer", "epoch", "config", "seed", "versions"} <= set(ckpt)
    assert ckpt["versions"]["torch"] == torch.__version__ and ckpt["config"]["model"] == "boehle3d"
    model, _ = model_from_checkpoint(out["model"])
    assert sum(p.numel() for p in model.parameters()) > 0
    pred = pd.read_csv(out["predictions"], sep="\t", dtype={"unit": str})
    splits = pd.read_csv(tmp_path / "splits.tsv", sep="\t", dtype={"unit": str})
    test_units = set(splits[(splits.split == 1) & (splits.partition == "test")].unit)
    assert set(pred[pred.partition == "test"].unit) == test_units
    assert metrics["n_test"] == len(test_units)
    saved = json.loads(out["metrics"].read_text())
    assert saved["roc"]["fpr"][0] == 0 and saved["roc"]["tpr"][-1] == 1


def test_training_refuses_to_start_when_a_subject_is_in_two_partitions(tmp_path):
    out = _run_setup(tmp_path)
    splits = pd.read_csv(tmp_path / "splits.tsv", sep="\t", dtype={"unit": str, "subject": str})
    # Plant a test subject of split 0 a second time, as a training unit (a second session of it).
    planted = splits[(splits.split == 0) & (splits.partition == "test")].iloc[[0]].copy()
    planted["unit"] = planted["unit"] + "_ses-2"
    planted["partition"] = "train"
    pd.concat([splits, planted]).to_csv(tmp_path / "splits.tsv", sep="\t", index=False)
    cfg = shipped_train_config(max_epochs=1, device="cpu")
    with pytest.raises(LeakageError, match=f"sub-{planted.subject.item()}"):
        train_on_volumes(tmp_path / "v.npy", tmp_path / "v.tsv", tmp_path / "splits.tsv", 0, 0, cfg, out,
                         run_info={"study": "registration"})
    assert not any(p.exists() for p in out.values())


def test_train_config_names_bad_values():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        shipped_train_config(batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        shipped_train_config(precision="fp16")
    with pytest.raises(ValueError, match="CUDA is not available"):
        from mrixai.learn.data import pick_device

        pick_device("cuda")


def test_a_shared_run_is_an_independent_copy_that_names_its_source(tmp_path):
    import json
    import os

    from mrixai.learn.run import share_run

    src = {k: tmp_path / f"reg_{k}" for k in ("model", "history", "predictions", "metrics")}
    for key, path in src.items():
        path.write_text(json.dumps({"study": "registration", "variant": "reg-syn", "n": 12}) if key == "metrics" else key)
    dst = {k: tmp_path / "pif" / f"base_{k}" for k in src}
    share_run(src, dst, "pif", "model-baseline")
    assert all(dst[k].read_text() == src[k].read_text() for k in ("model", "history", "predictions"))
    metrics = json.loads(dst["metrics"].read_text())
    assert metrics == {"study": "pif", "variant": "model-baseline", "n": 12, "shared_from": "registration/reg-syn"}
    # Touching a shared output (as Snakemake does) must not make the source look newer.
    before = src["model"].stat().st_mtime_ns
    os.utime(dst["model"], ns=(before + 10**10, before + 10**10))
    assert src["model"].stat().st_mtime_ns == before


# ---------------------------------------------------------------------------------------------
# Per-study training options as the workflow derives them from the shipped config
# ---------------------------------------------------------------------------------------------

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _shipped_config(*layers: str) -> dict:
    """config.yaml with ``configs/<layer>.yaml`` files merged over it, key by key (as stacked
    --configfile files are)."""
    import yaml

    def merge(base: dict, extra: dict) -> dict:
        for key, value in extra.items():
            base[key] = merge(dict(base.get(key) or {}), value) if isinstance(value, dict) else value
        return base

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for layer in layers:
        config = merge(config, yaml.safe_load((REPO / "configs" / f"{layer}.yaml").read_text()))
    return config


class _Recorder(torch.nn.Module):
    """A two-logit 'model' that keeps every batch it is given (what the trainer feeds a CNN)."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(1, 2)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.linear(x.mean(dim=tuple(range(1, x.dim()))).unsqueeze(1))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("variant", ["model-baseline", "model-pif"])
def test_pif_study_trains_on_translated_never_mirrored_volumes(variant, seed):
    """Both PIF-study variants train with translation-only augmentation (Eitel et al. 2021): a
    volume whose bright block lies left of the midline (first spatial axis) stays left of it in
    every augmented batch, while the volumes do move."""
    from mrixai.learn.options import run_options
    from mrixai.learn.run import train_config
    from mrixai.learn.train import train_epoch

    shipped = run_options(_shipped_config(), "pif", variant)
    assert shipped["training"]["flip_p"] == 0.0
    assert run_options(_shipped_config(), "registration", "reg-syn")["training"]["flip_p"] > 0  # flips elsewhere
    # The paper config translates by up to 2 voxels; its PIF runs still never flip.
    cfg = train_config(run_options(_shipped_config("paper"), "pif", variant))
    assert cfg.flip_p == 0.0 and cfg.max_shift == 2
    cfg.batch_size = 8
    x = torch.zeros(32, 12, 6, 6)
    x[:, 1:3, 2:4, 2:4] = 1.0  # voxels 1-2 of 12: shifted by <= 2 they stay in 0-4; mirrored they would be in 7-12
    y = torch.arange(32) % 2
    model = _Recorder()
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(4):
        train_epoch(model, opt, x, y, np.arange(32), cfg, gen, torch.device("cpu"))
    seen = torch.cat(model.seen)[:, 0]
    assert len(seen) == 4 * 32
    column = seen.sum(dim=(2, 3))  # intensity per position along the first spatial axis
    assert (column[:, 6:] == 0).all(), "a training batch was mirrored left-right"
    moved = (seen != x[0]).flatten(1).any(dim=1)
    assert moved.any() and (column[:, :6].sum(dim=1) > 0).all()


def _finetune(freeze_blocks=None, seed=0):
    """Initial and fine-tuned state of a one-epoch transfer fine-tuning with the shipped options."""
    from mrixai.learn.networks import build_model
    from mrixai.learn.options import run_options
    from mrixai.learn.run import train_config

    config = _shipped_config()
    if freeze_blocks is not None:
        config["studies"]["transfer"]["freeze_blocks"] = freeze_blocks
    cfg = train_config(run_options(config, "transfer", "init-finetune"))
    cfg.device, cfg.max_epochs, cfg.min_epochs, cfg.patience, cfg.batch_size = "cpu", 1, 1, 1, 4
    x, y = _blob_task(16, shape=(16, 18, 16), seed=seed)
    torch.manual_seed(seed)
    init = {k: v.clone() for k, v in build_model(cfg.model, (16, 18, 16)).state_dict().items()}
    model, _, _ = fit(x, y, np.arange(12), np.arange(12, 16), cfg, seed=seed, init_state=init)
    return cfg, init, model.state_dict()


def test_transfer_fine_tuning_freezes_nothing_by_default():
    """Eitel et al. 2019 let every layer re-learn while fine-tuning: with the shipped config every
    weight, the first block's included, moves in one epoch, and so do its batch-norm statistics."""
    cfg, init, tuned = _finetune()
    assert cfg.freeze_blocks == 0
    weights = [k for k in init if k.endswith(".weight")]
    assert any(k.startswith("features.0.") for k in weights)
    unchanged = [k for k in weights if torch.equal(init[k], tuned[k])]
    assert unchanged == []
    assert not torch.equal(init["features.0.1.running_mean"], tuned["features.0.1.running_mean"])


def test_transfer_fine_tuning_can_freeze_the_first_block():
    cfg, init, tuned = _finetune(freeze_blocks=1)
    assert cfg.freeze_blocks == 1
    first = [k for k in init if k.startswith("features.0.")]
    assert first and all(torch.equal(init[k], tuned[k]) for k in first), "a frozen tensor changed"
    assert not torch.equal(init["features.1.0.weight"], tuned["features.1.0.weight"])


def test_pif_translation_only_holds_unless_the_pif_study_itself_asks_for_flips():
    from mrixai.learn.options import run_options, study_training

    # config.yaml's studies.pif.training carries the paper's flip_p 0; a shared training.flip_p of
    # an overlay does not reach the PIF study
    config = _shipped_config()
    config["training"].update(flip_p=0.7, max_shift=3)
    assert study_training(config, "registration")["flip_p"] == 0.7
    for variant in ("model-baseline", "model-pif"):
        training = run_options(config, "pif", variant)["training"]
        assert training["flip_p"] == 0.0 and training["max_shift"] == 3
    config["studies"]["pif"]["training"] = {"flip_p": 0.3}
    assert {run_options(config, "pif", v)["training"]["flip_p"] for v in ("model-baseline", "model-pif")} == {0.3}
    assert "freeze_blocks" not in run_options(config, "transfer", "init-scratch")["training"]
    assert run_options(_shipped_config(), "transfer", "init-finetune")["training"]["freeze_blocks"] == 0


def test_study_training_without_a_training_block_names_it():
    from mrixai.learn.options import study_training

    with pytest.raises(ValueError, match="training"):
        study_training({"studies": {}}, "registration")
