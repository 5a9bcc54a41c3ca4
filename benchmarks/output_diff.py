"""Are two runs' outputs byte-identical? The check after a refactoring that must not change results.

Usage:
    .venv/bin/python benchmarks/output_diff.py RUN_A RUN_B [--under results/preproc results/synthetic ...]

Run the same target with the same config from two checkouts (e.g. ``snakemake preprocess --cores 2
--directory RUN --configfile config.yaml configs/tiny.yaml`` from the old and the new commit, with
``reproducible: true``), then compare. Every file under each ``--under`` folder of either run is hashed
(SHA-256); logs and benchmarks are never compared (they hold times). Prints the number of files compared,
the identical ones, and each file that differs or exists in one run only; exits 1 if any does.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

SKIP_PARTS = {"logs", "benchmarks", ".snakemake"}


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def files_under(run: Path, folders: list[str]) -> dict[str, Path]:
    """Relative path -> file, for every regular file under the given folders of ``run``."""
    out = {}
    for folder in folders:
        for path in sorted((run / folder).rglob("*")):
            rel = path.relative_to(run)
            if path.is_file() and not SKIP_PARTS & set(rel.parts):
                out[str(rel)] = path
    return out


def compare(run_a: Path, run_b: Path, folders: list[str]) -> dict[str, list[str]]:
    """``identical``, ``different``, ``only_a`` and ``only_b`` relative paths."""
    a, b = files_under(run_a, folders), files_under(run_b, folders)
    both = sorted(a.keys() & b.keys())
    different = [rel for rel in both if digest(a[rel]) != digest(b[rel])]
    return {
        "identical": [rel for rel in both if rel not in set(different)],
        "different": different,
        "only_a": sorted(a.keys() - b.keys()),
        "only_b": sorted(b.keys() - a.keys()),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a", type=Path)
    ap.add_argument("run_b", type=Path)
    ap.add_argument("--under", nargs="+", default=["results/synthetic", "results/preproc"])
    args = ap.parse_args(argv)
    for run in (args.run_a, args.run_b):
        if not any((run / f).is_dir() for f in args.under):
            ap.error(f"{run} has none of {args.under}")
    result = compare(args.run_a, args.run_b, args.under)
    n = len(result["identical"]) + len(result["different"])
    print(f"{n} files in both runs under {' '.join(args.under)}: {len(result['identical'])} byte-identical, "
          f"{len(result['different'])} different; {len(result['only_a'])} only in {args.run_a}, "
          f"{len(result['only_b'])} only in {args.run_b}")
    for key in ("different", "only_a", "only_b"):
        for rel in result[key]:
            print(f"  {key}: {rel}")
    return 1 if result["different"] or result["only_a"] or result["only_b"] else 0


if __name__ == "__main__":
    sys.exit(main())
