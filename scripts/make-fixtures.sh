#!/usr/bin/env bash
# Regenerate the tiny reference models in tests/fixtures/models (see its README.md).
# Sets up the Python venv (scripts/lib/python-env.sh) and runs scripts/make-fixtures.py;
# extra arguments go to the script (--out DIR, --only FAMILY...).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/python-env.sh
source "$ROOT/scripts/lib/python-env.sh"
PY="$(strata_python_env)"
exec "$PY" "$ROOT/scripts/make-fixtures.py" "$@"
