"""Score a preprocessing run on the IXI sample against DLMUSE, and tabulate its run time.

Usage (from the repository root):
    .venv/bin/python benchmarks/evaluate_ixi.py --run --workdir /tmp/ixi_eval      # run all 60, then score
    .venv/bin/python benchmarks/evaluate_ixi.py --workdir /tmp/ixi_eval            # score an existing run

Prints per-subject Dice (brain mask, GM, WM) in native space, their medians (all subjects, and the
55 not used to choose the segmentation defaults), the mean pairwise Dice of template-space brain
masks per registration arm, and the per-subject time of the full chain from the benchmark files.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mrixai.evaluation import chain_times, mean_pairwise_dice, reference_tissues, score_segmentation  # noqa: E402

TUNING = {"IXI012", "IXI039", "IXI105", "IXI211", "IXI566"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bids", type=Path, default=REPO.parent / "shared" / "data" / "ixi_sample")
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--run", action="store_true", help="run the preprocess target first")
    parser.add_argument("--cores", default="2")
    parser.add_argument("--extra", nargs="*", default=[], help="more --config KEY=VALUE items")
    args = parser.parse_args()
    if not args.bids.is_dir():
        sys.exit(f"IXI sample not found at {args.bids}")
    if args.run:
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory",
               str(args.workdir), "--configfile", str(REPO / "config.yaml"), "--cores", args.cores, "preprocess",
               "--config", "dataset=bids", f"bids_dir={args.bids.resolve()}", *args.extra]
        subprocess.run(cmd, check=True)
    results = args.workdir / "results"
    rows = []
    for pre in sorted((results / "preproc").glob("sub-*")):
        sub = pre.name.removeprefix("sub-")
        ref_path = args.bids / "derivatives" / "dlmuse" / f"sub-{sub}" / "anat" / f"sub-{sub}_seg-dlmuse_dseg.nii.gz"
        if not ref_path.is_file():
            continue
        ref = reference_tissues(ref_path, args.bids / "derivatives" / "dlmuse" / "dseg.tsv")
        prefix = pre / "anat" / f"sub-{sub}"
        rows.append({"subject": sub, **score_segmentation(f"{prefix}_desc-brain_mask.nii.gz",
                                                          f"{prefix}_dseg.nii.gz", ref)})
    scores = pd.DataFrame(rows).set_index("subject")
    pd.set_option("display.width", 160)
    print(scores.round(3).to_string())
    held_out = scores.loc[[s for s in scores.index if s not in TUNING]]
    print(f"\nmedian over {len(scores)} subjects:\n{scores.median().round(3).to_string()}")
    print(f"\nmedian over the {len(held_out)} subjects not used for tuning:\n{held_out.median().round(3).to_string()}")
    print("\nmean pairwise Dice of template-space brain masks:")
    for arm in ("none", "linear", "syn"):
        masks = sorted((results / "preproc").glob(f"sub-*/anat/*_space-template_reg-{arm}_desc-brain_mask.nii.gz"))
        if len(masks) > 1:
            print(f"  {arm:6s} {mean_pairwise_dice(masks):.4f}  ({len(masks)} subjects)")
    times = chain_times(results)
    print("\nseconds per subject (benchmark files), median and max over subjects:")
    summary = pd.DataFrame({"median": times.median(), "max": times.max()})
    summary["share of chain"] = summary["median"] / summary.loc["chain", "median"]
    print(summary.round(2).to_string())
    print(f"\nfull chain, median {times['chain'].median():.1f} s = {times['chain'].median() / 30:.2f} x the 30 s budget")


if __name__ == "__main__":
    main()
