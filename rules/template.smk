rule prepare_template:
    input:
        code=pkg_of("prepare_template.py"),
    output:
        t1w=TEMPLATE.t1w,
        mask=TEMPLATE.mask,
        gm=TEMPLATE.probseg("GM"),
        wm=TEMPLATE.probseg("WM"),
        csf=TEMPLATE.probseg("CSF"),
        atlas=TEMPLATE.atlas,
        labels=TEMPLATE.atlas_labels,
    log:
        f"{LOGS}/prepare_template.log",
    benchmark:
        f"{BENCH}/prepare_template.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        resolution_mm=RES,
        # nilearn's bundled template, or an offline TemplateFlow cache (resolved in rules/common/paths.smk)
        template=TEMPLATE_SOURCE,
    script:
        "../scripts/prepare_template.py"
