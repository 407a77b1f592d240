#!/usr/bin/env bash
# Build `strata --features cuda` on a machine WITHOUT a GPU or a CUDA toolkit.
#
# Recipe: ../shared/cuda-build.md (tried on a 2-core Debian 12 box, 2026-11); everything the
# project needs from it is copied here, nothing is read from ../shared at build time.
#
#  1. installs NVIDIA's nvcc, CUDA headers and the link-time libraries from their Python wheels
#     (pip --target, no root) into ${STRATA_CACHE:-~/.cache/strata}/cuda, pinned to the versions
#     torch 2.11 (cu130) depends on, so the SONAMEs match the GPU machine's torch libraries;
#  2. adds the unversioned lib*.so symlinks the linker needs (wheels ship only lib*.so.13);
#  3. generates a link-time-only libcuda.so stub from cudarc's driver bindings (the real
#     libcuda.so.1 comes from the NVIDIA driver on the GPU machine; the stub is never shipped);
#  4. sets CUDA_ROOT/CUDA_HOME/CUDA_PATH/PATH/CUDA_COMPUTE_CAP and runs
#     `cargo build --release --features cuda` with CARGO_TARGET_DIR=target/cuda (the CPU build in
#     target/ is never invalidated);
#  5. prints the binary and its DT_NEEDED libraries.
#
# Idempotent: the wheels are installed once (a stamp file records the pinned set), the stub and
# symlinks are regenerated only when missing. Works from an empty cache.
#
# Usage: scripts/build-cuda.sh [--compute-cap N] [--setup-only] [--env] [--nvcc] [--carry] [-- CARGO_ARGS...]
#   --compute-cap N  GPU compute capability (default $CUDA_COMPUTE_CAP or 90 = H100/H200).
#                    Candle's kernels are compiled for sm_${N}a: the binary runs on that CC only.
#   --setup-only     install the toolchain and print the environment, do not build.
#   --env            print `export ...` lines only (use: eval "$(scripts/build-cuda.sh --env)"),
#                    e.g. to run `cargo test --release --features cuda` yourself.
#   --nvcc           install the compiler wheels only (~100 MB, not the 1.2 GB of libraries) and
#                    print nvcc's path: what strata-kernels' tests/nvcc.rs compiles the kernels
#                    with (scripts/test.sh: export NVCC=$(scripts/build-cuda.sh --nvcc)).
#   --carry          also build the cuda test executables and pack them with the binary into
#                    target/cuda-carry/ (what scripts/gpu-check.sh runs on the GPU machine).
#   -- ARGS          extra arguments for cargo build.
# Env: STRATA_CACHE, PYTHON (interpreter that runs pip, default python3), CUDA_COMPUTE_CAP,
#      NVCC_THREADS.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CAP="${CUDA_COMPUTE_CAP:-90}"
MODE=build
CARRY=0
CARGO_EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --compute-cap) CAP="$2"; shift 2 ;;
        --compute-cap=*) CAP="${1#*=}"; shift ;;
        --setup-only) MODE=setup; shift ;;
        --env) MODE=env; shift ;;
        --nvcc) MODE=nvcc; shift ;;
        --carry) CARRY=1; shift ;;
        --) shift; CARGO_EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,34p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "build-cuda: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$CAP" in *[!0-9]*|'') echo "build-cuda: --compute-cap must be digits like 90, got '$CAP'" >&2; exit 2 ;; esac

log() { if [ "$MODE" != env ]; then echo "build-cuda: $*" >&2; fi; }  # stdout is for --env/--nvcc

CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
PREFIX="$CACHE/cuda"
CR="$PREFIX/nvidia/cu13"          # CUDA-13 wheels all install into nvidia/cu13/{bin,include,lib,nvvm}
PY="${PYTHON:-python3}"

# Pinned to torch 2.11.0 (cu130)'s resolved dependencies (nvcc/crt/nvvm/cccl have no torch pin:
# 13.0.x, never newer than the GPU machine's driver CUDA version, or its JIT rejects the PTX ISA).
COMPILER_WHEELS=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-cccl==13.0.85
)
WHEELS=(
    "${COMPILER_WHEELS[@]}"
    nvidia-cublas==13.1.0.3
    nvidia-curand==10.4.0.35
    nvidia-cuda-nvrtc==13.0.88
)
STAMP="$PREFIX/.strata-wheels"   # the wheel set last installed

installed() { [ -x "$CR/bin/nvcc" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$1" ]; }

# install WHAT WHEELS... -> pip install --target into $PREFIX, recorded in the stamp
install() {
    local what="$1"; shift
    log "installing the CUDA 13.0 $what wheels into $PREFIX"
    mkdir -p "$PREFIX"
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install --disable-pip-version-check -q --upgrade --target "$PREFIX" "$@" >&2
    printf '%s' "$*" > "$STAMP"
    [ -x "$CR/bin/nvcc" ] || { echo "build-cuda: $CR/bin/nvcc missing after install" >&2; exit 1; }
}

# ---- 1. wheels -------------------------------------------------------------------------------
if [ "$MODE" = nvcc ]; then
    installed "${WHEELS[*]}" || installed "${COMPILER_WHEELS[*]}" || install compiler "${COMPILER_WHEELS[@]}"
    echo "$CR/bin/nvcc"
    exit 0
fi
if installed "${WHEELS[*]}"; then
    log "CUDA wheels already in $PREFIX"
else
    install "compiler and library (about 1.2 GB)" "${WHEELS[@]}"
fi

# ---- 2. unversioned symlinks for -lcublas -lcublasLt -lcudart -lnvrtc -lcurand -----------------
for l in cublas cublasLt cudart nvrtc; do
    [ -e "$CR/lib/lib$l.so" ] || ln -sf "lib$l.so.13" "$CR/lib/lib$l.so"
done
[ -e "$CR/lib/libcurand.so" ] || ln -sf libcurand.so.10 "$CR/lib/libcurand.so"

# ---- 3. libcuda.so link-time stub ------------------------------------------------------------
CUDARC_VER="$(awk '/^name = "cudarc"$/{getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)"
[ -n "$CUDARC_VER" ] || { echo "build-cuda: cudarc not in Cargo.lock" >&2; exit 1; }
STUB="$CR/lib/stubs/libcuda.so"
if [ ! -f "$STUB" ] || [ ! -f "$STUB.cudarc-$CUDARC_VER" ]; then
    find_bindings() { ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"cudarc-$CUDARC_VER" 2>/dev/null | head -n1; }
    SRC="$(find_bindings)"
    if [ -z "$SRC" ]; then
        log "cargo fetch (for cudarc-$CUDARC_VER's driver bindings)"
        cargo fetch --locked >&2
        SRC="$(find_bindings)"
    fi
    BIND="$SRC/src/driver/sys/mod.rs"
    [ -f "$BIND" ] || { echo "build-cuda: $BIND not found" >&2; exit 1; }
    mkdir -p "$CR/lib/stubs"
    # Every cu* entry point returns 999 (CUDA_ERROR_UNKNOWN): it only satisfies the linker.
    grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+\(' "$BIND" \
        | sed -E 's/pub unsafe fn (cu[A-Za-z0-9_]+)\(/int \1(void){return 999;}/' | sort -u > "$PREFIX/libcuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$STUB" "$PREFIX/libcuda_stub.c"
    rm -f "$CR"/lib/stubs/libcuda.so.cudarc-*; : > "$STUB.cudarc-$CUDARC_VER"
    log "generated $STUB ($(wc -l < "$PREFIX/libcuda_stub.c") symbols from cudarc-$CUDARC_VER)"
fi

# ---- 4. environment --------------------------------------------------------------------------
export CUDA_ROOT="$CR" CUDA_HOME="$CR" CUDA_PATH="$CR" CUDA_COMPUTE_CAP="$CAP"
case ":$PATH:" in *":$CR/bin:"*) ;; *) export PATH="$CR/bin:$PATH" ;; esac
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR_CUDA:-$ROOT/target/cuda}"
if [ "$MODE" = env ]; then
    printf 'export CUDA_ROOT=%q CUDA_HOME=%q CUDA_PATH=%q CUDA_COMPUTE_CAP=%q CARGO_TARGET_DIR=%q PATH=%q\n' \
        "$CR" "$CR" "$CR" "$CAP" "$CARGO_TARGET_DIR" "$PATH"
    exit 0
fi
log "nvcc: $("$CR/bin/nvcc" --version | tail -n2 | head -n1)"
log "env: CUDA_ROOT=$CR CUDA_COMPUTE_CAP=$CAP CARGO_TARGET_DIR=$CARGO_TARGET_DIR"
if [ "$MODE" = setup ]; then exit 0; fi

# ---- 5. build --------------------------------------------------------------------------------
start=$(date +%s)
cargo build --release --locked --features cuda --bin strata "${CARGO_EXTRA[@]}"
BIN="$CARGO_TARGET_DIR/release/strata"
echo "build-cuda: built in $(( $(date +%s) - start )) s"
echo "binary: $BIN ($(du -h "$BIN" | cut -f1))"
echo "DT_NEEDED:"
readelf -d "$BIN" | awk '/NEEDED/{print "  " $NF}' | tr -d '[]'
echo "run it on the GPU machine with the driver's libcuda.so.1 and the torch wheel's CUDA 13 libraries:"
echo "  LD_LIBRARY_PATH=<site-packages>/nvidia/cu13/lib $BIN ... --device cuda"

# ---- 6. optional: test executables for scripts/gpu-check.sh ----------------------------------
if [ "$CARRY" = 1 ]; then
    exec bash "$ROOT/scripts/pack-cuda-carry.sh"
fi
