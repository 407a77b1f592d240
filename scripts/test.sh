#!/usr/bin/env bash
# The project's test command (README, .ci/run): fetch the real models and NVIDIA's compiler
# (for crates/strata-kernels/tests/nvcc.rs, which compiles the CUDA kernels; no GPU needed), run
# every test of the workspace, type-check the Metal build for macOS (scripts/check-metal.sh), then
# build the CUDA binary and GPU test executables as a GPU machine gets them (scripts/build-cuda.sh
# --carry: NVIDIA's wheels, no GPU; they must link, load with a stand-in driver and pass their CPU
# tests). The CUDA build takes about 15 minutes from an empty cache on two cores;
# STRATA_SKIP_CUDA_BUILD=1 leaves it out.
# No Python package is needed beyond pip: references are committed under tests/fixtures/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/fetch-models.sh
NVCC="${NVCC:-$(bash scripts/build-cuda.sh --nvcc)}"
export NVCC
cargo test --workspace --locked "$@"
bash scripts/check-metal.sh
if [ "${STRATA_SKIP_CUDA_BUILD:-0}" != 1 ]; then
    STRATA_CARRY_CURAND=0 bash scripts/build-cuda.sh --carry
fi
