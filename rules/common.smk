# Shared code of the rule files: puts the package on the path, then includes the input functions by
# concern. Rules only name functions defined in rules/common/: no lambdas in rules.
#   paths.smk        output folders, path templates, resource scaling, pkg_of() (code inputs)
#   dataset.smk      dataset selection and validation (units, raw images, QC exclusions, downloads)
#   preprocess.smk   per-unit preprocessing, registration and QC inputs
#   studies.smk      samples, splits and training runs, derived from the study registry
#   baseline.smk     the classical baseline
#   attribution.smk  attribution, atlas metrics and statistics
#   figures.smk      figures and the masking study
#   targets.smk      the targets of each stage and of the results page
# The config's cross-checks (mrixai.config.check_config) run in the Snakefile, before this file.
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, f"{workflow.basedir}/src")
# Scripts import the project's package; jobs (conda envs included) find it through PYTHONPATH.
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        p for p in (f"{workflow.basedir}/src", os.getenv("PYTHONPATH", "")) if p
    )
)
import mrixai.studies as registry  # noqa: E402
from mrixai.bids import UNIT_ID_PATTERN  # noqa: E402
from mrixai.config import randomisation_methods  # noqa: E402
from mrixai.datasets.download import file_name  # noqa: E402
from mrixai.envcheck import package_modules  # noqa: E402
from mrixai.synthetic.head import HEAD_MODEL_FILES  # noqa: E402
from mrixai.synthetic.cohort import OPTIONAL_PARAM_KEYS, PARAM_KEYS  # noqa: E402
from mrixai.templates import TISSUES, TemplateFiles  # noqa: E402
from mrixai.templates import resolve_template_source  # noqa: E402
from mrixai.learn.options import run_options as learn_run_options  # noqa: E402
from mrixai.learn.options import study_training as learn_study_training  # noqa: E402


include: "common/paths.smk"
include: "common/dataset.smk"
include: "common/preprocess.smk"
include: "common/studies.smk"
include: "common/baseline.smk"
include: "common/attribution.smk"
include: "common/figures.smk"
include: "common/targets.smk"
