#!/usr/bin/env bash
# Create the project's virtual environment from the pinned requirements (no conda needed).
# Usage: bash setup.sh            (creates .venv next to this file)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" - <<'PYV'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"mrixai needs Python >= 3.11, found {sys.version.split()[0]}")
PYV
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade "pip>=23.2"
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
.venv/bin/python -c "import ants, deepbet, nibabel, nilearn, snakemake, torch; print('mrixai environment ready: torch', torch.__version__)"
