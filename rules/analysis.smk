# Atlas metrics of the attribution maps, checks of the explanations, and the studies' statistics.


rule aggregate_attribution:
    input:
        unpack(aggregate_inputs),
        code=pkg_of("aggregate_attribution.py"),
    output:
        regions=f"{ATTRIBUTION}/{{study}}/{{variant}}_regions.tsv",
        maps=directory(f"{ATTRIBUTION}/{{study}}/{{variant}}_means"),
    log:
        f"{LOGS}/aggregate_attribution/{{study}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/aggregate_attribution/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        merge_hemispheres=ANALYSIS_CFG["merge_hemispheres"],
    script:
        "../scripts/aggregate_attribution.py"


rule measure_region_volumes:
    input:
        unpack(volume_transforms),
        reference=f"{PRE}_desc-brain_{CONTRAST}.nii.gz",
        gm=f"{PRE}_label-GM_probseg.nii.gz",
        atlas=TEMPLATE.atlas,
        labels=TEMPLATE.atlas_labels,
        code=pkg_of("measure_region_volumes.py"),
    output:
        tsv=f"{PRE}_atlas-Neuromorphometrics_morph.tsv",
    log:
        f"{LOGS}/measure_region_volumes/sub-{{subject}}.log",
    benchmark:
        f"{BENCH}/measure_region_volumes/sub-{{subject}}.tsv"
    conda:
        "../envs/imaging.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=runtime_min(5),
    params:
        merge_hemispheres=ANALYSIS_CFG["merge_hemispheres"],
    script:
        "../scripts/measure_region_volumes.py"


rule check_ground_truth:
    input:
        unpack(ground_truth_inputs),
        code=pkg_of("check_ground_truth.py"),
    output:
        enrichment=f"{STATS}/{{study}}/{{variant}}_enrichment.tsv",
        ranks=f"{STATS}/{{study}}/{{variant}}_planted-ranks.tsv",
    log:
        f"{LOGS}/check_ground_truth/{{study}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/check_ground_truth/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        planted=planted_region_names,
        positive_group=GROUPS[1],
        rank_metric=ANALYSIS_CFG["rank_metric"],
        merge_hemispheres=ANALYSIS_CFG["merge_hemispheres"],
    script:
        "../scripts/check_ground_truth.py"


rule check_randomisation:
    input:
        unpack(first_run),
        code=pkg_of("check_randomisation.py"),
    output:
        tsv=f"{STATS}/{{study}}/{{variant}}_randomisation.tsv",
    log:
        f"{LOGS}/check_randomisation/{{study}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/check_randomisation/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
        gpu=attribution_gpu(),
    params:
        methods=ATTRIBUTION_CFG["methods"],
        names=RANDOMISATION_METHODS,
        seed=config["seed"],
        draws=RANDOMISATION_CFG["draws"],
        device=ATTRIBUTION_CFG["device"],
        target=ATTRIBUTION_CFG["target"],
    script:
        "../scripts/check_randomisation.py"


rule correlate_hippocampus:
    input:
        unpack(hippocampus_inputs),
        code=pkg_of("correlate_hippocampus.py"),
    output:
        points=f"{STATS}/{{study}}/{{variant}}_hippocampus-points.tsv",
        test=f"{STATS}/{{study}}/{{variant}}_hippocampus-test.tsv",
    log:
        f"{LOGS}/correlate_hippocampus/{{study}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/correlate_hippocampus/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        method=PRIMARY_METHOD,
        region=HIPPOCAMPUS_CFG["region"],
        metric=HIPPOCAMPUS_CFG["metric"],
        permutations=HIPPOCAMPUS_CFG["permutations"],
        outcomes=HIPPOCAMPUS_CFG["outcomes"],
        volume_measure=HIPPOCAMPUS_CFG["volume_measure"],
        direction=HIPPOCAMPUS_CFG["direction"],
        exact_limit=ANALYSIS_CFG["exact_limit"],
        seed=config["seed"],
    script:
        "../scripts/correlate_hippocampus.py"


rule measure_robustness:
    input:
        regions=f"{ATTRIBUTION}/{{study}}/{{variant}}_regions.tsv",
        maps=f"{ATTRIBUTION}/{{study}}/{{variant}}_means",
        code=pkg_of("measure_robustness.py"),
    output:
        l2=f"{STATS}/{{study}}/{{variant}}_robustness-l2.tsv",
        topk=f"{STATS}/{{study}}/{{variant}}_robustness-topk.tsv",
        overlap=f"{STATS}/{{study}}/{{variant}}_beta-overlap.tsv",
    log:
        f"{LOGS}/measure_robustness/{{study}}/{{variant}}.log",
    benchmark:
        f"{BENCH}/measure_robustness/{{study}}/{{variant}}.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/explain.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        methods=METHOD_NAMES,
        beta_methods=lrp_beta_methods(),
        k=ANALYSIS_CFG["robustness_top_k"],
    script:
        "../scripts/measure_robustness.py"


rule compare_registration_arms:
    input:
        summary=f"{MODELS}/registration/summary.tsv",
        metrics=registration_metric_files,
        code=pkg_of("compare_registration_arms.py"),
    output:
        wilcoxon=f"{STATS}/registration_wilcoxon.tsv",
        friedman=f"{STATS}/registration_friedman.tsv",
        roc=f"{STATS}/registration_roc.tsv",
    log:
        f"{LOGS}/compare_registration_arms.log",
    benchmark:
        f"{BENCH}/compare_registration_arms.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        exact_limit=ANALYSIS_CFG["exact_limit"],
        permutations=ANALYSIS_CFG["permutations"],
        seed=config["seed"],
    script:
        "../scripts/compare_registration_arms.py"


rule compare_tissue_sets:
    input:
        fractions=f"{MODELS}/tissue/fractions.tsv",
        code=pkg_of("compare_tissue_sets.py"),
    output:
        kruskal=f"{STATS}/tissue_kruskal.tsv",
        posthoc=f"{STATS}/tissue_posthoc.tsv",
        models=f"{STATS}/tissue_models.tsv",
        model_friedman=f"{STATS}/tissue_models-friedman.tsv",
        model_pairs=f"{STATS}/tissue_models-wilcoxon.tsv",
    log:
        f"{LOGS}/compare_tissue_sets.log",
    benchmark:
        f"{BENCH}/compare_tissue_sets.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        exact_limit=ANALYSIS_CFG["exact_limit"],
        permutations=ANALYSIS_CFG["permutations"],
        seed=config["seed"],
    script:
        "../scripts/compare_tissue_sets.py"


rule compare_study_variants:
    input:
        summary=f"{MODELS}/{{study}}/summary.tsv",
        code=pkg_of("compare_study_variants.py"),
    output:
        tsv=f"{STATS}/{{study}}_comparison.tsv",
    log:
        f"{LOGS}/compare_study_variants/{{study}}.log",
    benchmark:
        f"{BENCH}/compare_study_variants/{{study}}.tsv"
    wildcard_constraints:
        study=COMPARED_STUDY_PATTERN,
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        exact_limit=ANALYSIS_CFG["exact_limit"],
        permutations=ANALYSIS_CFG["permutations"],
        seed=config["seed"],
    script:
        "../scripts/compare_study_variants.py"
