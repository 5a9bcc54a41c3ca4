# Labels, subject-level splits and the cached sample stores the studies train on.


rule make_labels:
    input:
        unpack(labels_qc_input),
        participants=PARTICIPANTS,
        code=pkg_of("make_labels.py"),
    output:
        tsv=f"{SAMPLES}/labels.tsv",
        excluded="results/qc/excluded.tsv",
    log:
        f"{LOGS}/make_labels.log",
    benchmark:
        f"{BENCH}/make_labels.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    params:
        units=UNITS,
        exclude=QC_EXCLUDE,
        outlier_z=config["qc"]["outlier_z"],
        column=config["label"]["column"],
        groups=config["label"]["groups"],
        min_per_group=3,
    script:
        "../scripts/make_labels.py"


rule make_splits:
    input:
        labels=f"{SAMPLES}/labels.tsv",
        code=pkg_of("make_splits.py"),
    output:
        tsv="results/splits/splits.tsv",
    log:
        f"{LOGS}/make_splits.log",
    benchmark:
        f"{BENCH}/make_splits.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    params:
        method=SPLITS["method"],
        n_splits=N_SPLITS,
        test_fraction=SPLITS["test_fraction"],
        val_fraction=SPLITS["val_fraction"],
        age_bins=SPLITS["age_bins"],
        seed=config["seed"],
    script:
        "../scripts/make_splits.py"


rule extract_volumes:
    input:
        unpack(store_mask),
        images=store_images,
        code=pkg_of("extract_volumes.py"),
    output:
        npy=f"{SAMPLES}/reg-{{arm}}_desc-volumes.npy",
        tsv=f"{SAMPLES}/reg-{{arm}}_desc-volumes.tsv",
        json=f"{SAMPLES}/reg-{{arm}}_desc-volumes.json",
    log:
        f"{LOGS}/extract_volumes/reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/extract_volumes/reg-{{arm}}.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        units=UNITS,
        shape=config["samples"]["volumes"]["shape"],
        downsample=config["samples"]["volumes"]["downsample"],
        normalisation=config["samples"]["volumes"]["normalisation"],
    script:
        "../scripts/extract_volumes.py"


rule extract_patches:
    input:
        npy=f"{SAMPLES}/reg-{{arm}}_desc-volumes.npy",
        tsv=f"{SAMPLES}/reg-{{arm}}_desc-volumes.tsv",
        code=pkg_of("extract_patches.py"),
    output:
        npy=f"{SAMPLES}/reg-{{arm}}_desc-patches.npy",
        tsv=f"{SAMPLES}/reg-{{arm}}_desc-patches.tsv",
    log:
        f"{LOGS}/extract_patches/reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/extract_patches/reg-{{arm}}.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        size=config["samples"]["patches"]["size"],
        stride=config["samples"]["patches"]["stride"],
        min_brain_fraction=config["samples"]["patches"]["min_brain_fraction"],
    script:
        "../scripts/extract_patches.py"


rule extract_subimages:
    input:
        unpack(subimage_inputs),
        code=pkg_of("extract_subimages.py", "io.py"),
    output:
        directory(f"{SAMPLES}/reg-{{arm}}_desc-subimages"),
    log:
        f"{LOGS}/extract_subimages/reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/extract_subimages/reg-{{arm}}.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        units=UNITS,
        size=config["samples"]["subimages"]["size"],
        extent=max(
            1,
            round(config["samples"]["subimages"]["extent_mm"] / RES),
        ),
        step=config["samples"]["subimages"]["step"],
        n_angles=config["samples"]["subimages"]["n_angles"],
        seed=config["seed"],
    script:
        "../scripts/extract_subimages.py"
