"""Quality control: montages are real, correctly oriented pictures; metrics and outlier flags are right."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from helpers import ellipsoid, write_nifti
from mrixai import display
from mrixai.qc import canvas, group, metrics, montage, volumes
from mrixai.templates import prepare_template

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ixi_sample"
IXI_SUBJECT = "sub-IXI012"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> dict[str, Path]:
    """A synthetic 2 mm head in RAS: scalp, skull, GM shell, WM core, ventricles; mask and dseg."""
    d = tmp_path_factory.mktemp("head")
    shape, c = (40, 48, 40), (20, 24, 20)
    scalp = ellipsoid(shape, c, (18, 22, 18))
    skull = ellipsoid(shape, c, (16, 20, 16))
    brain = ellipsoid(shape, c, (14, 18, 14))
    wm = ellipsoid(shape, c, (10, 13, 10))
    csf = ellipsoid(shape, (20, 24, 21), (2, 6, 2))
    dseg = np.zeros(shape, np.uint8)
    dseg[brain], dseg[wm], dseg[csf] = 1, 2, 3
    rng = np.random.default_rng(0)
    image = np.where(scalp, 0.8, 0.0) * ~skull + np.where(skull & ~brain, 0.05, 0.0)
    image = image + np.select([dseg == 1, dseg == 2, dseg == 3], [0.6, 1.0, 0.2], 0.0)
    image = image + rng.normal(0, 0.02, shape)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -np.array(c) * 2.0
    return {
        "image": write_nifti(image, affine, d / "head.nii.gz", np.float32),
        "brain": write_nifti(image * brain, affine, d / "brain.nii.gz", np.float32),
        "mask": write_nifti(brain, affine, d / "mask.nii.gz", np.uint8),
        "empty_mask": write_nifti(np.zeros(shape), affine, d / "empty_mask.nii.gz", np.uint8),
        "dseg": write_nifti(dseg, affine, d / "dseg.nii.gz", np.uint8),
        "empty_dseg": write_nifti(np.zeros(shape), affine, d / "empty_dseg.nii.gz", np.uint8),
    }


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return prepare_template(tmp_path_factory.mktemp("tpl"), 2)


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), np.int16)


def _near(rgb: np.ndarray, color: str, tol: float = 40) -> int:
    """Pixels within ``tol`` (Euclidean, 0-255 scale) of ``color``."""
    target = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.sqrt(((rgb - target) ** 2).sum(-1)) < tol).sum())


def _colored(rgb: np.ndarray) -> int:
    """Pixels with a clear hue (not grey)."""
    return int(((rgb.max(-1) - rgb.min(-1)) > 40).sum())


def _check_png(path: Path) -> np.ndarray:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as img:
        assert img.format == "PNG"
        width, height = img.size
    assert 1200 <= width <= 1600, width
    assert 400 <= height <= 1400, height
    assert path.stat().st_size < 1_000_000
    rgb = _rgb(path)
    assert rgb.mean(-1).var() > 100, "montage looks blank"
    assert not list(path.parent.glob(f".{path.name.split('.')[0]}.*")), "temporary file left behind"
    return rgb


def test_mask_montage_draws_the_outline(head, tmp_path):
    with_mask = _check_png(_plot(montage.plot_mask_montage, head["image"], head["mask"], tmp_path / "m.png"))
    empty = _check_png(_plot(montage.plot_mask_montage, head["image"], head["empty_mask"], tmp_path / "e.png"))
    # With an empty mask only the legend's line carries the mask colour.
    assert _near(with_mask, canvas.MASK_COLOR) > 1500
    assert _near(empty, canvas.MASK_COLOR) < 300
    assert _near(with_mask, canvas.MASK_COLOR) > 5 * _near(empty, canvas.MASK_COLOR)


def test_tissue_montage_draws_the_labels(head, tmp_path):
    with_dseg = _check_png(_plot(montage.plot_tissue_montage, head["brain"], head["dseg"], tmp_path / "t.png"))
    empty = _check_png(_plot(montage.plot_tissue_montage, head["brain"], head["empty_dseg"], tmp_path / "e.png"))
    assert _colored(with_dseg) > 20 * max(_colored(empty), 1)
    assert _colored(with_dseg) > 50_000


def test_registration_montage_draws_template_edges(template, tmp_path):
    moving = tmp_path / "moving.nii.gz"
    img = nib.load(template.t1w)
    shifted = np.roll(np.asarray(img.dataobj), 4, axis=0)  # 8 mm misregistration
    write_nifti(shifted, img.affine, moving, np.float32)
    rgb = _check_png(_plot(montage.plot_registration_montage, moving, template.t1w, tmp_path / "r.png"))
    assert _near(rgb, canvas.TEMPLATE_OUTLINE_COLOR) > 1500
    assert _near(rgb, canvas.TEMPLATE_EDGE_COLOR) > 1500
    # A binary template mask gives the outline only.
    rgb = _check_png(_plot(montage.plot_registration_montage, moving, template.mask, tmp_path / "m.png"))
    assert _near(rgb, canvas.TEMPLATE_OUTLINE_COLOR) > 1500


def _plot(fn, image, overlay, out: Path) -> Path:
    fn(str(image), overlay, out, title=f"sub-01 - {fn.__name__}")
    return out


def test_montage_rejects_bad_input(head, tmp_path):
    bad = head["dseg"].parent / "dseg_bad.nii.gz"
    img = nib.load(head["dseg"])
    data = np.asarray(img.dataobj).copy()
    data[0, 0, 0] = 7
    write_nifti(data, img.affine, bad, np.uint8)
    with pytest.raises(ValueError, match=r"\[7\]"):
        montage.plot_tissue_montage(head["brain"], bad, tmp_path / "t.png", "t")
    with pytest.raises(ValueError, match="png"):
        montage.plot_mask_montage(head["image"], head["mask"], tmp_path / "m.jpg", "t")
    with pytest.raises(FileNotFoundError, match="nope"):
        montage.plot_mask_montage(head["image"], tmp_path / "nope.nii.gz", tmp_path / "m.png", "t")


@pytest.mark.parametrize("codes", [("R", "A", "S"), ("L", "P", "S"), ("P", "S", "R")])
def test_display_orientation_follows_the_subject_not_the_file(tmp_path, codes):
    """A marker in the subject's left anterior brain shows left and up (axial) whatever the file order."""
    shape = (30, 36, 28)
    vol = np.zeros(shape, np.float32)
    vol[5:10, 26:32, 12:16] = 1.0  # RAS voxels: x small = left, y large = anterior
    ras = np.diag([2.0, 2.0, 2.0, 1.0])
    # Store it in the requested axis codes.
    ornt = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(("R", "A", "S")), nib.orientations.axcodes2ornt(codes)
    )
    img = nib.Nifti1Image(vol, ras).as_reoriented(ornt)
    assert nib.aff2axcodes(img.affine) == codes
    path = tmp_path / f"marker_{''.join(codes)}.nii.gz"
    nib.save(img, path)

    loaded = volumes.load(path, "image")
    crop = (np.zeros(3, int), np.array(shape) - 1)
    axial = display.display_slice(loaded.data, "axial", 14, crop)
    rows, cols = np.nonzero(axial)
    assert cols.max() < axial.shape[1] / 2, "subject's left must be on the left (neurological)"
    assert rows.min() > axial.shape[0] / 2, "anterior must be up in axial cuts"
    radio = display.display_slice(loaded.data, "axial", 14, crop, radiological=True)
    assert np.nonzero(radio)[1].min() > radio.shape[1] / 2
    sagittal = display.display_slice(loaded.data, "sagittal", 7, crop)
    rows, cols = np.nonzero(sagittal)
    assert cols.min() > sagittal.shape[1] / 2, "anterior must be right in sagittal cuts"
    coronal = display.display_slice(loaded.data, "coronal", 28, crop)
    assert np.nonzero(coronal)[1].max() < coronal.shape[1] / 2
    assert display.edge_letters("axial", False) == ("L", "R")
    assert display.edge_letters("axial", True) == ("R", "L")


def test_intensity_window_by_hand():
    """0.5th-99.5th percentile window, anchored at 0 for non-negative images, upper end from the region."""
    # 1..1000 in a 10 x 10 x 10 block: the 99.5th percentile (linear interpolation) is 995.005.
    ramp = np.arange(1, 1001, dtype=np.float32).reshape(10, 10, 10)
    vmin, vmax = display.intensity_window(ramp)
    assert vmin == 0.0  # non-negative: background stays black
    assert vmax == pytest.approx(1 + 0.995 * 999)
    # Upper end from the region only (values 1..100 in the first x-slab): 1 + 0.995 * 99.
    region = np.zeros(ramp.shape, bool)
    region[0] = True
    assert display.intensity_window(ramp, region)[1] == pytest.approx(1 + 0.995 * 99)
    # Signed image (z-scores): the lower end is the 0.5th percentile, not 0.
    signed = ramp - 500.5
    vmin, vmax = display.intensity_window(signed)
    assert vmin == pytest.approx(-499.5 + 0.005 * 999)
    assert vmax == pytest.approx(-499.5 + 0.995 * 999)
    # Zeros (background) are left out; a binary mask is shown 0..1; an empty image 0..1.
    padded = np.zeros((12, 12, 12), np.float32)
    padded[1:11, 1:11, 1:11] = signed
    assert display.intensity_window(padded) == pytest.approx(display.intensity_window(signed))
    assert display.intensity_window((ramp > 500).astype(np.float32)) == (0.0, 1.0)
    assert display.intensity_window(np.zeros((3, 3, 3))) == (0.0, 1.0)
    with pytest.raises(ValueError, match="region has shape"):
        display.intensity_window(ramp, np.ones((2, 2, 2), bool))


def test_display_slice_rejects_bad_view_and_index():
    volume = np.zeros((4, 5, 6))
    assert display.display_slice(volume, "axial", 5).shape == (5, 4)  # rows y (P -> A), columns x
    with pytest.raises(ValueError, match="view must be one of"):
        display.display_slice(volume, "oblique", 0)
    with pytest.raises(ValueError, match="outside 0..5 along axial"):
        display.display_slice(volume, "axial", 6)


def test_subject_metrics_on_a_hand_built_volume(tmp_path, template):
    # 2 x 2 x 3 mm voxels, x axis flipped (LAS): 12 mm3 per voxel whatever the sign.
    affine = np.diag([-2.0, 2.0, 3.0, 1.0])
    shape = (20, 20, 20)
    mask = np.zeros(shape, np.uint8)
    mask[5:15, 5:15, 5:15] = 1  # 1000 voxels -> 12 ml
    dseg = np.zeros(shape, np.uint8)
    dseg[5:15, 5:15, 5:10] = 1  # 500 GM
    dseg[5:15, 5:15, 10:13] = 2  # 300 WM
    dseg[5:15, 5:15, 13:15] = 3  # 200 CSF
    tmask = nib.load(template.mask)
    tbrain = np.asarray(tmask.dataobj) > 0
    half = tbrain.copy()
    xs = np.nonzero(tbrain)[0]
    half[: int(np.median(xs))] = False  # keep one side only: B is a subset of A
    t1 = nib.load(template.t1w)
    t1_data = np.asarray(t1.dataobj, np.float32)

    row = metrics.subject_metrics(
        "sub-01",
        write_nifti(mask, affine, tmp_path / "mask.nii.gz", np.uint8),
        str(write_nifti(dseg, affine, tmp_path / "dseg.nii.gz", np.uint8)),
        template.mask,
        {"syn": template.mask, "linear": write_nifti(half, tmask.affine, tmp_path / "half.nii.gz", np.uint8)},
        warped_images={
            "syn": template.t1w,
            "linear": write_nifti(2 * t1_data + 5, t1.affine, tmp_path / "scaled.nii.gz", np.float32),
            "none": write_nifti(-t1_data, t1.affine, tmp_path / "neg.nii.gz", np.float32),
        },
        template_image_path=template.t1w,
    )
    assert row["subject"] == "sub-01"
    assert row["brain_volume_ml"] == pytest.approx(1000 * 2 * 2 * 3 / 1000)
    assert row["gm_fraction"] == pytest.approx(0.5)
    assert row["wm_fraction"] == pytest.approx(0.3)
    assert row["csf_fraction"] == pytest.approx(0.2)
    assert row["dice_template_syn"] == pytest.approx(1.0)
    n_a, n_b = int(tbrain.sum()), int(half.sum())
    assert row["dice_template_linear"] == pytest.approx(2 * n_b / (n_a + n_b))
    assert row["ncc_template_syn"] == pytest.approx(1.0)
    assert row["ncc_template_linear"] == pytest.approx(1.0)  # invariant to gain and offset
    assert row["ncc_template_none"] == pytest.approx(-1.0)


def test_subject_metrics_rejects_bad_input(tmp_path, template):
    affine = np.eye(4)
    mask = write_nifti(np.ones((4, 4, 4)), affine, tmp_path / "mask.nii.gz", np.uint8)
    small = write_nifti(np.ones((4, 4, 3)), affine, tmp_path / "small.nii.gz", np.uint8)
    bad = write_nifti(np.full((4, 4, 4), 5), affine, tmp_path / "bad.nii.gz", np.uint8)
    with pytest.raises(ValueError, match="shape"):
        metrics.subject_metrics("sub-01", mask, small, template.mask, {})
    with pytest.raises(ValueError, match=r"\[5\]"):
        metrics.subject_metrics("sub-01", mask, bad, template.mask, {})
    with pytest.raises(ValueError, match="template grid"):
        metrics.subject_metrics("sub-01", mask, mask, template.mask, {"syn": mask})
    with pytest.raises(ValueError, match="template_image_path"):
        metrics.subject_metrics("sub-01", mask, mask, template.mask, {}, warped_images={"syn": template.t1w})
    with pytest.raises(ValueError, match="unit"):
        metrics.subject_metrics("", mask, mask, template.mask, {})


def _independent_robust_z(x: np.ndarray) -> np.ndarray:
    return (x - np.median(x)) / stats.median_abs_deviation(x, scale="normal")


def test_summarize_group_flags_the_planted_outlier_only(tmp_path):
    # 20 subjects "drawn normally" without luck: normal quantiles, shuffled independently per metric.
    rng = np.random.default_rng(2024)
    n = 20
    quantiles = stats.norm.ppf((np.arange(n) + 0.5) / n)
    centre_sd = {
        "brain_volume_ml": (1400, 100),
        "gm_fraction": (0.45, 0.02),
        "wm_fraction": (0.38, 0.02),
        "csf_fraction": (0.17, 0.02),
        "dice_template_syn": (0.96, 0.005),
    }
    metrics = {m: mu + sd * rng.permutation(quantiles) for m, (mu, sd) in centre_sd.items()}
    for values in metrics.values():  # the premise: nobody drawn normally is beyond the cut-off
        assert np.all(np.abs(_independent_robust_z(values)) <= 3)
    metrics["brain_volume_ml"][7] /= 2  # the planted outlier: half the brain
    rows = [{"subject": f"sub-{i:02d}", **{m: float(v[i]) for m, v in metrics.items()}} for i in range(n)]

    df = group.summarize_group(rows, 3.0, tmp_path / "qc.tsv", tmp_path / "qc.png")

    assert list(df["subject"]) == [r["subject"] for r in rows]
    for m, values in metrics.items():
        np.testing.assert_allclose(df[f"z_{m}"], _independent_robust_z(values), rtol=1e-9)
    assert df.loc[df["outlier"], "subject"].tolist() == ["sub-07"]
    assert df.loc[7, "flags"] == "brain_volume_ml"
    assert (df.loc[df["subject"] != "sub-07", "flags"] == "").all()
    back = pd.read_csv(tmp_path / "qc.tsv", sep="\t", keep_default_na=False)
    assert back["subject"].tolist() == df["subject"].tolist()
    assert back["outlier"].tolist() == df["outlier"].tolist()
    np.testing.assert_allclose(back["brain_volume_ml"], df["brain_volume_ml"], rtol=1e-5)
    assert _check_png(tmp_path / "qc.png").shape[1] == 1400


def test_robust_z_edge_cases(tmp_path):
    # MAD = 0: the mean absolute deviation stands in (0.1 / 5 = 0.02, times sqrt(pi/2)).
    z = group.robust_z([1.0, 1.0, 1.0, 1.0, 0.9])
    assert z[-1] == pytest.approx(-0.1 / (0.02 * np.sqrt(np.pi / 2)))
    assert np.all(group.robust_z([2.0, 2.0, 2.0]) == 0)
    z = group.robust_z([1.0, np.nan, 3.0])
    assert np.isnan(z[1]) and np.isfinite(z[[0, 2]]).all()
    rows = [{"subject": f"s{i}", "dice": 1.0} for i in range(5)] + [{"subject": "s5"}]
    df = group.summarize_group(rows, 3.0, tmp_path / "t.tsv", tmp_path / "t.png")
    assert not df["outlier"].any()
    assert "n/a" in (tmp_path / "t.tsv").read_text()


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "3"])
def test_summarize_group_rejects_bad_threshold(tmp_path, bad):
    with pytest.raises(ValueError, match="outlier_z"):
        group.summarize_group([{"subject": "a", "x": 1.0}], bad, tmp_path / "t.tsv", tmp_path / "t.png")


def test_summarize_group_rejects_bad_rows(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        group.summarize_group([], 3.0, tmp_path / "t.tsv", tmp_path / "t.png")
    with pytest.raises(ValueError, match="sub-01"):
        group.summarize_group([{"subject": "sub-01", "x": 1.0}] * 2, 3.0, tmp_path / "t.tsv", tmp_path / "t.png")
    with pytest.raises(ValueError, match="subject"):
        group.summarize_group([{"x": 1.0}], 3.0, tmp_path / "t.tsv", tmp_path / "t.png")


@pytest.mark.shared
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared IXI sample not found at {SHARED}")
def test_ixi_subject_mask_montage_and_volume(tmp_path):
    """On a real head (PSR on disk) with the DLMUSE labels as intracranial mask."""
    t1 = SHARED / IXI_SUBJECT / "anat" / f"{IXI_SUBJECT}_T1w.nii.gz"
    seg = SHARED / "derivatives" / "dlmuse" / IXI_SUBJECT / "anat" / f"{IXI_SUBJECT}_seg-dlmuse_dseg.nii.gz"
    img = nib.load(seg)
    mask = write_nifti(np.asarray(img.dataobj) > 0, img.affine, tmp_path / "mask.nii.gz", np.uint8)
    out = tmp_path / "mask.png"
    montage.plot_mask_montage(t1, mask, out, f"{IXI_SUBJECT} - skull strip")
    rgb = _check_png(out)
    assert _near(rgb, canvas.MASK_COLOR) > 1500
    dseg = write_nifti((np.asarray(img.dataobj) > 0).astype(np.uint8), img.affine, tmp_path / "dseg.nii.gz", np.uint8)
    tpl = prepare_template(tmp_path / "tpl", 2)
    row = metrics.subject_metrics(IXI_SUBJECT, mask, dseg, tpl.mask, {})
    assert 1000 < row["brain_volume_ml"] < 2200  # adult intracranial volume
