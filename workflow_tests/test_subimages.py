"""The 2D subimage sets pp1..pp5 on synthetic phantoms with known geometry."""

from __future__ import annotations

import math
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mrixai.learn.subimages import (
    SETS,
    aggregate_slices,
    balance_rows,
    build_subimage_store,
    extract_subimages,
    select_slices,
)

GM, WM, CSF = 1, 2, 3


def ellipsoid_phantom(
    shape=(80, 96, 60), centre=(40, 48, 34), axes=(30, 36, 20), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A WM ellipsoid in a GM shell in a CSF rim; the largest axial slice is ``centre[2]``."""
    grid = np.indices(shape, dtype=np.float64)
    d = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, axes)))
    dseg = np.zeros(shape, dtype=np.int16)
    dseg[d <= 1.0] = CSF
    dseg[d <= 0.92] = GM
    dseg[d <= 0.78] = WM
    level = np.array([0.0, 0.6, 1.0, 0.25])
    noise = np.random.default_rng(seed).normal(0, 0.03, shape)
    image = np.where(dseg > 0, level[dseg] + noise, 0.0).astype(np.float32)
    return image, dseg


def disc_phantom(radius: float = 30.0, centre=(47.3, 48.6), shape=(96, 96, 3)) -> tuple[np.ndarray, np.ndarray]:
    """A single non-empty axial slice (index 1) holding a disc of WM."""
    x, y = np.indices(shape[:2], dtype=np.float64)
    disc = np.hypot(x - centre[0], y - centre[1]) <= radius
    dseg = np.zeros(shape, dtype=np.int16)
    dseg[:, :, 1][disc] = WM
    image = np.where(dseg > 0, 1.0, 0.0).astype(np.float32)
    return image, dseg


def padded_crop(volume: np.ndarray, k: int, x: int, y: int, size: int) -> np.ndarray:
    """The size x size square of slice k whose centre voxel is (x, y), zeros outside the volume."""
    plane = np.pad(volume[:, :, k], size)
    x0, y0 = x - size // 2 + size, y - size // 2 + size
    return plane[x0 : x0 + size, y0 : y0 + size]


@pytest.fixture(scope="module")
def phantom() -> tuple[np.ndarray, np.ndarray]:
    return ellipsoid_phantom()


@pytest.fixture(scope="module")
def extracted(phantom):
    image, dseg = phantom
    return extract_subimages(image, dseg, size=16, extent=10, step=2, n_angles=12, rng=np.random.default_rng(3))


# --- slice selection -------------------------------------------------------------------------


def test_select_slices_goes_down_from_the_largest_slice(phantom):
    _, dseg = phantom
    mask = dseg > 0
    assert select_slices(mask, extent=10) == [34, 32, 30, 28, 26]
    assert select_slices(mask, extent=9, step=2) == [34, 32, 30, 28, 26]
    assert select_slices(mask, extent=7, step=3) == [34, 31, 28]
    assert select_slices(mask, extent=1, step=5) == [34]


def test_select_slices_drops_out_of_range_and_empty_slices():
    _, low = ellipsoid_phantom(shape=(40, 40, 20), centre=(20, 20, 3), axes=(10, 10, 8))
    assert select_slices(low > 0, extent=10, step=2) == [3, 1]
    _, dseg = ellipsoid_phantom()
    mask = dseg > 0
    mask[:, :, 30] = False
    assert select_slices(mask, extent=10, step=2) == [34, 32, 28, 26]
    assert select_slices(np.zeros((5, 5, 5), bool), extent=3) == []


# --- geometry ----------------------------------------------------------------------------------


def test_angles_are_evenly_spread_from_a_random_start_per_slice(extracted):
    _, index = extracted
    assert sorted(index["slice"].unique(), reverse=True) == [34, 32, 30, 28, 26]
    starts = []
    for _, rows in index.groupby("slice"):
        angles = np.sort(rows["angle"].to_numpy())
        assert len(angles) == 12 and len(np.unique(angles)) == 12
        gaps = np.diff(np.append(angles, angles[0] + 360.0))
        np.testing.assert_allclose(gaps, 30.0, atol=1e-9)
        assert ((angles >= 0) & (angles < 360)).all()
        starts.append(angles[0])
    assert len(np.unique(np.round(starts, 6))) == len(starts)


def test_boundary_and_peripheral_square_split_the_ray_two_to_one():
    radius, size = 30.0, 24
    image, dseg = disc_phantom(radius)
    mask = dseg[:, :, 1] > 0
    expected_centre = np.argwhere(mask).mean(axis=0)
    in_runs, out_runs = [], []
    for seed in range(5):
        rng = np.random.default_rng(seed)
        sets, index = extract_subimages(image, dseg, size=size, extent=1, n_angles=12, rng=rng)
        assert (index["slice"] == 1).all() and len(index) == 12
        np.testing.assert_allclose(index[["centre_x", "centre_y"]].to_numpy(), [expected_centre] * 12)
        # The outer boundary of a disc lies at its radius from (about) its centre.
        assert np.abs(index["r_boundary"] - radius).max() < 1.0
        for rec in index.itertuples():
            d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
            # Along the ray through the square's centre, over the square's extent (size/2 either side).
            t = np.arange(-size / 2 + 0.125, size / 2, 0.25)
            px = np.floor(rec.x + t * d[0] + 0.5).astype(int)
            py = np.floor(rec.y + t * d[1] + 0.5).astype(int)
            ok = (px >= 0) & (px < mask.shape[0]) & (py >= 0) & (py < mask.shape[1])
            inside = np.zeros(t.shape, bool)
            inside[ok] = mask[px[ok], py[ok]]
            # Inside comes first (towards the centre), then outside: one run each.
            assert np.count_nonzero(np.diff(inside.astype(int))) == 1
            in_runs.append(0.25 * inside.sum())
            out_runs.append(0.25 * (~inside).sum())
            np.testing.assert_array_equal(sets["pp2"][rec.Index], padded_crop(image, 1, rec.x, rec.y, size))
    in_runs, out_runs = np.array(in_runs), np.array(out_runs)
    np.testing.assert_allclose(in_runs + out_runs, size)
    dev = in_runs - 2 * size / 3
    # Error budget per ray: rounding the centre to a voxel (<= sqrt(2)/2 along the ray), the
    # 0.25-voxel boundary search and the pixel staircase of the disc; nearly always within a voxel.
    assert np.abs(dev).max() <= 1.5
    assert np.mean(np.abs(dev) <= 1.0) >= 0.95
    assert np.abs(dev).mean() < 0.5 and abs(dev.mean()) < 0.25
    assert abs(in_runs.mean() / out_runs.mean() - 2.0) < 0.1


def test_boundary_is_where_the_ray_leaves_the_mask_for_the_last_time():
    # A disc of radius 12 inside a ring 20..30: every ray leaves the mask at 12, re-enters at 20
    # and leaves for good at 30.
    shape = (96, 96, 1)
    x, y = np.indices(shape[:2], dtype=np.float64)
    r = np.hypot(x - 48, y - 48)
    dseg = np.zeros(shape, dtype=np.int16)
    dseg[:, :, 0][(r <= 12) | ((r >= 20) & (r <= 30))] = GM
    image = (dseg > 0).astype(np.float32)
    _, index = extract_subimages(image, dseg, size=12, extent=1, rng=np.random.default_rng(0))
    np.testing.assert_allclose(index[["centre_x", "centre_y"]].to_numpy(), [[48.0, 48.0]] * 12)
    assert np.abs(index["r_boundary"] - 30.0).max() < 1.0


def test_inner_and_peripheral_squares_lie_on_the_same_ray(phantom, extracted):
    image, _ = phantom
    sets, index = extracted
    size = 16
    for rec in index.itertuples():
        d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
        c = np.array([rec.centre_x, rec.centre_y])
        periph = c + (rec.r_boundary - size / 6) * d
        inner = c + max(0.0, rec.r_boundary - 2 * size / 3) * d
        assert np.abs(periph - [rec.x, rec.y]).max() <= 0.5
        assert np.abs(inner - [rec.x_inner, rec.y_inner]).max() <= 0.5
        inner_crop = padded_crop(image, rec.slice, rec.x_inner, rec.y_inner, size)
        np.testing.assert_array_equal(sets["pp1"][rec.Index], inner_crop)
        np.testing.assert_array_equal(sets["pp2"][rec.Index], padded_crop(image, rec.slice, rec.x, rec.y, size))


def test_inner_squares_hold_more_brain_than_peripheral_ones(phantom, extracted):
    _, dseg = phantom
    _, index = extracted
    own_inner = [(padded_crop(dseg, r.slice, r.x_inner, r.y_inner, 16) > 0).mean() for r in index.itertuples()]
    own_periph = [(padded_crop(dseg, r.slice, r.x, r.y, 16) > 0).mean() for r in index.itertuples()]
    np.testing.assert_allclose(index["brain_fraction_inner"], own_inner)
    np.testing.assert_allclose(index["brain_fraction_peripheral"], own_periph)
    assert np.mean(own_inner) > 0.95
    assert 0.55 < np.mean(own_periph) < 0.8
    assert np.mean(own_inner) > np.mean(own_periph)


# --- ablated sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("name, keep", [("pp3", (GM, WM)), ("pp4", (GM,)), ("pp5", (WM,))])
def test_ablated_sets_keep_their_tissue_and_fill_the_rest_with_matched_noise(phantom, extracted, name, keep):
    _, dseg = phantom
    sets, index = extracted
    assert set(sets) == set(SETS)
    for s in SETS:
        assert sets[s].dtype == np.float32 and sets[s].shape == (len(index), 16, 16)
    pp2, ablated = sets["pp2"].astype(np.float64), sets[name].astype(np.float64)
    seg = np.stack([padded_crop(dseg, r.slice, r.x, r.y, 16) for r in index.itertuples()])
    kept = np.isin(seg, keep)
    assert kept.any() and (~kept).any()
    np.testing.assert_array_equal(ablated[kept], pp2[kept])
    mean = pp2.mean(axis=(1, 2), keepdims=True)
    std = pp2.std(axis=(1, 2), keepdims=True)
    z = ((ablated - mean) / std)[~kept]
    assert z.size > 5000
    assert abs(z.mean()) < 0.05
    assert abs(z.std() - 1.0) < 0.05
    # The noise replaces the original values rather than perturbing them.
    assert np.mean(ablated[~kept] != pp2[~kept]) > 0.99


def test_extraction_is_deterministic_for_a_seed(phantom):
    image, dseg = phantom
    kw = dict(size=8, extent=4, step=2, n_angles=6)
    a_sets, a_index = extract_subimages(image, dseg, rng=np.random.default_rng(11), **kw)
    b_sets, b_index = extract_subimages(image, dseg, rng=np.random.default_rng(11), **kw)
    c_sets, c_index = extract_subimages(image, dseg, rng=np.random.default_rng(12), **kw)
    pd.testing.assert_frame_equal(a_index, b_index)
    for s in SETS:
        np.testing.assert_array_equal(a_sets[s], b_sets[s])
    assert not np.allclose(a_index["angle"], c_index["angle"])
    assert not np.array_equal(a_sets["pp3"], c_sets["pp3"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(size=0), "size must be an integer >= 1, got 0"),
        (dict(size=-4), "got -4"),
        (dict(extent=0), "extent must be an integer >= 1, got 0"),
        (dict(step=0), "step must be an integer >= 1, got 0"),
        (dict(n_angles=0), "n_angles must be an integer >= 1, got 0"),
        (dict(rng=42), "rng must be a numpy.random.Generator, got int"),
    ],
)
def test_extract_rejects_bad_arguments(kwargs, message):
    image, dseg = disc_phantom()
    args = dict(size=8, extent=1, step=2, n_angles=4, rng=np.random.default_rng(0)) | kwargs
    with pytest.raises(ValueError, match=message):
        extract_subimages(image, dseg, **args)


def test_extract_rejects_bad_inputs():
    image, dseg = disc_phantom()
    kw = dict(size=8, extent=1, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dseg shape \(96, 96, 2\) does not match image shape \(96, 96, 3\)"):
        extract_subimages(image, dseg[:, :, :2], **kw)
    with pytest.raises(ValueError, match=r"image must be a 3D array, got shape \(96, 96\)"):
        extract_subimages(image[:, :, 1], dseg[:, :, 1], **kw)
    bad = dseg.copy()
    bad[0, 0, 0] = 7
    with pytest.raises(ValueError, match="got range 0..7"):
        extract_subimages(image, bad, **kw)
    with pytest.raises(ValueError, match="extent must be an integer >= 1, got 0"):
        select_slices(dseg > 0, extent=0)
    with pytest.raises(ValueError, match=r"got shape \(96, 96\)"):
        select_slices(dseg[:, :, 1] > 0, extent=2)


def test_extract_from_an_empty_mask_gives_empty_sets():
    image = np.zeros((10, 10, 4), np.float32)
    dseg = np.zeros((10, 10, 4), int)
    sets, index = extract_subimages(image, dseg, size=4, extent=2, rng=np.random.default_rng(0))
    assert len(index) == 0 and "slice" in index.columns
    assert all(sets[s].shape == (0, 4, 4) for s in SETS)


# --- training balance ----------------------------------------------------------------------------


def test_balance_rows_repeats_the_minority_up_to_equal_counts():
    groups = ["a"] * 10 + ["b"] * 3
    rows = balance_rows(groups, rng=np.random.default_rng(0))
    assert (np.diff(rows) >= 0).all()
    labels = np.array(groups)[rows]
    assert (labels == "a").sum() == 10 and (labels == "b").sum() == 10
    copies = np.bincount(rows, minlength=len(groups))
    assert (copies[:10] == 1).all()
    # 10 = 3 whole copies of 3 rows + 1 more row drawn.
    assert sorted(copies[10:]) == [3, 3, 4]
    np.testing.assert_array_equal(rows, balance_rows(groups, rng=np.random.default_rng(0)))
    np.testing.assert_array_equal(balance_rows(groups), balance_rows(groups))


def test_balance_rows_caps_repeats_and_handles_several_groups():
    groups = [1] * 20 + [0] * 3
    rows = balance_rows(groups, max_repeat=4)
    copies = np.bincount(rows, minlength=len(groups))
    assert (copies[:20] == 1).all() and (copies[20:] == 4).all()
    assert len(rows) == 32
    rows = balance_rows(["x"] * 6 + ["y"] * 4 + ["z"] * 6 + ["y"], max_repeat=2)
    labels = np.array(["x"] * 6 + ["y"] * 4 + ["z"] * 6 + ["y"])[rows]
    assert {g: int((labels == g).sum()) for g in "xyz"} == {"x": 6, "y": 6, "z": 6}
    assert np.bincount(rows).max() <= 2
    np.testing.assert_array_equal(balance_rows([5, 5, 5]), [0, 1, 2])
    assert balance_rows([]).size == 0


def test_balance_rows_rejects_bad_arguments():
    with pytest.raises(ValueError, match="max_repeat must be an integer >= 1, got 0"):
        balance_rows(["a", "b"], max_repeat=0)
    with pytest.raises(ValueError, match="missing labels at rows \\[1\\]"):
        balance_rows(["a", None, "b"])


# --- aggregation ---------------------------------------------------------------------------------


def votes(subject: str, slice_: int, n_correct: int, n: int = 12) -> pd.DataFrame:
    correct = [True] * n_correct + [False] * (n - n_correct)
    return pd.DataFrame({"subject": subject, "slice": slice_, "correct": correct})


def test_aggregate_slices_majority_vote_with_ties_wrong():
    df = pd.concat([
        votes("s1", 10, 6),   # 6:6 tie -> wrong
        votes("s1", 8, 7),    # 7:5 -> correct
        votes("s1", 6, 12),   # correct
        votes("s2", 10, 3),   # wrong
        votes("s2", 8, 0),    # wrong
        votes("s3", 10, 1, n=1),  # single subimage, correct
    ]).sample(frac=1.0, random_state=0)
    out = aggregate_slices(df)
    assert list(out.columns) == ["subject", "n_slices", "n_correct_slices", "fraction_correct"]
    assert out["subject"].tolist() == ["s1", "s2", "s3"]
    assert out["n_slices"].tolist() == [3, 2, 1]
    assert out["n_correct_slices"].tolist() == [2, 0, 1]
    np.testing.assert_allclose(out["fraction_correct"], [2 / 3, 0.0, 1.0])


def test_aggregate_slices_rejects_bad_tables():
    with pytest.raises(ValueError, match=r"missing \['slice'\]"):
        aggregate_slices(pd.DataFrame({"subject": ["a"], "correct": [True]}))
    with pytest.raises(ValueError, match="must be boolean"):
        aggregate_slices(pd.DataFrame({"subject": ["a"], "slice": [1], "correct": ["yes"]}))


# --- store ---------------------------------------------------------------------------------------


def write_nifti(data: np.ndarray, path: Path, flip_x: bool = False) -> Path:
    """Save in RAS, or in LAS (axis 0 reversed, affine to match) to exercise reorientation."""
    affine = np.eye(4)
    if flip_x:
        data = data[::-1]
        affine = np.diag([-1.0, 1.0, 1.0, 1.0])
        affine[0, 3] = data.shape[0] - 1
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data), affine), path)
    return path


@pytest.fixture
def tiny_cohort(tmp_path) -> dict:
    shape = (40, 48, 30)
    volumes = [
        ellipsoid_phantom(shape, centre=(20, 24, 16), axes=(14, 17, 10), seed=1),
        ellipsoid_phantom(shape, centre=(19, 25, 12), axes=(12, 15, 9), seed=2),
    ]
    images, dsegs = [], []
    for i, (image, dseg) in enumerate(volumes):
        images.append(write_nifti(image, tmp_path / f"sub-{i}_T1w.nii.gz", flip_x=i == 1))
        dsegs.append(write_nifti(dseg, tmp_path / f"sub-{i}_dseg.nii.gz", flip_x=i == 1))
    return {"subjects": ["01", "02"], "images": images, "dsegs": dsegs, "volumes": volumes}


def test_build_subimage_store_round_trip(tmp_path, tiny_cohort):
    out = tmp_path / "store"
    out.mkdir()
    (out / "old.txt").write_text("from an earlier run")
    stale = tmp_path / ".store.partial"
    stale.mkdir()
    (stale / "junk.npy").write_text("half written")
    kw = dict(size=8, extent=4, step=2, n_angles=4)
    build_subimage_store(tiny_cohort["subjects"], tiny_cohort["images"], tiny_cohort["dsegs"], out, seed=5, **kw)

    assert not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert sorted(p.name for p in out.iterdir()) == ["index.tsv"] + [f"set-{s}.npy" for s in SETS]
    index = pd.read_csv(out / "index.tsv", sep="\t", dtype={"subject": str})
    assert list(index.columns)[:8] == [
        "row", "subject", "slice", "angle", "x", "y", "brain_fraction_inner", "brain_fraction_peripheral"
    ]
    assert index["row"].tolist() == list(range(len(index)))
    # Two slices (k0, k0 - 2) x 4 angles per subject.
    assert index.groupby("subject").size().to_dict() == {"01": 8, "02": 8}
    expected = {s: [] for s in SETS}
    for i, (image, dseg) in enumerate(tiny_cohort["volumes"]):
        # The store z-scores each image inside its brain (dseg > 0) before cutting.
        brain = dseg > 0
        z = np.zeros(image.shape, np.float32)
        z[brain] = (image[brain] - image[brain].mean()) / image[brain].std()
        sets, rows = extract_subimages(z, dseg, rng=np.random.default_rng([5, i]), **kw)
        part = index[index["subject"] == tiny_cohort["subjects"][i]].reset_index(drop=True)
        np.testing.assert_array_equal(part["slice"], rows["slice"])
        np.testing.assert_allclose(part["angle"], rows["angle"])
        np.testing.assert_array_equal(part[["x", "y"]], rows[["x", "y"]])
        np.testing.assert_allclose(part["brain_fraction_inner"], rows["brain_fraction_inner"])
        for s in SETS:
            expected[s].append(sets[s])
    for s in SETS:
        stored = np.load(out / f"set-{s}.npy", mmap_mode="r")
        assert stored.dtype == np.float32 and stored.shape == (16, 8, 8)
        np.testing.assert_allclose(stored, np.concatenate(expected[s]), rtol=1e-5, atol=1e-5)


def test_build_subimage_store_failure_leaves_the_old_store(tmp_path, tiny_cohort):
    out = tmp_path / "store"
    out.mkdir()
    (out / "old.txt").write_text("keep me")
    wrong = write_nifti(np.zeros((40, 48, 29), np.float32), tmp_path / "wrong.nii.gz")
    with pytest.raises(ValueError, match="does not match image shape"):
        build_subimage_store(
            tiny_cohort["subjects"], [tiny_cohort["images"][0], wrong], tiny_cohort["dsegs"], out,
            size=8, extent=4, step=2, n_angles=4, seed=5,
        )
    assert (out / "old.txt").read_text() == "keep me"
    assert not (tmp_path / ".store.partial").exists()


def test_build_subimage_store_rejects_bad_arguments(tmp_path, tiny_cohort):
    kw = dict(size=8, extent=4, step=2, n_angles=4, seed=5)
    subjects, images, dsegs = tiny_cohort["subjects"], tiny_cohort["images"], tiny_cohort["dsegs"]
    with pytest.raises(ValueError, match="got 2 subjects, 1 images and 2 dsegs"):
        build_subimage_store(subjects, images[:1], dsegs, tmp_path / "s", **kw)
    with pytest.raises(ValueError, match="size must be an integer >= 1, got 0"):
        build_subimage_store(subjects, images, dsegs, tmp_path / "s", **(kw | {"size": 0}))
    with pytest.raises(ValueError, match="subjects must be unique"):
        build_subimage_store(["01", "01"], images, dsegs, tmp_path / "s", **kw)
    assert not (tmp_path / "s").exists()
