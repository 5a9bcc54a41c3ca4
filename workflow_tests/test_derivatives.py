"""The BIDS-derivatives datasets under results/derivatives/ (mrixai.derivatives) and the raw datasets
the project writes, checked with the BIDS validator (bids-validator-deno) where it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mrixai import __version__
from mrixai.derivatives import (
    bids_name,
    bids_path,
    export_attribution,
    export_preproc,
    export_truth,
    res_label,
    unit_entities,
)
from mrixai.templates import TEMPLATE_NAME, TEMPLATEFLOW_TEMPLATE, resolve_template_source, template_id

VALIDATOR = shutil.which("bids-validator-deno") or shutil.which(
    "bids-validator-deno", path=str(Path(sys.executable).parent)
)
needs_validator = pytest.mark.skipif(
    VALIDATOR is None,
    reason="bids-validator-deno is not installed (pip install bids-validator-deno, as in requirements.txt)",
)
ARMS = ["none", "linear", "syn"]
INTERNAL = "{root}/preproc/sub-{{subject}}/anat/sub-{{subject}}"


def validate(root: Path) -> list[dict]:
    """Errors the BIDS validator reports on the dataset at ``root`` (warnings left out)."""
    proc = subprocess.run([VALIDATOR, str(root), "--format", "json"], capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"validator gave no JSON ({proc.returncode}): {proc.stderr[-2000:]}")
    return [i for i in report["issues"]["issues"] if i["severity"] == "error"]


def _image(path: Path, data=None, dtype=np.float32) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.zeros((6, 7, 5), dtype) if data is None else data
    img = nib.Nifti1Image(data.astype(dtype), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.header.set_xyzt_units("mm")
    nib.save(img, path)


def fake_preproc(results: Path, units: list[str], contrast: str = "T1w") -> None:
    """The working files rules/preprocess.smk and rules/register.smk write for ``units`` (tiny images)."""
    for unit in units:
        pre = Path(INTERNAL.format(root=results).format(subject=unit))
        names = [f"desc-n4_{contrast}", "desc-brain_mask", f"desc-brain_{contrast}", "dseg"]
        names += [f"label-{t}_probseg" for t in ("GM", "WM", "CSF")]
        for arm in ARMS:
            names += [f"space-template_reg-{arm}_{s}" for s in (f"desc-brain_{contrast}", "desc-brain_mask", "dseg")]
            names += [f"space-template_reg-{arm}_label-{t}_probseg" for t in ("GM", "WM", "CSF")]
        for name in names:
            _image(Path(f"{pre}_{name}.nii.gz"), dtype=np.uint8 if "dseg" in name or "mask" in name else np.float32)
        for arm in ("none", "linear"):
            Path(f"{pre}_from-{contrast}_to-template_mode-image_reg-{arm}_xfm.mat").write_bytes(b"\x00" * 16)
        for direction in (f"from-{contrast}_to-template", f"from-template_to-{contrast}"):
            _image(Path(f"{pre}_{direction}_mode-image_reg-syn_xfm.nii.gz"), np.zeros((6, 7, 5, 1, 3)))


def fake_raw(bids: Path, units: list[str]) -> dict[str, str]:
    """A raw BIDS dataset with one T1w per unit; returns each unit's image path inside it."""
    bids.mkdir(parents=True, exist_ok=True)
    (bids / "dataset_description.json").write_text(json.dumps({"Name": "raw", "BIDSVersion": "1.10.0"}))
    subjects = sorted({unit_entities(u)["sub"] for u in units})
    (bids / "participants.tsv").write_text("participant_id\n" + "".join(f"sub-{s}\n" for s in subjects))
    paths = {}
    for unit in units:
        rel = bids_path(unit_entities(unit), "T1w")
        _image(bids / rel, np.ones((6, 7, 5)))
        (bids / rel.replace(".nii.gz", ".json")).write_text("{}")
        paths[unit] = rel
    return paths


def prefixes(results: Path, units: list[str]) -> dict[str, str]:
    return {u: INTERNAL.format(root=results).format(subject=u) for u in units}


def export_fake_run(tmp: Path, units: list[str], tpl: str = TEMPLATE_NAME) -> Path:
    raw = fake_raw(tmp / "bids", units)
    fake_preproc(tmp / "results", units)
    root = tmp / "results" / "derivatives" / "mrixai-preproc"
    export_preproc(
        root, prefixes(tmp / "results", units), raw, os.path.relpath(tmp / "bids", root),
        "T1w", ARMS, tpl, 2.0, {"skullstrip": {"method": "deepbet"}}, commit="0" * 40,
    )
    return root


# ---- naming --------------------------------------------------------------------------------------


def test_sessions_are_nested_folders_and_entities_follow_the_bids_order():
    assert unit_entities("01") == {"sub": "01"}
    assert unit_entities("01_ses-2") == {"sub": "01", "ses": "2"}
    ent = {"desc": "syn", "space": "MNI152NLin2009cAsym", "sub": "01", "res": "2mm", "ses": "2", "label": "GM"}
    assert bids_path(ent, "probseg") == (
        "sub-01/ses-2/anat/sub-01_ses-2_space-MNI152NLin2009cAsym_res-2mm_label-GM_desc-syn_probseg.nii.gz"
    )
    assert bids_name({"sub": "01", "from": "T1w", "to": "X", "mode": "image", "desc": "linear"}, "xfm", ".mat") == (
        "sub-01_from-T1w_to-X_mode-image_desc-linear_xfm.mat"
    )
    assert res_label(2) == "2mm" and res_label(1.5) == "1p5mm"


@pytest.mark.parametrize("bad", ["01_ses-", "0-1", "01_run-2", ""])
def test_a_unit_that_is_not_a_bids_label_is_refused_naming_it(bad):
    with pytest.raises(ValueError, match="unit ID"):
        unit_entities(bad)


def test_a_label_with_a_separator_is_refused():
    with pytest.raises(ValueError, match="desc-'reg_syn'"):
        bids_name({"sub": "01", "desc": "reg_syn"}, "T1w")


def test_the_template_id_is_the_template_actually_used(tmp_path):
    # no TemplateFlow cache: nilearn's ICBM152 2009a symmetric copy
    assert template_id(resolve_template_source("auto", tmp_path)) == "MNI152NLin2009aSym"
    folder = tmp_path / "tpl-MNI152NLin2009cAsym"
    folder.mkdir()
    base = "tpl-MNI152NLin2009cAsym_res-01"
    for name in ("T1w", "desc-brain_mask", "label-GM_probseg", "label-WM_probseg", "label-CSF_probseg"):
        (folder / f"{base}_{name}.nii.gz").write_bytes(b"")
    assert template_id(resolve_template_source("auto", tmp_path)) == "MNI152NLin2009cAsym"
    assert template_id(resolve_template_source("nilearn", tmp_path)) == "MNI152NLin2009aSym"
    with pytest.raises(ValueError, match="source"):
        template_id({"source": "mni"})


# ---- the preprocessing dataset ---------------------------------------------------------------------


@pytest.mark.parametrize("units", [["01", "02"], ["01_ses-1", "01_ses-2", "02_ses-1"]], ids=["plain", "sessions"])
def test_preproc_dataset_holds_every_output_as_a_hardlink_with_sidecars(tmp_path, units):
    root = export_fake_run(tmp_path, units, TEMPLATEFLOW_TEMPLATE)
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "mrixai"
    assert description["GeneratedBy"][0]["Version"] == f"{__version__}+g{'0' * 40}"  # the code's commit
    assert (root / description["DatasetLinks"]["raw"] / "dataset_description.json").is_file()
    for unit in units:
        ent = unit_entities(unit)
        anat = root / f"sub-{ent['sub']}" / (f"ses-{ent['ses']}" if "ses" in ent else "") / "anat"
        stem = f"sub-{ent['sub']}" + (f"_ses-{ent['ses']}" if "ses" in ent else "")
        pre = Path(INTERNAL.format(root=tmp_path / "results").format(subject=unit))
        # 7 native images, 6 per arm, 4 transforms: every working file is there once
        images = sorted(p.name for p in anat.glob("*.nii.gz") if "_xfm" not in p.name)
        assert len(images) == 7 + 6 * len(ARMS)
        head = anat / f"{stem}_desc-preproc_T1w.nii.gz"
        assert os.path.samefile(head, f"{pre}_desc-n4_T1w.nii.gz")  # hardlinked, not copied
        syn = anat / f"{stem}_space-MNI152NLin2009cAsym_res-2mm_desc-syn_T1w.nii.gz"
        assert os.path.samefile(syn, f"{pre}_space-template_reg-syn_desc-brain_T1w.nii.gz")
        mask = anat / f"{stem}_space-MNI152NLin2009cAsym_res-2mm_label-brain_desc-linear_mask.nii.gz"
        assert os.path.samefile(mask, f"{pre}_space-template_reg-linear_desc-brain_mask.nii.gz")
        assert json.loads(head.with_name(head.name.replace(".nii.gz", ".json")).read_text())["SkullStripped"] is False
        sidecar = json.loads(syn.with_name(syn.name.replace(".nii.gz", ".json")).read_text())
        assert sidecar["SkullStripped"] is True and sidecar["RegistrationArm"] == "syn"
        # the syn arm's images went through the affine and the warp, and both are in the dataset
        for uri in sidecar["Sources"]:
            assert uri.startswith("bids::") and (root / uri.removeprefix("bids::")).is_file(), uri
        assert any("desc-linear_xfm.mat" in s for s in sidecar["Sources"])
        raw = json.loads((anat / f"{stem}_desc-brain_mask.json").read_text())["RawSources"][0]
        assert (root / description["DatasetLinks"]["raw"] / raw.removeprefix("bids:raw:")).is_file()
        assert (anat / f"{stem}_from-T1w_to-MNI152NLin2009cAsym_mode-image_desc-syn_xfm.nii.gz").is_file()
    assert not list(root.rglob("*template_reg-*")) and not list(root.rglob("*space-template*"))
    dseg = (root / "dseg.tsv").read_text().splitlines()
    assert dseg[1:] == ["1\tGray matter\tGM", "2\tWhite matter\tWM", "3\tCerebrospinal fluid\tCSF"]


def test_a_missing_working_file_is_an_error_naming_it(tmp_path):
    raw = fake_raw(tmp_path / "bids", ["01"])
    fake_preproc(tmp_path / "results", ["01"])
    lost = Path(INTERNAL.format(root=tmp_path / "results").format(subject="01") + "_dseg.nii.gz")
    lost.unlink()
    with pytest.raises(FileNotFoundError, match="sub-01_dseg.nii.gz"):
        export_preproc(tmp_path / "d", prefixes(tmp_path / "results", ["01"]), raw, "..", "T1w",
                       ARMS, TEMPLATE_NAME, 2.0)


@needs_validator
@pytest.mark.parametrize("units", [["01", "02"], ["01_ses-1", "01_ses-2", "02_ses-1"]], ids=["plain", "sessions"])
def test_the_bids_validator_finds_no_error_in_the_preproc_dataset(tmp_path, units):
    root = export_fake_run(tmp_path, units)
    assert validate(root) == []


@needs_validator
def test_the_bids_validator_finds_no_error_in_the_truth_and_attribution_datasets(tmp_path):
    results = tmp_path / "results"
    truth = results / "synthetic" / "bids" / "derivatives" / "truth"
    fake_raw(results / "synthetic" / "bids", ["001", "002"])
    for unit in ("001", "002"):
        _image(truth / f"sub-{unit}" / "anat" / f"sub-{unit}_dseg.nii.gz", dtype=np.uint8)
        _image(truth / f"sub-{unit}" / "anat" / f"sub-{unit}_desc-brain_mask.nii.gz", dtype=np.uint8)
    _image(truth / "space-template_desc-effect_mask.nii.gz", dtype=np.uint8)
    _image(truth / "space-template_desc-plantedregions_mask.nii.gz", dtype=np.uint8)
    root = results / "derivatives" / "mrixai-truth"
    export_truth(root, ["001", "002"], truth, truth / "space-template_desc-effect_mask.nii.gz",
                 truth / "space-template_desc-plantedregions_mask.nii.gz", "../../synthetic/bids", TEMPLATE_NAME, 2.0)
    assert (root / "sub-002" / "anat" / "sub-002_desc-brain_mask.nii.gz").is_file()
    assert (root / "space-MNI152NLin2009aSym_res-2mm_desc-effect_mask.nii.gz").is_file()
    assert validate(root) == []

    means = results / "attribution" / "registration" / "reg-syn_means"
    # the volume store's grid: the 2 mm template grid block-averaged to 4 mm
    means.mkdir(parents=True)
    store_map = nib.Nifti1Image(np.zeros((5, 6, 5), np.float32), np.diag([4.0, 4.0, 4.0, 1.0]))
    nib.save(store_map, means / "method-lrpb0_group-AD_mean.nii.gz")
    (means / "index.tsv").write_text("method\tkind\tname\tn\tfile\nlrpb0\tgroup\tAD\t6\tmethod-lrpb0_group-AD_mean.nii.gz\n")
    attribution = results / "derivatives" / "mrixai-attribution"
    export_attribution(attribution, {"registration/reg-syn": means}, TEMPLATE_NAME, 2.0)
    assert os.path.samefile(
        attribution / "group" / "registration" / "reg-syn"
        / "space-MNI152NLin2009aSym_res-4mm_method-lrpb0_group-AD_mean.nii.gz",
        means / "method-lrpb0_group-AD_mean.nii.gz",
    )
    sidecar = json.loads(next((attribution / "group").rglob("*.json")).read_text())
    assert sidecar["NumberOfMaps"] == 6 and sidecar["Method"] == "lrpb0" and sidecar["Name"] == "AD"
    assert validate(attribution) == []


# ---- the raw datasets the project writes -------------------------------------------------------


@needs_validator
def test_the_bids_validator_finds_no_error_in_the_raw_datasets_the_project_writes(tmp_path):
    from mrixai.synthetic import cohort
    from mrixai.datasets.ixi import convert_ixi
    from mrixai.datasets.oasis import convert_oasis1
    from test_datasets import make_ixi, make_oasis

    # the synthetic cohort as rules/synthetic.smk lays it out (its writers; tiny stand-in images)
    synth = tmp_path / "synthetic" / "bids"
    table = cohort.make_participants(4, 7)
    cohort.write_participants(table, synth / "participants.tsv")
    cohort.write_dataset_description(synth / "dataset_description.json")
    for pid in table["participant_id"]:
        for contrast in ("T1w", "T2w"):
            _image(synth / pid / "anat" / f"{pid}_{contrast}.nii.gz", np.ones((6, 7, 5)))
    # the converters' outputs, from the archives the converter tests build
    make_ixi(tmp_path / "ixi")
    convert_ixi({"T1w": tmp_path / "ixi" / "IXI-T1.tar", "T2w": tmp_path / "ixi" / "IXI-T2.tar"},
                tmp_path / "ixi" / "IXI.csv", tmp_path / "ixi_bids")
    make_oasis(tmp_path / "oasis")
    convert_oasis1([tmp_path / "oasis" / "oasis_cross-sectional_disc1.tar.gz"],
                   tmp_path / "oasis" / "oasis_cross-sectional.csv", tmp_path / "oasis_bids")
    for root in (synth, tmp_path / "ixi_bids", tmp_path / "oasis_bids"):
        assert validate(root) == [], root.name


# ---- the tiny end-to-end run ---------------------------------------------------------------------


@needs_validator
def test_tiny_run_writes_valid_derivatives_datasets_linked_to_its_outputs(tiny_run):
    res = tiny_run[0] / "results"
    deriv = res / "derivatives"
    assert sorted(p.name for p in deriv.iterdir()) == ["mrixai-attribution", "mrixai-preproc", "mrixai-truth"]
    for root in [*deriv.iterdir(), res / "synthetic" / "bids"]:
        assert validate(root) == [], root.name
    anat = deriv / "mrixai-preproc" / "sub-001" / "anat"
    for arm in ARMS:
        assert os.path.samefile(
            anat / f"sub-001_space-MNI152NLin2009aSym_res-2mm_desc-{arm}_dseg.nii.gz",
            res / "preproc" / "sub-001" / "anat" / f"sub-001_space-template_reg-{arm}_dseg.nii.gz",
        )
    truth = deriv / "mrixai-truth" / "sub-001" / "anat" / "sub-001_dseg.nii.gz"
    assert os.path.samefile(truth, res / "synthetic" / "bids" / "derivatives" / "truth" / "sub-001" / "anat" / truth.name)
    assert list((deriv / "mrixai-attribution" / "group" / "registration").glob("reg-*/*_mean.nii.gz"))


@needs_validator
def test_tiny_run_outputs_laid_out_as_sessions_validate(tiny_run, tmp_path):
    """The same real preprocessing outputs, two subjects presented as two sessions of one participant
    (raw images copied into a sessions layout): the nested sub-X/ses-Y/anat dataset validates too."""
    res = tiny_run[0] / "results"
    raw = tmp_path / "bids"
    raw.mkdir()
    (raw / "dataset_description.json").write_text(json.dumps({"Name": "sessions", "BIDSVersion": "1.10.0"}))
    (raw / "participants.tsv").write_text("participant_id\nsub-01\n")
    prefixes, raw_paths = {}, {}
    for session, subject in (("1", "001"), ("2", "002")):
        unit = f"01_ses-{session}"
        rel = bids_path(unit_entities(unit), "T1w")
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(res / "synthetic" / "bids" / f"sub-{subject}" / "anat" / f"sub-{subject}_T1w.nii.gz", raw / rel)
        (raw / rel.replace(".nii.gz", ".json")).write_text("{}")
        raw_paths[unit] = rel
        prefixes[unit] = str(res / "preproc" / f"sub-{subject}" / "anat" / f"sub-{subject}")
    root = tmp_path / "mrixai-preproc"
    export_preproc(root, prefixes, raw_paths, os.path.relpath(raw, root), "T1w", ARMS, TEMPLATE_NAME, 2.0)
    for session, subject in (("1", "001"), ("2", "002")):
        head = root / "sub-01" / f"ses-{session}" / "anat" / f"sub-01_ses-{session}_desc-preproc_T1w.nii.gz"
        assert os.path.samefile(head, res / "preproc" / f"sub-{subject}" / "anat" / f"sub-{subject}_desc-n4_T1w.nii.gz")
    assert validate(root) == []


def test_the_code_commit_is_found_in_a_checkout_and_none_outside(tmp_path):
    from mrixai.provenance import code_commit, code_url

    assert code_commit(tmp_path) is None and code_url(tmp_path) is None
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f").write_text("x")
    subprocess.run([*git, "add", "f"], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    subprocess.run([*git, "remote", "add", "origin", "https://example.org/mrixai.git"], check=True)
    log = subprocess.run([*git, "log", "--format=%H"], capture_output=True, text=True, check=True).stdout.split()
    assert code_commit(tmp_path) == log[0] and code_url(tmp_path) == "https://example.org/mrixai.git"
