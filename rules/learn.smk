# Training the studies' CNNs over splits x seeds, and one summary table per study.
from mrixai.templates import template_id


rule train_volume_model:
    input:
        unpack(run_store),
        splits="results/splits/splits.tsv",
        code=pkg_of("train_volume_model.py", "learn/options.py"),
    output:
        model=protected(f"{MODELS}/{{study}}/{{variant}}/{RUN}_model.pt"),
        history=f"{MODELS}/{{study}}/{{variant}}/{RUN}_history.tsv",
        predictions=f"{MODELS}/{{study}}/{{variant}}/{RUN}_predictions.tsv",
        metrics=f"{MODELS}/{{study}}/{{variant}}/{RUN}_metrics.json",
    log:
        f"{LOGS}/train_volume_model/{{study}}/{{variant}}/{RUN}.log",
    benchmark:
        f"{BENCH}/train_volume_model/{{study}}/{{variant}}/{RUN}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
        variant=TRAINED_VARIANTS,
    conda:
        "../envs/learn.yaml"
    threads: training_threads
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=training_gpu,
    params:
        run=run_options,
        seed=config["seed"],
        template=template_id(TEMPLATE_SOURCE),
    script:
        "../scripts/train_volume_model.py"


rule share_registration_run:
    input:
        unpack(shared_run_source),
        code=pkg_of("share_registration_run.py"),
    output:
        model=protected(f"{MODELS}/{{study}}/{{variant}}/{RUN}_model.pt"),
        history=f"{MODELS}/{{study}}/{{variant}}/{RUN}_history.tsv",
        predictions=f"{MODELS}/{{study}}/{{variant}}/{RUN}_predictions.tsv",
        metrics=f"{MODELS}/{{study}}/{{variant}}/{RUN}_metrics.json",
    log:
        f"{LOGS}/share_registration_run/{{study}}/{{variant}}/{RUN}.log",
    benchmark:
        f"{BENCH}/share_registration_run/{{study}}/{{variant}}/{RUN}.tsv"
    wildcard_constraints:
        study=SHARING_STUDY_PATTERN,
        variant=SHARED_VARIANT_PATTERN,
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/share_registration_run.py"


rule train_subimage_model:
    input:
        store=f"{SAMPLES}/reg-{config['samples']['subimages']['arm']}_desc-subimages",
        splits="results/splits/splits.tsv",
        code=pkg_of("train_subimage_model.py"),
    output:
        model=protected(f"{MODELS}/tissue/set-{{set}}/{RUN}_model.pt"),
        history=f"{MODELS}/tissue/set-{{set}}/{RUN}_history.tsv",
        predictions=f"{MODELS}/tissue/set-{{set}}/{RUN}_predictions.tsv",
        fractions=f"{MODELS}/tissue/set-{{set}}/{RUN}_fractions.tsv",
        metrics=f"{MODELS}/tissue/set-{{set}}/{RUN}_metrics.json",
    log:
        f"{LOGS}/train_subimage_model/set-{{set}}/{RUN}.log",
    benchmark:
        f"{BENCH}/train_subimage_model/set-{{set}}/{RUN}.tsv"
    conda:
        "../envs/learn.yaml"
    threads: training_threads
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=training_gpu,
    params:
        training=study_training("tissue"),
        model=STUDY_CFG["tissue"]["model"],
        max_repeat=config["samples"]["subimages"]["max_repeat"],
        seed=config["seed"],
    script:
        "../scripts/train_subimage_model.py"


rule summarize_study:
    input:
        metrics=summary_inputs,
        code=pkg_of("summarize_study.py"),
    output:
        tsv=f"{MODELS}/{{study}}/summary.tsv",
    log:
        f"{LOGS}/summarize_study/{{study}}.log",
    benchmark:
        f"{BENCH}/summarize_study/{{study}}.tsv"
    wildcard_constraints:
        study=TRAINED_STUDY_PATTERN,
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/summarize_study.py"


rule collect_tissue_fractions:
    input:
        fractions=tissue_fractions,
        code=pkg_of("collect_tissue_fractions.py"),
    output:
        tsv=f"{MODELS}/tissue/fractions.tsv",
    log:
        f"{LOGS}/collect_tissue_fractions.log",
    benchmark:
        f"{BENCH}/collect_tissue_fractions.tsv"
    conda:
        "../envs/learn.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    script:
        "../scripts/collect_tissue_fractions.py"
