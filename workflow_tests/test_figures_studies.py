"""Figures of the learning studies: each writes a non-blank PNG and a PDF from small hand-made tables."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from mrixai import stats
from mrixai.figures import common, studies

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_outputs(paths: list[Path], png: Path, pdf: Path | None) -> np.ndarray:
    """Both files exist as named, the PNG is a real, non-blank image; returns its pixels."""
    assert paths[0] == png
    assert png.read_bytes()[:8] == PNG_MAGIC
    if pdf is not None:
        assert paths[1] == pdf
        assert pdf.read_bytes()[:5] == b"%PDF-"
        assert pdf.stat().st_size > 1000
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert float(image[..., :3].var()) > 0  # not a blank canvas
    assert not list(png.parent.glob(".*partial*"))  # no temporary file left behind
    return image


@pytest.fixture()
def registration_summary() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for arm, level in (("none", 0.55), ("linear", 0.9), ("syn", 0.85)):
        for split in range(3):
            for seed in range(2):
                sens, spec = np.clip(level + rng.normal(0, 0.05, 2), 0, 1)
                rows.append({"study": "registration", "variant": f"reg-{arm}", "arm": arm, "split": split,
                             "seed": seed, "sensitivity": sens, "specificity": spec,
                             "balanced_accuracy": (sens + spec) / 2, "roc_auc": min(1.0, level + 0.05),
                             "wall_time_s": 30 + 5 * rng.random(), "epochs_run": 20 + seed,
                             "best_epoch": 10 + split})
    return pd.DataFrame(rows)


def test_format_p_and_stars():
    assert common.format_p(0.0312) == "p = 0.031"
    assert common.format_p(0.0004) == "p < 0.001"
    assert common.format_p(float("nan")) == "p = n/a"
    assert [common.significance_stars(p) for p in (0.0005, 0.005, 0.03, 0.2)] == ["***", "**", "*", "n.s."]
    with pytest.raises(ValueError, match="1.5"):
        common.format_p(1.5)


def test_save_figure_rejects_wrong_suffix(tmp_path):
    import matplotlib.pyplot as plt

    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="a.jpg"):
        common.save_figure(fig, tmp_path / "a.jpg")


def test_registration_metrics(tmp_path, registration_summary):
    variants = ["reg-none", "reg-linear", "reg-syn"]
    tests = stats.paired_tests(registration_summary, variants,
                               ["balanced_accuracy", "sensitivity", "specificity"], reference="reg-none")
    png, pdf = tmp_path / "reg.png", tmp_path / "reg.pdf"
    _check_outputs(studies.plot_registration_metrics(registration_summary, tests, png, pdf), png, pdf)
    # without an arm column (arm taken from the variant name) and without tests
    png2 = tmp_path / "reg2.png"
    _check_outputs(studies.plot_registration_metrics(registration_summary.drop(columns="arm"), None, png2),
                   png2, None)


def test_mean_roc_plot(tmp_path):
    diagonal = stats.mean_roc([(np.array([0, 1.0]), np.array([0, 1.0]))] * 3)
    good = stats.mean_roc([(np.array([0, 0, 0.2, 1.0]), np.array([0, 0.7, 0.9, 1.0])),
                           (np.array([0, 0.1, 1.0]), np.array([0, 0.8, 1.0]))])
    png, pdf = tmp_path / "roc.png", tmp_path / "roc.pdf"
    paths = studies.plot_mean_roc({"syn": good, "none": diagonal}, png, pdf,
                                  aucs={"syn": (0.9, 0.05), "none": (0.5, 0.1)})
    _check_outputs(paths, png, pdf)
    with pytest.raises(ValueError, match="at least one"):
        studies.plot_mean_roc({}, png, pdf)


def test_per_split(tmp_path, registration_summary):
    png, pdf = tmp_path / "split.png", tmp_path / "split.pdf"
    _check_outputs(studies.plot_per_split(registration_summary, png, pdf), png, pdf)
    with pytest.raises(ValueError, match="no_such_metric"):
        studies.plot_per_split(registration_summary, png, pdf, metric="no_such_metric")


def _fractions(separated: bool) -> pd.DataFrame:
    rows = []
    for k, name in enumerate(["pp1", "pp2", "pp3", "pp4", "pp5"]):
        for unit in range(8):
            value = (0.9 if (separated and name == "pp1") else 0.4) + 0.01 * unit + 0.001 * k
            for split in range(2):
                rows.append({"set": name, "unit": f"{unit:03d}", "fraction_correct": min(value, 1.0),
                             "split": split, "seed": 0})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("separated", [True, False])
def test_tissue_fractions(tmp_path, separated):
    fractions = _fractions(separated)
    kw, posthoc = stats.kruskal_dscf(fractions)
    assert (posthoc["p_value"] < 0.05).any() == separated  # both branches (brackets / note) are drawn
    png, pdf = tmp_path / "tissue.png", tmp_path / "tissue.pdf"
    _check_outputs(studies.plot_tissue_fractions(fractions, kw, posthoc, png, pdf), png, pdf)


def test_variant_comparison_plot(tmp_path, registration_summary):
    summary = registration_summary[registration_summary["variant"].isin(["reg-none", "reg-syn"])]
    metrics = ["wall_time_s", "epochs_run", "balanced_accuracy"]
    tests = stats.variant_comparison(summary, "reg-none", "reg-syn", metrics)
    png, pdf = tmp_path / "cmp.png", tmp_path / "cmp.pdf"
    paths = studies.plot_variant_comparison(summary, "reg-none", "reg-syn", metrics, tests, png, pdf,
                                            labels={"reg-none": "baseline", "reg-syn": "PIF"})
    _check_outputs(paths, png, pdf)
    with pytest.raises(ValueError, match="reg-xyz"):
        studies.plot_variant_comparison(summary, "reg-none", "reg-xyz", metrics, tests, png, pdf)


def test_render_table_grows_with_rows(tmp_path):
    short = pd.DataFrame({"a_rather_long_column_name": [1.23456, np.nan], "group": ["x", "y"], "n": [3, 4]})
    png, pdf = tmp_path / "short.png", tmp_path / "short.pdf"
    small = _check_outputs(studies.render_table(short, png, pdf, "Short table"), png, pdf)
    long = pd.DataFrame({"metric": [f"m{i}" for i in range(40)], "p_value": np.linspace(0, 1, 40)})
    png2 = tmp_path / "long.png"
    tall = _check_outputs(studies.render_table(long, png2, None, "Long table"), png2, None)
    assert tall.shape[0] > 3 * small.shape[0]
    empty = tmp_path / "empty.png"
    _check_outputs(studies.render_table(short.iloc[:0], empty, None, "Empty"), empty, None)


def test_wrap_header_keeps_every_character():
    wrapped = studies._wrap_header("a_rather_long_column_name", 8)
    assert "\n" in wrapped
    assert wrapped.replace("\n", "") == "a_rather_long_column_name"
    assert max(len(line) for line in wrapped.split("\n")) <= 8
