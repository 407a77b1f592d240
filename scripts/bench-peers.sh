#!/usr/bin/env bash
# Side-by-side benchmark: strata vs TransformerLens 4.x vs a plain PyTorch + HF hook loop
# (activation-patching sweeps resid_pre / attn_out / mlp_out, one forward, logit lens), same
# machine, same thread count, same SmolLM2-135M GGUF weights, same 16-token prompts.
# Writes bench/peers-<date>.md and .json; see scripts/bench-peers.py --help for the options
# (--threads N, --repeats N, --peers tl,torch,strata, --layers 0,10,20,29, --quick, --no-build).
# Env: STRATA_BENCH_THREADS (default 2), STRATA_CACHE, STRATA_MODELS_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib/python-env.sh
source "$ROOT/scripts/lib/python-env.sh"
PY="$(strata_python_env)"
# A venv made before transformer-lens was pinned: add what is missing from requirements.txt.
if ! "$PY" -c 'import transformer_lens, pandas' >/dev/null 2>&1; then
    echo "bench-peers: installing transformer-lens into the venv (scripts/requirements.txt)" >&2
    "$PY" -m pip install --disable-pip-version-check -q -r "$ROOT/scripts/requirements.txt" >&2
fi
bash "$ROOT/scripts/fetch-models.sh" >/dev/null
THREADS="${STRATA_BENCH_THREADS:-2}"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS" RAYON_NUM_THREADS="$THREADS"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MODELS_ARGS=()
if [[ -n "${STRATA_MODELS_DIR:-}" ]]; then MODELS_ARGS=(--models-dir "$STRATA_MODELS_DIR"); fi
cd "$ROOT"
exec "$PY" "$ROOT/scripts/bench-peers.py" --threads "$THREADS" "${MODELS_ARGS[@]}" "$@"
