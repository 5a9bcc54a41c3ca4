# Quality control: montages per subject and stage, metrics per subject, and a group table.


rule plot_skullstrip_qc:
    input:
        image=f"{PRE}_desc-n4_{CONTRAST}.nii.gz",
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        code=pkg("qc.py", "io.py"),
    output:
        f"{QC}_desc-skullstrip_qc.png",
    log:
        f"{LOGS}/plot_skullstrip_qc/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/plot_skullstrip_qc/sub-{{subject}}.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=2,
    script:
        "../scripts/plot_skullstrip_qc.py"


rule plot_tissue_qc:
    input:
        image=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        dseg=f"{PRE}_dseg.nii.gz",
        code=pkg("qc.py", "io.py"),
    output:
        f"{QC}_desc-tissue_qc.png",
    log:
        f"{LOGS}/plot_tissue_qc/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/plot_tissue_qc/sub-{{subject}}.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=2,
    script:
        "../scripts/plot_tissue_qc.py"


rule plot_registration_qc:
    input:
        image=f"{PRE}_space-template_reg-{{arm}}_desc-brain_{CONTRAST}.nii.gz",
        template=TEMPLATE.t1w,
        code=pkg("qc.py", "io.py"),
    output:
        f"{QC}_reg-{{arm}}_desc-registration_qc.png",
    log:
        f"{LOGS}/plot_registration_qc/sub-{{subject}}_reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/plot_registration_qc/sub-{{subject}}_reg-{{arm}}.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=2,
    script:
        "../scripts/plot_registration_qc.py"


rule measure_qc:
    input:
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        dseg=f"{PRE}_dseg.nii.gz",
        template_mask=TEMPLATE.mask,
        template=TEMPLATE.t1w,
        warped_masks=expand(
            f"{PRE}_space-template_reg-{{arm}}_desc-brain_mask.nii.gz",
            arm=ARMS,
            allow_missing=True,
        ),
        warped_images=expand(
            f"{PRE}_space-template_reg-{{arm}}_desc-brain_{CONTRAST}.nii.gz",
            arm=ARMS,
            allow_missing=True,
        ),
        code=pkg("qc.py", "io.py"),
    output:
        f"{QC}_qc.json",
    log:
        f"{LOGS}/measure_qc/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/measure_qc/sub-{{subject}}.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=2,
    params:
        arms=ARMS,
    script:
        "../scripts/measure_qc.py"


rule summarize_qc:
    input:
        metrics=qc_metrics,
        code=pkg("qc.py", "io.py"),
    output:
        tsv="results/qc/group_qc.tsv",
        png="results/qc/group_qc.png",
    log:
        f"{LOGS}/summarize_qc.log",
    benchmark:
        f"{BENCH}/summarize_qc.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        outlier_z=config["qc"]["outlier_z"],
    script:
        "../scripts/summarize_qc.py"
