# Attribution maps of the trained volume models (rules/analysis.smk builds statistics and figures on them).


rule attribute_model:
    input:
        unpack(attribution_inputs),
        code=pkg_of("attribute_model.py"),
    output:
        directory(f"{ATTRIBUTION}/{{study}}/{{variant}}/{RUN}"),
    log:
        f"{LOGS}/attribute_model/{{study}}/{{variant}}/{RUN}.log",
    benchmark:
        f"{BENCH}/attribute_model/{{study}}/{{variant}}/{RUN}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=attribution_gpu(),
    params:
        methods=ATTRIBUTION_CFG["methods"],
        target=ATTRIBUTION_CFG["target"],
        device=ATTRIBUTION_CFG["device"],
    script:
        "../scripts/attribute_model.py"
