# The embedded cohort: a BIDS dataset generated offline from templates shipped in pip packages.


rule make_participants:
    input:
        code=pkg_of("make_participants.py"),
    output:
        tsv=f"{SYNTH_BIDS}/participants.tsv",
        description=f"{SYNTH_BIDS}/dataset_description.json",
    log:
        f"{LOGS}/make_participants.log",
    benchmark:
        f"{BENCH}/make_participants.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=2,
    params:
        n_subjects=config["synthetic"]["n_subjects"],
        seed=config["seed"],
    script:
        "../scripts/make_participants.py"


rule build_head_model:
    input:
        template=TEMPLATE.all(),
        code=pkg_of("build_head_model.py"),
    output:
        **HEAD_MODEL,
    log:
        f"{LOGS}/build_head_model.log",
    benchmark:
        f"{BENCH}/build_head_model.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(3000),
        runtime=runtime_min(10),
    params:
        resolution_mm=RES,
        seed=config["seed"],
    script:
        "../scripts/build_head_model.py"


rule generate_subject:
    input:
        participants=f"{SYNTH_BIDS}/participants.tsv",
        headmodel=list(HEAD_MODEL.values()),
        template=TEMPLATE.all(),
        code=pkg_of("generate_subject.py"),
    output:
        t1w=f"{SYNTH_BIDS}/sub-{{subject}}/anat/sub-{{subject}}_T1w.nii.gz",
        t2w=f"{SYNTH_BIDS}/sub-{{subject}}/anat/sub-{{subject}}_T2w.nii.gz",
        dseg=f"{TRUTH}/sub-{{subject}}/anat/sub-{{subject}}_dseg.nii.gz",
        mask=f"{TRUTH}/sub-{{subject}}/anat/sub-{{subject}}_desc-brain_mask.nii.gz",
    log:
        f"{LOGS}/generate_subject/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/generate_subject/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1500),
        runtime=runtime_min(2),
    params:
        resolution_mm=RES,
        seed=config["seed"],
        synthetic=SYNTH_PARAMS,
    script:
        "../scripts/generate_subject.py"


rule write_effect_mask:
    input:
        template=TEMPLATE.all(),
        head_model=HEAD_MODEL.values(),
        code=pkg_of("write_effect_mask.py"),
    output:
        effect=EFFECT_MASK,
        regions=PLANTED_REGIONS_MASK,
    log:
        f"{LOGS}/write_effect_mask.log",
    benchmark:
        f"{BENCH}/write_effect_mask.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=2,
    params:
        resolution_mm=RES,
        synthetic=SYNTH_PARAMS,
        threshold=config["synthetic"]["effect_threshold"],
    script:
        "../scripts/write_effect_mask.py"
