# Figures, one rule each: PNG (in the report, with a caption) and PDF.


rule plot_registration_metrics:
    input:
        unpack(registration_figure_baseline),
        summary=f"{MODELS}/registration/summary.tsv",
        wilcoxon=f"{STATS}/registration_wilcoxon.tsv",
        code=pkg_of("plot_registration_metrics.py"),
    output:
        png=report(
            f"{FIGURES}/registration_metrics.png",
            caption="../report/registration_metrics.rst",
            category="Registration study",
        ),
        pdf=f"{FIGURES}/registration_metrics.pdf",
    log:
        f"{LOGS}/plot_registration_metrics/registration_metrics.log",
    benchmark:
        f"{BENCH}/plot_registration_metrics/registration_metrics.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/plot_registration_metrics.py"


rule plot_registration_roc:
    input:
        roc=f"{STATS}/registration_roc.tsv",
        summary=f"{MODELS}/registration/summary.tsv",
        code=pkg_of("plot_registration_roc.py"),
    output:
        png=report(
            f"{FIGURES}/registration_roc.png",
            caption="../report/registration_roc.rst",
            category="Registration study",
        ),
        pdf=f"{FIGURES}/registration_roc.pdf",
    log:
        f"{LOGS}/plot_registration_roc/registration_roc.log",
    benchmark:
        f"{BENCH}/plot_registration_roc/registration_roc.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/plot_registration_roc.py"


rule plot_registration_splits:
    input:
        summary=f"{MODELS}/registration/summary.tsv",
        code=pkg_of("plot_registration_splits.py"),
    output:
        png=report(
            f"{FIGURES}/registration_splits.png",
            caption="../report/registration_splits.rst",
            category="Registration study",
        ),
        pdf=f"{FIGURES}/registration_splits.pdf",
    log:
        f"{LOGS}/plot_registration_splits/registration_splits.log",
    benchmark:
        f"{BENCH}/plot_registration_splits/registration_splits.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/plot_registration_splits.py"


rule plot_tissue_fractions:
    input:
        fractions=f"{MODELS}/tissue/fractions.tsv",
        kruskal=f"{STATS}/tissue_kruskal.tsv",
        posthoc=f"{STATS}/tissue_posthoc.tsv",
        code=pkg_of("plot_tissue_fractions.py"),
    output:
        png=report(
            f"{FIGURES}/tissue_fractions.png",
            caption="../report/tissue_fractions.rst",
            category="Tissue study",
        ),
        pdf=f"{FIGURES}/tissue_fractions.pdf",
    log:
        f"{LOGS}/plot_tissue_fractions/tissue_fractions.log",
    benchmark:
        f"{BENCH}/plot_tissue_fractions/tissue_fractions.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../scripts/plot_tissue_fractions.py"


rule plot_variant_comparison:
    input:
        summary=f"{MODELS}/{{study}}/summary.tsv",
        comparison=f"{STATS}/{{study}}_comparison.tsv",
        code=pkg_of("plot_variant_comparison.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_comparison.png",
            caption="../report/variant_comparison.rst",
            category="PIF and transfer studies",
        ),
        pdf=f"{FIGURES}/{{study}}_comparison.pdf",
    log:
        f"{LOGS}/plot_variant_comparison/{{study}}_comparison.log",
    benchmark:
        f"{BENCH}/plot_variant_comparison/{{study}}_comparison.tsv"
    wildcard_constraints:
        study=COMPARED_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        variants=comparison_variants,
    script:
        "../scripts/plot_variant_comparison.py"


rule plot_qc_montage:
    input:
        images=qc_montage_images,
        code=pkg_of("plot_qc_montage.py"),
    output:
        png=report(
            f"{FIGURES}/qc_montage.png",
            caption="../report/qc_montage.rst",
            category="Quality control",
        ),
        pdf=f"{FIGURES}/qc_montage.pdf",
    log:
        f"{LOGS}/plot_qc_montage/qc_montage.log",
    benchmark:
        f"{BENCH}/plot_qc_montage/qc_montage.tsv"
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        units=UNITS,
        arm=QC_MONTAGE_ARM,
    script:
        "../scripts/plot_qc_montage.py"


rule plot_class_maps:
    input:
        maps=f"{ATTRIBUTION}/{{study}}/{{variant}}_means",
        template=str(TEMPLATE.t1w),
        store=variant_store_json,
        code=pkg_of("plot_mean_maps.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_class-maps.png",
            caption="../report/class_maps.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_class-maps.pdf",
    log:
        f"{LOGS}/plot_class_maps/{{study}}_{{variant}}_class-maps.log",
    benchmark:
        f"{BENCH}/plot_class_maps/{{study}}_{{variant}}_class-maps.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        kind="group",
        methods=METHOD_NAMES,
        names=GROUPS,
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_mean_maps.py"


rule plot_outcome_maps:
    input:
        maps=f"{ATTRIBUTION}/{{study}}/{{variant}}_means",
        template=str(TEMPLATE.t1w),
        store=variant_store_json,
        code=pkg_of("plot_mean_maps.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_outcome-maps.png",
            caption="../report/outcome_maps.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_outcome-maps.pdf",
    log:
        f"{LOGS}/plot_outcome_maps/{{study}}_{{variant}}_outcome-maps.log",
    benchmark:
        f"{BENCH}/plot_outcome_maps/{{study}}_{{variant}}_outcome-maps.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        kind="outcome",
        methods=[PRIMARY_METHOD],
        names=["TP", "FN", "TN", "FP"],
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_mean_maps.py"


rule plot_run_maps:
    input:
        maps=f"{ATTRIBUTION}/{{study}}/{{variant}}_means",
        template=str(TEMPLATE.t1w),
        store=variant_store_json,
        code=pkg_of("plot_mean_maps.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_run-maps.png",
            caption="../report/run_maps.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_run-maps.pdf",
    log:
        f"{LOGS}/plot_run_maps/{{study}}_{{variant}}_run-maps.log",
    benchmark:
        f"{BENCH}/plot_run_maps/{{study}}_{{variant}}_run-maps.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        kind="run",
        methods=[PRIMARY_METHOD],
        names=None,
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_mean_maps.py"


rule plot_top_regions:
    input:
        regions=f"{ATTRIBUTION}/{{study}}/{{variant}}_regions.tsv",
        code=pkg_of("plot_top_regions.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_top-regions.png",
            caption="../report/top_regions.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_top-regions.pdf",
    log:
        f"{LOGS}/plot_top_regions/{{study}}_{{variant}}_top-regions.log",
    benchmark:
        f"{BENCH}/plot_top_regions/{{study}}_{{variant}}_top-regions.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        method=PRIMARY_METHOD,
        group=GROUPS[1],
        k=ANALYSIS_CFG["top_k"],
        highlight=planted_region_names,
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_top_regions.py"


rule plot_beta_overlap:
    input:
        overlap=f"{STATS}/{{study}}/{{variant}}_beta-overlap.tsv",
        code=pkg_of("plot_beta_overlap.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_beta-overlap.png",
            caption="../report/beta_overlap.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_beta-overlap.pdf",
    log:
        f"{LOGS}/plot_beta_overlap/{{study}}_{{variant}}_beta-overlap.log",
    benchmark:
        f"{BENCH}/plot_beta_overlap/{{study}}_{{variant}}_beta-overlap.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        metric=ANALYSIS_CFG["rank_metric"],
        k=ANALYSIS_CFG["robustness_top_k"],
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_beta_overlap.py"


rule plot_hippocampus:
    input:
        points=f"{STATS}/{{study}}/{{variant}}_hippocampus-points.tsv",
        test=f"{STATS}/{{study}}/{{variant}}_hippocampus-test.tsv",
        code=pkg_of("plot_hippocampus.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_hippocampus.png",
            caption="../report/hippocampus.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_hippocampus.pdf",
    log:
        f"{LOGS}/plot_hippocampus/{{study}}_{{variant}}_hippocampus.log",
    benchmark:
        f"{BENCH}/plot_hippocampus/{{study}}_{{variant}}_hippocampus.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_hippocampus.py"


rule plot_robustness_l2:
    input:
        l2=f"{STATS}/{{study}}/{{variant}}_robustness-l2.tsv",
        code=pkg_of("plot_robustness_l2.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_robustness-l2.png",
            caption="../report/robustness_l2.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_robustness-l2.pdf",
    log:
        f"{LOGS}/plot_robustness_l2/{{study}}_{{variant}}_robustness-l2.log",
    benchmark:
        f"{BENCH}/plot_robustness_l2/{{study}}_{{variant}}_robustness-l2.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_robustness_l2.py"


rule plot_robustness_topk:
    input:
        topk=f"{STATS}/{{study}}/{{variant}}_robustness-topk.tsv",
        code=pkg_of("plot_robustness_topk.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_robustness-topk.png",
            caption="../report/robustness_topk.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_robustness-topk.pdf",
    log:
        f"{LOGS}/plot_robustness_topk/{{study}}_{{variant}}_robustness-topk.log",
    benchmark:
        f"{BENCH}/plot_robustness_topk/{{study}}_{{variant}}_robustness-topk.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_robustness_topk.py"


rule plot_enrichment:
    input:
        table=f"{STATS}/{{study}}/{{variant}}_enrichment.tsv",
        code=pkg_of("plot_enrichment.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_enrichment.png",
            caption="../report/enrichment.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_enrichment.pdf",
    log:
        f"{LOGS}/plot_enrichment/{{study}}_{{variant}}_enrichment.log",
    benchmark:
        f"{BENCH}/plot_enrichment/{{study}}_{{variant}}_enrichment.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        group=GROUPS[1],
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_enrichment.py"


rule plot_randomisation:
    input:
        table=f"{STATS}/{{study}}/{{variant}}_randomisation.tsv",
        code=pkg_of("plot_randomisation.py"),
    output:
        png=report(
            f"{FIGURES}/{{study}}_{{variant}}_randomisation.png",
            caption="../report/randomisation.rst",
            category="Attribution",
            subcategory="{study} {variant}",
        ),
        pdf=f"{FIGURES}/{{study}}_{{variant}}_randomisation.pdf",
    log:
        f"{LOGS}/plot_randomisation/{{study}}_{{variant}}_randomisation.log",
    benchmark:
        f"{BENCH}/plot_randomisation/{{study}}_{{variant}}_randomisation.tsv"
    wildcard_constraints:
        study=VOLUME_STUDY_PATTERN,
    conda:
        "../envs/figures.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        threshold=RANDOMISATION_CFG["max_spearman"],
        draws=RANDOMISATION_CFG["draws"],
        labels=METHOD_LABELS,
    script:
        "../scripts/plot_randomisation.py"
