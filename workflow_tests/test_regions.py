"""Atlas region metrics, explanation robustness and the neurobiological check.

Every expected value is derived by hand from a small hand-built atlas, map or table.
"""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import write_nifti
from mrixai.explain.neuro import permutation_correlation
from mrixai.explain.volumes import native_region_volumes
from mrixai.explain.regions import (
    SampleAtlas,
    enrichment,
    group_mean_maps,
    load_sample_atlas,
    outcome,
    planted_regions,
    region_metrics,
    region_ranks,
    region_table,
    to_sample_grid,
    top_regions,
)
from mrixai.explain.robustness import max_scaled_mean, method_overlap, pairwise_l2, topk_overlap

# Hand-made template grid: 10 x 8 x 8 voxels of 2 mm (0.008 ml); the store crops x to 8 voxels
# starting at 1 (offset -> template x 1..8 kept, x 0 and 9 dropped), pads y by 2 on each side
# (offset -2, shape 12) and keeps z as is; downsample 2 -> sample grid 4 x 6 x 4 of 4 mm (0.064 ml).
TEMPLATE_SHAPE = (10, 8, 8)
META = {"shape": [8, 12, 8], "offset": [1, -2, 0], "downsample": 2, "template_shape": list(TEMPLATE_SHAPE),
        "grid": [4, 6, 4]}
TPL_ML, SAMPLE_ML = 0.008, 0.064
LABELS = pd.DataFrame({"index": [1, 2, 3, 4, 5, 6, 7],
                       "name": ["Left_Hippocampus", "Right_Hippocampus", "Left_Amygdala", "CSF",
                                "Right_Amygdala", "Left_Edge", "Left_Absent"]})


def template_atlas() -> np.ndarray:
    """Labels chosen so each region's sample-grid fractions are known.

    Template voxel (x, y, z) lands in sample voxel ((x - 1) // 2, (y + 2) // 2, z // 2).
    """
    a = np.zeros(TEMPLATE_SHAPE, np.int16)
    a[1:3, 0:2, 0:2] = 1          # Left_Hippocampus: one full block -> sample (0, 1, 0) = 1
    a[3:5, 0:2, 0:1] = 2          # Right_Hippocampus: half a block -> sample (1, 1, 0) = 0.5
    a[5:7, 2:4, 2:4] = 3          # Left_Amygdala: a full block -> sample (2, 2, 1)
    a[7:9, 2:4, 2:4] = 5          # Right_Amygdala: a full block -> sample (3, 2, 1)
    a[3:5, 4:6, 4:6] = 4          # CSF: a full block -> sample (1, 3, 2)
    a[0, 6:8, 6:8] = 6            # Left_Edge: 4 voxels at x 0 (cropped away) ...
    a[1, 6:8, 6:8] = 6            # ... and 4 at x 1 (kept) -> sample (0, 4, 3) = 0.5
    return a                      # Left_Absent (7) has no voxel


@pytest.fixture()
def atlas_files(tmp_path):
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    nii = tmp_path / "atlas.nii.gz"
    write_nifti(template_atlas(), affine, nii)
    tsv = tmp_path / "atlas.tsv"
    LABELS.to_csv(tsv, sep="\t", index=False)
    store = tmp_path / "store.json"
    store.write_text(json.dumps({**META, "template_affine": affine.tolist()}))
    return nii, tsv, store


def test_fractional_atlas_matches_the_sample_grid_construction(atlas_files):
    atlas = load_sample_atlas(*atlas_files, merge_hemispheres=False)
    assert atlas.grid == (4, 6, 4)
    assert atlas.voxel_ml == pytest.approx(SAMPLE_ML)
    # Left_Absent has no voxel and is dropped; table order is kept.
    assert atlas.names == ["Left_Hippocampus", "Right_Hippocampus", "Left_Amygdala", "CSF", "Right_Amygdala",
                           "Left_Edge"]
    lh = atlas.fraction_map("Left_Hippocampus")
    assert lh[0, 1, 0] == pytest.approx(1.0) and lh.sum() == pytest.approx(1.0)
    rh = atlas.fraction_map("Right_Hippocampus")
    assert rh[1, 1, 0] == pytest.approx(0.5) and rh.sum() == pytest.approx(0.5)
    edge = atlas.fraction_map("Left_Edge")
    assert edge[0, 4, 3] == pytest.approx(0.5) and edge.sum() == pytest.approx(0.5)
    # Volumes: template voxel count x 0.008 ml, only the voxels the crop keeps.
    vol = dict(zip(atlas.names, atlas.volume_ml))
    assert vol["Left_Hippocampus"] == pytest.approx(8 * TPL_ML)
    assert vol["Right_Hippocampus"] == pytest.approx(4 * TPL_ML)
    assert vol["CSF"] == pytest.approx(8 * TPL_ML)
    assert vol["Left_Edge"] == pytest.approx(4 * TPL_ML)
    # A second, independent computation: the per-region indicator through to_sample_grid.
    labels = template_atlas()
    for index, name in zip(LABELS["index"], LABELS["name"]):
        if name in atlas.names:
            expected = to_sample_grid((labels == index).astype(float), META)
            np.testing.assert_allclose(atlas.fraction_map(name), expected, atol=1e-6)
    # No sample voxel is more than fully covered.
    assert np.asarray(atlas.weights.sum(axis=1)).max() <= 1 + 1e-9


def test_merged_hemispheres_are_the_union(atlas_files):
    split = load_sample_atlas(*atlas_files, merge_hemispheres=False)
    merged = load_sample_atlas(*atlas_files, merge_hemispheres=True)
    assert merged.names == ["Hippocampus", "Amygdala", "CSF", "Edge"]
    vol = dict(zip(merged.names, merged.volume_ml))
    split_vol = dict(zip(split.names, split.volume_ml))
    assert vol["Hippocampus"] == pytest.approx(split_vol["Left_Hippocampus"] + split_vol["Right_Hippocampus"])
    assert vol["Amygdala"] == pytest.approx(16 * TPL_ML)
    np.testing.assert_allclose(
        merged.fraction_map("Hippocampus"),
        split.fraction_map("Left_Hippocampus") + split.fraction_map("Right_Hippocampus"),
    )


def test_to_sample_grid_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match=r"\(9, 8, 8\).*\(10, 8, 8\)"):
        to_sample_grid(np.zeros((9, 8, 8)), META)


def test_region_metrics_of_an_indicator_map(atlas_files):
    atlas = load_sample_atlas(*atlas_files, merge_hemispheres=False)
    maps = np.zeros((2, *atlas.grid))
    maps[0][atlas.fraction_map("Left_Amygdala") > 0] = 1.0       # 1 inside Left_Amygdala
    maps[1][atlas.fraction_map("Right_Hippocampus") > 0] = -2.0  # -2 on the half-covered voxel
    m = region_metrics(maps, atlas)
    col = {n: i for i, n in enumerate(atlas.names)}
    # Map 0: Left_Amygdala covers 1 sample voxel fully -> sum 1; density 1 / (8 * 0.008 ml) = 1/0.064.
    assert m["sum_abs"][0, col["Left_Amygdala"]] == pytest.approx(1.0)
    assert m["density"][0, col["Left_Amygdala"]] == pytest.approx(1 / SAMPLE_ML)
    others = [i for n, i in col.items() if n != "Left_Amygdala"]
    assert np.all(m["sum_abs"][0, others] == 0)
    # Map 1: |-2| x 0.5 fraction = 1; no positive part; density 1 / (4 * 0.008 ml).
    assert m["sum_abs"][1, col["Right_Hippocampus"]] == pytest.approx(1.0)
    assert m["sum_pos"][1, col["Right_Hippocampus"]] == 0
    assert m["density"][1, col["Right_Hippocampus"]] == pytest.approx(1 / (4 * TPL_ML))
    with pytest.raises(ValueError, match="shape"):
        region_metrics(np.zeros((1, 4, 6, 5)), atlas)


def test_outcome():
    assert [outcome(1, 1), outcome(0, 1), outcome(0, 0), outcome(1, 0)] == ["TP", "FP", "TN", "FN"]
    with pytest.raises(ValueError, match="2"):
        outcome(2, 0)


def _two_region_atlas() -> SampleAtlas:
    """Grid 2x1x1, region A = voxel 0, region B = voxel 1, sample voxels of 1 ml."""
    import scipy.sparse as sp

    return SampleAtlas(["A", "B"], sp.csr_matrix(np.eye(2)), np.array([1.0, 1.0]), (2, 1, 1), 1.0)


def test_region_table_gain():
    atlas = _two_region_atlas()
    # Controls: densities A 1 and 3 (mean 2), B 0 and 0 (mean 0 -> gain NaN). Patient: A 4 -> gain 2.
    maps = np.array([[1.0, 0.0], [3.0, 0.0], [-4.0, 5.0]]).reshape(3, 2, 1, 1)
    index = pd.DataFrame({"unit": ["c1", "c2", "p1"], "subject": ["c1", "c2", "p1"], "group": ["CN", "CN", "AD"],
                          "label": [0, 0, 1], "pred": [0, 1, 1], "method": "lrp"})
    table = region_table(index, maps, atlas)
    assert list(table.columns) == ["unit", "subject", "group", "label", "pred", "outcome", "method", "region",
                                   "volume_ml", "sum_abs", "sum_pos", "density", "gain"]
    a = table[table["region"] == "A"].set_index("unit")
    assert a.loc[["c1", "c2"], "gain"].mean() == pytest.approx(1.0)
    assert a.loc["p1", "gain"] == pytest.approx(2.0)
    assert a.loc["p1", "sum_pos"] == 0 and a.loc["p1", "sum_abs"] == 4
    assert list(a["outcome"]) == ["TN", "FP", "TP"]
    b = table[table["region"] == "B"]
    assert b["gain"].isna().all() and not np.isinf(b["gain"]).any()


def _hand_table() -> pd.DataFrame:
    """Region table of two methods; per-method mean density of regions R1..R4 is known."""
    rows = []
    means = {"m1": {"R1": 4.0, "R2": 3.0, "R3": 2.0, "R4": 1.0}, "m2": {"R1": 1.0, "R2": 2.0, "R3": 3.0, "R4": 4.0}}
    for method, regions in means.items():
        for region, mean in regions.items():
            # Two subjects each, +-0.5 around the mean; the AD subject holds the higher value.
            rows.append({"method": method, "region": region, "group": "AD", "subject": "s1", "density": mean + 0.5})
            rows.append({"method": method, "region": region, "group": "CN", "subject": "s2", "density": mean - 0.5})
    # In CN only, m1's R4 is boosted to 10: its mean over all subjects becomes (1.5 + 10) / 2 = 5.75.
    t = pd.DataFrame(rows)
    t.loc[(t.method == "m1") & (t.region == "R4") & (t.group == "CN"), "density"] = 10.0
    return t


def test_top_regions_and_ranks():
    t = _hand_table()
    top = top_regions(t, "density", 2)
    assert list(top.columns) == ["method", "region", "density", "rank"]
    assert top[top.method == "m1"].sort_values("rank")["region"].tolist() == ["R4", "R1"]
    assert top[top.method == "m2"].sort_values("rank")["region"].tolist() == ["R4", "R3"]
    assert top.loc[(top.method == "m1") & (top.region == "R1"), "density"].item() == pytest.approx(4.0)
    cn = top_regions(t, "density", 1, group="CN")
    assert cn.set_index("method").loc["m1", "region"] == "R4"
    ad = top_regions(t, "density", 1, group="AD")
    assert ad.set_index("method").loc["m1", "region"] == "R1"
    assert ad.set_index("method").loc["m1", "density"] == pytest.approx(4.5)
    ranks = region_ranks(t, "density", ["R3", "R1"]).set_index(["method", "region"])
    assert ranks.loc[("m1", "R3"), "rank"] == 4 and ranks.loc[("m1", "R1"), "rank"] == 2
    assert ranks.loc[("m2", "R3"), "rank"] == 2
    assert ranks.loc[("m2", "R1"), "rank"] == 4 and (ranks["n_regions"] == 4).all()
    with pytest.raises(ValueError, match="Hippocampus.*R1"):
        region_ranks(t, "density", ["Hippocampus"])
    with pytest.raises(ValueError, match="MCI"):
        top_regions(t, "density", 2, group="MCI")


def test_group_mean_maps():
    maps = np.arange(4, dtype=float).reshape(4, 1, 1, 1) * np.ones((4, 2, 2, 2))
    index = pd.DataFrame({"group": ["CN", "CN", "AD", "AD"], "label": [0, 0, 1, 1], "pred": [0, 1, 1, 1]})
    out = group_mean_maps(index, maps)
    assert set(out) == {"CN", "AD", "TN", "FP", "TP"}  # no false negative
    assert np.all(out["CN"] == 0.5) and np.all(out["AD"] == 2.5)
    assert np.all(out["TN"] == 0) and np.all(out["FP"] == 1) and np.all(out["TP"] == 2.5)


def test_enrichment():
    brain = np.zeros((4, 4, 4))
    brain[:, :, :2] = 1                  # 32 voxels
    mask = np.zeros_like(brain)
    mask[:2, :2, :2] = 1                 # 8 voxels -> volume share 1/4
    maps = np.stack([mask, np.ones_like(brain), -mask + 0.0 * brain])
    e = enrichment(maps, mask, brain)
    assert e["volume_share"].tolist() == pytest.approx([0.25] * 3)
    assert e.loc[0, "enrichment"] == pytest.approx(4.0)     # all relevance in the mask: 1 / volume share
    assert e.loc[1, "enrichment"] == pytest.approx(1.0)     # uniform relevance
    assert np.isnan(e.loc[2, "enrichment"])                 # no positive relevance


def test_planted_regions():
    shrink = ["Left_Hippocampus", "Right_Hippocampus", "Left_Amygdala", "Right_Amygdala"]
    grow = ["Left_Lateral_Ventricle", "Right_Lateral_Ventricle", "3rd_Ventricle"]
    assert planted_regions(shrink, grow, True) == ["Hippocampus", "Amygdala", "Lateral_Ventricle", "3rd_Ventricle"]
    assert planted_regions(shrink, grow, False) == shrink + grow


# ---------------------------------------------------------------- robustness


def test_pairwise_l2():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(5, 3, 4, 5))
    other = rng.normal(size=(5, 3, 4, 5))
    m = max_scaled_mean(maps)
    assert np.abs(m).max() == pytest.approx(1.0)
    assert np.all(max_scaled_mean(np.zeros((2, 3, 3, 3))) == 0)
    same = pairwise_l2({"a": m, "b": max_scaled_mean(maps.copy())})
    assert same["l2"].item() == pytest.approx(0.0)
    base = pairwise_l2({"a": m, "b": max_scaled_mean(other)})["l2"].item()
    scaled = pairwise_l2({"a": max_scaled_mean(7.5 * maps), "b": max_scaled_mean(other)})["l2"].item()
    assert base > 0 and scaled == pytest.approx(base)
    # Independent computation of the distance.
    ma, mb = maps.mean(0), other.mean(0)
    expected = np.sqrt((((ma / np.abs(ma).max()) - (mb / np.abs(mb).max())) ** 2).sum())
    assert base == pytest.approx(expected)
    three = pairwise_l2({"a": m, "b": m, "c": m})
    assert len(three) == 3 and set(zip(three.run_a, three.run_b)) == {("a", "b"), ("a", "c"), ("b", "c")}
    with pytest.raises(ValueError, match="at least 2"):
        pairwise_l2({"a": m})


def _run_table(top: list[str], regions: list[str]) -> pd.DataFrame:
    """Region table whose highest-density regions are ``top``, in that order."""
    score = {r: (100 - i if r in top else 0.0) for i, r in enumerate(top + [r for r in regions if r not in top])}
    return pd.DataFrame([{"method": "lrp", "region": r, "group": "AD", "density": score[r]} for r in regions])


def test_topk_overlap():
    regions = [f"R{i}" for i in range(8)]
    a = _run_table(["R0", "R1", "R2"], regions)
    b = _run_table(["R0", "R1", "R3"], regions)
    c = _run_table(["R5", "R6", "R7"], regions)
    same = topk_overlap({"r1": a, "r2": a.copy()}, "density", k=3)
    assert same["mean_overlap"].item() == 3 and same["sd_overlap"].item() == 0
    disjoint = topk_overlap({"r1": a, "r3": c}, "density", k=3)
    assert disjoint["mean_overlap"].item() == 0
    # Pairs: a-b 2, a-c 0, b-c 0 -> mean 2/3, population SD sqrt(((4/3)^2 + 2 (2/3)^2) / 3).
    three = topk_overlap({"a": a, "b": b, "c": c}, "density", k=3)
    assert three["n_pairs"].item() == 3 and three["n_runs"].item() == 3
    assert three["mean_overlap"].item() == pytest.approx(2 / 3)
    assert three["sd_overlap"].item() == pytest.approx(np.sqrt(((4 / 3) ** 2 + 2 * (2 / 3) ** 2) / 3))


def test_method_overlap():
    regions = [f"R{i}" for i in range(8)]
    t = pd.concat([
        _run_table(["R0", "R1", "R2"], regions).assign(method="beta0"),
        _run_table(["R0", "R1", "R3"], regions).assign(method="beta1"),
    ])
    out = method_overlap(t, ["beta0", "beta1"], "density", k=3).set_index(["method_a", "method_b"])["overlap"]
    assert out[("beta0", "beta0")] == 3 and out[("beta1", "beta1")] == 3
    assert out[("beta0", "beta1")] == 2 and out[("beta1", "beta0")] == 2
    with pytest.raises(ValueError, match="beta2"):
        method_overlap(t, ["beta0", "beta2"], "density")


# ---------------------------------------------------------------- neurobiological check


def test_permutation_correlation():
    x = np.arange(12.0)
    perfect = permutation_correlation(x, 3 * x + 1, n_permutations=999, seed=0)
    assert perfect["r"] == pytest.approx(1.0) and perfect["p"] == pytest.approx(1 / 1000) and perfect["n"] == 12
    anti = permutation_correlation(x, np.exp(-x), n_permutations=999, method="spearman")
    assert anti["r"] == pytest.approx(-1.0) and anti["p"] == pytest.approx(1 / 1000)
    rng = np.random.default_rng(3)
    ps = [permutation_correlation(rng.normal(size=20), rng.normal(size=20), 500, seed=s)["p"] for s in range(20)]
    assert min(ps) > 0 and max(ps) <= 1
    # Under the null, p is roughly uniform: not all small, median near 0.5.
    assert 0.2 < np.median(ps) < 0.8
    # Same seed, same p; Pearson r agrees with numpy.
    a, b = rng.normal(size=15), rng.normal(size=15)
    r1, r2 = permutation_correlation(a, b, 200, seed=5), permutation_correlation(a, b, 200, seed=5)
    assert r1 == r2 and r1["r"] == pytest.approx(np.corrcoef(a, b)[0, 1])
    with pytest.raises(ValueError, match="3"):
        permutation_correlation([1, 2], [2, 1])
    with pytest.raises(ValueError, match="constant"):
        permutation_correlation([1, 1, 1], [1, 2, 3])


def test_native_region_volumes_with_identity_transform(tmp_path):
    pytest.importorskip("ants")
    from mrixai.preproc.register import write_itk_affine

    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 0.008 ml voxels
    affine[:3, 3] = [-10, -12, -8]
    atlas = np.zeros((10, 12, 8), np.int16)
    atlas[1:4, 1:3, 1:3] = 1      # Left_Hippocampus: 12 voxels
    atlas[5:7, 1:3, 1:3] = 2      # Right_Hippocampus: 8 voxels
    atlas[2:4, 6:9, 3:5] = 4      # CSF: 12 voxels
    gm = np.zeros(atlas.shape, np.float32)
    gm[atlas == 1] = 0.5
    gm[atlas == 2] = 1.0
    gm[atlas == 4] = 0.25
    gm[0] = 1.0                   # GM outside every label counts nowhere
    for name, data in [("atlas", atlas), ("gm", gm), ("ref", (atlas > 0).astype(np.float32))]:
        write_nifti(data, affine, tmp_path / f"{name}.nii.gz")
    LABELS.to_csv(tmp_path / "atlas.tsv", sep="\t", index=False)
    identity = write_itk_affine(np.eye(3), np.zeros(3), tmp_path / "identity.mat")
    args = (tmp_path / "atlas.nii.gz", tmp_path / "atlas.tsv", tmp_path / "ref.nii.gz")

    merged = native_region_volumes(*args, [str(identity)], tmp_path / "gm.nii.gz").set_index("region")
    assert set(merged.index) == {"Hippocampus", "CSF"}  # regions present in the atlas image
    assert merged.loc["Hippocampus", "label_ml"] == pytest.approx(20 * 0.008)
    assert merged.loc["Hippocampus", "gm_ml"] == pytest.approx((12 * 0.5 + 8 * 1.0) * 0.008)
    assert merged.loc["CSF", "gm_ml"] == pytest.approx(12 * 0.25 * 0.008)

    split = native_region_volumes(*args, [str(identity)], tmp_path / "gm.nii.gz", regions=["Left_Hippocampus"],
                                  merge_hemispheres=False, whichtoinvert=[True]).set_index("region")
    assert list(split.index) == ["Left_Hippocampus"]
    assert split.loc["Left_Hippocampus", "label_ml"] == pytest.approx(12 * 0.008)
    assert split.loc["Left_Hippocampus", "gm_ml"] == pytest.approx(12 * 0.5 * 0.008)
    with pytest.raises(ValueError, match="Hippocampus"):
        native_region_volumes(*args, [str(identity)], tmp_path / "gm.nii.gz", regions=["Hippocampus"],
                              merge_hemispheres=False)
