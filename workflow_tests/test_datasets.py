"""Public datasets (IXI, OASIS-1): downloads that resume and retry, conversion of archives in the
real formats to BIDS, damaged archives that leave nothing behind, the workflow wired to them, and
the offline TemplateFlow template. Everything is built in tmp_path; no test touches the network
(the HTTP tests use a server on 127.0.0.1 that stops when the test ends)."""

from __future__ import annotations

import copy
import gzip
import hashlib
import http.server
import io
import json
import logging
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import write_nifti
from conftest import REPO, SNAKEMAKE
from mrixai.datasets.archive import ArchiveError
from mrixai.datasets.download import DownloadError, fetch
from mrixai.datasets.ixi import convert_ixi, read_demographics
from mrixai.datasets.oasis import convert_oasis1
from mrixai.templates import TemplateFiles, prepare_template, resolve_template_source

# ---- building archives in the real formats -----------------------------------------------------

# IXI-like: (number, site, scan, sex code, age) and which contrasts each subject has.
IXI_SUBJECTS = [
    ("002", "Guys", "0828", 2, 35.8000136893908),
    ("012", "HH", "1211", 1, 38.7816563997262),
    ("035", "IOP", "0873", 2, None),  # no age in the spreadsheet
]
IXI_T2 = {"002", "012"}  # IXI035 has no T2
IXI_ONLY_IN_SHEET = ("099", 1, 61.2)  # a spreadsheet row without an image


def _volume(shape, seed, dtype=np.int16):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1000, size=shape).astype(dtype)


def _oblique_affine(zooms, seed):
    """A non-trivial voxel-to-world matrix (rotated, anisotropic, LPS-like), to see it kept."""
    angle = 0.1 * (seed + 1)
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag([-zooms[0], -zooms[1], zooms[2]])
    affine[:3, 3] = [90.0 + seed, 110.0, -70.0]
    return affine


def _nifti_bytes(data, affine):
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, code=1)
    img.set_qform(affine, code=1)
    return gzip.compress(img.to_bytes(), mtime=0)


def _add(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def make_ixi(root: Path, shape=(20, 24, 20)) -> dict:
    """IXI-T1.tar, IXI-T2.tar (NIfTI members named as IXI's) and IXI.csv; returns what went in."""
    root.mkdir(parents=True, exist_ok=True)
    images = {}
    for code in ("T1", "T2"):
        with tarfile.open(root / f"IXI-{code}.tar", "w") as tar:
            _add(tar, "README.txt", b"not an image\n")
            for k, (number, site, scan, _, _) in enumerate(IXI_SUBJECTS):
                if code == "T2" and number not in IXI_T2:
                    continue
                data = _volume(shape, seed=10 * k + len(code) + (code == "T2"))
                affine = _oblique_affine((2.0, 2.0, 2.4), k)
                payload = _nifti_bytes(data, affine)
                _add(tar, f"IXI{number}-{site}-{scan}-{code}.nii.gz", payload)
                images[(number, code)] = (data, affine, payload)
            if code == "T1":
                _add(tar, "IXI002-Guys-0828-PD.nii.gz", b"other contrast, ignored")
    rows = [{"IXI_ID": int(n), "SEX_ID": s, "HEIGHT": 170, "AGE": a} for n, _, _, s, a in IXI_SUBJECTS]
    rows.append({"IXI_ID": int(IXI_ONLY_IN_SHEET[0]), "SEX_ID": IXI_ONLY_IN_SHEET[1], "HEIGHT": 180, "AGE": IXI_ONLY_IN_SHEET[2]})
    rows.insert(0, {"IXI_ID": 2, "SEX_ID": 2, "HEIGHT": 165, "AGE": None})  # duplicate row without an age
    pd.DataFrame(rows).to_csv(root / "IXI.csv", index=False)
    return {"images": images, "rows": rows}


# OASIS-like: subject number -> (sex, age, MMSE, CDR)
OASIS_SUBJECTS = {1: ("F", 74, 29, 0.0), 2: ("M", 55, 23, 0.5), 3: ("F", 21, None, None)}
OASIS_ONLY_IN_CSV = 4


def make_oasis(root: Path, shape=(16, 16, 12)) -> dict:
    """oasis_cross-sectional_disc1.tar.gz (Analyze pairs written by nibabel) and the CSV."""
    root.mkdir(parents=True, exist_ok=True)
    images = {}
    work = root / "analyze"
    work.mkdir()
    with tarfile.open(root / "oasis_cross-sectional_disc1.tar.gz", "w:gz") as tar:
        for number in OASIS_SUBJECTS:
            session = f"OAS1_{number:04d}_MR1"
            for run in (1, 2):
                data = _volume(shape, seed=100 * number + run)
                img = nib.AnalyzeImage(data, np.diag([1.0, 1.0, 1.25, 1.0]))
                img.header.set_zooms((1.0, 1.0, 1.25))
                stem = work / f"{session}_mpr-{run}_anon"
                nib.save(img, str(stem) + ".hdr")
                for ext in ("hdr", "img"):
                    tar.add(f"{stem}.{ext}", f"disc1/{session}/RAW/{session}_mpr-{run}_anon.{ext}")
                if run == 1:
                    images[number] = data
            processed = f"disc1/{session}/PROCESSED/MPRAGE/T88_111/{session}_mpr_n4_anon_111_t88_gfc"
            for ext in ("hdr", "img"):
                tar.add(f"{work / f'{session}_mpr-2_anon'}.{ext}", f"{processed}.{ext}")
    rows = []
    for number, (sex, age, mmse, cdr) in {**OASIS_SUBJECTS, OASIS_ONLY_IN_CSV: ("M", 80, 20, 1.0)}.items():
        rows.append({"ID": f"OAS1_{number:04d}_MR1", "M/F": sex, "Hand": "R", "Age": age, "Educ": 3, "SES": 2,
                     "MMSE": mmse, "CDR": cdr, "eTIV": 1500 + number, "nWBV": 0.7, "ASF": 1.1, "Delay": None})
    rows.append({"ID": "OAS1_0001_MR2", "M/F": "F", "Hand": "R", "Age": 74, "Educ": None, "SES": None,
                 "MMSE": None, "CDR": None, "eTIV": 1, "nWBV": 0.7, "ASF": 1.1, "Delay": 30})  # reliability rescan
    pd.DataFrame(rows).to_csv(root / "oasis_cross-sectional.csv", index=False)
    return {"images": images}


def _participants(bids: Path) -> pd.DataFrame:
    return pd.read_csv(bids / "participants.tsv", sep="\t", na_values="n/a", keep_default_na=False)


# ---- IXI ---------------------------------------------------------------------------------------


def test_ixi_archives_become_bids_with_the_inputs_voxels_affines_and_demographics(tmp_path):
    made = make_ixi(tmp_path / "raw")
    raw = tmp_path / "raw"
    bids = tmp_path / "bids"
    convert_ixi({"T1w": raw / "IXI-T1.tar", "T2w": raw / "IXI-T2.tar"}, raw / "IXI.csv", bids)

    files = sorted(str(p.relative_to(bids)) for p in bids.rglob("*.nii.gz"))
    assert files == [
        "sub-IXI002/anat/sub-IXI002_T1w.nii.gz", "sub-IXI002/anat/sub-IXI002_T2w.nii.gz",
        "sub-IXI012/anat/sub-IXI012_T1w.nii.gz", "sub-IXI012/anat/sub-IXI012_T2w.nii.gz",
        "sub-IXI035/anat/sub-IXI035_T1w.nii.gz",
    ]
    for (number, code), (data, affine, payload) in made["images"].items():
        out = bids / f"sub-IXI{number}" / "anat" / f"sub-IXI{number}_{code}w.nii.gz"
        img = nib.load(out)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)
        np.testing.assert_allclose(img.affine, affine, atol=1e-5)
        assert nib.aff2axcodes(img.affine) == nib.aff2axcodes(affine)
        assert out.read_bytes() == payload  # copied, not re-encoded

    table = _participants(bids)
    assert list(table.columns) == ["participant_id", "age", "sex", "site", "ixi_id"]  # as the shared sample
    by_id = table.set_index("participant_id")
    assert list(by_id.index) == ["sub-IXI002", "sub-IXI012", "sub-IXI035"]  # IXI099 (no image) dropped
    sex = {2: "F", 1: "M"}
    for number, site, scan, sex_id, age in IXI_SUBJECTS:
        row = by_id.loc[f"sub-IXI{number}"]
        assert row["sex"] == sex[sex_id] and row["site"] == site and row["ixi_id"] == f"IXI{number}-{site}-{scan}"
        if age is None:
            assert pd.isna(row["age"])
        else:
            assert row["age"] == pytest.approx(age, abs=0.005)  # the duplicate row without an age lost
    assert "n/a" in (bids / "participants.tsv").read_text()
    description = json.loads((bids / "dataset_description.json").read_text())
    assert description["DatasetType"] == "raw" and description["BIDSVersion"]
    assert not list(tmp_path.glob(".bids.partial*"))


def test_ixi_demographics_are_read_from_the_xls_spreadsheet(tmp_path):
    xlwt = pytest.importorskip("xlwt", reason="xlwt (to write a test .xls) is not installed")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Table")
    header = ["IXI_ID", "SEX_ID", "HEIGHT", "WEIGHT", "ETHNIC_ID", "DOB", "AGE"]
    rows = [[2, 2, 164, 58, 1, "1968-02-22", 35.8000136893908], [12, 1, 175, 70, 1, "1966-08-20", 38.78], [35, 2, 0, 0, 1, "", ""]]
    for c, name in enumerate(header):
        sheet.write(0, c, name)
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(tmp_path / "IXI.xls"))
    demo = read_demographics(tmp_path / "IXI.xls")
    assert list(demo.index) == [2, 12, 35]
    assert list(demo["sex"]) == ["F", "M", "F"]
    assert demo.loc[2, "age"] == pytest.approx(35.80) and demo.loc[12, "age"] == pytest.approx(38.78)
    assert pd.isna(demo.loc[35, "age"])


# ---- OASIS-1 -----------------------------------------------------------------------------------


def test_oasis_disc_archive_becomes_bids_with_the_first_mprage_and_a_diagnosis(tmp_path):
    made = make_oasis(tmp_path / "raw")
    raw = tmp_path / "raw"
    bids = tmp_path / "bids"
    convert_oasis1([raw / "oasis_cross-sectional_disc1.tar.gz"], raw / "oasis_cross-sectional.csv", bids)

    files = sorted(str(p.relative_to(bids)) for p in bids.rglob("*.nii.gz"))
    assert files == [f"sub-OAS1000{n}/anat/sub-OAS1000{n}_T1w.nii.gz" for n in (1, 2, 3)]
    assert not (bids / ".analyze").exists()
    for number, data in made["images"].items():
        img = nib.load(bids / f"sub-OAS1{number:04d}" / "anat" / f"sub-OAS1{number:04d}_T1w.nii.gz")
        assert isinstance(img, nib.Nifti1Image)
        np.testing.assert_array_equal(np.asanyarray(img.dataobj), data)  # mpr-1, voxel for voxel
        assert img.get_data_dtype() == np.int16
        np.testing.assert_allclose(img.header.get_zooms(), (1.0, 1.0, 1.25))
        # OASIS RAW voxel axes point anterior, superior, left (Analyze has no orientation)
        assert nib.aff2axcodes(img.affine) == ("A", "S", "L")
        np.testing.assert_allclose(np.linalg.norm(img.affine[:3, :3], axis=0), (1.0, 1.0, 1.25))
        centre = img.affine @ np.r_[(np.array(data.shape) - 1) / 2, 1]
        np.testing.assert_allclose(centre[:3], 0, atol=1e-6)

    table = _participants(bids).set_index("participant_id")
    assert list(table.index) == ["sub-OAS10001", "sub-OAS10002", "sub-OAS10003"]  # 0004 has no image
    expected = {1: "CN", 2: "AD", 3: None}
    for number, (sex, age, mmse, cdr) in OASIS_SUBJECTS.items():
        row = table.loc[f"sub-OAS1{number:04d}"]
        assert row["sex"] == sex and row["age"] == age
        assert (pd.isna(row["cdr"]) and cdr is None) or row["cdr"] == cdr
        assert (pd.isna(row["mmse"]) and mmse is None) or row["mmse"] == mmse
        assert (pd.isna(row["diagnosis"]) and expected[number] is None) or row["diagnosis"] == expected[number]
    # the label config of the AD study selects exactly these subjects
    labelled = table.reset_index()
    assert list(labelled.query("diagnosis == 'AD'")["participant_id"]) == ["sub-OAS10002"]
    assert list(labelled.query("diagnosis == 'CN'")["participant_id"]) == ["sub-OAS10001"]


# ---- damaged archives --------------------------------------------------------------------------


@pytest.mark.parametrize("cut", ["mid_member", "member_boundary"])
def test_a_truncated_ixi_archive_raises_naming_it_and_leaves_no_dataset(tmp_path, cut):
    raw = tmp_path / "raw"
    make_ixi(raw)
    tar_path = raw / "IXI-T1.tar"
    with tarfile.open(tar_path) as tar:
        members = tar.getmembers()
    last = members[-1]
    size = last.offset_data + last.size // 2 if cut == "mid_member" else last.offset  # cut inside / before the last
    tar_path.write_bytes(tar_path.read_bytes()[:size])
    bids = tmp_path / "out" / "bids"
    with pytest.raises(ArchiveError, match="IXI-T1.tar") as err:
        convert_ixi({"T1w": tar_path}, raw / "IXI.csv", bids)
    assert "truncated" in str(err.value)
    assert not bids.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no scratch dir left either


def test_a_corrupted_oasis_archive_keeps_the_earlier_dataset_untouched(tmp_path):
    raw = tmp_path / "raw"
    make_oasis(raw)
    archive = raw / "oasis_cross-sectional_disc1.tar.gz"
    bids = tmp_path / "out" / "bids"
    convert_oasis1([archive], raw / "oasis_cross-sectional.csv", bids)
    before = {str(p.relative_to(bids)): p.read_bytes() for p in bids.rglob("*") if p.is_file()}
    payload = bytearray(archive.read_bytes())
    payload[len(payload) // 2 : len(payload) // 2 + 64] = bytes(64)  # damage inside the gzip stream
    archive.write_bytes(bytes(payload))
    with pytest.raises(ArchiveError, match="oasis_cross-sectional_disc1.tar.gz"):
        convert_oasis1([archive], raw / "oasis_cross-sectional.csv", bids)
    after = {str(p.relative_to(bids)): p.read_bytes() for p in bids.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["bids"]


# ---- downloads ---------------------------------------------------------------------------------


class _Server:
    """A local HTTP server for one test: serves ``files`` with Range support; ``plan`` lists what
    to do for successive requests (``"ok"``, ``"503"``, ``"cut:<bytes>"``), then ``"ok"``."""

    def __init__(self, files: dict[str, bytes], plan=()):
        self.files, self.plan, self.requests = files, list(plan), []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):
                pass

            def do_GET(self):
                rng = self.headers.get("Range")
                server.requests.append({"path": self.path, "range": rng})
                action = server.plan.pop(0) if server.plan else "ok"
                body = server.files.get(self.path.lstrip("/"))
                if body is None:
                    self.send_error(404)
                    return
                if action == "503":
                    self.send_error(503)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                data = body[start:]
                if action.startswith("cut:"):
                    data = data[: int(action[4:])]  # announce everything, send part, hang up
                self.wfile.write(data)
                self.wfile.flush()
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def _payload(n=3 * 2**20 + 123, seed=0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def test_a_partial_http_download_is_finished_with_a_range_request(tmp_path):
    body = _payload()
    dest = tmp_path / "dl" / "IXI-T1.tar"
    dest.parent.mkdir()
    half = len(body) // 2
    (dest.parent / "IXI-T1.tar.part").write_bytes(body[:half])
    with _Server({"IXI-T1.tar": body}) as server:
        digest = fetch(f"{server.url}/IXI-T1.tar", dest, backoff_s=0)
    assert server.requests == [{"path": "/IXI-T1.tar", "range": f"bytes={half}-"}]
    assert dest.read_bytes() == body
    assert digest == hashlib.sha256(body).hexdigest()
    assert (dest.parent / "IXI-T1.tar.sha256").read_text().split()[0] == digest
    assert not (dest.parent / "IXI-T1.tar.part").exists()


def test_a_failing_server_is_retried_and_a_dropped_transfer_resumed(tmp_path, caplog):
    body = _payload(seed=1)
    dest = tmp_path / "IXI.xls"
    cut = 2**20 + 7
    with _Server({"IXI.xls": body}, plan=["503", f"cut:{cut}", "ok"]) as server:
        with caplog.at_level(logging.INFO, logger="mrixai"):
            fetch(f"{server.url}/IXI.xls", dest, sha256=hashlib.sha256(body).hexdigest(), retries=4, backoff_s=0.01)
    ranges = [r["range"] for r in server.requests]
    assert ranges[:2] == [None, None] and len(ranges) == 3  # 503, a transfer cut short, the rest
    resumed_at = int(ranges[2].removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= cut  # what had reached the .part file, not a fresh start
    assert dest.read_bytes() == body
    assert "retrying" in caplog.text and "matches the configured checksum" in caplog.text
    assert "IXI.xls: 100%" in caplog.text  # the progress bar went to the log


def test_a_checksum_mismatch_and_a_missing_file_are_errors_naming_the_url(tmp_path):
    body = _payload(n=1000, seed=2)
    with _Server({"a.tar": body}) as server:
        url = f"{server.url}/a.tar"
        with pytest.raises(DownloadError, match=r"a\.tar.*sha256") as err:
            fetch(url, tmp_path / "a.tar", sha256="0" * 64, backoff_s=0)
        assert url in str(err.value)
        assert not (tmp_path / "a.tar").exists() and not (tmp_path / "a.tar.part").exists()
        with pytest.raises(DownloadError, match="404") as err:
            fetch(f"{server.url}/missing.tar", tmp_path / "missing.tar", retries=3, backoff_s=0)
        assert "missing.tar" in str(err.value)
        assert len([r for r in server.requests if r["path"] == "/missing.tar"]) == 1  # not retried


def test_local_sources_resume_from_file_urls_and_plain_paths(tmp_path):
    body = _payload(seed=3)
    src = tmp_path / "mirror" / "IXI-T2.tar"
    src.parent.mkdir()
    src.write_bytes(body)
    dest = tmp_path / "dl" / "IXI-T2.tar"
    dest.parent.mkdir()
    (dest.parent / "IXI-T2.tar.part").write_bytes(body[:1000])
    fetch(src.as_uri(), dest)
    assert dest.read_bytes() == body
    plain = tmp_path / "dl2" / "IXI-T2.tar"
    fetch(str(src), plain, sha256=hashlib.sha256(body).hexdigest())
    assert plain.read_bytes() == body
    with pytest.raises(DownloadError, match="nope.tar"):
        fetch(str(tmp_path / "nope.tar"), tmp_path / "x.tar", backoff_s=0)


# ---- the workflow ------------------------------------------------------------------------------


def _full_config(extra: dict) -> dict:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for key, value in extra.items():
        cfg[key] = value
    return cfg


def _snakemake(work: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "config_test.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # --configfile takes several values, so it goes last
    cmd = [*SNAKEMAKE, *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--configfile", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def _counts(output: str) -> dict[str, int]:
    from test_workflow import job_counts

    return job_counts(output)


@pytest.mark.slow
def test_dataset_ixi_downloads_converts_and_then_plans_the_whole_dag(tmp_path):
    raw = tmp_path / "mirror"
    make_ixi(raw)
    t1_sha = hashlib.sha256((raw / "IXI-T1.tar").read_bytes()).hexdigest()
    ixi = {
        "contrasts": ["T1w"],
        "urls": {"T1w": (raw / "IXI-T1.tar").as_uri(), "T2w": (raw / "IXI-T2.tar").as_uri(), "demographics": str(raw / "IXI.csv")},
        "sha256": {"IXI-T1.tar": t1_sha},
    }
    cfg = _full_config({
        "dataset": "ixi",
        "ixi": ixi,
        "label": {"column": "age", "groups": {"young": "age < 37", "old": "age >= 37"}},
        "splits": {**yaml.safe_load((REPO / "config.yaml").read_text())["splits"], "n_splits": 1, "n_repeats": 1},
    })
    work = tmp_path / "work"
    # 1. nothing converted yet: the run plans the downloads and the conversion only
    proc = _snakemake(work, cfg, "-n", "--cores", "1")
    counts = _counts(proc.stdout)
    assert counts.get("download_file") == 2 and counts.get("convert_ixi") == 1, counts
    assert "correct_bias" not in counts and "generate_subject" not in counts
    assert "run snakemake again" in proc.stderr
    # 2. download (from file:// and a plain path) and convert
    _snakemake(work, cfg, "prepare_dataset", "--cores", "1")
    bids = work / "results" / "ixi" / "bids"
    assert sorted(p.name for p in bids.glob("sub-*")) == ["sub-IXI002", "sub-IXI012", "sub-IXI035"]
    downloads = work / "results" / "downloads" / "ixi"
    assert (downloads / "IXI-T1.tar.sha256").read_text().split()[0] == t1_sha
    assert (downloads / "IXI.csv.sha256").exists()
    assert "sha256" in (work / "results" / "logs" / "download_file" / "ixi_IXI.csv.log").read_text()
    assert not (downloads / "IXI-T2.tar").exists()  # only the configured contrasts are fetched
    # 3. the whole DAG on the converted dataset, exactly as for dataset: bids
    proc = _snakemake(work, cfg, "-n", "--cores", "1")
    counts = _counts(proc.stdout)
    for rule in ("correct_bias", "strip_skull", "register_affine", "segment_tissue", "register_syn",
                 "warp_brain_to_template", "plot_subject_qc"):
        assert counts.get(rule) == 3, (rule, counts)
    for rule in ("make_labels", "make_splits", "summarize_qc"):
        assert counts.get(rule) == 1, (rule, counts)
    assert "download_file" not in counts and "convert_ixi" not in counts and "generate_subject" not in counts
    report = (work / "results" / "validation" / "report.tsv").read_text().splitlines()
    assert len(report) == 4 and all(line.split("\t")[3] == "ok" for line in report[1:])


def test_dataset_oasis1_plans_its_downloads(tmp_path):
    raw = tmp_path / "mirror"
    make_oasis(raw)
    cfg = _full_config({"dataset": "oasis1", "oasis1": {
        "archives": [str(raw / "oasis_cross-sectional_disc1.tar.gz")],
        "clinical": (raw / "oasis_cross-sectional.csv").as_uri(), "sha256": {}}})
    counts = _counts(_snakemake(tmp_path / "work", cfg, "-n", "--cores", "1").stdout)
    assert counts.get("download_file") == 2 and counts.get("convert_oasis1") == 1, counts


# ---- offline TemplateFlow ----------------------------------------------------------------------


def _fake_templateflow(home: Path, shape=(24, 28, 24), zoom=4.0) -> dict:
    folder = home / "tpl-MNI152NLin2009cAsym"
    folder.mkdir(parents=True)
    affine = np.diag([zoom, zoom, zoom, 1.0])
    affine[:3, 3] = [-48.0, -60.0, -42.0]
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))
    mask = (radius < 0.8).astype(np.uint8)
    t1 = (100 * (1.2 - radius)).clip(0).astype(np.float32)
    gm = np.where(mask, 0.5, 0).astype(np.float32)
    wm = np.where(radius < 0.5, 0.4, 0).astype(np.float32)
    csf = np.where(mask, 0.1, 0).astype(np.float32)
    images = {"T1w": t1, "desc-brain_mask": mask, "label-GM_probseg": gm, "label-WM_probseg": wm, "label-CSF_probseg": csf}
    for suffix, data in images.items():
        write_nifti(data, affine, folder / f"tpl-MNI152NLin2009cAsym_res-01_{suffix}.nii.gz")
    return {"affine": affine, "shape": shape, **images}


def test_templateflow_cache_is_used_offline_when_present_else_nilearn(tmp_path, monkeypatch, caplog):
    home = tmp_path / "templateflow"
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    assert resolve_template_source("auto")["source"] == "nilearn"  # no cache: the bundled template
    with pytest.raises(FileNotFoundError, match=str(home)):
        resolve_template_source("templateflow")
    fake = _fake_templateflow(home)
    assert resolve_template_source("auto") == {"source": "templateflow", "templateflow_home": str(home)}
    assert resolve_template_source("nilearn")["source"] == "nilearn"

    with caplog.at_level(logging.INFO, logger="mrixai"):
        files = prepare_template(tmp_path / "tpl", 4.0, source="auto")
    assert "TemplateFlow MNI152NLin2009cAsym" in caplog.text
    assert files == TemplateFiles(tmp_path / "tpl", 4.0)  # same names for every later rule
    t1 = nib.load(files.t1w)
    np.testing.assert_allclose(t1.affine, fake["affine"])
    assert t1.shape == fake["shape"]
    mask = np.asanyarray(nib.load(files.mask).dataobj)
    np.testing.assert_array_equal(mask, fake["desc-brain_mask"])  # same grid: no resampling change
    expected_t1 = fake["T1w"] / fake["T1w"][fake["desc-brain_mask"] > 0].max() * fake["desc-brain_mask"]
    np.testing.assert_allclose(np.asanyarray(t1.dataobj), expected_t1, atol=1e-5)
    gm = np.asanyarray(nib.load(files.probseg("GM")).dataobj)
    np.testing.assert_allclose(gm, fake["label-GM_probseg"] * fake["desc-brain_mask"], atol=1e-6)
    assert nib.load(files.atlas).shape == fake["shape"]
