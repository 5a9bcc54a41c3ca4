"""Attribution maps of a trained run, written as NIfTI in template space."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from mrixai.explain.attribution import attribute
from mrixai.explain.maps import check_methods, explain_run
from mrixai.learn.run import train_on_volumes
from mrixai.learn.splits import make_splits
from mrixai.learn.train import TrainConfig, model_from_checkpoint


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    n, shape = 16, (12, 14, 12)
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 6:9, 4:7, 4:7] += 2.0
    units = [f"{i:02d}" for i in range(n)]
    np.save(tmp / "v.npy", x)
    pd.DataFrame({"row": range(n), "unit": units, "subject": units, "arm": "syn"}).to_csv(tmp / "v.tsv", sep="\t", index=False)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    (tmp / "v.json").write_text(json.dumps({"affine": affine.tolist(), "grid": list(shape)}))
    labels = pd.DataFrame({"unit": units, "subject": units, "group": np.where(y == 1, "AD", "CN"), "label": y,
                           "sex": "F", "age": 70})
    make_splits(labels, 1, seed=0).to_csv(tmp / "splits.tsv", sep="\t", index=False)
    out = {k: tmp / f"run_{k}" for k in ("model", "history", "predictions", "metrics")}
    cfg = TrainConfig(model="boehle3d", max_epochs=2, device="cpu")
    train_on_volumes(tmp / "v.npy", tmp / "v.tsv", tmp / "splits.tsv", 0, 0, cfg, out, run_info={"study": "registration"})
    return tmp, out, affine


def test_maps_are_written_per_test_subject_and_method_in_template_space(trained_run):
    tmp, out, affine = trained_run
    methods = {"gxi": {"method": "gradient_x_input"}, "lrp": {"method": "lrp_epsilon", "epsilon": 1e-6}}
    table = explain_run(out["model"], tmp / "v.npy", tmp / "v.tsv", tmp / "v.json", out["predictions"],
                        tmp / "maps", methods, device="cpu")
    pred = pd.read_csv(out["predictions"], sep="\t", dtype={"unit": str})
    test_units = sorted(pred.loc[pred.partition == "test", "unit"])
    assert sorted(table.unit.unique()) == test_units
    assert len(table) == 2 * len(test_units) and set(table.method) == {"gxi", "lrp"}
    files = sorted(p.name for p in (tmp / "maps").glob("*.nii.gz"))
    assert files == sorted(table["file"])
    model, _ = model_from_checkpoint(out["model"])
    store = np.load(tmp / "v.npy")
    unit = test_units[0]
    img = nib.load(tmp / "maps" / f"sub-{unit}_method-gxi_attribution.nii.gz")
    assert np.allclose(img.affine, affine) and img.shape == store.shape[1:]
    # The stored map is the gradient x input of the AD logit (label 1) for that subject.
    x = torch.from_numpy(store[[int(unit)]])[:, None]
    expected = attribute(model, x, "gradient_x_input", torch.ones(1, dtype=torch.long))[0, 0].numpy()
    np.testing.assert_allclose(img.get_fdata(), expected, rtol=1e-4, atol=1e-6)
    row = table[(table.unit == unit) & (table.method == "gxi")].iloc[0]
    assert row["sum"] == pytest.approx(float(expected.sum()), rel=1e-4, abs=1e-6)
    assert not list(tmp.glob(".*partial*"))


def test_unknown_methods_are_named():
    with pytest.raises(ValueError, match="attribution.methods.foo: unknown method 'lrp'"):
        check_methods({"foo": {"method": "lrp"}})
    with pytest.raises(ValueError, match="empty"):
        check_methods({})
