"""Native-space grey-matter volume of every atlas region of one unit (atlas warped to the subject)."""

from mrixai.explain.volumes import native_region_volumes
from mrixai.io import atomic_path
from mrixai.workflow import setup_logging

setup_logging(snakemake.log[0])
inp = snakemake.input
# The template->native map: the inverse of the affine, then (for SyN) the inverse warp.
transforms, invert = [inp.affine], [True]
if "inverse_warp" in inp.keys():
    transforms, invert = [inp.affine, inp.inverse_warp], [True, False]
table = native_region_volumes(
    inp.atlas,
    inp.labels,
    inp.reference,
    transforms,
    inp.gm,
    merge_hemispheres=snakemake.params.merge_hemispheres,
    whichtoinvert=invert,
)
with atomic_path(snakemake.output.tsv) as tmp:
    table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
