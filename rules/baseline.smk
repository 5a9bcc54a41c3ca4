# The classical baseline beside the CNNs: a linear model on grey-matter maps or regional volumes,
# fitted once per split of the registration study, and its paired comparison with the best CNN arm.


rule extract_gm_features:
    input:
        unpack(gm_feature_inputs),
        code=pkg_of("extract_gm_features.py"),
    output:
        npy=f"{SAMPLES}/reg-{{arm}}_desc-gmfeatures.npy",
        tsv=f"{SAMPLES}/reg-{{arm}}_desc-gmfeatures.tsv",
    log:
        f"{LOGS}/extract_gm_features/reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/extract_gm_features/reg-{{arm}}.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        units=UNITS,
        shape=config["samples"]["volumes"]["shape"],
        downsample=baseline_gm_downsample(),
    script:
        "../scripts/extract_gm_features.py"


rule collect_region_volumes:
    input:
        unpack(region_volume_inputs),
        code=pkg_of("collect_region_volumes.py"),
    output:
        tsv=f"{SAMPLES}/desc-regionvolumes_features.tsv",
    log:
        f"{LOGS}/collect_region_volumes.log",
    benchmark:
        f"{BENCH}/collect_region_volumes.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    params:
        units=UNITS,
        measure=BASELINE_CFG["volume_measure"],
    script:
        "../scripts/collect_region_volumes.py"


rule train_baseline:
    input:
        unpack(baseline_feature_files),
        splits="results/splits/splits.tsv",
        code=pkg_of("train_baseline.py"),
    output:
        predictions=f"{BASELINE}/{{features}}/split-{{split}}_seed-0_predictions.tsv",
        metrics=f"{BASELINE}/{{features}}/split-{{split}}_seed-0_metrics.json",
    log:
        f"{LOGS}/train_baseline/{{features}}/split-{{split}}.log",
    benchmark:
        f"{BENCH}/train_baseline/{{features}}/split-{{split}}.tsv"
    wildcard_constraints:
        features="gm|volumes",
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        model=BASELINE_CFG["model"],
        c_grid=BASELINE_CFG["c_grid"],
        inner_folds=BASELINE_CFG["inner_folds"],
        arm=baseline_arm,
    script:
        "../scripts/train_baseline.py"


rule summarize_baseline:
    input:
        metrics=baseline_runs,
        code=pkg_of("summarize_study.py"),
    output:
        tsv=f"{BASELINE}/summary.tsv",
    log:
        f"{LOGS}/summarize_baseline.log",
    benchmark:
        f"{BENCH}/summarize_baseline.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/summarize_study.py"


rule compare_with_baseline:
    input:
        cnn=f"{MODELS}/registration/summary.tsv",
        baseline=f"{BASELINE}/summary.tsv",
        code=pkg_of("compare_with_baseline.py"),
    output:
        tsv=f"{STATS}/registration_baseline.tsv",
    log:
        f"{LOGS}/compare_with_baseline.log",
    benchmark:
        f"{BENCH}/compare_with_baseline.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/compare_with_baseline.py"
