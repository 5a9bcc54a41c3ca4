"""The SLURM profile on a real scheduler: a private one-node cluster (slurm_cluster.py) runs the
tiny workflow from raw data to a trained CNN (generation, N4, skull stripping, linear and SyN
registration, labels, splits, the volume store and the registration study's training) through
`--profile profiles/slurm`, one SLURM job per Snakemake job, survives a job cancelled with
scancel mid-run, and a second invocation schedules nothing.

Needs root and Debian's slurm-wlm and munge (`.ci/run` installs them); skipped without them,
except under CI=true, where a missing SLURM is a failure."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import TINY, copy_workflow, run_snakemake, snakemake_cmd
from slurm_cluster import SlurmCluster, missing_requirements

pytestmark = pytest.mark.slow

# Six subjects (the fewest that give every partition both groups) through what one CNN training of
# the registration study needs (syn arm, one split, one seed, 2 epochs): the tiny workflow's `train`
# target, 45 jobs. Tissue segmentation, QC and the other studies are off here (they add
# jobs of the same kind and minutes of run time); the local tiny run (test_workflow.py) covers them.
SUBJECTS = 6
CONFIG = copy.deepcopy(TINY)
CONFIG["synthetic"]["n_subjects"] = SUBJECTS
CONFIG["splits"].update({"n_repeats": 1, "test_fraction": 0.34, "val_fraction": 0.5})
CONFIG["studies"] = {
    "registration": {"enabled": True, "arms": ["syn"]},
    "tissue": {"enabled": False},
    "pif": {"enabled": False},
    "transfer": {"enabled": False},
    "masking": {"enabled": False},
}
TARGETS = ("train",)
# Rules long enough (tens of seconds) to be cancelled while running.
CANCEL_RULES = ("register_syn", "strip_skull", "register_affine", "correct_bias")
# Test-only plugin settings: keep the per-job logs of successful jobs (checked below) and poll
# the first job states after 2 s rather than 40 s.
TEST_ARGS = ("--slurm-keep-successful-logs", "--slurm-init-seconds-before-status-checks", "2")


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """A running private SLURM cluster; SLURM_CONF points at it for the module's duration."""
    reason = missing_requirements()
    if reason:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the SLURM tests, but: {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    cluster.start()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SLURM_CONF", str(cluster.conf))
            yield cluster
    finally:
        cluster.stop()


def planned_jobs(output: str) -> list[tuple[str, str]]:
    """(rule, wildcard values joined by '_') of every job a dry run lists, as the SLURM plugin
    names them in each job's comment (`rule_<rule>[_wildcards_<values>]`)."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\]\n(?:local)?rule )", output):
        m = re.search(r"^(local)?rule (\w+):", block, re.M)
        # local rules, and target rules with nothing to run (no output), stay in Snakemake's process
        if not m or m.group(1) or not re.search(r"^\s+output: ", block, re.M):
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        values = [kv.split("=", 1)[1] for kv in wc.group(1).split(", ")] if wc else []
        jobs.append((m.group(2), "_".join(values).replace("/", "_")))
    return jobs


def comment(rule: str, wildcards: str) -> str:
    return f"rule_{rule}_wildcards_{wildcards}" if wildcards else f"rule_{rule}"


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    """The profile's run up to the trained CNN, with one running job cancelled by scancel;
    returns (workdir, profile, planned jobs, snakemake's log, the cancelled SLURM job ID, seconds)."""
    base = tmp_path_factory.mktemp("slurm_run")
    repo = copy_workflow(base / "workflow")
    workdir = base / "work"
    profile = repo / "profiles" / "slurm"
    dry = run_snakemake(workdir, "-n", "--profile", str(profile), *TARGETS, config=CONFIG, repo=repo)
    planned = planned_jobs(dry.stdout + dry.stderr)
    assert len(planned) >= 6 * SUBJECTS, dry.stdout[-3000:]
    assert ("train_volume_model", "registration_reg-syn_0_0") in planned, planned

    cmd = snakemake_cmd(workdir, "--profile", str(profile), *TEST_ARGS, *TARGETS, config=CONFIG, repo=repo)
    log_path = base / "snakemake.log"
    start = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            cancelled = cancel_one_running_job(slurm, proc)
            proc.wait(timeout=1500)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    seconds = time.monotonic() - start
    output = log_path.read_text()
    assert proc.returncode == 0, f"snakemake failed ({proc.returncode}):\n{output[-6000:]}\n{slurm.logs()}"
    return workdir, profile, planned, output, cancelled, seconds


def cancel_one_running_job(cluster: SlurmCluster, proc: subprocess.Popen, timeout: float = 300) -> str:
    """scancel the first job of CANCEL_RULES seen running for 2 s; returns its SLURM job ID once
    SLURM reports it CANCELLED (tries the next one if it finished before the signal landed)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline and proc.poll() is None:
        for job in cluster.jobs():
            rule_ok = any(job["comment"].startswith(f"rule_{r}_") for r in CANCEL_RULES)
            if not rule_ok or job["state"] != "RUNNING":
                continue
            first = seen.setdefault(job["id"], time.monotonic())
            if time.monotonic() - first < 2:
                continue
            cluster.run("scancel", job["id"], check=False)
            for _ in range(40):
                state = {j["id"]: j["state"] for j in cluster.jobs()}.get(job["id"])
                if state not in ("RUNNING", "COMPLETING"):
                    break
                time.sleep(0.25)
            if state == "CANCELLED":
                return job["id"]
        time.sleep(0.5)
    raise AssertionError(f"no job of {CANCEL_RULES} could be cancelled while running: {cluster.jobs()}")


def test_every_job_ran_as_a_slurm_job(slurm, slurm_run):
    workdir, _, planned, output, cancelled, seconds = slurm_run
    print(f"SLURM run of {len(planned)} jobs: {seconds:.0f} s")
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    jobs = {j["id"]: j for j in slurm.jobs()}
    # every SLURM job this run submitted is known to slurmctld, and each ended COMPLETED except the
    # one cancelled on purpose
    assert set(submitted.values()) <= set(jobs), (submitted, jobs)
    for sid in submitted.values():
        assert jobs[sid]["state"] == ("CANCELLED" if sid == cancelled else "COMPLETED"), jobs[sid]
        assert jobs[sid]["name"].startswith("mrixai_"), jobs[sid]  # slurm-jobname-prefix of the profile
    # every planned job has a COMPLETED SLURM job of its own: the comment names its rule and
    # wildcards, and the per-job log (named by the SLURM job ID) holds that job's Snakemake output
    completed = {}
    for sid in submitted.values():
        if jobs[sid]["state"] == "COMPLETED":
            completed.setdefault(jobs[sid]["comment"], []).append(sid)
    for rule, wildcards in planned:
        ids = completed.get(comment(rule, wildcards))
        assert ids and len(ids) == 1, (rule, wildcards, completed)
        logfile = workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}" / wildcards / f"{ids[0]}.log"
        assert logfile.is_file(), logfile
        text = logfile.read_text()
        assert f"rule {rule}:" in text and "Finished job" in text, text[-2000:]
    assert len(completed) == len(planned) and sum(map(len, completed.values())) == len(planned)
    # the rules' own outputs are all there
    for i in range(1, SUBJECTS + 1):
        anat = workdir / "results" / "preproc" / f"sub-{i:03d}" / "anat"
        assert (anat / f"sub-{i:03d}_space-template_reg-syn_desc-brain_T1w.nii.gz").is_file()
        assert (anat / f"sub-{i:03d}_from-T1w_to-template_mode-image_reg-syn_xfm.nii.gz").is_file()
    # ...up to the trained CNN, whose test predictions cover the test partition of the split
    run = workdir / "results" / "models" / "registration" / "reg-syn" / "split-0_seed-0"
    assert Path(f"{run}_model.pt").is_file()
    splits = (workdir / "results" / "splits" / "splits.tsv").read_text().splitlines()
    n_test = sum(line.split("\t")[-1] == "test" for line in splits[1:])
    predictions = Path(f"{run}_predictions.tsv").read_text().splitlines()
    assert n_test >= 2 and sum("\ttest\t" in line for line in predictions) == n_test


def test_a_cancelled_job_is_reported_and_retried(slurm, slurm_run):
    _, _, planned, output, cancelled, _ = slurm_run
    # Snakemake names the cancelled SLURM job and its state...
    assert re.search(rf"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'", output), output[-5000:]
    # ...and the profile's `retries: 1` submits the same job again, which completes
    jobs = slurm.jobs()
    killed = next(j for j in jobs if j["id"] == cancelled)
    again = [j for j in jobs if j["comment"] == killed["comment"] and j["id"] != cancelled]
    assert len(again) == 1 and again[0]["state"] == "COMPLETED" and int(again[0]["id"]) > int(cancelled), again


def test_a_second_invocation_schedules_nothing(slurm, slurm_run):
    workdir, profile, _, _, _, _ = slurm_run
    before = {j["id"] for j in slurm.jobs()}
    proc = run_snakemake(workdir, "--profile", str(profile), *TEST_ARGS, *TARGETS, config=CONFIG, repo=profile.parents[1])
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out, out[-3000:]
    assert "has been submitted with SLURM jobid" not in out
    assert {j["id"] for j in slurm.jobs()} == before
