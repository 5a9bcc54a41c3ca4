# Quality control: per subject one job draws a montage per stage and measures the QC metrics;
# then one group table flags outliers.


rule plot_subject_qc:
    input:
        n4=f"{PRE}_desc-n4_{CONTRAST}.nii.gz",
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        dseg=f"{PRE}_dseg.nii.gz",
        template=TEMPLATE.t1w,
        template_mask=TEMPLATE.mask,
        warped_images=expand(
            f"{PRE}_space-template_reg-{{arm}}_desc-brain_{CONTRAST}.nii.gz",
            arm=ARMS,
            allow_missing=True,
        ),
        warped_masks=expand(
            f"{PRE}_space-template_reg-{{arm}}_desc-brain_mask.nii.gz",
            arm=ARMS,
            allow_missing=True,
        ),
        code=pkg_of("plot_subject_qc.py"),
    output:
        skullstrip=f"{QC}_desc-skullstrip_qc.png",
        tissue=f"{QC}_desc-tissue_qc.png",
        registration=expand(
            f"{QC}_reg-{{arm}}_desc-registration_qc.png", arm=ARMS, allow_missing=True
        ),
        metrics=f"{QC}_qc.json",
    log:
        f"{LOGS}/plot_subject_qc/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/plot_subject_qc/sub-{{subject}}.tsv"
    conda:
        "../envs/qc.yaml"
    threads: 1
    resources:
        mem_mb=1500,
        runtime=5,
    params:
        arms=ARMS,
    script:
        "../scripts/plot_subject_qc.py"


rule summarize_qc:
    input:
        metrics=qc_metrics,
        code=pkg_of("summarize_qc.py"),
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
