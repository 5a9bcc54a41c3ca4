"""The conda path, checked statically: envs exist, are pinned, agree with requirements.txt and
provide what each rule's script imports. The broken-copy tests show that the check can fail."""

import re
import shutil
from pathlib import Path

import pytest

from mrixai.envcheck import check_repository, package_modules, parse_env, read_requirements

REPO = Path(__file__).resolve().parents[1]


def test_repository_envs_are_consistent():
    problems = check_repository(REPO)
    assert problems == [], "\n".join(problems)


def test_every_env_is_fully_pinned_and_versions_match_requirements():
    reqs = read_requirements(REPO / "requirements.txt")
    envs = sorted((REPO / "envs").glob("*.yaml"))
    assert envs, "no env files under envs/"
    shared = 0
    for path in envs:
        env = parse_env(path)
        assert env.unpinned == [], f"{path.name}: unpinned {env.unpinned}"
        for name, version in env.pins.items():
            if name in reqs:
                shared += 1
                assert reqs[name] == version, f"{path.name}: {name} {version} != {reqs[name]}"
    assert shared >= 10, "the envs should share most pins with requirements.txt"


@pytest.fixture()
def repo_copy(tmp_path):
    """A copy of the parts of the repository the check reads."""
    dst = tmp_path / "repo"
    for name in ("Snakefile", "requirements.txt"):
        shutil.copy(REPO / name, dst / name if dst.exists() else _mk(dst) / name)
    for folder in ("rules", "envs", "scripts", "src"):
        shutil.copytree(REPO / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def _mk(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def test_check_fails_on_a_pin_that_disagrees(repo_copy):
    env = repo_copy / "envs" / "imaging.yaml"
    env.write_text(env.read_text().replace("nibabel=5.4.2", "nibabel=5.3.0"))
    problems = check_repository(repo_copy)
    assert any("envs/imaging.yaml: nibabel is pinned to 5.3.0" in p for p in problems), problems


def test_check_fails_on_an_unpinned_package(repo_copy):
    env = repo_copy / "envs" / "qc.yaml"
    env.write_text(env.read_text().replace("matplotlib=3.10.9", "matplotlib"))
    problems = check_repository(repo_copy)
    assert any("'matplotlib' is not pinned" in p for p in problems), problems


def test_check_fails_when_an_env_lacks_an_import(repo_copy):
    env = repo_copy / "envs" / "imaging.yaml"
    env.write_text(env.read_text().replace("      - antspyx==0.6.3\n", ""))
    problems = check_repository(repo_copy)
    assert any("rule register_syn" in p and "imports 'ants'" in p for p in problems), problems


def test_check_fails_when_a_script_imports_something_new(repo_copy):
    script = repo_copy / "scripts" / "plot_subject_qc.py"
    script.write_text("import seaborn\n" + script.read_text())
    problems = check_repository(repo_copy)
    assert any("rule plot_subject_qc" in p and "'seaborn'" in p for p in problems), problems


def test_check_fails_when_a_rule_has_no_env(repo_copy):
    rules = repo_copy / "rules" / "qc.smk"
    text = rules.read_text()
    start = text.index("rule summarize_qc:")
    block = text[start:]
    block = re.sub(r"\n    conda:\n        \"[^\"]+\"", "", block, count=1)
    rules.write_text(text[:start] + block)
    problems = check_repository(repo_copy)
    assert any("rule summarize_qc" in p and "no conda" in p for p in problems), problems


def _rule_block(repo_copy, file, rule, next_rule):
    rules = repo_copy / "rules" / file
    text = rules.read_text()
    start, end = text.index(f"rule {rule}:"), text.index(f"rule {next_rule}:")
    return rules, text, start, end


def test_check_fails_when_a_used_module_is_not_tracked(repo_copy):
    rules, text, start, end = _rule_block(repo_copy, "register.smk", "register_affine", "register_syn")
    block = text[start:end].replace('        code=pkg_of("register_affine.py"),\n', "")
    assert block != text[start:end]
    rules.write_text(text[:start] + block + text[end:])
    problems = check_repository(repo_copy)
    assert any("rule register_affine" in p and "preproc/register.py" in p for p in problems), problems


def test_check_fails_when_pkg_of_names_another_script(repo_copy):
    rules, text, start, end = _rule_block(repo_copy, "register.smk", "register_affine", "register_syn")
    block = text[start:end].replace('pkg_of("register_affine.py")', 'pkg_of("summarize_qc.py")')
    assert block != text[start:end]
    rules.write_text(text[:start] + block + text[end:])
    problems = check_repository(repo_copy)
    assert any("rule register_affine" in p and "names another script" in p for p in problems), problems
    assert any("rule register_affine" in p and "preproc/register.py" in p for p in problems), problems


def test_package_modules_follow_imports_through_the_package():
    # scripts/summarize_qc.py imports mrixai.qc.group, which imports mrixai.io, mrixai.qc.canvas
    # (which imports mrixai.io), mrixai.qc.metrics (which imports mrixai.qc.volumes) and
    # mrixai.qc.volumes; and mrixai.workflow (logging only, not tracked). The qc package's
    # __init__ is not a module of its own to track.
    assert package_modules(REPO / "scripts" / "summarize_qc.py", REPO / "src") == [
        "io.py", "qc/canvas.py", "qc/group.py", "qc/metrics.py", "qc/volumes.py",
    ]  # fmt: skip


def test_package_modules_of_a_toy_package(tmp_path):
    pkg = tmp_path / "src" / "mrixai"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from mrixai import b\n")
    (pkg / "b.py").write_text("import numpy\nfrom mrixai.c import f\n")
    (pkg / "c.py").write_text("def f():\n    pass\n")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from mrixai.sub.a import x\n")
    assert package_modules(script, tmp_path / "src") == ["b.py", "c.py", "sub/a.py"]
