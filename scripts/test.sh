#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetch the real models and NVIDIA's compiler
# (for crates/strata-kernels/tests/nvcc.rs, which compiles the CUDA kernels; no GPU needed), run
# every test of the workspace, then type-check the Metal build for macOS (scripts/check-metal.sh).
# No Python package is needed beyond pip: references are committed under tests/fixtures/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/fetch-models.sh
NVCC="${NVCC:-$(bash scripts/build-cuda.sh --nvcc)}"
export NVCC
cargo test --workspace --locked "$@"
bash scripts/check-metal.sh
