# The derivatives sink (as in fMRIPrep): BIDS-derivatives datasets under results/derivatives/,
# hardlinked from the working outputs, which keep their own paths. One job per dataset; each
# rewrites its whole dataset (hardlinks and small JSON files), so a removed subject leaves nothing.
# Paths and input functions: rules/derivatives_inputs.smk.


rule export_preproc_derivatives:
    input:
        files=preproc_derivative_sources,
        code=pkg_of("export_preproc_derivatives.py"),
    output:
        directory(f"{DERIV}/mrixai-preproc"),
    log:
        f"{LOGS}/export_preproc_derivatives.log",
    benchmark:
        f"{BENCH}/export_preproc_derivatives.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        prefixes={u: PRE.format(subject=u) for u in UNITS},
        raw_paths=deriv_raw_paths(),
        raw_link=deriv_raw_link("mrixai-preproc"),
        contrast=CONTRAST,
        arms=ARMS,
        template_id=TEMPLATE_ID,
        resolution_mm=RES,
        parameters=DERIV_PARAMETERS,
    script:
        "../scripts/export_preproc_derivatives.py"


rule export_truth_derivatives:
    input:
        unpack(truth_derivative_sources),
        code=pkg_of("export_truth_derivatives.py"),
    output:
        directory(f"{DERIV}/mrixai-truth"),
    log:
        f"{LOGS}/export_truth_derivatives.log",
    benchmark:
        f"{BENCH}/export_truth_derivatives.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        units=UNITS,
        truth=TRUTH,
        raw_link=deriv_raw_link("mrixai-truth"),
        template_id=TEMPLATE_ID,
        resolution_mm=RES,
    script:
        "../scripts/export_truth_derivatives.py"


rule export_attribution_derivatives:
    input:
        means=attribution_derivative_sources,
        code=pkg_of("export_attribution_derivatives.py"),
    output:
        directory(f"{DERIV}/mrixai-attribution"),
    log:
        f"{LOGS}/export_attribution_derivatives.log",
    benchmark:
        f"{BENCH}/export_attribution_derivatives.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        variants=list(EXPLAINED_MEANS),
        template_id=TEMPLATE_ID,
        resolution_mm=RES,
    script:
        "../scripts/export_attribution_derivatives.py"
