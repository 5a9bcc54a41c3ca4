"""The workflow as a user runs it: lint, dry runs, a tiny end-to-end run, caching, and recovery
from a run killed in the middle of a job."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import yaml

from conftest import REPO, TINY, TINY_SUBJECTS, digest_tree, run_snakemake, snakemake_cmd
from mrixai.qc.metrics import dice

ARMS = ("none", "linear", "syn")


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a snakemake dry run, as {rule: count}."""
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", output, re.S)
    if not match:
        return {}
    counts = {}
    for line in match.group(1).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def test_lint_is_clean(tmp_path):
    proc = run_snakemake(tmp_path, "--lint", "text", "--cores", "1", check=False)
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr, proc.stdout


def test_snakefmt_is_clean():
    proc = subprocess.run(
        [str(Path(os.sys.executable).parent / "snakefmt"), "--check", str(REPO)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dry_run_of_the_default_config_plans_every_stage(tmp_path):
    proc = run_snakemake(tmp_path, "-n", "--cores", "2")
    counts = job_counts(proc.stdout)
    n = yaml.safe_load((REPO / "config.yaml").read_text())["synthetic"]["n_subjects"]
    assert counts.get("generate_subject") == n
    for rule in ("correct_bias", "strip_skull", "register_affine", "segment_tissue", "register_syn"):
        assert counts.get(rule) == n, (rule, counts)
    assert counts.get("warp_brain_to_template") == n and counts.get("warp_tissue_to_template") == n
    assert counts.get("plot_subject_qc") == n
    assert counts.get("summarize_qc") == 1 and counts.get("write_effect_mask") == 1


def test_dry_run_of_the_default_config_trains_every_study(tmp_path):
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    counts = job_counts(run_snakemake(tmp_path, "-n", "--cores", "2").stdout)
    n_splits, n_repeats = cfg["splits"]["n_splits"], cfg["splits"]["n_repeats"]
    studies = cfg["studies"]
    reps = {s: studies[s].get("n_repeats", n_repeats) for s in studies}
    n_volume = n_splits * (3 * reps["registration"] + 2 * reps["pif"] + 3 * reps["transfer"])
    # The transfer pretraining equals registration's reg-syn runs: shared, not retrained. The PIF
    # baseline trains without flips, like the PIF model, so it is trained for its own study.
    shared = n_splits * reps["transfer"]
    assert counts.get("share_registration_run") == shared
    assert counts.get("train_volume_model") == n_volume - shared
    assert counts.get("train_subimage_model") == n_splits * 5 * reps["tissue"]
    assert counts.get("extract_volumes") == 3 and counts.get("extract_subimages") == 1
    assert counts.get("summarize_study") == 4


PER_SUBJECT_RULES = (
    "generate_subject", "correct_bias", "strip_skull", "register_affine", "segment_tissue", "register_syn",
    "warp_brain_to_template", "warp_tissue_to_template", "plot_subject_qc", "measure_region_volumes",
    "warp_head_to_template",
)  # fmt: skip


@pytest.mark.slow  # plans a 1,000-subject DAG twice (minutes); its time bounds need an idle machine
def test_dry_run_of_1000_subjects_plans_the_whole_dag_in_linear_time(tmp_path):
    """The scale check: every arm, study, split and attribution run of the shipped config for a
    1,000-subject synthetic cohort is planned, and planning grows no faster than the number of jobs.

    The time per planned job is compared with the shipped 48-subject plan timed in the same test (the
    baseline also carries Snakemake's start-up and parsing, so a linear planner is well below 1x: 0.5x
    measured). The wall time itself is checked against a loose bound only: the same plan took 45-58 s on
    one 2-core machine within an hour and 62.7 s on CI, so a 60 s bound failed on machine noise alone
    (benchmarks/dryrun_scale.py prints the times and the ratio)."""
    start = time.perf_counter()
    proc = run_snakemake(tmp_path, "-n", "--quiet", "rules", "--cores", "2", config={"synthetic": {"n_subjects": 1000}})
    seconds = time.perf_counter() - start
    big = job_counts(proc.stdout)
    (tmp_path / "small").mkdir()
    start = time.perf_counter()
    small = job_counts(run_snakemake(tmp_path / "small", "-n", "--quiet", "rules", "--cores", "2").stdout)
    small_seconds = time.perf_counter() - start
    for rule in PER_SUBJECT_RULES:
        assert big.get(rule) == 1000, (rule, big.get(rule))
    # Everything after the per-subject chain (stores, trainings, maps, statistics, figures) is planned
    # once per study, split and run, whatever the cohort size.
    assert {r: c for r, c in big.items() if r not in PER_SUBJECT_RULES} == {
        r: c for r, c in small.items() if r not in PER_SUBJECT_RULES
    }
    per_job, small_per_job = seconds / sum(big.values()), small_seconds / sum(small.values())
    assert per_job < small_per_job, (
        f"planning grew faster than the job count: {1e3 * per_job:.2f} ms a job for 1,000 subjects vs "
        f"{1e3 * small_per_job:.2f} ms for the shipped plan"
    )
    assert seconds < 120, f"the 1,000-subject dry run took {seconds:.1f} s"


@pytest.mark.slow
def test_dry_run_of_the_paper_config(tmp_path):
    cmd = snakemake_cmd(tmp_path, "-n", "--cores", "2")
    i = cmd.index(str(REPO / "config.yaml"))
    cmd.insert(i + 1, str(REPO / "configs" / "paper.yaml"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    # 10 splits x 5 repeats: registration 3 arms, PIF 2 models, transfer 3 variants, of which the
    # transfer pretraining is the registration study's syn run, shared (the PIF baseline trains
    # without flips, so it is not).
    assert counts.get("train_volume_model") + counts.get("share_registration_run") == 10 * (3 * 5 + 2 * 5 + 3 * 5)
    assert counts.get("share_registration_run") == 10 * 5
    assert counts.get("train_subimage_model") == 10 * 5
    assert counts.get("attribute_model") == 10 * 5 * 3 and counts.get("plot_class_maps") == 3


def test_dry_run_of_the_ground_truth_config(tmp_path):
    """configs/groundtruth.yaml: the embedded cohort with a planted signal change, syn arm only, the
    registration study's runs explained and checked against the planted effect; no other study."""
    cmd = snakemake_cmd(tmp_path, "-n", "--cores", "2")
    i = cmd.index(str(REPO / "config.yaml"))
    cmd.insert(i + 1, str(REPO / "configs" / "groundtruth.yaml"))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = job_counts(proc.stdout)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    n_runs = cfg["splits"]["n_splits"] * cfg["splits"]["n_repeats"]
    n = cfg["synthetic"]["n_subjects"]
    assert counts.get("generate_subject") == n and counts.get("register_syn") == n
    assert counts.get("warp_brain_to_template") == n  # one arm: syn
    assert counts.get("train_volume_model") == n_runs and counts.get("attribute_model") == n_runs
    assert counts.get("extract_volumes") == 1 and counts.get("check_ground_truth") == 1
    for absent in ("train_subimage_model", "share_registration_run", "run_masking_study"):
        assert absent not in counts, absent


@pytest.mark.slow
def test_dry_run_plans_the_masking_study_unless_switched_off(tmp_path):
    enabled = yaml.safe_load((REPO / "config.yaml").read_text())["studies"]["masking"]["enabled"]
    counts = job_counts(run_snakemake(tmp_path, "-n", "--cores", "2").stdout)
    assert counts.get("run_masking_study", 0) == int(enabled)
    for switch in (True, False):
        proc = run_snakemake(tmp_path, "-n", "--cores", "2", config={"studies": {"masking": {"enabled": switch}}})
        assert job_counts(proc.stdout).get("run_masking_study", 0) == int(switch)


def test_dry_run_on_the_ixi_sample(tmp_path, ixi_sample):
    proc = run_snakemake(tmp_path, "-n", "--cores", "2", config={"dataset": "bids", "bids_dir": str(ixi_sample)})
    counts = job_counts(proc.stdout)
    assert counts.get("correct_bias") == 60 and counts.get("warp_brain_to_template") == 60, counts
    assert "generate_subject" not in counts
    report = (tmp_path / "results" / "validation" / "report.tsv").read_text().splitlines()
    assert len(report) == 61 and all(line.split("\t")[3] == "ok" for line in report[1:])


def test_a_bad_input_stops_the_run_before_any_job_and_names_the_file(tmp_path, ixi_sample):
    bids = tmp_path / "bids"
    for sub in ("IXI012", "IXI039"):
        src = ixi_sample / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii.gz"
        dst = bids / f"sub-{sub}" / "anat" / src.name
        dst.parent.mkdir(parents=True)
        dst.write_bytes(src.read_bytes())
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-IXI012\t38\nsub-IXI039\t23\n")
    bad = bids / "sub-IXI039" / "anat" / "sub-IXI039_T1w.nii.gz"
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])  # truncated download
    work = tmp_path / "work"
    proc = run_snakemake(work, "--cores", "2", config={"dataset": "bids", "bids_dir": str(bids)}, check=False)
    assert proc.returncode != 0
    assert str(bad) in proc.stderr and "truncated" in proc.stderr.lower()
    assert not (work / "results" / "preproc").exists()  # nothing ran
    # with skip, the good subject goes on and the run says which one was left out and why
    proc = run_snakemake(
        work, "-n", "--cores", "2",
        config={"dataset": "bids", "bids_dir": str(bids), "validation": {"on_error": "skip"}},
    )
    counts = job_counts(proc.stdout)
    assert counts.get("correct_bias") == 1
    assert "skipping IXI039" in proc.stderr and str(bad) in proc.stderr


def test_tiny_run_writes_bids_derivatives_that_match_the_truth(tiny_run):
    res = tiny_run[0] / "results"
    for sub in ("001", "002"):
        pre = res / "preproc" / f"sub-{sub}" / "anat" / f"sub-{sub}"
        truth = res / "synthetic" / "bids" / "derivatives" / "truth" / f"sub-{sub}" / "anat" / f"sub-{sub}"
        for suffix in ("desc-n4_T1w", "desc-brain_mask", "dseg", "label-GM_probseg", "label-CSF_probseg"):
            assert Path(f"{pre}_{suffix}.nii.gz").is_file(), suffix
        n4 = nib.load(f"{pre}_desc-n4_T1w.nii.gz")
        assert nib.aff2axcodes(n4.affine) == ("R", "A", "S")
        # the pipeline's native-space results against the generator's ground truth
        t_mask = nib.as_closest_canonical(nib.load(f"{truth}_desc-brain_mask.nii.gz")).get_fdata() > 0
        t_seg = np.asanyarray(nib.as_closest_canonical(nib.load(f"{truth}_dseg.nii.gz")).dataobj)
        mask = nib.load(f"{pre}_desc-brain_mask.nii.gz").get_fdata() > 0
        seg = np.asanyarray(nib.load(f"{pre}_dseg.nii.gz").dataobj)
        assert mask.shape == t_mask.shape
        assert dice(mask, t_mask) > 0.9
        assert dice(seg == 1, t_seg == 1) > 0.7 and dice(seg == 2, t_seg == 2) > 0.75
        for arm in ARMS:
            tpl = nib.load(f"{pre}_space-template_reg-{arm}_desc-brain_T1w.nii.gz")
            ref = nib.load(next((res / "template").glob("*desc-brain_T1w.nii.gz")))
            assert tpl.shape == ref.shape and np.allclose(tpl.affine, ref.affine)
            assert (res / "qc" / f"sub-{sub}" / f"sub-{sub}_reg-{arm}_desc-registration_qc.png").stat().st_size > 10_000
    for name in ("correct_bias", "strip_skull", "register_syn"):
        bench = res / "benchmarks" / name / "sub-001.tsv"
        assert bench.read_text().startswith("s\t")
    assert (res / "synthetic" / "bids" / "derivatives" / "truth" / "space-template_desc-effect_mask.nii.gz").is_file()


def test_rerun_has_nothing_to_do(tiny_run):
    work, repo = tiny_run
    proc = run_snakemake(work, "-n", "--cores", "2", config=TINY, repo=repo)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_changing_a_parameter_reruns_only_what_it_affects(tiny_run):
    work, repo = tiny_run
    config = {**TINY, "segmentation": {"mrf": 0.2}}
    proc = run_snakemake(work, "-n", "--cores", "2", config=config, repo=repo)
    counts = job_counts(proc.stdout)
    assert counts.get("segment_tissue") == TINY_SUBJECTS
    # only segmentation and what reads it: never N4, skull stripping, registration or generation
    allowed = {"segment_tissue", "warp_tissue_to_template", "plot_subject_qc", "summarize_qc", "all"}
    # template-space tissue maps feed the subimage sets, hence the tissue study (and only it)
    allowed |= {"extract_subimages", "train_subimage_model", "summarize_study", "collect_tissue_fractions",
                "compare_tissue_sets", "plot_tissue_fractions"}
    # native GM maps give the hippocampal volumes of the neurobiological check
    allowed |= {"measure_region_volumes", "correlate_hippocampus", "plot_hippocampus"}
    # the masking study's segmenter learns the native tissue labels
    allowed |= {"run_masking_study"}
    # the classical baseline's features are the GM maps and the regional GM volumes
    allowed |= {"extract_gm_features", "collect_region_volumes", "train_baseline", "summarize_baseline",
                "compare_with_baseline", "plot_registration_metrics"}
    # the claims and the results page are written from those tables
    allowed |= {"write_claims", "write_results_page"}
    # the preprocessing BIDS-derivatives dataset holds the tissue maps
    allowed |= {"export_preproc_derivatives"}
    assert set(counts) <= allowed, counts
    assert "train_volume_model" not in counts and "extract_volumes" not in counts


def test_editing_a_package_module_reruns_its_rules(tiny_run):
    work, repo = tiny_run
    module = repo / "src" / "mrixai" / "preproc" / "register.py"
    original = module.read_text()
    try:
        module.write_text(original + "\n# an edit\n")
        counts = job_counts(run_snakemake(work, "-n", "--cores", "2", config=TINY, repo=repo).stdout)
    finally:
        module.write_text(original)
    assert counts.get("register_syn") == TINY_SUBJECTS and counts.get("register_affine") == TINY_SUBJECTS, counts
    assert "correct_bias" not in counts and "strip_skull" not in counts and "segment_tissue" in counts


# The killed-and-resumed run preprocesses two subjects of the tiny cohort (one SyN job each).
KILLED_UNITS = ("001", "002")


def test_a_killed_run_resumes_and_ends_identical_to_an_uninterrupted_one(tiny_run, tmp_path):
    """SIGKILL during a SyN job, --unlock, --rerun-incomplete: the resumed preprocessing of two of
    the tiny cohort's subjects (the stage that was killed, and where ANTs could make reruns differ)
    is bit-identical to the uninterrupted tiny run's. Later stages are not rerun here: that costs a
    whole second tiny run, and training determinism is tested in test_learning.py."""
    first_work, repo = tiny_run
    work = tmp_path / "killed"
    config = {**TINY, "participant_label": list(KILLED_UNITS)}
    proc = subprocess.Popen(
        snakemake_cmd(work, "--cores", "2", "preprocess", config=config, repo=repo),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    logs = work / "results" / "logs" / "register_syn"
    deadline = time.time() + 600
    try:
        while time.time() < deadline and proc.poll() is None:
            if logs.is_dir() and any(logs.iterdir()):
                time.sleep(1.0)  # the SyN job is now mid-way
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the run ended before a register_syn job started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_job = next(logs.iterdir()).name.replace(".log", "")
    warp = work / "results" / "preproc" / killed_job / "anat" / f"{killed_job}_from-T1w_to-template_mode-image_reg-syn_xfm.nii.gz"
    assert not warp.exists(), "a killed job must not leave its output behind"
    # a killed snakemake leaves its lock: the documented recovery is --unlock, then --rerun-incomplete
    run_snakemake(work, "--unlock", config=config, repo=repo)
    run_snakemake(work, "--cores", "2", "--rerun-incomplete", "preprocess", config=config, repo=repo)
    resumed = digest_tree(work / "results")
    subjects = {part for k in resumed for part in k.split("/") if part.startswith("sub-") and "_" not in part}
    assert subjects == {f"sub-{u}" for u in KILLED_UNITS}, f"participant_label must limit the run to its subjects: {subjects}"
    first = {
        k: v for k, v in digest_tree(first_work / "results").items()
        if k.split("/")[0] in {"preproc", "qc"} and k.split("/")[1] in {f"sub-{u}" for u in KILLED_UNITS}
    }  # fmt: skip
    # every preprocessing and QC file of those subjects in the first run is there again (the
    # regional volume tables in preproc/ belong to the analysis stage, the whole head in template
    # space to the tissue study's samples)
    def later_stage(key):
        return key.endswith("_morph.tsv") or ("_space-template_" in key and key.endswith("_desc-n4_T1w.nii.gz"))

    assert {k for k in first if not later_stage(k)} <= set(resumed)
    first = {k: v for k, v in first.items() if k in resumed}
    assert len(first) >= 20 * len(KILLED_UNITS)
    assert not (work / "results" / "models").exists()  # the resumed run stayed in its stage
    differ = sorted(k for k in first if first[k] != resumed[k])
    assert differ == [], f"outputs differ after resuming: {differ[:10]}"


def test_tiny_run_trains_every_study_without_leakage(tiny_run):
    import pandas as pd
    import torch

    from mrixai.learn.train import load_checkpoint

    res = tiny_run[0] / "results"
    participants = pd.read_csv(res / "synthetic" / "bids" / "participants.tsv", sep="\t")
    labels = pd.read_csv(res / "samples" / "labels.tsv", sep="\t", dtype={"unit": str, "subject": str})
    expected = dict(zip(participants.participant_id.str[4:], participants.diagnosis))
    assert dict(zip(labels.subject, labels.group)) == expected
    splits = pd.read_csv(res / "splits" / "splits.tsv", sep="\t", dtype={"unit": str, "subject": str})
    assert (splits.groupby("subject").partition.nunique() == 1).all()
    test_units = set(splits.loc[splits.partition == "test", "unit"])
    assert len(test_units) == 2
    variants = {
        "registration": [f"reg-{a}" for a in ARMS],
        "tissue": [f"set-pp{k}" for k in range(1, 6)],
        "pif": ["model-baseline", "model-pif"],
        "transfer": ["init-pretrain", "init-scratch", "init-finetune"],
    }
    for study, names in variants.items():
        summary = pd.read_csv(res / "models" / study / "summary.tsv", sep="\t")
        assert set(summary.variant) == set(names), study
        assert summary.balanced_accuracy.between(0, 1).all() and (summary.epochs_run <= 2).all()
        for name in names:
            run = res / "models" / study / name / "split-0_seed-0"
            ckpt = load_checkpoint(f"{run}_model.pt")
            assert ckpt["epoch"] in (1, 2) and ckpt["versions"]["torch"] == torch.__version__
            pred = pd.read_csv(f"{run}_predictions.tsv", sep="\t", dtype={"unit": str})
            assert set(pred.loc[pred.partition == "test", "unit"]) == test_units
    # Fine-tuning starts from the pretrained model and, as in Eitel et al. 2019, lets every layer
    # re-learn (studies.transfer.freeze_blocks 0): the first block moves, by no more than a few
    # optimiser steps of the learning rate (1e-3) can take it from the pretrained weights.
    pre = load_checkpoint(res / "models/transfer/init-pretrain/split-0_seed-0_model.pt")["state_dict"]
    fine = load_checkpoint(res / "models/transfer/init-finetune/split-0_seed-0_model.pt")["state_dict"]
    first = [k for k in pre if k.startswith("features.0.") and k.endswith("weight")]
    assert first and not any(torch.equal(pre[k], fine[k]) for k in first)
    assert all((pre[k] - fine[k]).abs().max() < 0.05 for k in first)
    assert not all(torch.equal(pre[k], fine[k]) for k in pre if k.startswith("classifier."))
    # Transfer's target runs trained on 1 participant per group; the pretraining on all 4.
    runs = pd.read_csv(res / "models" / "transfer" / "summary.tsv", sep="\t").set_index("variant")
    assert runs.loc["init-scratch", "n_train"] == 2 and runs.loc["init-pretrain", "n_train"] == 4
    fractions = pd.read_csv(res / "models" / "tissue" / "fractions.tsv", sep="\t", dtype={"unit": str})
    assert set(fractions.unit) == test_units and fractions.fraction_correct.between(0, 1).all()
    assert (fractions.n_slices == 2).all()  # 8 mm at 2 mm = 4 slices, every second one


def test_tiny_run_explains_every_registration_run(tiny_run):
    import pandas as pd

    work, repo = tiny_run
    res = work / "results"
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["attribution"]
    splits = pd.read_csv(res / "splits" / "splits.tsv", sep="\t", dtype={"unit": str})
    test_units = sorted(splits.loc[splits.partition == "test", "unit"])
    grid = yaml.safe_load((res / "samples" / "reg-syn_desc-volumes.json").read_text())
    # The registered arms' stores are cut inside the template brain mask (samples.volumes.template_mask).
    masked = yaml.safe_load((REPO / "config.yaml").read_text())["samples"]["volumes"]["template_mask"]
    for arm in ARMS:
        meta = yaml.safe_load((res / "samples" / f"reg-{arm}_desc-volumes.json").read_text())
        assert (meta["mask"] is not None) == (arm in masked), arm
        if meta["mask"]:
            store = np.load(res / "samples" / f"reg-{arm}_desc-volumes.npy", mmap_mode="r")
            assert Path(meta["mask"]).name.endswith("desc-brain_mask.nii.gz") and (np.asarray(store[0]) != 0).any()
    for arm in ARMS:
        folder = res / "attribution" / "registration" / f"reg-{arm}" / "split-0_seed-0"
        table = pd.read_csv(folder / "index.tsv", sep="\t", dtype={"unit": str})
        assert sorted(table.unit.unique()) == test_units and set(table.method) == set(cfg["methods"])
        img = nib.load(folder / f"sub-{test_units[0]}_method-lrpeps_attribution.nii.gz")
        assert list(img.shape) == grid["grid"] and np.allclose(img.affine, grid["affine"])
        assert np.isfinite(img.get_fdata()).all()
    log = (res / "logs" / "attribute_model" / "registration" / "reg-syn" / "split-0_seed-0.log").read_text()
    assert "forward passes" in log  # occlusion reports how many batched passes it made


FIGURES = ["qc_montage", "registration_metrics", "registration_roc", "registration_splits", "tissue_fractions",
           "pif_comparison", "transfer_comparison"]
VARIANT_FIGURES = ["class-maps", "outcome-maps", "run-maps", "top-regions", "beta-overlap", "hippocampus",
                   "robustness-l2", "robustness-topk", "randomisation", "enrichment"]


def test_tiny_run_regenerates_every_figure_and_the_report(tiny_run, tmp_path):
    import pandas as pd

    from mrixai.report import find_chromium, is_blank, report_captions, report_figures, screenshot_report

    work, repo = tiny_run
    res = work / "results"
    names = FIGURES + [f"registration_reg-{arm}_{kind}" for arm in ARMS for kind in VARIANT_FIGURES]
    for name in names:
        png, pdf = res / "figures" / f"{name}.png", res / "figures" / f"{name}.pdf"
        assert png.is_file() and pdf.is_file(), name
        assert not is_blank(png) and pdf.read_bytes()[:5] == b"%PDF-", name
    # The statistics behind them: two repeats per split give one pair of runs for the robustness tables.
    l2 = pd.read_csv(res / "stats" / "registration" / "reg-syn_robustness-l2.tsv", sep="\t")
    methods = yaml.safe_load((REPO / "config.yaml").read_text())["attribution"]["methods"]
    assert set(l2.method) == set(methods) and (l2.l2 >= 0).all()
    rand = pd.read_csv(res / "stats" / "registration" / "reg-syn_randomisation.tsv", sep="\t")
    assert rand.spearman.between(-1, 1).all()
    # The results page is written from those tables: the registration headline equals the summary's mean.
    page = (res / "results.md").read_text()
    summary = pd.read_csv(res / "models" / "registration" / "summary.tsv", sep="\t")
    syn_mean = summary.loc[summary.variant == "reg-syn", "balanced_accuracy"].mean()
    syn_row = next(line for line in page.splitlines() if line.startswith("| reg-syn |"))
    assert f"| {syn_mean:.3f} |" in syn_row
    assert "results/stats/registration/reg-syn_randomisation.tsv" in page
    from mrixai import __version__

    assert f"- **code**: mrixai {__version__}" in page  # the copied workflow is no git checkout: no commit
    report = tmp_path / "report.html"
    run_snakemake(work, "--report", str(report), config=TINY, repo=repo)
    embedded = set(report_figures(report))
    missing = sorted(f"{n}.png" for n in names if f"{n}.png" not in embedded)
    assert "results.md" in report_figures(report, mime_prefixes=("",)), "the results page is missing from the report"
    assert missing == [], f"figures missing from the report: {missing}"
    captions = report_captions(report)
    for name in names:
        text = captions[f"{name}.png"]
        assert "results/" in text and "{{" not in text, (name, text)  # names its source files, templates filled
    try:
        find_chromium()
    except FileNotFoundError as err:
        pytest.skip(f"report built and checked; no screenshot: {err}")
    shot = screenshot_report(report, tmp_path / "report.png", show="registration_reg-syn_top-regions.png")
    assert not is_blank(shot)
