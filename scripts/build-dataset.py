#!/usr/bin/env python3
"""Build data/structure_performance.csv and data/SOURCES.md (standard library only).

Inputs (all in the repo except the litgpt wheel, which scripts/build-dataset.sh downloads):
  --wheel    litgpt-0.5.13-py3-none-any.whl; only litgpt/config.py is read, as text, through the
             AST (litgpt is never imported: its module-level config statements are executed in an
             empty namespace with `deepcopy` as the only name).
  data/benchmarks/obsscaling/base_llm_benchmark_eval.csv  (Open LLM Leaderboard v1 task set, 0-1)
  data/benchmarks/oll_v2_official_providers.csv           (Open LLM Leaderboard v2, 0-100)
  data/structure_supplement.csv                           (curated config facts, one cited source per row)

Rows: every model of the ObsScaling table (148 base models) plus every leaderboard-v2 model whose
structure litgpt 0.5.13 knows. Output is sorted by model_id and written with fixed float formats,
so a rebuild is byte-identical.
"""

from __future__ import annotations

import argparse
import ast
import copy
import csv
import io
import sys
import zipfile
from pathlib import Path

LITGPT_VERSION = "0.5.13"
V1 = ["arc_c", "hellaswag", "winogrande", "truthfulqa", "gsm8k", "mmlu"]
V1_SOURCE_COLS = {
    "arc_c": "ARC-C",
    "hellaswag": "HellaSwag",
    "winogrande": "Winograd",
    "truthfulqa": "TruthfulQA",
    "gsm8k": "GSM8K",
    "mmlu": "MMLU",
}
V2 = ["ifeval", "bbh", "math_lvl5", "gpqa", "musr", "mmlu_pro"]
STRUCT = [
    "d_model",
    "d_ffn",
    "n_layers",
    "n_heads",
    "n_kv_heads",
    "head_dim",
    "vocab_size",
    "context_length",
    "activation",
    "gated_mlp",
    "norm",
    "positional",
    "n_experts",
]
INT_STRUCT = {"d_model", "d_ffn", "n_layers", "n_heads", "n_kv_heads", "head_dim", "vocab_size", "context_length", "n_experts"}
COLUMNS = (
    ["model_id", "family", "arch_class", "model_type", "release_date", "upload_date", "params_b"]
    + STRUCT
    + V1
    + V2
    + ["structure_source", "params_source", "v1_source", "v2_source"]
)
PRECISION_ORDER = {"bfloat16": 0, "float16": 1, "float32": 2}


def load_litgpt_configs(wheel: Path) -> dict[str, dict]:
    with zipfile.ZipFile(wheel) as z:
        src = z.read("litgpt/config.py").decode("utf-8")
    tree = ast.parse(src, filename="litgpt/config.py")
    keep = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.ClassDef)):
            continue
        if isinstance(node, ast.FunctionDef):
            node.returns = None
            for a in node.args.args:
                a.annotation = None
        keep.append(node)
    ns: dict = {"deepcopy": copy.deepcopy, "__builtins__": {"len": len, "set": set, "ValueError": ValueError, "dict": dict, "list": list, "range": range}}
    exec(compile(ast.Module(body=keep, type_ignores=[]), "litgpt/config.py", "exec"), ns)
    out = {}
    for c in ns["configs"]:
        hf = c.get("hf_config", {})
        if "org" in hf and "name" in hf:
            out[f"{hf['org']}/{hf['name']}"] = c
    return out


def find_multiple(n: int, k: int) -> int:
    return n if n % k == 0 else n + k - (n % k)


def litgpt_structure(c: dict) -> dict:
    """The structural columns from one litgpt config dict, with litgpt's own defaults
    (Config dataclass of litgpt 0.5.13) applied as its __post_init__ does."""
    n_embd = c.get("n_embd", 4096)
    n_head = c.get("n_head", 32)
    head = c.get("head_size") or n_embd // n_head
    vocab = c.get("padded_vocab_size") or find_multiple(c.get("vocab_size", 50254), c.get("padding_multiple", 512))
    mlp = c.get("mlp_class_name", "GptNeoxMLP")
    gelu = "gelu_tanh" if c.get("gelu_approximate", "none") == "tanh" else "gelu"
    act, gated = {"GptNeoxMLP": (gelu, False), "LLaMAMLP": ("silu", True), "GemmaMLP": (gelu, True), "LLaMAMoE": ("silu", True)}[mlp]
    return {
        "d_model": n_embd,
        "d_ffn": c.get("intermediate_size") or 4 * n_embd,
        "n_layers": c.get("n_layer", 16),
        "n_heads": n_head,
        "n_kv_heads": c.get("n_query_groups") or n_head,
        "head_dim": head,
        "vocab_size": vocab,
        # litgpt's default block_size (4096) is not a fact about the model: only an explicit one counts
        "context_length": c.get("block_size", ""),
        "activation": act,
        "gated_mlp": "true" if gated else "false",
        "norm": c.get("norm_class_name", "LayerNorm"),
        "positional": "rope",
        "n_experts": c.get("n_expert", 0) or 1,
    }


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def fmt_score(x: float) -> str:
    return f"{x:.4f}"


def dedup_oll(rows: list[dict]) -> dict[str, dict]:
    """One row per model: bfloat16 before float16 before anything else, then the latest
    submission date, then file order."""
    best: dict[str, tuple] = {}
    for i, r in enumerate(rows):
        key = (PRECISION_ORDER.get(r["precision"], 9), tuple(-ord(ch) for ch in r["submission_date"] or "0"), i)
        m = r["model_id"]
        if m not in best or key < best[m][0]:
            best[m] = (key, r)
    return {m: v[1] for m, v in best.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", required=True, type=Path)
    ap.add_argument("--data", default=Path(__file__).resolve().parent.parent / "data", type=Path)
    args = ap.parse_args()
    data: Path = args.data

    lit = load_litgpt_configs(args.wheel)
    obs = read_csv(data / "benchmarks/obsscaling/base_llm_benchmark_eval.csv")
    oll_rows = read_csv(data / "benchmarks/oll_v2_official_providers.csv")
    oll = dedup_oll(oll_rows)
    sup = {r["model_id"]: r for r in read_csv(data / "structure_supplement.csv")}
    obs_by = {r["Model"]: r for r in obs}

    ids = set(obs_by) | {m for m in oll if m in lit} | {m for m in sup if m in oll}
    out_rows = []
    for m in sorted(ids):
        row = {k: "" for k in COLUMNS}
        row["model_id"] = m
        o, v, s = obs_by.get(m), oll.get(m), sup.get(m)
        if o:
            row["family"] = o["Model Family"]
        # structure: litgpt first, then the curated supplement fills or overrides (each override cited)
        src = []
        if m in lit:
            row.update({k: str(x) for k, x in litgpt_structure(lit[m]).items()})
            src.append(f"litgpt-{LITGPT_VERSION}:{lit[m]['name']}")
        if s:
            touched = [k for k in STRUCT if s.get(k, "") != ""]
            for k in touched:
                row[k] = s[k]
            if touched:
                row["n_experts"] = row["n_experts"] or (s.get("n_experts") or "1")
                src.append("supplement:" + ("all" if len(touched) >= len(STRUCT) - 1 else "+".join(touched)))
        row["structure_source"] = ";".join(src)
        # architecture class: the supplement (config.json `architectures`), else the leaderboard
        arch = (s or {}).get("arch_class", "")
        if not arch and v and v["architecture"] not in ("", "Unknown", "?"):
            arch = v["architecture"]
        row["arch_class"] = arch
        row["model_type"] = v["type"] if v else ("pretrained" if o else "")
        if o and v and v["type"] != "pretrained":
            row["model_type"] = "pretrained"  # ObsScaling lists base models only
        row["release_date"] = (s or {}).get("release_date", "")
        row["upload_date"] = v["upload_date"] if v else ""
        # parameters (billions): curated override > leaderboard (exact count) > ObsScaling (nominal)
        if s and s.get("params_b"):
            row["params_b"], row["params_source"] = s["params_b"], "supplement"
        elif v and float(v["params_b"] or 0) > 0:
            row["params_b"], row["params_source"] = f"{float(v['params_b']):.3f}", "oll_v2"
        elif o:
            row["params_b"], row["params_source"] = f"{float(o['Model Size (B)']):.3f}", "obsscaling"
        if o:
            for k, col in V1_SOURCE_COLS.items():
                if o[col] != "":
                    row[k] = fmt_score(100.0 * float(o[col]))
            row["v1_source"] = "obsscaling"
        if v:
            for k in V2:
                if v[k] != "":
                    row[k] = fmt_score(float(v[k]))
            row["v2_source"] = f"oll_v2:{v['precision']}"
        out_rows.append(row)

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(out_rows)
    (data / "structure_performance.csv").write_text(buf.getvalue(), encoding="utf-8")

    full = [r for r in out_rows if all(r[k] != "" for k in V1) and all(r[k] != "" for k in STRUCT + ["params_b", "arch_class"])]
    sys.stderr.write(
        f"build-dataset: {len(out_rows)} models x {len(COLUMNS)} columns; "
        f"{len(full)} with all six v1 scores and full structure; "
        f"{sum(1 for r in out_rows if r['ifeval'] != '')} with v2 scores\n"
    )
    write_sources(data, out_rows, full)
    return 0


def write_sources(data: Path, rows: list[dict], full: list[dict]) -> None:
    miss = {c: sum(1 for r in rows if r[c] == "") / len(rows) for c in COLUMNS}
    lines = [
        "# Bundled structural dataset: sources and provenance",
        "",
        "Generated by `scripts/build-dataset.sh` (do not edit by hand; a rebuild is byte-identical).",
        "",
        f"`structure_performance.csv`: {len(rows)} models x {len(COLUMNS)} columns; "
        f"{len(full)} distinct base models have all six Open LLM Leaderboard v1 scores and full structure.",
        "",
        "## Input files",
        "",
        "| file | what | source | licence |",
        "|---|---|---|---|",
        "| `benchmarks/obsscaling/base_llm_benchmark_eval.csv` | 148 base models; MMLU, ARC-C, HellaSwag, Winogrande (`Winograd`), TruthfulQA, GSM8K as fractions | github.com/ryoungj/ObsScaling @ 4d6e1e43fd2635d04654aa77d1df9d5266ea0382, `eval_results/` (Ruan, Maddison, Hashimoto, NeurIPS 2024) | Apache-2.0 (`benchmarks/obsscaling/LICENSE`), verbatim copy |",
        "| `benchmarks/oll_v2_official_providers.csv` | Open LLM Leaderboard v2 \"official providers\" rows (one per model x precision), scores 0-100 | Hugging Face `open-llm-leaderboard/contents`, February 2025 snapshot, column subset | measurements; attribution kept |",
        f"| litgpt {LITGPT_VERSION} wheel, `litgpt/config.py` (not stored here) | config facts of about 210 models keyed by hub id | the `litgpt=={LITGPT_VERSION}` package, downloaded by `scripts/build-dataset.sh` | Apache-2.0 |",
        "| `structure_supplement.csv` | curated config facts, release month and architecture class; each row cites its source (`source` column) | the models' config.json files and reports, as cited per row | facts |",
        "",
        "## Columns",
        "",
        "| column | meaning | source | missing |",
        "|---|---|---|---|",
    ]
    desc = {
        "model_id": ("hub id (org/name)", "input tables"),
        "family": ("model family", "ObsScaling `Model Family`"),
        "arch_class": ("config.json `architectures[0]`", "supplement, else leaderboard `architecture`"),
        "model_type": ("pretrained / chat / fine-tuned ...", "leaderboard `type`; ObsScaling rows are `pretrained`"),
        "release_date": ("release month (YYYY-MM)", "supplement (cited per row)"),
        "upload_date": ("hub upload date (YYYY-MM-DD)", "leaderboard `upload_date`"),
        "params_b": ("parameters, billions", "`params_source`: supplement > leaderboard (exact) > ObsScaling (nominal)"),
        "d_model": ("hidden size", "litgpt `n_embd`, else supplement"),
        "d_ffn": ("MLP width per branch (per expert for MoE)", "litgpt `intermediate_size` (default 4*d_model), else supplement"),
        "n_layers": ("decoder layers", "litgpt `n_layer`, else supplement"),
        "n_heads": ("query heads", "litgpt `n_head`, else supplement"),
        "n_kv_heads": ("key/value heads", "litgpt `n_query_groups` (default n_heads), else supplement"),
        "head_dim": ("head dimension", "litgpt `head_size` (default d_model/n_heads), else supplement"),
        "vocab_size": ("embedding rows (config.json `vocab_size`)", "litgpt `padded_vocab_size`, else supplement"),
        "context_length": ("trained / configured context", "litgpt explicit `block_size` (its default is not used), else supplement"),
        "activation": ("silu, gelu, gelu_tanh or relu", "litgpt `mlp_class_name` + `gelu_approximate`, else supplement"),
        "gated_mlp": ("GLU-style MLP (true/false)", "litgpt `mlp_class_name`, else supplement"),
        "norm": ("RMSNorm or LayerNorm", "litgpt `norm_class_name`, else supplement"),
        "positional": ("rope, alibi, learned or sinusoidal", "litgpt (all rope), else supplement"),
        "n_experts": ("experts per MoE layer (1 = dense)", "litgpt `n_expert`, else supplement"),
        "structure_source": ("per-row provenance of the structural columns", "this script"),
        "params_source": ("per-row provenance of params_b", "this script"),
        "v1_source": ("per-row provenance of the v1 scores", "this script"),
        "v2_source": ("per-row provenance (and precision) of the v2 scores", "this script"),
    }
    for k in V1:
        desc[k] = (f"Open LLM Leaderboard v1 task `{V1_SOURCE_COLS[k]}`, 0-100", "ObsScaling x 100")
    for k in V2:
        desc[k] = (f"Open LLM Leaderboard v2 `{k}`, normalised 0-100", "leaderboard v2")
    for c in COLUMNS:
        d, s = desc[c]
        lines.append(f"| `{c}` | {d} | {s} | {100 * miss[c]:.1f}% |")
    lines += [
        "",
        "## Rules",
        "",
        "- Rows: every ObsScaling base model, plus every leaderboard-v2 model whose structure litgpt knows.",
        "- Duplicates: the leaderboard repeats a model per precision; one row is kept: bfloat16, then float16,",
        "  then others; ties by the latest submission date. The kept precision is named in `v2_source`.",
        "- Scores: v1 fractions are multiplied by 100 and written with 4 decimals; v2 scores are already 0-100.",
        "- Structure that does not fit one number per column (MoE and hybrid models whose experts were not curated,",
        "  per-layer variable GQA, attention-free RNNs) is left empty rather than guessed.",
        "",
        "## Per-row provenance",
        "",
        "Each row of `structure_performance.csv` names its sources in `structure_source`, `params_source`,",
        "`v1_source` and `v2_source`; a `supplement` entry points to the row of `structure_supplement.csv` with",
        "the same `model_id`, whose `source` column cites the config.json or report the facts come from.",
        "",
    ]
    (data / "SOURCES.md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
