#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetch the real models, then every test of
# the workspace. No Python is needed: references are committed under tests/fixtures/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/fetch-models.sh
cargo test --workspace --locked "$@"
