"""Attribution maps of a trained run, written as NIfTI in template space."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from mrixai.explain.attribution import attribute
from mrixai.explain.maps import check_methods, explain_run
from mrixai.learn.train import model_from_checkpoint


def test_maps_are_written_per_test_subject_and_method_in_template_space(tiny_volume_run):
    tmp, out, affine = tiny_volume_run
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
