"""configs/ixi.yaml: every study on a BIDS dataset of adults, young (age < 35) vs old (age >= 55).

The config must be complete (every key of config.yaml set, so the shipped defaults cannot leak in,
label groups included) and valid; its dry run on a small IXI-like dataset plans every study, and
one subject's preprocessing runs on it. The IXI-like dataset is built from subjects of the shared
IXI sample under other subject IDs (tests that need ../shared skip without it). Also the pieces the
config relies on: the transfer study's synthetic source, the masking study's reference labels and
the label groups taken whole from the last config file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO

IXI_CONFIG = REPO / "configs" / "ixi.yaml"


def _keys(tree: dict, prefix: str = "") -> set[str]:
    out = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict) and key != "groups":
            out |= _keys(value, f"{prefix}{key}.")
    return out


def _merged(base: dict, extra: dict) -> dict:
    """Snakemake's merge of stacked config files: dictionaries key by key, anything else replaced."""
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


# ---- the config file ---------------------------------------------------------------------------
def test_ixi_config_sets_every_key_of_the_shipped_config():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    ixi = yaml.safe_load(IXI_CONFIG.read_text())
    assert _keys(shipped) - _keys(ixi) == set(), "keys config.yaml sets and configs/ixi.yaml leaves to it"
    # so merging it over config.yaml changes nothing but the label groups, which are taken whole
    merged = _merged(shipped, ixi)
    merged["label"]["groups"] = ixi["label"]["groups"]
    assert merged == ixi


def test_ixi_config_is_valid_and_states_the_study_design():
    import jsonschema

    ixi = yaml.safe_load(IXI_CONFIG.read_text())
    schema = yaml.safe_load((REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml").read_text())
    jsonschema.validate(ixi, schema)
    assert ixi["dataset"] == "bids"
    assert ixi["label"] == {"column": "age", "groups": {"young": "age < 35", "old": "age >= 55"},
                            "process_unlabelled": False}
    assert (ixi["splits"]["method"], ixi["splits"]["n_splits"], ixi["splits"]["n_repeats"]) == ("kfold", 5, 2)
    for study in ("registration", "tissue", "pif", "transfer", "masking"):
        assert ixi["studies"][study]["enabled"], study
    for study in ("registration", "transfer", "masking"):
        assert ixi["studies"][study].get("n_repeats", 2) == 2, study
    assert ixi["studies"]["tissue"]["n_repeats"] == 1  # one CNN per set and fold, as published
    assert ixi["studies"]["pif"]["n_repeats"] == 1  # paired over folds
    assert ixi["registration"] == ["none", "linear", "syn"] and ixi["studies"]["tissue"]["sets"] == [
        "pp1", "pp2", "pp3", "pp4", "pp5"]
    assert ixi["studies"]["transfer"]["source"] == "synthetic"
    assert ixi["attribution"]["registration_arms"] == ["syn"] and len(ixi["attribution"]["methods"]) == 11
    assert ixi["analysis"]["hippocampus"]["region"] == "Lateral_Ventricle"
    assert ixi["studies"]["masking"]["reference_labels"] == "derivatives/dlmuse"
    assert ixi["baseline"]["enabled"]


def test_the_age_groups_pick_the_young_and_the_old_and_leave_the_middle_out():
    from mrixai.learn.labels import assign_groups

    label = yaml.safe_load(IXI_CONFIG.read_text())["label"]
    ages = [20.0, 34.99, 35.0, 54.99, 55.0, 80.0]
    participants = pd.DataFrame({"participant_id": [f"sub-{i}" for i in range(6)], "age": ages,
                                 "sex": ["F", "M"] * 3})
    table = assign_groups(participants, [str(i) for i in range(6)], label["column"], label["groups"], min_per_group=1)
    assert dict(zip(table["unit"], table["group"])) == {"0": "young", "1": "young", "4": "old", "5": "old"}
    assert dict(zip(table["unit"], table["label"])) == {"0": 0, "1": 0, "4": 1, "5": 1}  # old: the positive class


# ---- label groups are taken whole from the last config file --------------------------------------
def test_label_groups_come_whole_from_the_last_file_that_names_them(tmp_path):
    from mrixai.configfiles import replace_label_groups

    first, second, third = (tmp_path / f"{n}.yaml" for n in ("a", "b", "c"))
    first.write_text(yaml.safe_dump({"label": {"column": "diagnosis", "groups": {"CN": "x", "AD": "y"}}}))
    second.write_text(yaml.safe_dump({"label": {"column": "age", "groups": {"young": "age < 35", "old": "age >= 55"}}}))
    third.write_text(yaml.safe_dump({"seed": 1}))
    config = {"label": {"column": "age", "groups": {"CN": "x", "AD": "y", "young": "age < 35", "old": "age >= 55"}}}
    assert replace_label_groups(config, [first, second, third, tmp_path / "absent.yaml"]) == {
        "young": "age < 35", "old": "age >= 55"}
    assert config["label"]["groups"] == {"young": "age < 35", "old": "age >= 55"}
    untouched = {"label": {"groups": {"a": 1}}}
    assert replace_label_groups(untouched, [third]) is None and untouched == {"label": {"groups": {"a": 1}}}


# ---- the transfer study's synthetic source -------------------------------------------------------
def test_synthetic_transfer_source_is_a_complete_valid_config_of_its_own():
    import jsonschema

    from mrixai.learn.options import transfer_source_config

    ixi = yaml.safe_load(IXI_CONFIG.read_text())
    source = transfer_source_config(ixi)
    schema = yaml.safe_load((REPO / "src" / "mrixai" / "schemas" / "config.schema.yaml").read_text())
    jsonschema.validate(source, schema)
    assert source["dataset"] == "synthetic" and source["label"]["groups"] == {
        "CN": "diagnosis == 'CN'", "AD": "diagnosis == 'AD'"}
    assert source["registration"] == [ixi["studies"]["transfer"]["source_arm"]]
    assert [s for s, c in source["studies"].items() if c["enabled"]] == ["transfer"]
    transfer = source["studies"]["transfer"]
    assert transfer["source"] == "same" and transfer["source_arm"] == transfer["target_arm"] == "syn"
    assert not source["baseline"]["enabled"] and source["attribution"]["studies"] == []
    # split k, seed s of the source initialises split k, seed s of the fine-tuning
    for key in ("splits", "training", "seed", "resolution_mm", "synthetic"):
        assert source[key] == ixi[key], key
    assert source["samples"]["volumes"]["shape"] == ixi["samples"]["volumes"]["shape"]
    assert ixi["studies"]["transfer"]["source"] == "synthetic", "the input is left as it was"
    with pytest.raises(ValueError, match="studies.transfer.source"):
        transfer_source_config({**ixi, "studies": {"transfer": {"source": "oasis"}}})


# ---- the masking study's reference labels ---------------------------------------------------------
def test_reference_labels_become_an_intracranial_mask_and_a_tissue_map(tmp_path):
    from mrixai.masking.reference import find_reference_dseg, write_reference_labels

    lut = tmp_path / "dseg.tsv"
    pd.DataFrame({"index": [4, 23, 46, 61, 52], "name": ["V3", "Acc", "u46", "WMx", "Ext"],
                  "tissue": ["CSF_ventricle", "GM", "other", "WM", "CSF_extracerebral"]}).to_csv(
        lut, sep="\t", index=False)
    labels = np.zeros((4, 3, 2), dtype=np.int16)
    labels[0, 0, 0], labels[1, 0, 0], labels[2, 0, 0], labels[3, 0, 0], labels[0, 1, 0] = 4, 23, 46, 61, 52
    affine = np.diag([-2.0, 2.0, 2.0, 1.0])
    folder = tmp_path / "ref" / "sub-A1" / "anat"
    folder.mkdir(parents=True)
    nib.save(nib.Nifti1Image(labels, affine), folder / "sub-A1_seg-x_dseg.nii.gz")
    dseg = find_reference_dseg(tmp_path / "ref", "A1")
    counts = write_reference_labels(dseg, lut, tmp_path / "mask.nii.gz", tmp_path / "tissue.nii.gz")
    mask, tissue = (nib.load(tmp_path / f) for f in ("mask.nii.gz", "tissue.nii.gz"))
    assert np.allclose(mask.affine, affine) and np.allclose(tissue.affine, affine)
    expected_mask = np.zeros_like(labels)
    expected_mask[labels > 0] = 1
    expected_tissue = np.zeros_like(labels)
    expected_tissue[0, 0, 0], expected_tissue[1, 0, 0], expected_tissue[3, 0, 0], expected_tissue[0, 1, 0] = 3, 1, 2, 3
    assert np.array_equal(np.asarray(mask.dataobj), expected_mask)
    assert np.array_equal(np.asarray(tissue.dataobj), expected_tissue)  # "other" (46): in the mask, tissue 0
    assert counts == {"brain": 5, "GM": 1, "WM": 1, "CSF": 2}
    with pytest.raises(ValueError, match="no sub-B2_"):
        find_reference_dseg(tmp_path / "ref", "B2")
    nib.save(nib.Nifti1Image(labels, affine), folder / "sub-A1_seg-y_dseg.nii.gz")
    with pytest.raises(ValueError, match="2 sub-A1_"):
        find_reference_dseg(tmp_path / "ref", "A1")
    labels[1, 1, 1] = 99
    nib.save(nib.Nifti1Image(labels, affine), tmp_path / "bad.nii.gz")
    with pytest.raises(ValueError, match=r"label\(s\) \[99\]"):
        write_reference_labels(tmp_path / "bad.nii.gz", lut, tmp_path / "m.nii.gz", tmp_path / "t.nii.gz")
    pd.DataFrame({"index": [1], "tissue": ["bone"]}).to_csv(tmp_path / "badlut.tsv", sep="\t", index=False)
    with pytest.raises(ValueError, match="unknown tissue"):
        write_reference_labels(dseg, tmp_path / "badlut.tsv", tmp_path / "m.nii.gz", tmp_path / "t.nii.gz")


# ---- dry run and preprocessing on a small IXI-like dataset ---------------------------------------
# Four young, three old and one middle-aged subject of the sample (none of them among the subjects
# the segmentation defaults were chosen on), renamed so nothing depends on IXI's IDs.
SAMPLE_SUBJECTS = {"IXI049": "Y1", "IXI080": "Y2", "IXI201": "Y3", "IXI524": "Y4",
                   "IXI437": "O1", "IXI465": "O2", "IXI605": "O3", "IXI137": "M1"}


@pytest.fixture(scope="module")
def ixi_like(tmp_path_factory, ixi_sample):
    """A BIDS folder with 8 subjects of the IXI sample under other IDs (images and DLMUSE labels
    linked, participants.tsv rewritten), and a work folder holding a copy of config.yaml, as the
    repository root does when the documented command runs there."""
    base = tmp_path_factory.mktemp("ixi_like")
    bids = base / "bids"
    participants = pd.read_csv(ixi_sample / "participants.tsv", sep="\t")
    rows = participants.set_index("participant_id").loc[[f"sub-{s}" for s in SAMPLE_SUBJECTS]].reset_index()
    rows["participant_id"] = [f"sub-{SAMPLE_SUBJECTS[p.removeprefix('sub-')]}" for p in rows["participant_id"]]
    rows = rows.drop(columns=[c for c in ("ixi_id",) if c in rows.columns])
    ref = bids / "derivatives" / "dlmuse"
    for old, new in SAMPLE_SUBJECTS.items():
        (bids / f"sub-{new}" / "anat").mkdir(parents=True)
        os.symlink(ixi_sample / f"sub-{old}" / "anat" / f"sub-{old}_T1w.nii.gz",
                   bids / f"sub-{new}" / "anat" / f"sub-{new}_T1w.nii.gz")
        (ref / f"sub-{new}" / "anat").mkdir(parents=True)
        os.symlink(ixi_sample / "derivatives" / "dlmuse" / f"sub-{old}" / "anat" / f"sub-{old}_seg-dlmuse_dseg.nii.gz",
                   ref / f"sub-{new}" / "anat" / f"sub-{new}_seg-dlmuse_dseg.nii.gz")
    shutil.copy(ixi_sample / "dataset_description.json", bids / "dataset_description.json")
    for name in ("dataset_description.json", "dseg.tsv"):
        shutil.copy(ixi_sample / "derivatives" / "dlmuse" / name, ref / name)
    rows.to_csv(bids / "participants.tsv", sep="\t", index=False)
    ages = dict(zip(rows["participant_id"], rows["age"]))
    assert sum(a < 35 for a in ages.values()) == 4 and sum(a >= 55 for a in ages.values()) == 3, ages
    work = base / "work"
    work.mkdir()
    shutil.copy(REPO / "config.yaml", work / "config.yaml")
    return bids, work


def _snakemake(work, bids, *args, timeout=900):
    """The documented command, run in ``work``: only configs/ixi.yaml and bids_dir on the command line."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(IXI_CONFIG), "--config", f"bids_dir={bids}", "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr[-5000:]
    return proc


def _job_counts(stdout: str) -> dict[str, int]:
    """Rule -> jobs, from a dry run's "Job stats" table (the run-time benchmark's parser)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("run_time", REPO / "benchmarks" / "run_time.py")
    run_time = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_time)
    return run_time.pending_counts(stdout)


def test_dry_run_of_the_ixi_config_plans_every_study(ixi_like):
    bids, work = ixi_like
    proc = _snakemake(work, bids, "-n")
    counts = _job_counts(proc.stdout)
    cfg = yaml.safe_load(IXI_CONFIG.read_text())
    folds, seeds, n = cfg["splits"]["n_splits"], cfg["splits"]["n_repeats"], len(SAMPLE_SUBJECTS)
    # the middle-aged subject is in no group: with label.process_unlabelled false it is not processed
    assert cfg["label"]["process_unlabelled"] is False
    for rule in ("correct_bias", "strip_skull", "segment_tissue", "register_syn", "warp_brain_to_template",
                 "convert_reference_labels", "plot_subject_qc"):
        assert counts.get(rule) == n - 1, (rule, counts.get(rule))
    assert "not processed: M1" in proc.stderr
    assert "sub-M1" not in proc.stdout
    # registration 3 arms and transfer scratch + fine-tuning: 5 folds x 2 seeds; PIF 2 models x 5 folds
    assert counts.get("train_volume_model") == folds * seeds * (3 + 2) + folds * 2, counts
    assert counts.get("train_subimage_model") == folds * 1 * 5  # one training per set and fold
    assert "share_registration_run" not in counts
    # the source of the transfer study: the synthetic cohort, preprocessed and pretrained on its own
    assert counts.get("transfer_source_generate_subject") == cfg["synthetic"]["n_subjects"]
    # one pretraining per seed: the source shares no subject with the folds
    assert counts.get("transfer_source_train_volume_model") == seeds
    assert "generate_subject" not in counts
    # attribution on the syn arm only, every method; the restated neurobiological check
    assert counts.get("attribute_model") == folds * seeds and counts.get("aggregate_attribution") == 1
    assert counts.get("correlate_hippocampus") == 1 and counts.get("check_randomisation") == 1
    assert "check_ground_truth" not in counts
    for rule in ("run_masking_study", "summarize_baseline", "compare_with_baseline", "compare_tissue_sets",
                 "compare_registration_arms", "write_claims", "write_results_page"):
        assert counts.get(rule) == 1, rule
    assert counts.get("train_baseline") == folds * len(cfg["baseline"]["features"])


def test_unlabelled_subjects_are_preprocessed_when_asked(ixi_like, tmp_path):
    """label.process_unlabelled: true (config.yaml's value) preprocesses and QCs the middle-aged
    subject as well; it stays out of the labels."""
    bids, work = ixi_like
    cfg = yaml.safe_load(IXI_CONFIG.read_text())
    cfg["label"]["process_unlabelled"] = True
    (tmp_path / "ixi_all.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(tmp_path / "ixi_all.yaml"), "--config", f"bids_dir={bids}", "--cores", "1", "-n",
           "results/preproc/sub-M1/anat/sub-M1_space-template_reg-syn_desc-brain_T1w.nii.gz"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _job_counts(proc.stdout).get("register_syn") == 1 and "not processed" not in proc.stderr


@pytest.mark.slow
def test_preprocessing_of_one_renamed_subject_matches_its_dlmuse_labels(ixi_like):
    from mrixai.evaluation import reference_tissues, score_segmentation

    bids, work = ixi_like
    pre = "results/preproc/sub-O1/anat/sub-O1"
    targets = [f"{pre}_space-template_reg-syn_desc-brain_T1w.nii.gz", f"{pre}_dseg.nii.gz",
               "results/masking/reference/sub-O1/anat/sub-O1_dseg.nii.gz"]
    _snakemake(work, bids, *targets, timeout=1200)
    ref = reference_tissues(bids / "derivatives" / "dlmuse" / "sub-O1" / "anat" / "sub-O1_seg-dlmuse_dseg.nii.gz",
                            bids / "derivatives" / "dlmuse" / "dseg.tsv")
    # the pipeline's skull stripping against DLMUSE's intracranial mask, on the same grid
    scores = score_segmentation(work / f"{pre}_desc-brain_mask.nii.gz", work / f"{pre}_dseg.nii.gz", ref)
    assert scores["dice_brain"] >= 0.9, scores
    # the masking study's reference maps lie on the bias-corrected head's grid (in RAS, as it reads them)
    head = nib.as_closest_canonical(nib.load(work / f"{pre}_desc-n4_T1w.nii.gz"))
    for name in ("desc-brain_mask", "dseg"):
        img = nib.as_closest_canonical(nib.load(work / f"results/masking/reference/sub-O1/anat/sub-O1_{name}.nii.gz"))
        assert img.shape == head.shape and np.allclose(img.affine, head.affine, atol=1e-3), name
    tissue = np.asarray(img.dataobj)
    assert np.array_equal(tissue == 1, ref["GM"]) and np.array_equal(tissue == 2, ref["WM"])


def test_fine_tuning_is_planned_from_the_synthetic_source_pretraining(tmp_path):
    """studies.transfer.source: synthetic on the tiny config (a dry run: the full module run takes
    about half an hour on 2 cores): the pretraining is planned under results/transfer-source/ on the
    synthetic cohort's own subjects and splits, the fine-tuning of every split of this dataset reads
    the one pretraining of its seed (the source shares no subject with this dataset's folds), and this
    dataset plans no pretraining of its own."""
    import re

    from conftest import TINY, run_snakemake

    config = {**TINY, "splits": {**TINY["splits"], "n_splits": 2, "n_repeats": 1},
              "studies": {"transfer": {"source": "synthetic", "target_arm": "syn", "n_train_per_group": 1}}}
    targets = [f"results/models/transfer/init-finetune/split-{k}_seed-0_metrics.json" for k in (0, 1)]
    out = run_snakemake(tmp_path, "-n", "--cores", "2", *targets, config=config).stdout
    counts = _job_counts(out)
    assert counts.get("transfer_source_train_volume_model") == 1 and counts.get("train_volume_model") == 2
    assert counts.get("transfer_source_generate_subject") == TINY["synthetic"]["n_subjects"]
    assert counts.get("transfer_source_make_labels") == 1 and counts.get("transfer_source_make_splits") == 1
    pretrain = "results/transfer-source/results/models/transfer/init-pretrain/split-0_seed-0_model.pt"
    blocks = re.split(r"\n(?=\S*rule )", out)
    finetune = [b for b in blocks if "rule train_volume_model:" in b]
    assert len(finetune) == 2
    for block in finetune:
        assert pretrain in block.split("input:")[1].split("\n")[0]
        assert "wildcards: study=transfer, variant=init-finetune" in block
    assert not re.search(r"(?<!transfer-source/)results/models/transfer/init-pretrain/", out.replace(pretrain, ""))
