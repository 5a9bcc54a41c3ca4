"""The documentation: a short README, a docs site that builds without broken links, and a
configuration page that matches the schema it is generated from."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from mrixai import docs

HAS_MKDOCS = importlib.util.find_spec("mkdocs") is not None
UNDER_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _mkdocs_build(project, site):
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(project / "mkdocs.yml"), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def mkdocs_available():
    if not HAS_MKDOCS:
        if UNDER_CI:
            pytest.fail("mkdocs is not importable under CI: requirements.txt pins it, so setup.sh must install it")
        pytest.skip("mkdocs is not installed in this environment (pip install -r requirements.txt)")


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move long text into docs/"


def test_readme_keeps_the_ci_test_command_and_the_setup():
    """.ci/run runs the README's test command; the README must still show it and the set-up step."""
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = ".venv/bin/python -m pytest workflow_tests -q -rs"
    assert command in ci
    assert command in readme
    assert "bash setup.sh" in readme
    assert '-m "not slow"' in readme


def test_docs_site_builds_strictly_outside_the_repository(tmp_path, mkdocs_available):
    site = tmp_path / "site"
    proc = _mkdocs_build(REPO, site)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for page in ("index.html", "configuration/index.html", "explanations/index.html", "deviations/index.html"):
        assert (site / page).is_file(), page
    assert not (REPO / "site").exists(), "the build must not write into the repository"


def test_docs_build_fails_on_a_broken_link(tmp_path, mkdocs_available):
    """The strict build is a real check: a copy of the site with one dangling link must fail."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(REPO / "docs", project / "docs")
    page = project / "docs" / "troubleshooting.md"
    page.write_text(page.read_text() + "\nSee [a page that does not exist](no-such-page.md).\n")
    proc = _mkdocs_build(project, tmp_path / "site")
    assert proc.returncode != 0
    assert "no-such-page.md" in proc.stderr


def test_readme_links_point_to_existing_files():
    readme = (REPO / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)", readme)
    assert targets, "the README should link to the docs pages"
    local = [t for t in targets if "://" not in t]
    missing = [t for t in local if not (REPO / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_configuration_page_is_up_to_date():
    schema = yaml.safe_load((REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    committed = (REPO / "docs" / "configuration.md").read_text()
    assert committed == docs.render_configuration(schema, config), (
        "docs/configuration.md is stale: run `.venv/bin/python -m mrixai.docs` and commit the page"
    )


def _row(page: str, key: str) -> list[str]:
    lines = [line for line in page.splitlines() if line.startswith(f"| `{key}` |")]
    assert len(lines) == 1, f"{key}: expected one row, found {len(lines)}"
    return [cell.strip() for cell in lines[0].strip("|").split(" | ")]


def test_configuration_page_shows_each_key_with_its_schema_facts_and_shipped_value():
    """Rows read back against values looked up by hand in the schema and config.yaml."""
    page = (REPO / "docs" / "configuration.md").read_text()
    schema = yaml.safe_load((REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml").read_text())
    config = yaml.safe_load((REPO / "config.yaml").read_text())

    key, allowed, absent, value, description = _row(page, "analysis.randomisation.max_spearman")
    node = schema["properties"]["analysis"]["properties"]["randomisation"]["properties"]["max_spearman"]
    assert allowed == f"number in [{node['minimum']}, {node['maximum']}]"
    assert absent == f"`{node['default']}`"
    assert value == f"`{config['analysis']['randomisation']['max_spearman']}`"
    assert description == node["description"]

    key, allowed, absent, value, description = _row(page, "resolution_mm")
    assert allowed == "number in (0, 4]"  # exclusiveMinimum 0, maximum 4
    assert absent == "*required*"
    assert value == f"`{config['resolution_mm']}`"

    key, allowed, absent, value, description = _row(page, "skullstrip.method")
    assert allowed == "`deepbet` \\| `robex` \\| `fsl_bet`"
    assert value == f"`{config['skullstrip']['method']}`"

    # A study's training overrides point at the training section instead of repeating it.
    key, allowed, absent, value, description = _row(page, "studies.tissue.training")
    assert "[`training`](#training)" in allowed
    assert value.startswith("`{batch_size: 64")


def test_every_config_yaml_key_is_on_the_configuration_page():
    """Every key a user sees in config.yaml has a row (a top-level section: a heading)."""
    page = (REPO / "docs" / "configuration.md").read_text()
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    free_maps = {"label.groups", "attribution.methods", "ixi.sha256", "oasis1.sha256"}
    missing = []

    def walk(node, prefix):
        for name, value in node.items():
            key = f"{prefix}{name}"
            top_section = not prefix and isinstance(value, dict)
            if (f"\n## {key}\n" if top_section else f"| `{key}` |") not in page:
                missing.append(key)
            if isinstance(value, dict) and key not in free_maps and not key.endswith(".training"):
                walk(value, key + ".")

    walk(config, "")
    assert not missing, f"keys of config.yaml missing from docs/configuration.md: {missing}"


def test_a_key_without_description_is_refused():
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1}}}
    with pytest.raises(ValueError, match=r"key n has no description"):
        docs.render_configuration(schema, {"n": 3})


def test_markup_in_descriptions_is_escaped():
    """Underscores, stars, angle brackets and pipes must show as typed, not as emphasis or HTML."""
    schema = {
        "type": "object",
        "properties": {"a_b": {"type": "string", "description": "sub-*/<contrast>_x | y"}},
    }
    page = docs.render_configuration(schema, {"a_b": "v"})
    row = next(line for line in page.splitlines() if line.startswith("| `a_b` |"))
    assert row.endswith("| sub-\\*/&lt;contrast&gt;\\_x \\| y |")


def test_no_issue_or_session_numbers_in_the_repository():
    """Work-tracking references (an issue or session with its number) do not belong in the tree."""
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    pattern = re.compile(r"\b([Ii]ssue|[Ss]ession) #?[0-9]+")
    hits = []
    for name in files.splitlines():
        path = REPO / name
        if not path.is_file() or path.suffix in (".svg", ".png", ".pdf", ".gz", ".npy"):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{name}:{n}" for n, line in enumerate(text.splitlines(), 1) if pattern.search(line)]
    assert not hits, f"issue/session references: {hits}"
