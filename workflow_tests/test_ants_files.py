"""ANTs through ANTsPy (Atropos, affine and SyN registration) leaves nothing behind in the system's
temporary folder, and Atropos still segments three tissues of distinct intensity."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest

from mrixai.preproc.antsio import private_tempdir
from mrixai.preproc.segment import run_atropos

ants = pytest.importorskip("ants")


def _phantom():
    """A 24^3 ball in three shells (bright core, middle, dark rim) with noise, its mask, and priors
    that say which shell each voxel lies in, blurred."""
    rng = np.random.default_rng(0)
    z, y, x = np.mgrid[:24, :24, :24]
    r = np.sqrt((x - 11.5) ** 2 + (y - 11.5) ** 2 + (z - 11.5) ** 2)
    shells = [(r < 5), (r >= 5) & (r < 8), (r >= 8) & (r < 10)]  # WM-like core, GM, CSF rim
    data = np.zeros(r.shape, np.float32)
    for shell, value in zip(shells, (300.0, 200.0, 80.0)):
        data[shell] = value
    data += rng.normal(0, 10, data.shape).astype(np.float32)
    mask = (r < 10).astype(np.float32)
    priors = [0.7 * s.astype(np.float32) + 0.1 for s in (shells[1], shells[0], shells[2])]  # GM, WM, CSF
    image = ants.from_numpy(data)
    return image, ants.from_numpy(mask), [image.new_image_like(p) for p in priors], shells


def test_atropos_leaves_no_file_in_the_temporary_folder(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    image, mask, priors, shells = _phantom()
    # the library alone leaves its prior images behind (the reason for the private folder)
    ants.atropos(a=image, x=mask, i=priors, m="[0.1,1x1x1]", c="[2,0]", priorweight=0.3, r=0)
    left = sorted(p.name for p in scratch.iterdir())
    assert len(left) == len(priors) and all(n.startswith("antsr") for n in left), left
    for p in scratch.iterdir():
        p.unlink()
    result = run_atropos(image, mask, priors, prior_weight=0.3, mrf=0.1, iterations=2)
    assert list(scratch.iterdir()) == []
    assert tempfile.gettempdir() == str(scratch)  # restored
    seg = result["segmentation"].numpy()
    # labels follow the priors' order: 1 = GM (middle shell), 2 = WM (core), 3 = CSF (rim)
    for label, shell in zip((1, 2, 3), (shells[1], shells[0], shells[2])):
        assert (seg[shell] == label).mean() > 0.95, label


def test_private_tempdir_is_removed_and_the_previous_one_restored_after_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), private_tempdir() as folder:
        assert tempfile.gettempdir() == folder
        open(tempfile.mktemp(suffix=".nii.gz"), "w").close()
        raise RuntimeError("atropos failed")
    assert tempfile.gettempdir() == str(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_registrations_leave_no_file_in_the_temporary_folder(tmp_path, monkeypatch):
    """An affine and a SyN registration of a shifted ellipsoid to another: the transforms land where
    asked, and ANTsPy's own transform files are gone with their private folder."""
    from helpers import ellipsoid, write_nifti

    from mrixai.preproc.register import register_affine, register_syn
    from mrixai.templates import TemplateFiles

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    template = TemplateFiles(tmp_path / "tpl", 4.0)
    template.directory.mkdir()
    write_nifti(ellipsoid((24, 24, 24), (12, 12, 12), (8, 6, 5)).astype(np.float32), affine, template.t1w)
    brain = write_nifti(ellipsoid((24, 24, 24), (13, 11, 12), (7, 6, 5)).astype(np.float32), affine,
                        tmp_path / "brain.nii.gz")
    xfm = register_affine(brain, template, tmp_path / "affine.mat", iterations=(20, 10))
    register_syn(brain, template, xfm, tmp_path / "warp.nii.gz", tmp_path / "inverse.nii.gz", iterations=(5, 2))
    assert all((tmp_path / n).is_file() for n in ("affine.mat", "warp.nii.gz", "inverse.nii.gz"))
    assert list(scratch.iterdir()) == []
