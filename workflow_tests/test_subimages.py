"""The 2D subimage sets pp1..pp5 on synthetic phantoms with known geometry: the properties the
tissue ablation study (Tachibana et al.) states, checked geometrically and statistically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from helpers import write_nifti
from mrixai.learn.subimages import (
    SETS,
    aggregate_slices,
    balance_rows,
    build_subimage_store,
    extract_subimages,
    matched_noise_fill,
    normalise_head,
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


def padded_crop(volume: np.ndarray, k: int, x: int, y: int, size: int, fill=0) -> np.ndarray:
    """The size x size square of slice k whose centre voxel is (x, y), ``fill`` outside the volume."""
    plane = np.pad(volume[:, :, k], size, constant_values=fill)
    x0, y0 = x - size // 2 + size, y - size // 2 + size
    return plane[x0 : x0 + size, y0 : y0 + size]


# A whole head: concentric ellipsoidal shells, each with its own label and intensity (T1w-like:
# WM bright, GM mid, CSF dark, compact bone of the skull darkest, scalp fat bright, air 0).
HEAD_LABELS = {"WM": 2, "GM": 1, "CSF": 3, "skull": 4, "scalp": 5}
HEAD_LEVELS = {0: 0.0, 1: 0.6, 2: 1.0, 3: 0.25, 4: 0.08, 5: 0.85}
HEAD_SHELLS = (("scalp", 1.0), ("skull", 0.88), ("CSF", 0.8), ("GM", 0.75), ("WM", 0.55))


def head_phantom(
    shape=(128, 128, 12), centre=(63.4, 64.7, 5.0), axes=(58.0, 54.0, 30.0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image, dseg, truth): the head image, the brain-only tissue map the pipeline has (skull,
    scalp and air are 0 there) and the full truth labels (4 = skull, 5 = scalp)."""
    grid = np.indices(shape, dtype=np.float64)
    d = np.sqrt(sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, axes)))
    truth = np.zeros(shape, dtype=np.int16)
    for name, radius in HEAD_SHELLS:
        truth[d <= radius] = HEAD_LABELS[name]
    image = np.vectorize(HEAD_LEVELS.get)(truth).astype(np.float32)
    dseg = np.where(truth <= CSF, truth, 0).astype(np.int16)
    return image, dseg, truth


def square_mask(shape: tuple[int, int], x: int, y: int, size: int) -> np.ndarray:
    """The voxels of the size x size crop whose centre voxel is (x, y), painted on a larger canvas."""
    mask = np.zeros(shape, dtype=bool)
    mask[x - size // 2 : x - size // 2 + size, y - size // 2 : y - size // 2 + size] = True
    return mask


def chord(x: int, y: int, size: int, origin: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Where the line origin + t d enters and leaves the crop centred on voxel (x, y) (slab method);
    the crop covers [x - size//2 - 0.5, x - size//2 + size - 0.5] in continuous voxel coordinates."""
    lo = np.array([x, y], float) - size // 2 - 0.5
    hi = lo + size
    with np.errstate(divide="ignore"):
        t1, t2 = (lo - origin) / d, (hi - origin) / d
    t_in, t_out = np.max(np.minimum(t1, t2)), np.min(np.maximum(t1, t2))
    assert t_in < t_out, "the ray misses the square"
    return float(t_in), float(t_out)


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


@pytest.fixture(scope="module")
def head():
    return head_phantom()


@pytest.fixture(scope="module")
def head_extracted(head):
    image, dseg, _ = head
    # 3 slices x 12 angles; squares of 24 voxels reach 8-11 voxels past the brain along the ray.
    return extract_subimages(image, dseg, size=24, extent=6, step=2, n_angles=12, rng=np.random.default_rng(5))


def test_peripheral_squares_split_the_ray_two_to_one_between_parenchyma_and_the_rest():
    # A disc of parenchyma (WM) of known radius and centre: along the ray from the centre, the
    # line crosses the peripheral square over a chord whose parts inside and outside the disc
    # follow from the square's position alone (no sampling of the implementation's mask).
    radius, size, centre = 50.0, 30, np.array([79.3, 80.6])
    image, dseg = disc_phantom(radius, centre=tuple(centre), shape=(160, 160, 3))
    inside, outside = [], []
    for seed in range(5):
        _, index = extract_subimages(image, dseg, size=size, extent=1, n_angles=12, rng=np.random.default_rng(seed))
        assert len(index) == 12
        for rec in index.itertuples():
            d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
            t_in, t_out = chord(rec.x, rec.y, size, centre, d)
            inside.append(radius - t_in)
            outside.append(t_out - radius)
    inside, outside = np.array(inside), np.array(outside)
    assert (inside > 0).all() and (outside > 0).all()  # every chord crosses the boundary
    # Error budget per ray, in voxels: the boundary found on the pixelated disc with a 0.25-voxel
    # search (<= 0.625), the square's centre rounded to a voxel, which moves where the line
    # enters the square by <= 0.5 / cos(45 deg) = 0.71 and, cutting a corner, shortens the chord
    # by <= 2 * 0.71 (two thirds of which count): <= 2.3 in all, on chords of 30-42 voxels.
    error = inside - 2 / 3 * (inside + outside)
    assert np.abs(error).max() <= 2.3
    assert np.abs(error).mean() < 1.0 and abs(error.mean()) < 0.3
    assert abs(inside.sum() / outside.sum() - 2.0) < 0.04


def test_the_two_to_one_split_holds_on_a_head_with_skull_and_scalp(head, head_extracted):
    # Along the chord of each peripheral square, sampled finely on the truth labels: GM or WM
    # for two thirds of it, CSF, skull, scalp or air for one third.
    _, _, truth = head
    _, index = head_extracted
    size = 24
    fractions = []
    for rec in index.itertuples():
        c = np.array([rec.centre_x, rec.centre_y])
        d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
        t_in, t_out = chord(rec.x, rec.y, size, c, d)
        t = np.linspace(t_in, t_out, 2001)[1:-1]
        px = np.floor(c[0] + t * d[0] + 0.5).astype(int)
        py = np.floor(c[1] + t * d[1] + 0.5).astype(int)
        labels = truth[px, py, rec.slice]
        fractions.append(np.isin(labels, (GM, WM)).mean())
    fractions = np.array(fractions)
    assert np.abs(fractions - 2 / 3).max() < 0.06
    assert abs(fractions.mean() - 2 / 3) < 0.015


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


def test_the_boundary_is_the_parenchyma_not_the_csf_around_it(head, head_extracted):
    # The head's GM ends at 0.75 of its semi-axes, the CSF under the skull at 0.8: the squares
    # are placed on the parenchyma's edge.
    _, index = head_extracted
    (cx, cy, cz), (a, b, c) = (63.4, 64.7, 5.0), (58.0, 54.0, 30.0)
    for rec in index.itertuples():
        d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
        # In slice z the GM's edge is the ellipse (x/a)^2 + (y/b)^2 = s^2, s^2 = 0.75^2 - ((z - cz)/c)^2;
        # the ray starts at the (pixelated) region's centroid, within a voxel of the true centre.
        s = math.sqrt(0.75**2 - ((rec.slice - cz) / c) ** 2)
        origin = np.array([rec.centre_x, rec.centre_y])
        assert np.abs(origin - [cx, cy]).max() < 0.5
        # distance t from the true centre along d: (t d_x / a)^2 + (t d_y / b)^2 = s^2
        gm_edge = s / math.sqrt((d[0] / a) ** 2 + (d[1] / b) ** 2)
        assert abs(rec.r_boundary - gm_edge) < 1.25
        # ... and not at the CSF's outer edge, 0.05 of the semi-axes (about 3 voxels) further out
        assert rec.r_boundary < gm_edge * (0.8 / 0.75) - 1.5


@pytest.mark.parametrize("source", ["ellipsoid", "head"])
def test_inner_squares_are_adjacent_to_the_peripheral_ones_on_the_same_ray(
    source, phantom, extracted, head, head_extracted
):
    image = phantom[0] if source == "ellipsoid" else head[0]
    sets, index = extracted if source == "ellipsoid" else head_extracted
    size = sets["pp2"].shape[1]
    canvas = tuple(n + 4 * size for n in image.shape[:2])
    touching_edge = 0
    for rec in index.itertuples():
        shift = 2 * size  # keep every square on the canvas
        periph = square_mask(canvas, rec.x + shift, rec.y + shift, size)
        inner = square_mask(canvas, rec.x_inner + shift, rec.y_inner + shift, size)
        assert not (periph & inner).any(), f"squares overlap at angle {rec.angle}"
        # They touch: the inner square grown by one voxel (8-neighbourhood) meets the peripheral one.
        assert (ndimage.binary_dilation(inner, np.ones((3, 3), bool)) & periph).any(), rec.angle
        # ... along an edge (4-neighbourhood), except near the diagonals where they may meet at a corner.
        if (ndimage.binary_dilation(inner) & periph).any():
            touching_edge += 1
        else:
            assert abs((rec.angle % 90) - 45) < 45 / size * 2, rec.angle
        # Both on the ray from the centre, the inner one nearer the centre.
        c = np.array([rec.centre_x, rec.centre_y])
        d = np.array([math.cos(math.radians(rec.angle)), math.sin(math.radians(rec.angle))])
        normal = np.array([-d[1], d[0]])
        p, q = np.array([rec.x, rec.y]) - c, np.array([rec.x_inner, rec.y_inner]) - c
        assert abs(p @ normal) <= math.sqrt(0.5) + 1e-9 and abs(q @ normal) <= 1.25
        assert q @ d < p @ d
        inner_crop = padded_crop(image, rec.slice, rec.x_inner, rec.y_inner, size)
        np.testing.assert_array_equal(sets["pp1"][rec.Index], inner_crop)
        np.testing.assert_array_equal(sets["pp2"][rec.Index], padded_crop(image, rec.slice, rec.x, rec.y, size))
    assert touching_edge >= 0.9 * len(index)


def test_inner_squares_hold_more_parenchyma_than_peripheral_ones(phantom, extracted):
    _, dseg = phantom
    _, index = extracted
    par = np.isin(dseg, (GM, WM))
    own_inner = [padded_crop(par, r.slice, r.x_inner, r.y_inner, 16).mean() for r in index.itertuples()]
    own_periph = [padded_crop(par, r.slice, r.x, r.y, 16).mean() for r in index.itertuples()]
    np.testing.assert_allclose(index["brain_fraction_inner"], own_inner)
    np.testing.assert_allclose(index["brain_fraction_peripheral"], own_periph)
    assert np.mean(own_inner) > 0.95
    assert 0.55 < np.mean(own_periph) < 0.8


# --- ablated sets --------------------------------------------------------------------------------


def test_pp2_holds_skull_and_scalp_and_pp3_to_pp5_keep_only_their_tissue(head, head_extracted):
    _, _, truth = head
    sets, index = head_extracted
    size = 24
    labels = np.stack([padded_crop(truth, r.slice, r.x, r.y, size) for r in index.itertuples()])
    skull, scalp = labels == HEAD_LABELS["skull"], labels == HEAD_LABELS["scalp"]
    # pp2 is cut from the whole head: nearly every peripheral square reaches the skull, and its
    # skull voxels carry the skull's intensity.
    assert np.mean(skull.any(axis=(1, 2))) > 0.9 and scalp.any()
    assert (sets["pp2"][skull] == HEAD_LEVELS[4]).all()
    # The skull's intensity appears nowhere in the ablated sets (it is replaced by noise), and
    # each keeps exactly the voxels of its own tissue, unchanged.
    for name, keep in (("pp3", (GM, WM)), ("pp4", (GM,)), ("pp5", (WM,))):
        ablated = sets[name]
        assert not (ablated == HEAD_LEVELS[4]).any(), name
        unchanged = ablated == sets["pp2"]
        kept = np.isin(labels, keep)
        assert unchanged[kept].all(), name
        assert not unchanged[~kept].any(), name


@pytest.mark.parametrize("name", ["pp3", "pp4", "pp5"])
@pytest.mark.parametrize("source", ["ellipsoid", "head"])
def test_ablated_squares_keep_the_mean_and_sd_of_the_original(source, name, extracted, head_extracted):
    sets, index = extracted if source == "ellipsoid" else head_extracted
    original = sets["pp2"].astype(np.float64).reshape(len(index), -1)
    ablated = sets[name].astype(np.float64).reshape(len(index), -1)
    assert (ablated != original).any(axis=1).mean() > 0.9  # something was replaced in most squares
    np.testing.assert_allclose(ablated.mean(axis=1), original.mean(axis=1), rtol=0.02)
    np.testing.assert_allclose(ablated.std(axis=1), original.std(axis=1), rtol=0.02)


def test_matched_noise_fill_solves_for_the_removed_values_by_hand():
    # Square [1, 2, 3, 6] with 1 and 2 kept: mean 3, variance 3.5. The two filled values must sum
    # to 4 * 3 - 3 = 9 and their squares to 4 * (3.5 + 9) - 5 = 45: they are 3 and 6, whatever the
    # noise (two standardised draws are -1 and +1).
    square = np.array([[[1.0, 2.0], [3.0, 6.0]]])
    kept = np.array([[[True, True], [False, False]]])
    for seed in range(5):
        out = matched_noise_fill(square, kept, np.random.default_rng(seed))
        assert out.dtype == np.float32 and out.shape == square.shape
        assert out[0, 0].tolist() == [1.0, 2.0]
        np.testing.assert_allclose(sorted(out[0, 1]), [3.0, 6.0], rtol=1e-6)


def test_matched_noise_fill_edge_cases():
    rng = np.random.default_rng(0)
    values = rng.normal(2.0, 3.0, (4, 8, 8))
    # Nothing removed: unchanged.
    unchanged = matched_noise_fill(values, np.ones(values.shape, bool), rng)
    np.testing.assert_array_equal(unchanged, values.astype(np.float32))
    # Everything removed: pure noise, yet the mean and SD of each square.
    out = matched_noise_fill(values, np.zeros(values.shape, bool), rng).astype(np.float64)
    assert not np.isclose(out, values).any()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), values.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(1, 2)), values.std(axis=(1, 2)), rtol=1e-5)
    # One removed voxel: the mean fixes it, to its own value.
    kept = np.ones(values.shape, bool)
    kept[:, 3, 4] = False
    np.testing.assert_allclose(matched_noise_fill(values, kept, rng), values, rtol=1e-6)
    # A constant square (empty space) stays constant.
    flat = np.full((1, 4, 4), -1.5)
    kept = np.zeros(flat.shape, bool)
    kept[0, 0] = True
    np.testing.assert_array_equal(matched_noise_fill(flat, kept, rng), flat.astype(np.float32))
    with pytest.raises(ValueError, match=r"got \(4, 8, 8\) and \(4, 8\)"):
        matched_noise_fill(values, np.ones((4, 8), bool), rng)


def test_normalise_head_uses_the_brain_statistics(head):
    image, dseg, truth = head
    z, empty = normalise_head(image, dseg > 0)
    brain = z[dseg > 0].astype(np.float64)
    assert abs(brain.mean()) < 1e-5 and abs(brain.std() - 1.0) < 1e-5
    # The head around the brain is kept, in the same order of intensities, and air (0) maps to `empty`.
    air = truth == 0
    np.testing.assert_allclose(z[air], empty, atol=1e-6)
    skull, scalp = z[truth == 4], z[truth == 5]
    assert empty < skull.min() and skull.max() < z[truth == CSF].min() and scalp.min() > z[truth == GM].max()
    with pytest.raises(ValueError, match="head.nii.gz: its tissue map has no brain voxels"):
        normalise_head(image, np.zeros(image.shape, bool), "head.nii.gz")
    with pytest.raises(ValueError, match="constant inside the brain"):
        normalise_head(np.ones(image.shape, np.float32), dseg > 0, "head.nii.gz")


def test_squares_leaving_the_image_are_padded_with_the_empty_value():
    # A head that fills the field of view: the peripheral squares reach past the image's edge.
    image, dseg, _ = head_phantom(shape=(64, 64, 6), centre=(31.5, 31.5, 2.0), axes=(34.0, 33.0, 12.0))
    sets, index = extract_subimages(image, dseg, size=32, extent=1, rng=np.random.default_rng(1), pad_value=-7.0)
    grid = np.ones(image.shape, bool)
    outside = np.stack([padded_crop(grid, r.slice, r.x, r.y, 32) == 0 for r in index.itertuples()])
    assert outside.any(axis=(1, 2)).mean() > 0.5
    assert (sets["pp2"][outside] == -7.0).all() and (sets["pp2"][~outside] != -7.0).all()


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


def write_oriented(data: np.ndarray, path: Path, flip_x: bool = False) -> Path:
    """Save in RAS, or in LAS (axis 0 reversed, affine to match) to exercise reorientation."""
    affine = np.eye(4)
    if flip_x:
        data = data[::-1]
        affine = np.diag([-1.0, 1.0, 1.0, 1.0])
        affine[0, 3] = data.shape[0] - 1
    write_nifti(np.ascontiguousarray(data), affine, path)
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
        images.append(write_oriented(image, tmp_path / f"sub-{i}_T1w.nii.gz", flip_x=i == 1))
        dsegs.append(write_oriented(dseg, tmp_path / f"sub-{i}_dseg.nii.gz", flip_x=i == 1))
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
        # The store z-scores each whole image with its brain's (dseg > 0) mean and SD before
        # cutting, and pads squares that leave the grid with where 0 lands.
        brain = dseg > 0
        mean, sd = image[brain].astype(np.float64).mean(), image[brain].astype(np.float64).std()
        z = ((image - mean) / sd).astype(np.float32)
        sets, rows = extract_subimages(z, dseg, rng=np.random.default_rng([5, i]), pad_value=-mean / sd, **kw)
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
    wrong = write_oriented(np.zeros((40, 48, 29), np.float32), tmp_path / "wrong.nii.gz")
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
