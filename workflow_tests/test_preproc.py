"""Unit tests of the preprocessing library, with expected values derived from how the inputs
were built (a known bias field, a known orientation, a known shift)."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from helpers import write_nifti
from mrixai.preproc.antsio import configure_ants

configure_ants(1, True, 0)

from mrixai.preproc import bias, register, skullstrip  # noqa: E402
from mrixai.qc.metrics import dice  # noqa: E402
from mrixai.templates import TemplateFiles, prepare_template  # noqa: E402


def _phantom(shape=(48, 56, 44), zoom=2.0):
    """A head-like ellipsoid: bright 'WM' core in a darker 'GM' shell, in RAS voxel order."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    r = np.sqrt((grid**2).sum(axis=0))
    data = np.where(r < 0.55, 100.0, np.where(r < 0.8, 60.0, 0.0)).astype(np.float32)
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = -np.array(shape) * zoom / 2
    return data, affine, grid, r


def test_reorient_to_ras_keeps_every_voxel_at_its_world_position():
    data, affine, _, _ = _phantom()
    data = data + np.arange(data.size, dtype=np.float32).reshape(data.shape) * 1e-3  # all values distinct
    # store it as PSR: voxel axes (P, S, R) = a permutation and two flips of RAS
    ornt = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(("R", "A", "S")), nib.orientations.axcodes2ornt(("P", "S", "R"))
    )
    psr = nib.Nifti1Image(data, affine).as_reoriented(ornt)
    assert nib.aff2axcodes(psr.affine) == ("P", "S", "R")
    ras = bias.reorient_to_ras(psr)
    assert nib.aff2axcodes(ras.affine) == ("R", "A", "S")
    np.testing.assert_allclose(ras.affine, affine)
    np.testing.assert_array_equal(np.asanyarray(ras.dataobj), data)


def test_n4_removes_a_known_bias_field():
    data, affine, grid, r = _phantom()
    field = np.exp(0.7 * grid[0] + 0.4 * grid[2]).astype(np.float32)  # smooth, up to x2.5 across the head
    biased = nib.Nifti1Image(data * field, affine)
    # the phantom is 10 cm across, so the B-spline mesh must be finer than a head's 180 mm
    corrected = np.asanyarray(
        bias.correct_bias(biased, shrink_factor=2, iterations=(50, 50, 50, 50), spline_distance_mm=60).dataobj
    )
    core = r < 0.5

    def cov(x):
        return float(x[core].std() / x[core].mean())

    before, after = cov(data * field), cov(corrected)
    assert before > 0.15
    assert after < 0.3 * before, (before, after)
    assert corrected.shape == data.shape and np.all(corrected >= 0)


def test_correct_bias_rejects_bad_settings():
    data, affine, _, _ = _phantom()
    img = nib.Nifti1Image(data, affine)
    with pytest.raises(ValueError, match="shrink_factor"):
        bias.correct_bias(img, shrink_factor=0)
    with pytest.raises(ValueError, match="iterations"):
        bias.correct_bias(img, iterations=())


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> TemplateFiles:
    return prepare_template(tmp_path_factory.mktemp("tpl"), 4.0)


def test_none_arm_only_centres_the_field_of_view(template, tmp_path):
    """The none arm puts the image's FOV centre on the template's and neither rotates nor scales."""
    tpl = nib.load(template.t1w)
    shape = (40, 50, 36)
    data = np.zeros(shape, np.float32)
    data[5:9, 30:35, 10:13] = 1.0  # an off-centre block
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [30.0, -200.0, 95.0]  # far from the template: scanner coordinates
    src = tmp_path / "img.nii.gz"
    write_nifti(data, affine, src)
    mask = tmp_path / "mask.nii.gz"
    write_nifti(data.astype(np.uint8), affine, mask)
    xfm = register.centering_transform(src, template, tmp_path / "none.mat")
    out = {k: tmp_path / f"{k}.nii.gz" for k in ("brain", "mask", "dseg", "GM", "WM", "CSF")}
    register.warp_to_template(
        template, register.transform_list("none", None, None, xfm), src, mask, mask,
        {"GM": src, "WM": src, "CSF": src}, out["brain"], out["mask"], out["dseg"],
        {"GM": out["GM"], "WM": out["WM"], "CSF": out["CSF"]},
    )
    warped = nib.load(out["mask"])
    assert warped.shape == tpl.shape
    # expected: the block's offset from the image centre is kept, relative to the template centre
    centre = lambda img: (img.affine @ np.append((np.array(img.shape[:3]) - 1) / 2, 1))[:3]  # noqa: E731
    block_world = (affine @ np.append(np.array([6.5, 32.0, 11.0]), 1))[:3]
    expected = block_world - centre(nib.Nifti1Image(data, affine)) + centre(tpl)
    got_vox = np.argwhere(np.asanyarray(warped.dataobj) > 0).mean(axis=0)
    got = (warped.affine @ np.append(got_vox, 1))[:3]
    np.testing.assert_allclose(got, expected, atol=2.5)
    # same size, no scaling: linear interpolation of a pure translation keeps the block's mass
    moved = np.asanyarray(nib.load(out["brain"]).dataobj)
    assert abs(moved.sum() - data.sum()) < 0.02 * data.sum()


def test_the_head_follows_the_brain_into_template_space(template, tmp_path):
    """The whole head, warped with the brain's transform, keeps its skull and has the brain image's
    values wherever the brain is: brain and head share one mapping (an affine with a known scale)."""
    data, affine, _, r = _phantom(shape=(40, 48, 40), zoom=4.0)
    head = np.where(r < 0.8, data, np.where(r < 0.95, 30.0, 0.0)).astype(np.float32)  # + skull shell
    mask = (r < 0.8).astype(np.uint8)
    paths = {k: tmp_path / f"{k}.nii.gz" for k in ("head", "brain", "mask")}
    write_nifti(head, affine, paths["head"])
    write_nifti(head * mask, affine, paths["brain"])
    write_nifti(mask, affine, paths["mask"])
    xfm = register.write_itk_affine(np.diag([1.1, 0.95, 1.05]), np.array([4.0, -6.0, 2.0]), tmp_path / "a.mat")
    transforms = register.transform_list("linear", xfm, None)
    out = {k: tmp_path / f"out_{k}.nii.gz" for k in ("head", "brain", "mask")}
    register.warp_brain_to_template(template, transforms, paths["brain"], paths["mask"], out["brain"], out["mask"])
    register.warp_head_to_template(template, transforms, paths["head"], out["head"])
    w_head, w_brain = (np.asanyarray(nib.load(out[k]).dataobj) for k in ("head", "brain"))
    w_mask = np.asanyarray(nib.load(out["mask"]).dataobj) > 0
    assert w_head.shape == nib.load(template.t1w).shape
    core = ndimage.binary_erosion(w_mask, iterations=2)  # away from the interpolated brain edge
    assert core.sum() > 100
    np.testing.assert_allclose(w_head[core], w_brain[core], rtol=1e-5, atol=1e-3)
    # Just outside the brain the head shows its skull (30), the brain image nothing.
    shell = ndimage.binary_dilation(w_mask, iterations=3) & ~ndimage.binary_dilation(w_mask, iterations=1)
    assert np.median(w_head[shell]) == pytest.approx(30.0, abs=1.0) and np.median(w_brain[shell]) == 0


def test_transform_list_rejects_unknown_arms():
    with pytest.raises(ValueError, match="'rigid'"):
        register.transform_list("rigid", "a.mat", None)


def test_fsl_bet_says_how_to_get_fsl(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    data, affine, _, _ = _phantom()
    with pytest.raises(skullstrip.BackendUnavailableError, match="FSL is not installed.*deepbet or robex"):
        skullstrip.strip_skull(nib.Nifti1Image(data, affine), method="fsl_bet")


def test_unknown_skullstrip_method_is_named():
    data, affine, _, _ = _phantom()
    with pytest.raises(ValueError, match="'bet2'"):
        skullstrip.strip_skull(nib.Nifti1Image(data, affine), method="bet2")


# ROBEX on a real head takes minutes: it runs with the slow tests.
@pytest.mark.parametrize("method", ["deepbet", pytest.param("robex", marks=pytest.mark.slow)])
def test_skull_strip_backends_on_a_real_head(method, ixi_sample):
    from mrixai.evaluation import reference_tissues

    sub = "IXI080"
    head = bias.reorient_to_ras(nib.load(ixi_sample / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz"))
    mask = skullstrip.strip_skull(head, method=method, threads=2)
    ref = reference_tissues(
        ixi_sample / "derivatives" / "dlmuse" / f"sub-{sub}" / "anat" / f"sub-{sub}_seg-dlmuse_dseg.nii.gz",
        ixi_sample / "derivatives" / "dlmuse" / "dseg.tsv",
    )
    score = dice(mask, ref["brain"])
    assert score > (0.95 if method == "deepbet" else 0.9), score
