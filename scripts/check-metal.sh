#!/usr/bin/env bash
# Type-checks the whole workspace (tests and benches included) for macOS on Apple silicon with
# `--features metal` (candle's Metal backend) on a Linux machine without Apple's SDK, with clippy
# and warnings as errors (code under cfg(target_os = "macos") or the metal feature included): what
# "the Metal build keeps compiling" can mean without a Mac. A check makes no machine code and
# links nothing; the C and C++ some crates build (ring under hf-hub, the kernel emulator) would
# need Apple's SDK, so a stand-in compiler writes empty objects for them. Not checked: that C/C++,
# linking against Apple's frameworks, running anything.
#
# Installs the Rust standard library for aarch64-apple-darwin with rustup when it is missing.
# Output in target/metal-check (about 0.5 GB; 3 minutes from scratch on 2 cores).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=aarch64-apple-darwin
if ! rustup target list --installed | grep -qx "$TARGET"; then
    echo "check-metal: installing the $TARGET standard library (rustup target add)" >&2
    rustup target add "$TARGET" >&2
fi
export CARGO_TARGET_DIR="$ROOT/target/metal-check"
STAND_IN="$CARGO_TARGET_DIR/stand-in-cc"
mkdir -p "$CARGO_TARGET_DIR"
# cc-rs first asks the compiler which family it is (-E on a probe file): answer clang.
cat > "$STAND_IN" <<'CC'
#!/bin/sh
for a in "$@"; do [ "$a" = "-E" ] && { echo clang; exit 0; }; done
out=""
while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2 ;; -\?) exit 1 ;; *) shift ;; esac; done
[ -z "$out" ] || : > "$out"
CC
chmod +x "$STAND_IN"
CC_aarch64_apple_darwin="$STAND_IN" CXX_aarch64_apple_darwin="$STAND_IN" AR_aarch64_apple_darwin=ar \
    cargo clippy --locked --target "$TARGET" --features metal --workspace --all-targets "$@" -- -D warnings
echo "check-metal: the workspace type-checks for $TARGET with --features metal" >&2
