# Native-space preprocessing of one unit: reorient + N4, skull stripping, tissue segmentation.


rule correct_bias:
    input:
        image=raw_image,
        code=pkg_of("correct_bias.py"),
    output:
        f"{PRE}_desc-n4_{CONTRAST}.nii.gz",
    log:
        f"{LOGS}/correct_bias/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/correct_bias/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(1500),
        runtime=runtime_min(5),
    params:
        resolution_mm=RES,
        max_voxel_ratio=config["validation"]["max_voxel_ratio"],
        shrink_factor=config["bias_correction"]["shrink_factor"],
        iterations=config["bias_correction"]["iterations"],
        spline_distance_mm=config["bias_correction"]["spline_distance_mm"],
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/correct_bias.py"


rule strip_skull:
    input:
        image=f"{PRE}_desc-n4_{CONTRAST}.nii.gz",
        code=pkg_of("strip_skull.py"),
    output:
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
    log:
        f"{LOGS}/strip_skull/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/strip_skull/sub-{{subject}}.tsv"
    conda:
        SKULLSTRIP_ENV
    threads: 1 if REPRO else 2
    resources:
        mem_mb=mem_mb(3000),
        runtime=runtime_min(5),
    params:
        method=config["skullstrip"]["method"],
        threshold=config["skullstrip"]["threshold"],
        n_dilate=config["skullstrip"]["n_dilate"],
        seed=config["seed"],
    script:
        "../scripts/strip_skull.py"


rule segment_tissue:
    input:
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        affine=f"{PRE}_from-{CONTRAST}_to-template_mode-image_reg-linear_xfm.mat",
        template=TEMPLATE.all(),
        code=pkg_of("segment_tissue.py"),
    output:
        dseg=f"{PRE}_dseg.nii.gz",
        gm=f"{PRE}_label-GM_probseg.nii.gz",
        wm=f"{PRE}_label-WM_probseg.nii.gz",
        csf=f"{PRE}_label-CSF_probseg.nii.gz",
    log:
        f"{LOGS}/segment_tissue/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/segment_tissue/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        resolution_mm=RES,
        prior_weight=config["segmentation"]["prior_weight"],
        mrf=config["segmentation"]["mrf"],
        iterations=config["segmentation"]["iterations"],
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/segment_tissue.py"
