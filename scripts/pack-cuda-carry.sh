#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on the GPU machine (which has no Rust) and packs it into
# target/cuda-carry/strata-cuda.tar.xz (about 11 MB; a device call carries 64 MiB with the working
# tree, checked by scripts/carry-size.sh at the end; the three unpacked executables are ~45 MB each
# because each embeds candle's PTX and SASS):
#   bin/strata          the CLI (`strata patch ... --device cuda` in the benchmarks)
#   bin/gpu_parity      tests/gpu_parity.rs (device parity, forward benchmark)
#   bin/strata_kernels  crates/strata-kernels unit tests (CPU twins + gpu_* kernel tests)
#   MANIFEST            git revision, compute capability, sizes, sha256
#   SOURCES             sha256 of every source file the executables were built from, so that
#                       gpu-check.sh can tell a stale carry from one built from the tree beside it
# Everything is built with the release profile in target/cuda (scripts/build-cuda.sh's setup).
# Usage: scripts/pack-cuda-carry.sh   (or scripts/build-cuda.sh --carry)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(bash scripts/build-cuda.sh --env)"
CARRY="$ROOT/target/cuda-carry"
STAGE="$CARRY/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE/bin"

cargo build --release --locked --features cuda --bin strata
cp "$CARGO_TARGET_DIR/release/strata" "$STAGE/bin/strata"

# Test executables: cargo prints their paths in its JSON messages. Both are built in ONE cargo call
# with the root package selected, so features unify exactly as in the binary's build (building
# strata-kernels alone resolves candle's features differently and recompiles candle-kernels).
exe_of() {  # $1 = target name
    python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable") \
            and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
MSGS=$(cargo test --release --locked -p strata -p strata-kernels --features strata/cuda,strata-kernels/cuda \
    --lib --test gpu_parity --no-run --message-format=json)
GP=$(echo "$MSGS" | exe_of gpu_parity | tail -n1)
SK=$(echo "$MSGS" | exe_of strata_kernels | tail -n1)
[ -x "$GP" ] && [ -x "$SK" ] || { echo "pack-cuda-carry: test executables not found ($GP, $SK)" >&2; exit 1; }
cp "$GP" "$STAGE/bin/gpu_parity"
cp "$SK" "$STAGE/bin/strata_kernels"
strip "$STAGE"/bin/*   # symbols only: the PTX/fatbin sections are kept

{
    echo "git: $(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!target' 2>/dev/null || echo ' (dirty)')"
    echo "built: $(date -u +%FT%TZ) on $(uname -m), CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP, $(nvcc --version | tail -n2 | head -n1)"
    for f in "$STAGE"/bin/*; do
        echo "$(basename "$f") $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"
        readelf -d "$f" | awk '/NEEDED/{printf "  needs %s\n", $NF}' | tr -d '[]'
    done
} > "$STAGE/MANIFEST"
git ls-files -z -- src crates kernels tests/gpu_parity.rs Cargo.toml Cargo.lock | xargs -0 sha256sum > "$STAGE/SOURCES"

# xz with a 192 MiB dictionary: the three executables share most of their bytes.
python3 - "$STAGE" "$CARRY/strata-cuda.tar.xz" <<'PY'
import lzma, os, sys, tarfile
stage, out = sys.argv[1], sys.argv[2]
filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 192 << 20}]
tmp = out + ".tmp"
with lzma.open(tmp, "wb", format=lzma.FORMAT_XZ, filters=filters) as xz:
    with tarfile.open(fileobj=xz, mode="w") as tar:
        for name in ["MANIFEST", "SOURCES"] + sorted("bin/" + f for f in os.listdir(os.path.join(stage, "bin"))):
            tar.add(os.path.join(stage, name), arcname=name)
os.replace(tmp, out)
PY
rm -rf "$STAGE"

# Smoke test of what was packed, here and without a GPU, so that a broken archive does not cost
# device time: unpacked as gpu-check.sh unpacks it, with the wheels' CUDA libraries and the
# driver stub standing in for libcuda.so.1, every executable must load and start, the parity
# executable must list the tests gpu-check.sh runs, and the kernel tests must pass on the CPU
# (their GPU halves report NOT RUN: the stub has no device).
SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1], "r:xz").extractall(sys.argv[2])' "$CARRY/strata-cuda.tar.xz" "$SMOKE"
mkdir -p "$SMOKE/driver" && ln -s "$CUDA_ROOT/lib/stubs/libcuda.so" "$SMOKE/driver/libcuda.so.1"
smoke() { env -u STRATA_REQUIRE_GPU LD_LIBRARY_PATH="$SMOKE/driver:$CUDA_ROOT/lib" "$@"; }
for exe in "$SMOKE"/bin/*; do
    if smoke ldd "$exe" | grep 'not found'; then echo "pack-cuda-carry: $exe: libraries missing" >&2; exit 1; fi
done
smoke "$SMOKE/bin/strata" --version > /dev/null
(cd "$ROOT" && sha256sum --quiet -c "$SMOKE/SOURCES") || { echo "pack-cuda-carry: SOURCES does not match the tree" >&2; exit 1; }
LISTED=$(smoke "$SMOKE/bin/gpu_parity" --list --include-ignored)
for t in gpu_bench_forward gpu_fixture_models_logits_match_cpu gpu_real_models_logits_match_cpu; do
    grep -q "^$t: test" <<< "$LISTED" || { echo "pack-cuda-carry: gpu_parity lacks $t" >&2; exit 1; }
done
smoke "$SMOKE/bin/strata_kernels" --include-ignored --test-threads=2 -q > "$SMOKE/kernels.log" 2>&1 \
    || { cat "$SMOKE/kernels.log" >&2; echo "pack-cuda-carry: the packed kernel tests fail on the CPU" >&2; exit 1; }
echo "pack-cuda-carry: smoke test passed (executables load; $(grep -c ': test' <<< "$LISTED") parity tests listed; kernel tests pass on the CPU)"

# libcurand.so.10 (127 MB, 41 MiB packed), for GPU machines whose torch (>= 2.12) no longer ships
# it: packed once (slow) into its own folder, target/cuda-curand/, carried in a call of its own
# only where gpu-check.sh reports it missing (with the build it would exceed one call's 64 MiB).
CURAND="$ROOT/target/cuda-curand"
if [ "${STRATA_CARRY_CURAND:-1}" = 1 ] && [ ! -f "$CURAND/libcurand.tar.xz" ]; then
    echo "pack-cuda-carry: packing libcurand.so.10 into $CURAND (a few minutes, once)" >&2
    mkdir -p "$CURAND"
    tar -C "$CUDA_ROOT" -cf - lib/libcurand.so.10 | xz -6 -T0 > "$CURAND/libcurand.tar.xz.tmp"
    mv "$CURAND/libcurand.tar.xz.tmp" "$CURAND/libcurand.tar.xz"
fi
SIZE=$(stat -c %s "$CARRY/strata-cuda.tar.xz")
echo "pack-cuda-carry: $CARRY/strata-cuda.tar.xz ($((SIZE / 1048576)) MiB)"
bash "$ROOT/scripts/carry-size.sh" target/cuda-carry
echo "carry list for the device tool: [\"target/cuda-carry\"]"
