# The saliency-guided masking study: a 2D U-Net segmenter, guided-backprop saliency that places a
# brain mask on unmasked images, and segmentation again (studies.masking). Its threads and device
# come from studies.masking.training (over training), not from the tissue study's.


rule run_masking_study:
    input:
        unpack(masking_inputs),
        code=pkg_of("run_masking_study.py"),
    output:
        metrics=report(
            f"{MASKING}/metrics.tsv",
            caption="../report/masking_metrics.rst",
            category="Masking study",
        ),
        brain=report(
            f"{MASKING}/brain_mask_dice.tsv",
            caption="../report/masking_brain_mask_dice.rst",
            category="Masking study",
        ),
        sensitivity=report(
            f"{MASKING}/threshold_sensitivity.tsv",
            caption="../report/masking_threshold_sensitivity.rst",
            category="Masking study",
        ),
        lognormal=report(
            f"{MASKING}/lognormal.tsv",
            caption="../report/masking_lognormal_table.rst",
            category="Masking study",
        ),
        history=f"{MASKING}/history.tsv",
        splits=f"{MASKING}/splits.tsv",
        summary=f"{MASKING}/summary.json",
        model=protected(f"{MASKING}/model.pt"),
        manual=report(
            f"{FIGURES}/masking_case-manual.png",
            caption="../report/masking_case.rst",
            category="Masking study",
        ),
        saliency=report(
            f"{FIGURES}/masking_case-saliency.png",
            caption="../report/masking_case.rst",
            category="Masking study",
        ),
        none=report(
            f"{FIGURES}/masking_case-none.png",
            caption="../report/masking_case.rst",
            category="Masking study",
        ),
        lognormal_png=report(
            f"{FIGURES}/masking_lognormal.png",
            caption="../report/masking_lognormal.rst",
            category="Masking study",
        ),
        pdfs=[
            f"{FIGURES}/masking_case-{case}.pdf"
            for case in ("manual", "saliency", "none")
        ]
        + [f"{FIGURES}/masking_lognormal.pdf"],
    log:
        f"{LOGS}/run_masking_study.log",
    benchmark:
        f"{BENCH}/run_masking_study.tsv"
    conda:
        "../envs/explain.yaml"
    threads: study_threads("masking")
    resources:
        mem_mb=6000,
        runtime=60,
        gpu=study_gpu("masking"),
    params:
        options=MASKING_OPTIONS,
        units=UNITS,
        seed=config["seed"],
        device=study_training("masking")["device"],
    script:
        "../scripts/run_masking_study.py"


rule convert_reference_labels:
    input:
        unpack(masking_reference_inputs),
        code=pkg_of("convert_reference_labels.py"),
    output:
        mask=f"{MASKING_REF}_desc-brain_mask.nii.gz",
        dseg=f"{MASKING_REF}_dseg.nii.gz",
    log:
        f"{LOGS}/convert_reference_labels/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/convert_reference_labels/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=2,
    script:
        "../scripts/convert_reference_labels.py"
