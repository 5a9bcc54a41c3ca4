# Public raw data (dataset: ixi | oasis1): resumable, checksummed downloads, then conversion to a
# BIDS dataset under results/<dataset>/bids, which the next run indexes like dataset: bids.


rule prepare_dataset:
    input:
        get_dataset_output,


rule download_file:
    input:
        # ancient: editing the download code must not fetch gigabytes again
        code=ancient(pkg_of("download_file.py")),
    output:
        # write-protected: a rerun never deletes a finished download (delete it to fetch again)
        protected(f"{DOWNLOADS}/{{dataset}}/{{filename}}"),
    log:
        f"{LOGS}/download_file/{{dataset}}_{{filename}}.log",
    benchmark:
        f"{BENCH}/download_file/{{dataset}}_{{filename}}.tsv"
    wildcard_constraints:
        dataset="ixi|oasis1",
        filename=DOWNLOAD_NAMES,
    localrule: True
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=720,
    # downloads.* (retries, timeouts) are read from the config by the script, not passed as
    # params: changing them must not make a finished, write-protected download out of date
    params:
        url=download_url,
        sha256=download_sha256,
    script:
        "../scripts/download_file.py"


rule convert_ixi:
    input:
        unpack(ixi_downloads),
        code=pkg_of("convert_ixi.py"),
    output:
        # written last, inside a scratch dir renamed to results/ixi/bids when complete
        description="results/ixi/bids/dataset_description.json",
    log:
        f"{LOGS}/convert_ixi.log",
    benchmark:
        f"{BENCH}/convert_ixi.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=120,
    params:
        contrasts=config["ixi"]["contrasts"],
        sources=dataset_sources("ixi"),
    script:
        "../scripts/convert_ixi.py"


rule convert_oasis1:
    input:
        unpack(oasis1_downloads),
        code=pkg_of("convert_oasis1.py"),
    output:
        description="results/oasis1/bids/dataset_description.json",
    log:
        f"{LOGS}/convert_oasis1.log",
    benchmark:
        f"{BENCH}/convert_oasis1.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
    params:
        sources=dataset_sources("oasis1"),
    script:
        "../scripts/convert_oasis1.py"
