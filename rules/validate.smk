# Input validation: one job reads every raw image before any heavy work. Subjects enter the DAG
# only once it has passed, so a bad file stops the run before preprocessing starts.


checkpoint validate_inputs:
    input:
        images=all_raw_images,
        code=pkg("bids.py", "validate.py", "io.py"),
    output:
        report="results/validation/report.tsv",
        accepted="results/validation/accepted.tsv",
    params:
        bids_dir=BIDS_DIR,
        contrast=CONTRAST,
        participant_label=config.get("participant_label") or [],
        resolution_mm=RES,
        max_voxel_ratio=config["validation"]["max_voxel_ratio"],
        on_error=config["validation"]["on_error"],
    log:
        f"{LOGS}/validate_inputs.log",
    benchmark:
        f"{BENCH}/validate_inputs.tsv"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=runtime_min(10),
    conda:
        "../envs/imaging.yaml"
    script:
        "../scripts/validate_inputs.py"
