"""Shared helpers: running the workflow in a scratch directory, and the shared IXI sample."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
IXI_SAMPLE = (REPO / ".." / "shared" / "data" / "ixi_sample").resolve()
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake_cmd(workdir: Path, *args: str, config: dict | None = None, repo: Path = REPO) -> list[str]:
    """A snakemake command on ``repo``'s Snakefile, run in ``workdir`` with an extra config."""
    cmd = [*SNAKEMAKE, "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--configfile", str(repo / "config.yaml")]
    if config:
        extra = workdir / "test_config.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        extra.write_text(yaml.safe_dump(config))
        cmd += [str(extra)]
    return cmd + list(args)


def shipped_training(**overrides) -> dict:
    """config.yaml's `training` block (every training setting) with ``overrides``."""
    return {**yaml.safe_load((REPO / "config.yaml").read_text())["training"], **overrides}


def shipped_train_config(model: str = "boehle3d", **overrides):
    """A TrainConfig of ``model`` with config.yaml's training settings and ``overrides``."""
    from mrixai.learn.train import TrainConfig

    return TrainConfig(model=model, **shipped_training(**overrides))


def run_snakemake(
    workdir: Path, *args: str, config: dict | None = None, timeout: int = 900, check=True, repo: Path = REPO
):
    """Run snakemake; on failure show its output (and job logs) in the assertion message."""
    proc = subprocess.run(
        snakemake_cmd(workdir, *args, config=config, repo=repo),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    if check and proc.returncode != 0:
        logs = ""
        for log in sorted((workdir / "results" / "logs").rglob("*.log"))[-5:]:
            logs += f"\n--- {log}\n{log.read_text()[-3000:]}"
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-6000:]}{logs}")
    return proc


def digest_tree(root: Path, patterns=("*.nii.gz", "*.mat", "*.tsv", "*.json")) -> dict[str, str]:
    """sha256 of every output file under ``root`` matching ``patterns``, by relative path."""
    out = {}
    for pattern in patterns:
        for path in root.rglob(pattern):
            if "benchmarks" in path.parts or "logs" in path.parts:
                continue
            if path.name.endswith(("_history.tsv", "_metrics.json")) or path.name == "summary.tsv":
                continue  # these record wall-clock times
            out[str(path.relative_to(root))] = hashlib.sha256(_timeless_bytes(path)).hexdigest()
    return out


def _timeless_bytes(path: Path) -> bytes:
    """The file's bytes, less the rows of a per-metric TSV that measure wall-clock time (the PIF and
    transfer comparisons): those differ between any two runs, everything else must not."""
    data = path.read_bytes()
    if path.suffix != ".tsv":
        return data
    lines = data.decode().splitlines(keepends=True)
    header = lines[0].rstrip("\n").split("\t") if lines else []
    if "metric" not in header:
        return data
    col = header.index("metric")
    kept = [line for line in lines[1:] if not line.split("\t")[col].startswith("wall_time")]
    return "".join(lines[:1] + kept).encode()


#: Fixtures that run the workflow end to end (minutes each): every test that uses one is marked
#: ``slow``, so ``-m "not slow"`` leaves out the whole run and not only the tests that say so.
END_TO_END_FIXTURES = frozenset({"tiny_run", "ixi_run", "ixi_participant_run", "slurm", "slurm_run"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ixi_sample() -> Path:
    if not IXI_SAMPLE.is_dir():
        pytest.skip(f"../shared/data/ixi_sample not found (looked in {IXI_SAMPLE}); tests on real data skipped")
    return IXI_SAMPLE


#: Four subjects of the IXI sample (young and old, both sexes) that no default was tuned on: the
#: segmentation defaults were chosen on IXI012, IXI039, IXI105, IXI211 and IXI566.
IXI_SUBJECTS = ["IXI049", "IXI137", "IXI436", "IXI600"]


def listing(root: Path) -> set[str]:
    """Every file and folder under ``root`` (relative), less Python's and pytest's caches."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ("__pycache__", ".pytest_cache")]
        rel = Path(dirpath).relative_to(root)
        out.update(str(rel / n) for n in dirnames + filenames)
    return out


@pytest.fixture(scope="session")
def ixi_participant_run(tmp_path_factory, ixi_sample) -> dict:
    """The BIDS-App participant level on four IXI subjects, as a user types it, run from a scratch
    folder: ``mrixai IXI OUT participant --participant-label ...``. Returns the output folder and
    the listings of the repository and the BIDS dataset before and after the run."""
    cwd = tmp_path_factory.mktemp("ixi_participant")
    out = cwd / "OUT"
    before = {"repo": listing(REPO), "bids": listing(ixi_sample)}
    proc = subprocess.run(
        [sys.executable, "-m", "mrixai.cli", str(ixi_sample), str(out), "participant",
         "--participant-label", *IXI_SUBJECTS, "--cores", "2"],
        cwd=cwd, capture_output=True, text=True, timeout=3000,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-6000:]
    after = {"repo": listing(REPO), "bids": listing(ixi_sample)}
    return {"out": out, "cwd": cwd, "before": before, "after": after}


# The tiny synthetic configuration the end-to-end tests share, layered over config.yaml: 8 subjects
# (4 CN, 4 AD), all three arms, every study trained for 2 epochs on one split. It is a file a user
# can run by hand too: snakemake --cores 2 --configfile config.yaml configs/tiny.yaml --directory runs/tiny
TINY_CONFIG = REPO / "configs" / "tiny.yaml"
TINY = yaml.safe_load(TINY_CONFIG.read_text())
TINY_SUBJECTS = TINY["synthetic"]["n_subjects"]


def copy_workflow(dst: Path) -> Path:
    """A copy of the workflow's sources (not results, not the venv) that a test may edit."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "config.yaml", "requirements.txt"):
        shutil.copy2(REPO / name, dst / name)
    for folder in ("rules", "envs", "scripts", "src", "profiles", "report"):
        shutil.copytree(REPO / folder, dst / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dst


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """One uninterrupted run of the default workflow on the tiny synthetic cohort, from a copy of
    the workflow (so tests may edit its code); returns (workdir, workflow copy)."""
    base = tmp_path_factory.mktemp("tiny")
    repo = copy_workflow(base / "workflow")
    workdir = base / "work"
    run_snakemake(workdir, "--cores", "2", config=TINY, repo=repo)
    return workdir, repo


@pytest.fixture(scope="session")
def tiny_volume_run(tmp_path_factory):
    """A 3D CNN trained 2 epochs on 16 noise volumes (12x14x12, 4 mm), the AD half with a brighter
    3x3x3 cube: the volume store (v.npy/.tsv/.json), splits and the run's outputs, for the tests of
    the maps and the checks drawn from them. Returns (folder, run outputs, store affine)."""
    import json

    import numpy as np
    import pandas as pd

    from mrixai.learn.run import train_on_volumes
    from mrixai.learn.splits import make_splits

    tmp = tmp_path_factory.mktemp("run")
    rng = np.random.default_rng(0)
    n, shape = 16, (12, 14, 12)
    x = rng.normal(0, 1, (n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 6:9, 4:7, 4:7] += 2.0
    units = [f"{i:02d}" for i in range(n)]
    np.save(tmp / "v.npy", x)
    pd.DataFrame({"row": range(n), "unit": units, "subject": units, "arm": "syn"}).to_csv(
        tmp / "v.tsv", sep="\t", index=False
    )
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    (tmp / "v.json").write_text(json.dumps({"affine": affine.tolist(), "grid": list(shape)}))
    labels = pd.DataFrame({"unit": units, "subject": units, "group": np.where(y == 1, "AD", "CN"), "label": y,
                           "sex": "F", "age": 70})
    make_splits(labels, 1, seed=0).to_csv(tmp / "splits.tsv", sep="\t", index=False)
    out = {k: tmp / f"run_{k}" for k in ("model", "history", "predictions", "metrics")}
    cfg = shipped_train_config(max_epochs=2, device="cpu")
    train_on_volumes(
        tmp / "v.npy", tmp / "v.tsv", tmp / "splits.tsv", 0, 0, cfg, out, run_info={"study": "registration"}
    )
    return tmp, out, affine
