#!/usr/bin/env bash
# Regenerate tests/fixtures/real/ (transformers references for the real GGUF models).
# Ensures the venv (scripts/lib/python-env.sh) and the models (scripts/fetch-models.sh), then runs
# scripts/make-real-references.py with any arguments given (e.g. --model gemma-3-270m-q4_k_m).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/python-env.sh
source "$ROOT/scripts/lib/python-env.sh"
PY="$(strata_python_env)"
bash "$ROOT/scripts/fetch-models.sh" >/dev/null
exec "$PY" "$ROOT/scripts/make-real-references.py" "$@"
