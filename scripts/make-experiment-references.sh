#!/usr/bin/env bash
# Regenerate tests/fixtures/experiments/ (transformers + PyTorch-hook references for the logit
# lens, ablations, activation patching and causal tracing). Ensures the venv and the real models,
# then runs scripts/make-experiment-references.py with any arguments given (e.g. --case llama;
# --only trace rewrites just that section of the existing files).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/python-env.sh
source "$ROOT/scripts/lib/python-env.sh"
PY="$(strata_python_env)"
bash "$ROOT/scripts/fetch-models.sh" >/dev/null
exec "$PY" "$ROOT/scripts/make-experiment-references.py" "$@"
