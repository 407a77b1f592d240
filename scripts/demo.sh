#!/usr/bin/env bash
# The main job: fetch the real SmolLM2 model, run strata on it and write the interpretability
# report (logit lens, ablation, activation patching, causal tracing) as one HTML file.
# Usage: bash scripts/demo.sh [OUT_DIR]   (default: report/)
# About 10 minutes on two CPU cores (release build not counted); see the report's "Run" table.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT="${1:-report}"
MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf
bash scripts/fetch-models.sh
cargo build --release --locked
STRATA=target/release/strata
mkdir -p "$OUT"
"$STRATA" inspect "$MODEL" | tee "$OUT/inspect.txt"
"$STRATA" generate "$MODEL" --prompt "The capital of France is" -n 20 | tee "$OUT/generate.txt"
"$STRATA" run "$MODEL" --prompt "The capital of France is" --hooks 'blocks.*.hook_resid_post' \
    --save "$OUT/activations.safetensors"
"$STRATA" report --model "$MODEL" --probe factual --out "$OUT"
echo "report: $OUT/report.html"
