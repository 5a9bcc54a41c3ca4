# Registration to the template grid: a transform per arm, then one job per subject warps every
# native map into template space for each configured arm (one job: antspyx's import costs 2-3 s).
XFM = f"{PRE}_from-{CONTRAST}_to-template_mode-image"


rule register_affine:
    input:
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        template=TEMPLATE.all(),
        code=pkg_of("register_affine.py"),
    output:
        **none_arm_output(),
        # the affine is always made: segmentation brings the priors in through it
        affine=f"{XFM}_reg-linear_xfm.mat",
        # the none arm's centring translation is computed here too, saving a job per subject
    log:
        f"{LOGS}/register_affine/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/register_affine/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(1500),
        runtime=runtime_min(5),
    params:
        resolution_mm=RES,
        iterations=config["registration_params"]["affine_iterations"],
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/register_affine.py"


rule register_syn:
    input:
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        affine=f"{XFM}_reg-linear_xfm.mat",
        template=TEMPLATE.all(),
        code=pkg_of("register_syn.py"),
    output:
        warp=f"{XFM}_reg-syn_xfm.nii.gz",
        inverse=f"{PRE}_from-template_to-{CONTRAST}_mode-image_reg-syn_xfm.nii.gz",
    log:
        f"{LOGS}/register_syn/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/register_syn/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(2500),
        runtime=runtime_min(10),
    params:
        resolution_mm=RES,
        iterations=config["registration_params"]["syn_iterations"],
        gradient_step=config["registration_params"]["syn_gradient_step"],
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/register_syn.py"


rule warp_brain_to_template:
    input:
        unpack(arm_transforms),
        brain=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        mask=f"{PRE}_desc-brain_mask.nii.gz",
        template=TEMPLATE.all(),
        code=pkg_of("warp_brain_to_template.py"),
    output:
        brain=warped(f"desc-brain_{CONTRAST}"),
        mask=warped("desc-brain_mask"),
    log:
        f"{LOGS}/warp_brain_to_template/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/warp_brain_to_template/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        arms=ARMS,
        resolution_mm=RES,
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/warp_brain_to_template.py"


# A separate job from the brain image's, so that changing the segmentation does not rerun what
# reads only the template-space images (the volume stores and every CNN trained on them).
rule warp_tissue_to_template:
    input:
        unpack(arm_transforms),
        dseg=f"{PRE}_dseg.nii.gz",
        gm=f"{PRE}_label-GM_probseg.nii.gz",
        wm=f"{PRE}_label-WM_probseg.nii.gz",
        csf=f"{PRE}_label-CSF_probseg.nii.gz",
        template=TEMPLATE.all(),
        code=pkg_of("warp_tissue_to_template.py"),
    output:
        dseg=warped("dseg"),
        gm=warped("label-GM_probseg"),
        wm=warped("label-WM_probseg"),
        csf=warped("label-CSF_probseg"),
    log:
        f"{LOGS}/warp_tissue_to_template/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/warp_tissue_to_template/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        arms=ARMS,
        resolution_mm=RES,
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/warp_tissue_to_template.py"


# The bias-corrected whole head (skull, scalp and extra-parenchymal space kept), carried to the
# template by the same transforms as the brain image: the tissue study cuts its subimages from it.
# One job per subject and arm, made only for the arm that study uses.
rule warp_head_to_template:
    input:
        unpack(arm_transform),
        head=f"{PRE}_desc-n4_{CONTRAST}.nii.gz",
        template=TEMPLATE.all(),
        code=pkg_of("warp_head_to_template.py"),
    output:
        head=f"{PRE}_space-template_reg-{{arm}}_desc-n4_{CONTRAST}.nii.gz",
    log:
        f"{LOGS}/warp_head_to_template/sub-{{subject}}_reg-{{arm}}.log",
    benchmark:
        f"{BENCH}/warp_head_to_template/sub-{{subject}}_reg-{{arm}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: ANTS_THREADS
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        resolution_mm=RES,
        reproducible=REPRO,
        seed=config["seed"],
    script:
        "../scripts/warp_head_to_template.py"
