"""The BIDS-App command: ``mrixai BIDS_DIR OUTPUT_DIR participant|group [options] [-- snakemake args]``.

As fMRIPrep, hippunfold and ClinicaDL do, the command takes the raw BIDS dataset, an output folder
and an analysis level:

- ``participant``: preprocessing and QC of every selected subject, and the preprocessing
  BIDS-derivatives dataset ``results/derivatives/mrixai-preproc`` (the ``preprocess`` target);
- ``group``: everything after (labels, splits, training, attribution, statistics, figures and
  the results page: the ``all`` target, which reuses the participant-level outputs).

It runs the Snakemake workflow in this process through Snakemake's Python API
(:mod:`snakemake.api`, driven by the options Snakemake's own command line would build), with
``--directory OUTPUT_DIR``: every output, the ``.snakemake`` folder (metadata, logs, conda envs)
and the run's logs land under OUTPUT_DIR, and nothing is written into BIDS_DIR or the workflow's
folder. The configuration is the workflow's ``config.yaml``, then every ``--configfile`` in
order, then ``dataset: bids``, ``bids_dir: BIDS_DIR`` (absolute) and the label options. Anything
after ``--`` is passed to Snakemake as it is (e.g. ``-- --keep-going --use-conda``).

``mrixai predict MODELS BIDS_DIR OUTPUT_DIR`` applies trained models to new subjects
(:mod:`mrixai.predict_cli`; a BIDS dataset in a folder named ``predict`` is given as ``./predict``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from mrixai import __version__
from mrixai.bids import LABEL_PATTERN, is_safe_label

#: The workflow folder (Snakefile, config.yaml, rules/, profiles/) of this source tree.
WORKFLOW_DIR = Path(__file__).resolve().parents[2]
#: Analysis level -> Snakemake target.
TARGETS = {"participant": "preprocess", "group": "all"}


def _label(value: str) -> str:
    """A subject label for --participant-label and friends; ``sub-`` is dropped."""
    label = value.removeprefix("sub-")
    if not is_safe_label(label):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a BIDS subject label (letters and digits only, {LABEL_PATTERN})"
        )
    return label


def _cores(value: str) -> str:
    if value == "all":
        return value
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"--cores must be a positive integer or 'all', got {value!r}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrixai",
        description=(
            "Explainable CNN diagnosis on structural brain MRI, run as a BIDS App. "
            "'participant' preprocesses and QCs every selected subject and writes the BIDS-derivatives "
            "dataset results/derivatives/mrixai-preproc; 'group' runs everything "
            "after (learning, attribution, statistics, figures, results page). All outputs land "
            "under OUTPUT_DIR."
        ),
        epilog=(
            "Arguments after '--' go to Snakemake unchanged, e.g. "
            "'mrixai bids out participant -- --keep-going'. "
            "The plain 'snakemake' command in the workflow folder keeps working. "
            "'mrixai predict MODELS BIDS_DIR OUTPUT_DIR' applies trained "
            "models to new subjects; see 'mrixai predict --help'."
        ),
    )
    parser.add_argument(
        "bids_dir", metavar="BIDS_DIR", type=Path, help="the raw BIDS dataset (read only)"
    )
    parser.add_argument(
        "output_dir", metavar="OUTPUT_DIR", type=Path,
        help="where results/, .snakemake/ and the logs are written (created if missing)",
    )  # fmt: skip
    parser.add_argument(
        "analysis_level", choices=sorted(TARGETS),
        help="participant: preprocessing and QC; group: everything after",
    )  # fmt: skip
    parser.add_argument(
        "--participant-label", "--participant_label", nargs="+", type=_label, metavar="LABEL",
        help="subjects to process (without or with 'sub-'); default: all",
    )  # fmt: skip
    parser.add_argument(
        "--exclude-participant-label", "--exclude_participant_label", nargs="+", type=_label,
        metavar="LABEL", help="subjects never to process",
    )  # fmt: skip
    parser.add_argument(
        "--cores", type=_cores, metavar="N",
        help="CPU cores to use (a number or 'all'); default: the profile's, else all",
    )  # fmt: skip
    parser.add_argument(
        "--profile", metavar="P",
        help="a Snakemake profile folder, or the name of one under the workflow's profiles/ (local, slurm)",
    )  # fmt: skip
    parser.add_argument(
        "--configfile", nargs="+", type=Path, default=[], metavar="F",
        help="YAML files overriding the workflow's config.yaml, in order",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", "-n", action="store_true", help="plan the jobs and print them; run nothing"
    )
    parser.add_argument("--version", action="version", version=f"mrixai {__version__}")
    return parser


def _resolve_profile(profile: str, parser: argparse.ArgumentParser) -> str:
    path = Path(profile)
    if path.is_dir():
        return str(path.resolve())
    bundled = WORKFLOW_DIR / "profiles" / profile
    if bundled.is_dir():
        return str(bundled)
    parser.error(
        f"--profile {profile!r}: neither a folder nor one of the workflow's profiles "
        f"({', '.join(sorted(p.name for p in (WORKFLOW_DIR / 'profiles').iterdir() if p.is_dir()))})"
    )
    raise AssertionError  # parser.error exits


def snakemake_arguments(
    argv: Sequence[str] | None = None,
) -> tuple[list[str], list[str], list[str]]:
    """Check the command line; return Snakemake's arguments, the config files and config entries.

    The config files and entries are returned apart because Snakemake keeps only the last
    ``--configfile`` and ``--config`` option it sees; :func:`main` merges them with any given after
    ``--``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    parser = build_parser()
    args = parser.parse_args(argv)

    bids_dir = args.bids_dir.resolve()
    out = args.output_dir.resolve()
    if not bids_dir.is_dir():
        parser.error(f"BIDS_DIR {args.bids_dir}: folder not found")
    if not (bids_dir / "participants.tsv").is_file():
        parser.error(f"BIDS_DIR {args.bids_dir}: no participants.tsv; is this a BIDS dataset?")
    if out == bids_dir or bids_dir.is_relative_to(out):
        parser.error(
            f"OUTPUT_DIR {args.output_dir} would contain BIDS_DIR {args.bids_dir}; "
            "choose a separate output folder"
        )
    if out.exists() and not out.is_dir():
        parser.error(f"OUTPUT_DIR {args.output_dir}: exists and is not a folder")
    snakefile = WORKFLOW_DIR / "Snakefile"
    if not snakefile.is_file():
        parser.error(
            f"the workflow's Snakefile is not at {snakefile}; install mrixai from its source tree "
            "(pip install -e .)"
        )
    for path in args.configfile:
        if not path.is_file():
            parser.error(f"--configfile {path}: file not found")
    both = sorted(set(args.participant_label or []) & set(args.exclude_participant_label or []))
    if both:
        parser.error(f"subjects both included and excluded: {', '.join(both)}")

    sm = ["--snakefile", str(snakefile), "--directory", str(out)]
    if args.profile:
        sm += ["--profile", _resolve_profile(args.profile, parser)]
    if args.cores:
        sm += ["--cores", args.cores]
    elif not args.profile:
        sm += ["--cores", "all"]
    if args.dry_run:
        sm += ["--dry-run"]
    sm += extra
    configfiles = [str(WORKFLOW_DIR / "config.yaml"), *(str(p.resolve()) for p in args.configfile)]
    config = [f"dataset={json.dumps('bids')}", f"bids_dir={json.dumps(str(bids_dir))}"]
    if args.participant_label:
        config.append(f"participant_label={json.dumps(args.participant_label)}")
    if args.exclude_participant_label:
        config.append(f"exclude_participant_label={json.dumps(args.exclude_participant_label)}")
    return sm + ["--", TARGETS[args.analysis_level]], configfiles, config


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mrixai`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["predict"]:
        from mrixai.predict_cli import predict

        return predict(argv[1:])
    from snakemake.cli import args_to_api, parse_args
    from snakemake.exceptions import print_exception

    sm_argv, configfiles, config = snakemake_arguments(argv)
    try:
        parser, args = parse_args(sm_argv)
        # Snakemake keeps the last --configfile/--config it sees: put ours first (the workflow's
        # config.yaml, then the user's files), any given after '--' next, and the BIDS-App
        # settings last so that they win.
        args.configfile = [Path(p) for p in configfiles] + [
            Path(p).resolve() for p in (args.configfile or [])
        ]
        args.config = list(args.config or []) + config
        ok = args_to_api(args, parser)
    except Exception as exc:  # Snakemake's own command line reports errors the same way
        print_exception(exc)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
