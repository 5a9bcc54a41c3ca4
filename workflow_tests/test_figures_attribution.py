"""Attribution figures are real pictures with the right orientation, ranking and colours; the
Snakemake report embeds its figures and renders them in headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import ellipsoid
from mrixai import report
from mrixai.figures import attribution as A

PDF_SIGNATURE = b"%PDF"
MAGENTA = (255, 0, 255)


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.int16)


def _assert_written(paths, png: Path, pdf: Path) -> None:
    assert [Path(p) for p in paths] == [png, pdf]
    assert _pixels(png).std() > 0, f"{png} is blank"
    assert pdf.read_bytes()[:4] == PDF_SIGNATURE


def _has_colour(pixels: np.ndarray, hex_colour: str, tol: int = 12, min_count: int = 50) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).max(axis=-1) <= tol).sum()) >= min_count


# ------------------------------------------------------------------------------- orientation
@pytest.mark.parametrize("flip_x", [False, True])
def test_neurological_slice_shows_left_on_the_left(flip_x):
    shape = (20, 20, 20)
    if flip_x:  # LAS voxel order: voxel i grows towards the subject's left
        affine = np.diag([-2.0, 2.0, 2.0, 1.0])
        affine[:3, 3] = [19.0, -19.0, -19.0]
    else:
        affine = np.diag([2.0, 2.0, 2.0, 1.0])
        affine[:3, 3] = [-19.0, -19.0, -19.0]
    volume = np.zeros(shape, np.float32)
    # world x of voxel i: -19 + 2i (RAS) or 19 - 2i (LAS); pick the voxels with x < -8 (left)
    i = np.arange(20)
    x = (19 - 2 * i) if flip_x else (-19 + 2 * i)
    left = x < -8
    volume[left, 8:12, 8:12] = 1.0
    for axis in ("axial", "coronal"):
        plane = A.neurological_slice(volume, affine, axis, 10)
        cols = np.flatnonzero(plane.any(axis=0))
        assert cols.size and cols.max() < 10, f"{axis}: blob should lie in the left (low) columns, got {cols}"
    # superior is up: a blob high in z appears in the high rows of a coronal slice
    top = np.zeros(shape, np.float32)
    top[8:12, 8:12, 15:18] = 1.0
    rows = np.flatnonzero(A.neurological_slice(top, affine, "coronal", 10).any(axis=1))
    assert rows.min() >= 15


def test_brain_slices_split_the_brain_evenly():
    template = np.zeros((10, 10, 40), np.float32)
    template[2:8, 2:8, 10:30] = 1.0  # brain spans z = 10..29
    slices = A.brain_slices(template, 2, 3)
    # 4 equal parts of 10..29: 14.75, 19.5, 24.25
    assert slices == [15, 20, 24]
    with pytest.raises(ValueError, match="empty"):
        A.brain_slices(np.zeros((4, 4, 4)), 2, 3)


def test_plot_mean_maps_writes_png_and_pdf(tmp_path):
    shape = (24, 28, 24)
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-46.0, -54.0, -46.0]
    template = ellipsoid(shape, (11.5, 13.5, 11.5), (9, 11, 9)).astype(np.float32)
    rng = np.random.default_rng(0)
    blob = ellipsoid(shape, (8, 14, 12), (3, 3, 3)).astype(np.float32)
    maps = {
        "lrp_epsilon": {"CN": 0.1 * rng.normal(size=shape) * template, "AD": blob + 0.05 * rng.normal(size=shape)},
        "gradcam": {"CN": -0.5 * blob, "AD": 2.0 * blob},
    }
    png, pdf = tmp_path / "maps.png", tmp_path / "maps.pdf"
    paths = A.plot_mean_maps(maps, template, png, pdf, affine=affine, n_slices=4, title="test maps")
    _assert_written(paths, png, pdf)
    # positive relevance shows in the diverging map's red half
    assert _has_colour(_pixels(png), "#b2182b", tol=40)
    # rows may be runs of one method
    runs = {"lrp_epsilon": {"run-0": blob, "run-1": 0.5 * blob, "run-2": -blob}}
    png2, pdf2 = tmp_path / "runs.png", tmp_path / "runs.pdf"
    paths = A.plot_mean_maps(runs, template, png2, pdf2, affine=affine, axis="coronal", share="all")
    _assert_written(paths, png2, pdf2)
    assert _has_colour(_pixels(png2), "#2166ac", tol=40), "negative relevance should show in blue"
    with pytest.raises(ValueError, match="shape"):
        A.plot_mean_maps({"m": {"CN": np.zeros((3, 3, 3))}}, template, png, pdf, affine=affine)
    with pytest.raises(ValueError, match="axis"):
        A.plot_mean_maps(maps, template, png, pdf, affine=affine, axis="oblique")


# ------------------------------------------------------------------------------- top regions
def _region_table() -> pd.DataFrame:
    # sum_abs per subject (s1, s2, s3); hand means: Left_Hippocampus 6, Putamen 4, Thalamus 2.5, Insula 1
    values = {
        "Left_Hippocampus": [5.0, 6.0, 7.0],
        "Putamen": [4.0, 4.0, 4.0],
        "Thalamus": [1.0, 2.0, 4.5],
        "Insula": [1.0, 1.0, 1.0],
    }
    rows = []
    for region, per_subject in values.items():
        for subject, v in zip(["s1", "s2", "s3"], per_subject):
            rows.append(dict(subject=subject, region=region, sum_abs=v, density=10 - v, gain=v - 3))
    # a second session of s3 for Thalamus: its two rows average to 4.5 (3.0 and 6.0)
    rows = [r for r in rows if not (r["region"] == "Thalamus" and r["subject"] == "s3")]
    for v in (3.0, 6.0):
        rows.append(dict(subject="s3", region="Thalamus", sum_abs=v, density=10 - v, gain=v - 3))
    return pd.DataFrame(rows)


def test_top_k_order_matches_hand_ranking():
    table = _region_table()
    order = A.top_k_order(table, "sum_abs", 3)
    assert order["region"].tolist() == ["Left_Hippocampus", "Putamen", "Thalamus"]
    assert order["mean"].tolist() == pytest.approx([6.0, 4.0, 2.5])
    assert order["se"].tolist() == pytest.approx([1 / np.sqrt(3), 0.0, np.std([1, 2, 4.5], ddof=1) / np.sqrt(3)])
    assert order["n"].tolist() == [3, 3, 3]
    # density = 10 - sum_abs reverses the ranking
    assert A.top_k_order(table, "density", 4)["region"].tolist() == [
        "Insula",
        "Thalamus",
        "Putamen",
        "Left_Hippocampus",
    ]
    with pytest.raises(ValueError, match="k must"):
        A.top_k_order(table, "sum_abs", 0)
    with pytest.raises(ValueError, match="nope"):
        A.top_k_order(table, "nope", 3)


def test_region_colours_match_any_spelling():
    colours = A.region_colours(["Left_Hippocampus", "Putamen", "left amygdala"], ["Left Hippocampus", "Left_Amygdala"])
    assert colours == [A.HIGHLIGHT_COLOUR, A.BAR_COLOUR, A.HIGHLIGHT_COLOUR]
    assert A.pretty_region("Left_Lateral_Ventricle") == "Left Lateral Ventricle"


def test_plot_top_regions_draws_highlighted_regions_in_the_highlight_colour(tmp_path):
    table = _region_table()
    png, pdf = tmp_path / "top.png", tmp_path / "top.pdf"
    _assert_written(A.plot_top_regions(table, png, pdf, k=3, highlight=["Left_Hippocampus"]), png, pdf)
    assert _has_colour(_pixels(png), A.HIGHLIGHT_COLOUR)
    assert _has_colour(_pixels(png), A.BAR_COLOUR)
    plain_png, plain_pdf = tmp_path / "plain.png", tmp_path / "plain.pdf"
    A.plot_top_regions(table, plain_png, plain_pdf, k=3)
    assert not _has_colour(_pixels(plain_png), A.HIGHLIGHT_COLOUR, min_count=1)


# ------------------------------------------------------------------- overlap and scalar plots
def test_overlap_square_mirrors_pairs_and_plots(tmp_path):
    long = pd.DataFrame({"method_a": ["b0", "b0", "b1"], "method_b": ["b0", "b1", "b1"], "overlap": [10, 7, 10]})
    square = A.overlap_square(long)
    assert square.index.tolist() == ["b0", "b1"]
    assert square.to_numpy().tolist() == [[10, 7], [7, 10]]
    png, pdf = tmp_path / "ov.png", tmp_path / "ov.pdf"
    _assert_written(A.plot_overlap_matrix(long, png, pdf, k=10), png, pdf)
    with pytest.raises(ValueError, match="exceeds"):
        A.plot_overlap_matrix(long, png, pdf, k=5)
    with pytest.raises(ValueError, match="repeats"):
        A.overlap_square(pd.concat([long, long]))


def test_scalar_plots_write_png_and_pdf(tmp_path):
    rng = np.random.default_rng(1)
    volume = rng.uniform(2.5, 4.5, 12)
    hippo = pd.DataFrame({"volume_ml": volume, "relevance": 5 - volume + rng.normal(0, 0.2, 12)})
    result = {"r": -0.9, "p": 0.002, "n": 12, "method": "lrp_epsilon"}
    png, pdf = tmp_path / "hip.png", tmp_path / "hip.pdf"
    _assert_written(A.plot_hippocampus(hippo, result, png, pdf), png, pdf)
    with pytest.raises(ValueError, match="result lacks"):
        A.plot_hippocampus(hippo, {"r": 0.1}, png, pdf)

    methods = ["lrp_epsilon", "gradcam", "occlusion"]
    enrich = pd.DataFrame(
        [{"method": m, "run": r, "enrichment": rng.gamma(3, 0.5 + k)} for k, m in enumerate(methods) for r in range(4)]
    )
    png, pdf = tmp_path / "enr.png", tmp_path / "enr.pdf"
    _assert_written(A.plot_enrichment(enrich, png, pdf), png, pdf)

    spear = pd.DataFrame([{"method": m, "spearman": rng.uniform(-1, 1)} for m in methods for _ in range(6)])
    png, pdf = tmp_path / "rand.png", tmp_path / "rand.pdf"
    _assert_written(A.plot_randomisation(spear, png, pdf, threshold=0.5), png, pdf)
    spear["spearman_abs"] = spear["spearman"].abs()  # the check's second column: a second panel
    _assert_written(A.plot_randomisation(spear, png, pdf, threshold=0.5), png, pdf)
    with pytest.raises(ValueError, match="threshold"):
        A.plot_randomisation(spear, png, pdf, threshold=2.0)
    with pytest.raises(ValueError, match="spearman"):
        A.plot_randomisation(enrich, png, pdf)


def test_qc_montage_on_black(tmp_path):
    brain = ellipsoid((20, 24, 20), (9.5, 11.5, 9.5), (7, 9, 7)).astype(np.float32)
    images = [brain * (1 + 0.1 * i) for i in range(5)]
    png, pdf = tmp_path / "qc.png", tmp_path / "qc.pdf"
    _assert_written(A.plot_qc_montage(images, [f"sub-{i:02d}" for i in range(5)], png, pdf, n_cols=3), png, pdf)
    pixels = _pixels(png)
    assert (pixels[0, 0] == 0).all() and (pixels[-1, -1] == 0).all(), "the montage background must be black"
    with pytest.raises(ValueError, match="labels"):
        A.plot_qc_montage(images, ["a"], png, pdf)
    with pytest.raises(ValueError, match="3D"):
        A.plot_qc_montage([np.zeros((4, 4))], ["a"], png, pdf)


# ------------------------------------------------------------------------------------ report
@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory) -> Path:
    """A real ``snakemake --report`` of a one-rule workflow whose figure is a magenta square."""
    work = tmp_path_factory.mktemp("report")
    Image.new("RGB", (240, 240), MAGENTA).save(work / "source.png")
    (work / "cap.rst").write_text("A magenta *square* for the test.\n")
    (work / "Snakefile").write_text(textwrap.dedent("""
            rule all:
                input:
                    "figures/square.png",

            rule draw_square:
                input:
                    "source.png",
                output:
                    report("figures/square.png", caption="cap.rst", category="Squares"),
                shell:
                    "cp {input} {output}"
            """))
    for args in (["--cores", "1"], ["--report", str(work / "report.html")]):
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", *args], cwd=work, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "report.html"


def test_report_lists_embedded_figures_and_captions(tiny_report):
    assert report.report_figures(tiny_report) == ["square.png"]
    assert report.report_captions(tiny_report) == {"square.png": "A magenta square for the test."}
    assert report.report_categories(tiny_report) == {"Squares": {"Other": ["square.png"]}}


def test_report_parser_rejects_other_html(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html><body><script>var results = 1;</script></body></html>")
    with pytest.raises(ValueError, match="Snakemake"):
        report.report_figures(page)


@pytest.mark.skipif(
    shutil.which("chromium") is None and not Path(report.DEFAULT_CHROMIUM).is_file(),
    reason="chromium is not installed (apt-get install chromium): no screenshot check",
)
def test_screenshot_shows_the_report_figure(tiny_report, tmp_path):
    landing = report.screenshot_report(tiny_report, tmp_path / "landing.png", width=900, height=700)
    assert _pixels(landing).shape[:2] == (700, 900)
    assert not _has_colour(_pixels(landing), "#ff00ff", tol=3, min_count=1)
    # open the category and the figure: the magenta square must be rendered
    shown = report.screenshot_report(tiny_report, tmp_path / "figure.png", width=900, height=700, show="square.png")
    assert _has_colour(_pixels(shown), "#ff00ff", tol=3, min_count=2000)
