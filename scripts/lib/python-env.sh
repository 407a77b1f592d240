# shellcheck shell=bash
# Source this file, then call `strata_python_env`: it prints the path of the venv's python,
# creating the venv (${STRATA_CACHE:-~/.cache/strata}/venv) from scripts/requirements.txt
# when it is missing or broken. Env: STRATA_CACHE, PYTHON (interpreter used to create the venv).
strata_python_env() {
    local root cache venv py
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    cache="${STRATA_CACHE:-$HOME/.cache/strata}"
    venv="$cache/venv"
    py="$venv/bin/python"
    if ! "$py" -c 'import torch, transformers, tokenizers, safetensors, gguf, accelerate' >/dev/null 2>&1; then
        echo "python-env: creating $venv from scripts/requirements.txt" >&2
        mkdir -p "$cache"
        "${PYTHON:-python3}" -m venv "$venv" >&2 || return 1
        "$py" -m pip install --disable-pip-version-check -q -r "$root/scripts/requirements.txt" >&2 || return 1
    fi
    printf '%s\n' "$py"
}
