#!/usr/bin/env bash
# Regenerate tests/fixtures/dataset/ (describe, correlations, random-forest references) with
# numpy / scipy / scikit-learn from the bundled data/structure_performance.csv.
# Creates the project venv when missing (scripts/lib/python-env.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/python-env.sh
source "$ROOT/scripts/lib/python-env.sh"
PY="$(strata_python_env)"
"$PY" -c 'import numpy, scipy, sklearn' 2>/dev/null || "$PY" -m pip install --disable-pip-version-check -q -r "$ROOT/scripts/requirements.txt"
"$PY" "$ROOT/scripts/stats-reference.py" "$@"
