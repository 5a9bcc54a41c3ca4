# The results page: every headline number of a run, written from the run's own tables, opening
# with the papers' claims and their verdicts.


rule write_claims:
    input:
        tables=results_page_claims_tables,
        code=pkg_of("write_claims.py", "workflow.py"),
    output:
        tsv=f"{STATS}/claims.tsv",
    log:
        f"{LOGS}/write_claims/claims.log",
    benchmark:
        f"{BENCH}/write_claims/claims.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        switches=results_page_claims_switches(),
        options=results_page_claims_options(),
    script:
        "../scripts/write_claims.py"


rule write_results_page:
    input:
        summaries=results_page_summaries,
        tables=results_page_tables,
        claims=f"{STATS}/claims.tsv",
        code=pkg_of("write_results_page.py", "workflow.py"),
    output:
        md=report(
            "results/results.md",
            caption="../report/results_page.rst",
            category="Results",
        ),
    log:
        f"{LOGS}/write_results_page/results.log",
    benchmark:
        f"{BENCH}/write_results_page/results.tsv"
    conda:
        "../envs/stats.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        studies=enabled_studies(),
        context=lambda wildcards: results_page_context(),
        alpha=ANALYSIS_CFG["claims"]["alpha"],
    script:
        "../scripts/write_results_page.py"
