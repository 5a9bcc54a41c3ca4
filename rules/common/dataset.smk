# Dataset selection and validation: which units this run processes, and the public datasets' downloads.


def _synthetic_units():
    n = int(config["synthetic"]["n_subjects"])
    units = [f"{i:03d}" for i in range(1, n + 1)]
    for key in ("participant_label", "exclude_participant_label"):
        labels = [str(s).removeprefix("sub-") for s in config.get(key) or []]
        unknown = sorted(set(labels) - set(units))
        if unknown:
            raise ValueError(
                f"{key} names subjects the synthetic cohort does not have: {unknown} "
                f"(it has {units[0]}..{units[-1]})"
            )
        if key == "participant_label" and labels:
            units = [u for u in units if u in labels]
        elif key == "exclude_participant_label":
            units = [u for u in units if u not in labels]
    if not units:
        raise ValueError(
            "exclude_participant_label leaves no synthetic subject to process"
        )
    return units


def _bids_index():
    from mrixai.bids import index_bids

    if not BIDS_DIR:
        raise ValueError("dataset is 'bids' but bids_dir is not set in the config")
    return index_bids(
        BIDS_DIR,
        CONTRAST,
        config.get("participant_label") or [],
        exclude_participant_label=config.get("exclude_participant_label") or [],
        filters=config.get("bids_filters") or {},
    )


def _validated_units(index):
    """Check every raw image now, before any job runs; returns the units that passed.

    Results are cached by file size and modification time, so only new or changed files are
    read again. With validation.on_error=fail a bad file stops the run here, naming it.
    """
    from mrixai.validate import validate_dataset

    table = validate_dataset(
        index,
        RES,
        config["validation"]["max_voxel_ratio"],
        config["validation"]["on_error"],
        "results/validation/report.tsv",
        "results/validation/accepted.tsv",
        cache_tsv="results/validation/.cache.tsv",
    )
    return sorted(table.loc[table["status"] == "ok", "unit"].astype(str))


def _labelled_units(index, units):
    """The units in one of label.groups (label.process_unlabelled: false); the others are named on
    stderr and never processed. Overlapping groups or an unknown column stop the run here; the
    per-group minimum is left to make_labels.
    """
    from mrixai.learn.labels import assign_groups

    table = assign_groups(
        index.participants,
        units,
        config["label"]["column"],
        config["label"]["groups"],
        min_per_group=0,
    )
    kept = sorted(table["unit"].astype(str))
    left = sorted(set(units) - set(kept))
    if left:
        print(
            f"label.process_unlabelled is false: {len(left)} of {len(units)} units are in no group "
            f"of label.groups and are not processed: {', '.join(left)}",
            file=sys.stderr,
        )
    return kept


# A public dataset not yet converted: this run only downloads and converts it (every target asks
# for its dataset_description.json, written last); the next run indexes it like dataset: bids.
DATASET_PENDING = config["dataset"] in PUBLIC_DATASETS and not os.path.exists(
    DATASET_DESCRIPTION
)

if config["dataset"] == "synthetic":
    # The pipeline generates these files itself; correct_bias still checks each one as it loads it.
    UNITS = _synthetic_units()
    RAW = {u: f"{SYNTH_BIDS}/sub-{u}/anat/sub-{u}_{CONTRAST}.nii.gz" for u in UNITS}
elif DATASET_PENDING:
    UNITS, RAW = [], {}
    print(
        f"dataset {config['dataset']}: {BIDS_DIR} does not exist yet, so this run downloads and "
        "converts it; run snakemake again to process it",
        file=sys.stderr,
    )
else:
    BIDS_INDEX = _bids_index()
    UNITS = _validated_units(BIDS_INDEX)
    if not config["label"].get("process_unlabelled", True):
        UNITS = _labelled_units(BIDS_INDEX, UNITS)
    RAW = {u: str(BIDS_INDEX.images[u].path) for u in UNITS}

# Units left out of labels, splits and everything after them (they are still preprocessed and
# QC'd, as are units in no group unless label.process_unlabelled is false). qc.exclude is checked
# here, before any job runs; qc.auto_exclude makes the group QC table an input of make_labels,
# which writes every exclusion and its reason to results/qc/excluded.tsv.
QC_EXCLUDE = list(config["qc"].get("exclude") or [])
QC_AUTO_EXCLUDE = bool(config["qc"]["auto_exclude"])

if QC_EXCLUDE and UNITS:
    from mrixai.selection import manual_exclusions

    manual_exclusions(QC_EXCLUDE, UNITS)  # raises naming labels that match no unit


def labels_qc_input(wildcards):
    """The group QC table, when QC auto-exclusion is on (make_labels then waits for all QC)."""
    return {"qc": "results/qc/group_qc.tsv"} if QC_AUTO_EXCLUDE else {}


def raw_image(wildcards):
    """The raw image of one unit (subject, or subject_ses-X)."""
    return RAW[wildcards.subject]


def accepted_units():
    """Units to process: every synthetic subject, or the BIDS units that passed validation."""
    return UNITS


def dataset_urls(dataset):
    """{file name: URL} of every file a public dataset needs (names must be distinct)."""
    cfg = config[dataset]
    if dataset == "ixi":
        if CONTRAST not in cfg["contrasts"] and config["dataset"] == "ixi":
            raise ValueError(
                f"contrast is {CONTRAST} but ixi.contrasts is {cfg['contrasts']}: add it there"
            )
        urls = [cfg["urls"][c] for c in cfg["contrasts"]] + [
            cfg["urls"]["demographics"]
        ]
    else:
        urls = list(cfg["archives"]) + [cfg["clinical"]]
    names = [file_name(u) for u in urls]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(
            f"{dataset}: several files are called {twice}; file names must be distinct"
        )
    return dict(zip(names, urls))


DOWNLOAD_URLS = {d: dataset_urls(d) for d in PUBLIC_DATASETS if config["dataset"] == d}
DOWNLOAD_NAMES = registry.pattern(
    [re.escape(n) for urls in DOWNLOAD_URLS.values() for n in urls]
)


def download_url(wildcards):
    """Where one file of a public dataset comes from."""
    return DOWNLOAD_URLS[wildcards.dataset][wildcards.filename]


def download_sha256(wildcards):
    """The configured sha256 of one downloaded file, or None."""
    return config[wildcards.dataset]["sha256"].get(wildcards.filename)


def _downloaded(dataset, url):
    return f"{DOWNLOADS}/{dataset}/{file_name(url)}"


def ixi_downloads(wildcards):
    """The IXI archives (in ixi.contrasts order) and the demographics file."""
    cfg = config["ixi"]
    return {
        "archives": [_downloaded("ixi", cfg["urls"][c]) for c in cfg["contrasts"]],
        "demographics": _downloaded("ixi", cfg["urls"]["demographics"]),
    }


def oasis1_downloads(wildcards):
    """The OASIS-1 disc archives and the clinical table."""
    cfg = config["oasis1"]
    return {
        "archives": [_downloaded("oasis1", u) for u in cfg["archives"]],
        "clinical": _downloaded("oasis1", cfg["clinical"]),
    }


def dataset_sources(dataset):
    """URLs recorded in a converted dataset's dataset_description.json."""
    return list(dataset_urls(dataset).values())
