"""The results page: headline numbers equal hand computations and every table is traceable to its file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mrixai.results_page import format_value, headline, markdown_table, write_results_page


def _summary() -> pd.DataFrame:
    # variant a: three runs 0.5, 0.75, 1.0 -> mean 0.75; deviations -0.25, 0, 0.25 -> sample SD
    # sqrt(0.125 / 2) = 0.25. variant b: one run -> no SD.
    return pd.DataFrame(
        {
            "variant": ["a", "a", "a", "b"],
            "split": [0, 0, 1, 0],
            "seed": [0, 1, 0, 0],
            "balanced_accuracy": [0.5, 0.75, 1.0, 0.6],
            "roc_auc": [0.5, 1.0, 1.0, 0.7],
        }
    )


def test_headline_mean_sd_and_counts_by_hand():
    table = headline(_summary()).set_index("variant")
    assert table.loc["a", "balanced_accuracy mean"] == pytest.approx(0.75)
    assert table.loc["a", "balanced_accuracy SD"] == pytest.approx(0.25)
    assert table.loc["a", "runs"] == 3 and table.loc["a", "splits"] == 2
    assert table.loc["a", "roc_auc mean"] == pytest.approx(2.5 / 3)
    assert table.loc["b", "runs"] == 1 and np.isnan(table.loc["b", "balanced_accuracy SD"])
    # metrics a summary lacks are left out rather than invented
    assert "sensitivity mean" not in table


def test_headline_needs_variants():
    with pytest.raises(ValueError, match="variant"):
        headline(pd.DataFrame({"balanced_accuracy": [1.0]}))


def test_values_are_formatted_for_reading():
    assert format_value(0.123456) == "0.123"
    assert format_value(3.0) == "3"
    assert format_value(0.00012) == "1.20e-04"
    assert format_value(float("nan")) == ""
    assert format_value("a|b") == "a\\|b"


def test_markdown_table_has_one_line_per_row():
    text = markdown_table(pd.DataFrame({"x": [1, 2], "p": [0.5, 0.25]}))
    lines = text.strip().splitlines()
    assert lines[0] == "| x | p |" and len(lines) == 4
    assert lines[3] == "| 2 | 0.250 |"


def test_page_holds_every_table_under_its_path(tmp_path):
    summary = tmp_path / "summary.tsv"
    _summary().to_csv(summary, sep="\t", index=False)
    stats = tmp_path / "stats.tsv"
    pd.DataFrame({"comparison": ["a vs b"], "p": [0.125], "n": [3], "unit": ["split"]}).to_csv(
        stats, sep="\t", index=False
    )
    out = tmp_path / "page" / "results.md"
    text = write_results_page(out, {"registration": summary}, [stats], context={"seed": 1})
    assert out.read_text() == text
    assert "## registration" in text and f"`{summary}`" in text and f"`{stats}`" in text
    assert "| a vs b | 0.125 | 3 | split |" in text
    assert "**seed**: 1" in text
    # nothing half-written is left beside the page
    assert [p.name for p in out.parent.iterdir()] == ["results.md"]
