"""The BIDS-App command ``mrixai BIDS_DIR OUTPUT_DIR participant|group``.

What a BIDS-App user relies on: the usual arguments and errors, the analysis levels mapping to the
right stage, input selection by label, and every file landing under OUTPUT_DIR (nothing written
into the BIDS dataset or the workflow's folder).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import IXI_SUBJECTS, listing
from test_validate import volume, write

from mrixai.cli import main, snakemake_arguments

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src"), "PYTHONUNBUFFERED": "1"}


def make_bids(
    root: Path, subjects=("01", "02", "03"), extra: dict[str, np.ndarray] | None = None
) -> Path:
    """A tiny valid BIDS dataset: one 24^3 2 mm T1w per subject and a participants.tsv."""
    for i, s in enumerate(subjects):
        write(root / f"sub-{s}/anat/sub-{s}_T1w.nii.gz", volume((24, 24, 24), seed=i))
    for rel, data in (extra or {}).items():
        write(root / rel, data)
    rows = [
        f"sub-{s}\t{30 + 20 * i}\t{'FM'[i % 2]}\t{'CN' if i % 2 else 'AD'}"
        for i, s in enumerate(subjects)
    ]
    (root / "participants.tsv").write_text(
        "participant_id\tage\tsex\tdiagnosis\n" + "\n".join(rows) + "\n"
    )
    (root / "dataset_description.json").write_text('{"Name": "tiny", "BIDSVersion": "1.8.0"}\n')
    return root


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the command as a user would, in its own process, from ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "mrixai.cli", *args],
        cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def job_counts(stdout: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake dry run."""
    table = stdout.split("Job stats:", 1)[1].split("Reasons:", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


# --- help, version, argument errors ---------------------------------------------------------


def test_help_names_the_levels_and_options(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for word in ("BIDS_DIR", "OUTPUT_DIR", "participant", "group", "--participant-label",
                 "--exclude-participant-label", "--cores", "--profile", "--configfile", "--dry-run"):  # fmt: skip
        assert word in text


def test_version_is_the_package_version(capsys):
    expected = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"mrixai {expected}"


def test_console_script_is_declared():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"mrixai": "mrixai.cli:main"}


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required"),
        (["{bids}", "{out}", "sideways"], "invalid choice: 'sideways'"),
        (["{tmp}/nothing", "{out}", "participant"], "nothing: folder not found"),
        (["{tmp}", "{out}", "participant"], "no participants.tsv"),
        (["{bids}", "{bids}", "participant"], "would contain BIDS_DIR"),
        (["{bids}", "{tmp}", "participant"], "would contain BIDS_DIR"),
        (["{bids}", "{out}", "participant", "--participant-label", "../x"], "'../x' is not a BIDS subject label"),
        (["{bids}", "{out}", "participant", "--participant-label", "01", "--exclude-participant-label", "sub-01"],
         "both included and excluded: 01"),
        (["{bids}", "{out}", "participant", "--cores", "0"], "--cores must be a positive integer"),
        (["{bids}", "{out}", "participant", "--profile", "nowhere"], "--profile 'nowhere': neither a folder"),
        (["{bids}", "{out}", "participant", "--configfile", "{tmp}/no.yaml"], "no.yaml: file not found"),
    ],
)  # fmt: skip
def test_argument_errors_name_the_problem(tmp_path, capsys, args, message):
    bids = make_bids(tmp_path / "bids", subjects=("01",))
    fill = {"bids": str(bids), "out": str(tmp_path / "out"), "tmp": str(tmp_path)}
    with pytest.raises(SystemExit) as exc:
        main([a.format(**fill) for a in args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_levels_map_to_targets_and_settings(tmp_path):
    bids = make_bids(tmp_path / "bids", subjects=("01",))
    user_cfg = tmp_path / "mine.yaml"
    user_cfg.write_text("seed: 3\n")
    sm, files, config = snakemake_arguments(
        [str(bids), "out", "participant", "--participant-label", "sub-01", "--cores", "2",
         "--configfile", str(user_cfg), "--", "--keep-going"]  # fmt: skip
    )
    assert sm[-2:] == ["--", "preprocess"]
    assert sm[sm.index("--directory") + 1] == str(Path("out").resolve())
    assert sm[sm.index("--snakefile") + 1] == str(REPO / "Snakefile")
    assert sm[sm.index("--cores") + 1] == "2"
    assert "--keep-going" in sm
    assert files == [str(REPO / "config.yaml"), str(user_cfg)]
    assert config == ['dataset="bids"', f'bids_dir="{bids}"', 'participant_label=["01"]']
    sm, _, _ = snakemake_arguments([str(bids), "out", "group", "--profile", "local"])
    assert sm[-2:] == ["--", "all"]
    assert sm[sm.index("--profile") + 1] == str(REPO / "profiles" / "local")
    assert "--cores" not in sm  # the profile says how many


# --- dry runs on a tiny dataset -------------------------------------------------------------


def test_dry_run_plans_preprocess_under_output_dir(tmp_path):
    bids = make_bids(tmp_path / "bids")
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    before = {"repo": listing(REPO), "bids": listing(bids), "cwd": listing(cwd)}
    proc = cli(
        str(bids), "out", "participant", "--dry-run", "--participant-label", "01", "03", cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout)
    # two subjects' preprocessing and QC, one group QC table, nothing from the learning stages
    assert counts["correct_bias"] == 2 and counts["plot_subject_qc"] == 2
    assert counts["summarize_qc"] == 1 and counts["preprocess"] == 1
    assert not {"make_labels", "train_volume_model", "all"} & set(counts)
    assert "sub-01_desc-n4_T1w" in proc.stdout and "sub-03_desc-n4_T1w" in proc.stdout
    assert "sub-02_" not in proc.stdout
    # every planned output and log is relative, i.e. under OUTPUT_DIR (the run's --directory)
    planned = re.findall(r"^\s+(?:output|log|benchmark): (.+)$", proc.stdout, re.M)
    paths = [p.strip() for line in planned for p in line.split(",")]
    assert paths and all(not p.startswith(("/", "..")) for p in paths), paths
    out = cwd / "out"
    assert (out / ".snakemake").is_dir() and (
        out / "results" / "validation" / "report.tsv"
    ).is_file()
    # nothing written anywhere else: not in the dataset, the workflow folder or the caller's folder
    assert listing(bids) == before["bids"]
    assert listing(REPO) == before["repo"]
    assert listing(cwd) - before["cwd"] == {p for p in listing(cwd) if p.split("/")[0] == "out"}


def test_dry_run_group_level_and_exclusion(tmp_path):
    bids = make_bids(tmp_path / "bids", subjects=("01", "02", "03", "04"))
    proc = cli(str(bids), str(tmp_path / "out"), "group", "-n", "--exclude-participant-label", "02",
               cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    counts = job_counts(proc.stdout)
    assert counts["correct_bias"] == 3 and counts["make_labels"] == 1 and counts["all"] == 1
    assert "sub-02_" not in proc.stdout


def test_two_runs_stop_the_run_before_any_job(tmp_path):
    bids = make_bids(
        tmp_path / "bids", subjects=("01", "02"),
        extra={"sub-02/anat/sub-02_run-2_T1w.nii.gz": volume((24, 24, 24), seed=9)},
    )  # fmt: skip
    (bids / "sub-02/anat/sub-02_T1w.nii.gz").rename(bids / "sub-02/anat/sub-02_run-1_T1w.nii.gz")
    proc = cli(str(bids), str(tmp_path / "out"), "participant", "-n", cwd=tmp_path)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "sub-02" in text and "bids_filters.run" in text
    assert "sub-02_run-1_T1w.nii.gz" in text and "sub-02_run-2_T1w.nii.gz" in text
    assert not (tmp_path / "out" / "results" / "preproc").exists()
    # the filter decides, through a user config file
    cfg = tmp_path / "runs.yaml"
    cfg.write_text("bids_filters:\n  run: 2\n")
    proc = cli(str(bids), str(tmp_path / "out"), "participant", "-n", "--participant-label", "02",
               "--configfile", str(cfg), cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert job_counts(proc.stdout)["correct_bias"] == 1
    assert "sub-02_run-2_T1w.nii.gz" in proc.stdout and "sub-02_run-1_T1w" not in proc.stdout


# --- a real participant-level run on the shared IXI sample ----------------------------------


@pytest.mark.slow
@pytest.mark.shared
def test_participant_run_on_ixi_sample_writes_only_under_output_dir(ixi_participant_run):
    """``mrixai IXI OUT participant --participant-label ...`` run from a scratch folder (the session
    fixture in conftest.py): preprocessing and QC of exactly the selected subjects, under OUT."""
    run = ixi_participant_run
    out, labels = run["out"], IXI_SUBJECTS
    for s in labels:
        anat = out / "results" / "preproc" / f"sub-{s}" / "anat"
        assert (anat / f"sub-{s}_desc-brain_mask.nii.gz").is_file()
        assert (anat / f"sub-{s}_space-template_reg-syn_desc-brain_T1w.nii.gz").is_file()
    qc = (out / "results" / "qc" / "group_qc.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in qc[1:]) == sorted(labels)
    assert sorted(p.name for p in (out / "results" / "preproc").glob("sub-*")) == [f"sub-{s}" for s in sorted(labels)]
    assert (out / ".snakemake" / "log").is_dir()
    assert run["after"]["bids"] == run["before"]["bids"]
    assert run["after"]["repo"] == run["before"]["repo"]
    # the scratch folder the command ran from holds OUT alone
    assert sorted(p.name for p in run["cwd"].iterdir()) == ["OUT"]
