# The results page: every headline number of a run, written from the run's own tables.


rule write_results_page:
    input:
        summaries=results_page_summaries,
        tables=results_page_tables,
        code=pkg("results_page.py", "io.py", "workflow.py"),
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
    script:
        "../scripts/write_results_page.py"
