#!/usr/bin/env bash
# The GPU checks, in one command, on a machine with an NVIDIA GPU + driver and Python with
# PyTorch (CUDA 13 build) + transformers, and without Rust or network (docs/gpu.md).
#
# Needs target/cuda-carry/strata-cuda.tar.xz, made where Rust is by
#   scripts/build-cuda.sh --carry        (or scripts/pack-cuda-carry.sh after a build)
# and carried with the working tree (device tool: carry ["target/cuda-carry"]).
#
# Stages (all by default, ~5-8 minutes on one H100):
#   kernels  crates/strata-kernels tests: CPU twins + gpu_* (GPU kernel vs CPU twin)
#   parity   tests/gpu_parity.rs: CPU f32 vs CUDA f32/bf16 logits on tests/fixtures/models/* and
#            models/*.gguf (NOT RUN if models/ is absent: 340 MB, it cannot be carried)
#   bench    for each shape (1b, 8b; qwen3-8b on request): random-weight model in bf16 generated here with PyTorch;
#            forward tokens/s (+ a per-hook-point time profile) and a resid_pre patching sweep
#            (all layers x 20 positions, 3 times in one process: the fastest counts),
#            strata and PyTorch + transformers side by side
# Every gpu_* test runs with STRATA_REQUIRE_GPU=1: no device = failure, never a silent pass.
#
# Real models can travel in parts over several device calls: scripts/pack-model-carry.sh splits
# models/FILE into target/model-carry/FILE.xz.part*, reassembled here (sha256-checked) once every
# part listed in FILE.parts has arrived.
#
# Usage: scripts/gpu-check.sh [--only kernels|parity|bench[,...]] [--shapes "1b 8b"] [--keep-models]
# Results: $OUT/gpu-check/ if $OUT is set (the device tool), else bench/gpu-check-<date>/:
#   results.json, results.md, logs/*.log. Exit status: 0 only when every stage that ran passed.
# Env: PYTHON (default python3), STRATA_GPU_WORK (model scratch, default /tmp/strata-gpu),
#      STRATA_REQUIRE_REAL_MODELS=1 (fail instead of NOT RUN when models/ is absent).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ONLY=all
SHAPES="1b 8b"
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="$2"; shift 2 ;;
        --shapes) SHAPES="$2"; shift 2 ;;
        --keep-models) KEEP=1; shift ;;
        -h|--help) sed -n '2,25p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1" >&2; exit 2 ;;
    esac
done
want() { [ "$ONLY" = all ] || [[ ",$ONLY," == *",$1,"* ]]; }

PY="${PYTHON:-python3}"
if [ -n "${OUT:-}" ]; then RES="$OUT/gpu-check"; else RES="$ROOT/bench/gpu-check-$(date -u +%Y%m%dT%H%M%SZ)"; fi
mkdir -p "$RES/logs"
WORK="${STRATA_GPU_WORK:-/tmp/strata-gpu}"
mkdir -p "$WORK"
STATUS="$RES/status.txt"
: > "$STATUS"
note() { echo "gpu-check: $*" | tee -a "$RES/logs/gpu-check.log" >&2; }
stage_result() { echo "$1 $2" >> "$STATUS"; note "stage $1: $2"; }
T_START=$(date +%s)

# ---- unpack the prebuilt executables ---------------------------------------------------------
CARRY="$ROOT/target/cuda-carry"
RUN="$ROOT/target/cuda-run"       # unpacked here, never into the carried folder
BIN="$RUN/bin"
if [ ! -f "$CARRY/strata-cuda.tar.xz" ]; then
    note "missing $CARRY/strata-cuda.tar.xz: run scripts/build-cuda.sh --carry where Rust is, and carry target/cuda-carry"
    exit 1
fi
if [ ! -x "$BIN/strata" ] || [ "$CARRY/strata-cuda.tar.xz" -nt "$BIN/strata" ]; then
    "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' \
        "$CARRY/strata-cuda.tar.xz" "$RUN" || { note "cannot unpack the carry archive"; exit 1; }
    chmod +x "$BIN"/*
    touch "$BIN"/*
fi
cp "$RUN/MANIFEST" "$RES/MANIFEST" 2>/dev/null
# Executables built from other sources than this tree's (a carry packed before the last change)
# would measure the wrong code: say so in machine.txt, hence at the top of results.md.
if [ -f "$RUN/SOURCES" ]; then
    if sha256sum --quiet -c "$RUN/SOURCES" > "$RES/logs/sources.txt" 2>&1; then
        BUILD_NOTE="carried build: made from this tree's sources"
    else
        BUILD_NOTE="carried build: STALE, $(grep -c FAILED "$RES/logs/sources.txt") source files differ from this tree (logs/sources.txt); rebuild with scripts/build-cuda.sh --carry"
        note "WARNING: $BUILD_NOTE"
    fi
else
    BUILD_NOTE="carried build: no SOURCES list (packed before 2026-11-27)"
fi

# ---- CUDA libraries: the driver's libcuda.so.1 + torch's CUDA 13 wheels -----------------------
NVLIB=$("$PY" - <<'PY'
import glob, os
dirs = []
try:
    import nvidia
    for base in list(nvidia.__path__):
        for d in [os.path.join(base, "cu13", "lib")] + sorted(glob.glob(os.path.join(base, "*", "lib"))):
            if os.path.isdir(d) and d not in dirs and glob.glob(os.path.join(d, "lib*.so.1[0-9]*")):
                dirs.append(d)
except Exception:
    pass
try:
    import torch
    d = os.path.join(os.path.dirname(torch.__file__), "lib")
    if os.path.isdir(d):
        dirs.append(d)
except Exception:
    pass
print(":".join(dirs))
PY
)
export LD_LIBRARY_PATH="${NVLIB}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export STRATA_REQUIRE_GPU=1 STRATA_ROOT="$ROOT" RUST_BACKTRACE=1
{
    echo "date: $(date -u +%FT%TZ)"
    echo "host: $(uname -n) $(uname -m)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/gpu: /'
    nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | sed 's/^/driver /'
    "$PY" -c 'import torch, transformers; print("torch:", torch.__version__, "cuda", torch.version.cuda, "| transformers:", transformers.__version__)' 2>&1
    echo "LD_LIBRARY_PATH: $LD_LIBRARY_PATH"
    echo "$BUILD_NOTE"
} > "$RES/machine.txt"
cat "$RES/machine.txt" >&2
LDD=$(ldd "$BIN/strata" 2>&1)
# torch >= 2.12 no longer depends on nvidia-curand: fall back to the libcurand.so.10 packed apart
# (target/cuda-curand, a call of its own: with the build it would exceed one call's 64 MiB).
CURAND="$ROOT/target/cuda-curand/libcurand.tar.xz"
if echo "$LDD" | grep -q 'libcurand.so.10 => not found' && [ -f "$CURAND" ]; then
    [ -f "$RUN/lib/libcurand.so.10" ] || "$PY" -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' \
        "$CURAND" "$RUN"
    export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$RUN/lib"
    echo "libcurand.so.10: from target/cuda-curand/libcurand.tar.xz" >> "$RES/machine.txt"
    LDD=$(ldd "$BIN/strata" 2>&1)
fi
echo "$LDD" > "$RES/logs/ldd.txt"
if echo "$LDD" | grep -q 'not found'; then
    note "missing shared libraries (a CUDA 12 torch? see docs/gpu.md):"
    echo "$LDD" | grep 'not found' >&2
    if echo "$LDD" | grep -q 'libcurand.so.10 => not found'; then
        note "libcurand.so.10: carry [\"target/cuda-curand\"] in a call of its own (command: true) while this machine is warm, then run this again"
    fi
    exit 1
fi

# ---- kernels --------------------------------------------------------------------------------
if want kernels; then
    if timeout 300 "$BIN/strata_kernels" --include-ignored --test-threads=1 > "$RES/logs/kernels.log" 2>&1; then
        stage_result kernels pass
    else
        stage_result kernels FAIL
    fi
    grep -E '^test |test result' "$RES/logs/kernels.log" >&2
fi

# ---- parity ---------------------------------------------------------------------------------
assemble_models() {  # models/NAME from target/model-carry/NAME.xz.part* (scripts/pack-model-carry.sh)
    local list name sha parts
    for list in "$ROOT"/target/model-carry/*.parts; do
        [ -f "$list" ] || continue
        name="$(basename "$list" .parts)"
        [ -f "$ROOT/models/$name" ] && continue
        sha="$(sed -n 's/^sha256 //p' "$list")"
        parts=($(grep -v '^sha256 ' "$list" | sed "s|^|$ROOT/target/model-carry/|"))
        if ! ls "${parts[@]}" > /dev/null 2>&1; then note "models/$name: parts missing, not assembled"; continue; fi
        mkdir -p "$ROOT/models"
        cat "${parts[@]}" | "$PY" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1 << 22)' \
            > "$ROOT/models/$name.tmp" || { note "models/$name: cannot decompress"; continue; }
        if [ "$(sha256sum "$ROOT/models/$name.tmp" | cut -d' ' -f1)" = "$sha" ]; then
            mv "$ROOT/models/$name.tmp" "$ROOT/models/$name"; note "models/$name assembled from ${#parts[@]} parts (sha256 ok)"
        else
            rm -f "$ROOT/models/$name.tmp"; note "models/$name: sha256 mismatch after assembly"
        fi
    done
}
if want parity; then
    assemble_models
    rm -f "$RES/parity.md"
    if STRATA_PARITY_OUT="$RES/parity.md" timeout 420 "$BIN/gpu_parity" gpu_ --include-ignored --skip gpu_bench --test-threads=1 --nocapture \
        > "$RES/logs/parity.log" 2>&1; then
        stage_result parity pass
    else
        stage_result parity FAIL
    fi
    grep -E '^test |test result|NOT RUN|panicked' "$RES/logs/parity.log" >&2
fi

# ---- benchmarks -----------------------------------------------------------------------------
PROMPT="$(seq -s' ' -f 'w%g' 1 20)"        # 20 tokens with make_random_llama's tokenizer
CORRUPTED="$(seq -s' ' -f 'w%g' 101 120)"
now() { date +%s.%N; }
# `strata patch MODEL` (positional) or `--model MODEL`, whichever this build's CLI takes.
if "$BIN/strata" patch --help 2>/dev/null | grep -q -- '--model'; then MODEL_FLAG=(--model); else MODEL_FLAG=(); fi
if want bench; then
    for shape in $SHAPES; do
        M="$WORK/llama-$shape"
        L="$RES/logs/bench-$shape"
        ok=1
        note "bench $shape: generating $M"
        timeout 300 "$PY" scripts/gpu/make_random_llama.py --shape "$shape" --out "$M" > "$L-make.log" 2>&1 || ok=0
        if [ $ok = 1 ]; then
            note "bench $shape: pytorch + transformers"
            timeout 300 "$PY" scripts/gpu/bench_torch.py --model "$M" --prompt "$PROMPT" --corrupted "$CORRUPTED" \
                --target w500 --distractor w501 --shapes 1x512,8x512 --out "$RES/torch-$shape.json" > "$L-torch.log" 2>&1 || ok=0
            note "bench $shape: strata forward"
            STRATA_BENCH_MODEL="$M" STRATA_BENCH_SHAPES=1x512,8x512 STRATA_BENCH_OUT="$RES/strata-forward-$shape.json" \
                timeout 300 "$BIN/gpu_parity" gpu_bench_forward --exact --include-ignored --nocapture > "$L-strata-forward.log" 2>&1 || ok=0
            note "bench $shape: strata patch (full sweep, 3 times in one process)"
            t0=$(now)
            timeout 300 "$BIN/strata" patch "${MODEL_FLAG[@]}" "$M" --prompt "$PROMPT" --corrupted "$CORRUPTED" \
                --target w500 --distractor w501 --component resid_pre --device cuda --dtype bf16 --repeat 3 \
                --out "$RES/strata-patch-$shape-full" > "$L-strata-patch-full.log" 2>&1 || ok=0
            t1=$(now)
            grep -h 'sweep times' "$L-strata-patch-full.log" >&2
            note "bench $shape: strata patch, attention as q·kᵀ + softmax + ·v (STRATA_FUSED_ATTENTION=0)"
            STRATA_FUSED_ATTENTION=0 timeout 300 "$BIN/strata" patch "${MODEL_FLAG[@]}" "$M" --prompt "$PROMPT" \
                --corrupted "$CORRUPTED" --target w500 --distractor w501 --component resid_pre --device cuda \
                --dtype bf16 --repeat 3 --out "$RES/strata-patch-$shape-composite" > "$L-strata-patch-composite.log" 2>&1 || ok=0
            echo "{\"run\": \"full\", \"wall_s\": $("$PY" -c "print(round($t1 - $t0, 3))")}" \
                > "$RES/strata-patch-$shape-full.time.json"
        fi
        [ $ok = 1 ] && stage_result "bench-$shape" pass || stage_result "bench-$shape" FAIL
        [ $KEEP = 1 ] || rm -rf "$M"
    done
fi

note "total $(( $(date +%s) - T_START )) s"
"$PY" scripts/gpu/summarize.py "$RES" || note "summarize failed"
# The device tool returns only a few files: pack the logs and per-run outputs into one archive.
if [ -n "${OUT:-}" ]; then
    ( cd "$RES" && tar czf details.tar.gz --exclude='*.png' --exclude='*.svg' logs $(ls -d strata-* torch-*.json 2>/dev/null) \
        && rm -rf logs strata-* torch-*.json )
fi
echo "results: $RES/results.md $RES/results.json" >&2
! grep -q FAIL "$STATUS"
