#!/usr/bin/env python3
"""Collects a scripts/gpu-check.sh result folder into results.json and results.md.

usage: summarize.py RESULT_DIR
"""
import glob
import json
import os
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def patch_compare(strata_patch, torch_sweep):
    """Max |strata - torch| of the per-(layer, position) logit differences, both bf16."""
    if not strata_patch or not torch_sweep:
        return None
    grid = torch_sweep.get("logit_diff")
    worst, n = 0.0, 0
    for r in strata_patch.get("rows", []):
        l, p = r.get("layer"), r.get("position")
        if l is None or p is None or l >= len(grid) or p >= len(grid[l]):
            continue
        worst = max(worst, abs(r["value"] - grid[l][p]))
        n += 1
    return {"compared": n, "max_abs_diff": worst}


def quotient(a, b):
    return f"{a / b:.2f}" if a and b else "–"


def main():
    res = sys.argv[1]
    out = {"machine": read(os.path.join(res, "machine.txt")).strip().splitlines(),
           "manifest": read(os.path.join(res, "MANIFEST")).strip().splitlines(),
           "stages": dict(line.split(" ", 1) for line in read(os.path.join(res, "status.txt")).split("\n") if " " in line),
           "bench": {}}
    md = ["# strata GPU check", "", "```", *out["machine"], "```", "",
          "| stage | result |", "|---|---|", *[f"| {k} | {v} |" for k, v in out["stages"].items()], ""]
    parity = read(os.path.join(res, "parity.md"))
    if parity:
        md += ["## Device parity (CPU f32 reference)", "", parity, ""]
    shapes = sorted({os.path.basename(p)[len("torch-"):-len(".json")] for p in glob.glob(os.path.join(res, "torch-*.json"))}
                    | {os.path.basename(p)[len("strata-forward-"):-len(".json")]
                       for p in glob.glob(os.path.join(res, "strata-forward-*.json"))})
    fwd_rows, sweep_rows, op_rows, kernel_md, tl_rows = [], [], [], [], []
    for shape in shapes:
        t = load(os.path.join(res, f"torch-{shape}.json")) or {}
        s = load(os.path.join(res, f"strata-forward-{shape}.json")) or {}
        full = load(os.path.join(res, f"strata-patch-{shape}-full.time.json")) or {}
        sp = load(os.path.join(res, f"strata-patch-{shape}-full", "patch.json"))
        sp_composite = load(os.path.join(res, f"strata-patch-{shape}-composite", "patch.json")) or {}
        b = {"torch": {k: v for k, v in t.items() if k != "patch_sweep"}, "strata_forward": s}
        tf = {(r["batch"], r["tokens"]): r for r in t.get("forward", [])}
        for r in s.get("forward", []):
            key = (r["batch"], r["tokens"])
            tt = tf.get(key, {}).get("tokens_per_s")
            ratio = r["tokens_per_s"] / tt if tt else None
            red = {True: "kept (default)", False: "released"}.get(r.get("keep_freed_memory"), "–")
            red += {True: ", fused attention (default)", False: ", q·kᵀ + softmax + ·v"}.get(r.get("fused_attention"), "")
            fwd_rows.append(f"| {shape} | {key[0]}x{key[1]} | {red} | {r['tokens_per_s']:.0f} | "
                            f"{tt:.0f} | {ratio:.2f} |" if tt else f"| {shape} | {key[0]}x{key[1]} | {red} | {r['tokens_per_s']:.0f} | – | – |")
        t_ops = {(o["batch"], o["tokens"], o["op"]): o["ms"] for o in t.get("ops", [])}
        for o in s.get("ops", []):
            tm = t_ops.get((o["batch"], o["tokens"], o.get("versus", o["op"])))
            ratio = f"{o['ms'] / tm:.2f}" if tm else "–"
            op_rows.append(f"| {shape} | {o['batch']}x{o['tokens']} | {o['op']} | {o['ms']:.3f} | "
                           f"{f'{tm:.3f}' if tm else '–'} | {ratio} |")
        kp = t.get("kernel_profile") or {}
        if kp.get("kernels"):
            kernel_md += [f"### {shape}, {kp['shape']}: {kp['total_ms']:.2f} ms of GPU kernels in one forward", "",
                          "| ms | calls | kernel |", "|---:|---:|---|",
                          *[f"| {k['ms']:.3f} | {k['calls']} | `{k['kernel']}` |" for k in kp["kernels"]], ""]
        ts = t.get("patch_sweep", {})
        layers = ts.get("layers") or (sp or {}).get("n_layers") or "–"
        sweep = {"torch_seconds_first": ts.get("seconds_first"), "torch_seconds_warm": ts.get("seconds_warm"),
                 "strata_wall_s_full": full.get("wall_s"),
                 "strata_sweep_s_in_process": (sp or {}).get("elapsed_seconds"),
                 "strata_sweep_s_in_process_composite_attention": sp_composite.get("elapsed_seconds"),
                 "layers": layers, "positions": ts.get("positions")}
        sweep["strata_vs_torch_values"] = patch_compare(sp, ts)
        fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "–"
        b["patch_sweep"] = sweep
        out["bench"][shape] = b
        tl = t.get("transformer_lens")
        if isinstance(tl, dict):
            sf = {(r["batch"], r["tokens"]): r["tokens_per_s"] for r in s.get("forward", [])
                  if r.get("keep_freed_memory") is not False and r.get("fused_attention") is not False}
            for r in tl.get("forward", []):
                mine = sf.get((r["batch"], r["tokens"]))
                tl_rows.append(f"| {shape} | forward {r['batch']}x{r['tokens']} (tokens/s) | {r['tokens_per_s']:.0f} | "
                               f"{f'{mine:.0f}' if mine else '–'} | {quotient(mine, r['tokens_per_s'])} |")
            tps, mine = tl.get("patch_sweep", {}), sweep["strata_sweep_s_in_process"]
            if tps.get("seconds"):
                tl_rows.append(f"| {shape} | resid_pre sweep {tps['layers']}x{tps['positions']} (s) | {tps['seconds']:.3f} | "
                               f"{fmt(mine)} | {quotient(tps['seconds'], mine)} |")
        cmp_ = sweep["strata_vs_torch_values"] or {}
        sweep_rows.append(f"| {shape} | {layers}x{ts.get('positions', '–')} | {fmt(sweep['strata_sweep_s_in_process'])} | "
                          f"{fmt(sweep['strata_sweep_s_in_process_composite_attention'])} | {fmt(full.get('wall_s'))} | "
                          f"{fmt(ts.get('seconds_warm'))} | {fmt(ts.get('seconds_first'))} | {fmt(cmp_.get('max_abs_diff'))} |")
    if fwd_rows:
        md += ["## Forward throughput, bf16 (tokens/s, logits at every position)", "",
               "strata with freed device memory released to the driver at each synchronisation (CUDA's default) and kept in the pool (strata's default since 2026-11-26).", "",
               "| model | batch x tokens | strata variant (freed memory, attention) | strata | PyTorch + transformers | strata / PyTorch |", "|---|---|---|---|---|---|",
               *fwd_rows, ""]
    if op_rows:
        md += ["## Forward building blocks alone, bf16 (median ms of 10, random inputs)", "",
               "GEMMs `x · Wᵀ` with strata's projection shapes (q|k|v and gate|up fused), rows = batch x tokens: "
               "strata through candle's matmul, PyTorch through `F.linear`. Attention core: strata's q·kᵀ per kv group, "
               "masked-softmax kernel and ·v, and its fused attention kernel, each against PyTorch's SDPA (causal, "
               "grouped-query). Time ratio > 1: strata slower.", "",
               "| model | batch x tokens | op | strata (ms) | PyTorch (ms) | strata / PyTorch time |",
               "|---|---|---|---|---|---|", *op_rows, ""]
    if kernel_md:
        md += ["## PyTorch's GPU kernels in one forward (torch.profiler, top by time)", "", *kernel_md]
    if sweep_rows:
        md += ["## resid_pre patching sweep, bf16 (every layer x 20 positions, denoising, logit diff)", "",
               "strata in-process: `elapsed_seconds` of patch.json, the fastest of `--repeat 3` sweeps (clean + corrupted runs + every patched run, model "
               "already loaded). `strata patch` command: wall time of the whole process "
               "(start, model load, 3 sweeps, figures). "
               "PyTorch: clean run with hidden states + corrupted run + one batched forward (20 patches) per layer, "
               "model already loaded.", "",
               "| model | layers x positions | strata sweep in-process (s) | same, STRATA_FUSED_ATTENTION=0 (s) | strata command (s) | PyTorch warm (s) | PyTorch first (s) | max abs diff strata vs PyTorch values |",
               "|---|---|---|---|---|---|---|---|", *sweep_rows, ""]
    if tl_rows:
        md += ["## TransformerLens (TransformerBridge on the same PyTorch model), bf16", "",
               "Forward as above; its sweep is `patching.get_act_patch_resid_pre`, one forward per layer x position. "
               "strata: the default variant, the in-process sweep. Speed-up > 1: strata faster.", "",
               "| model | task | TransformerLens | strata | strata speed-up |", "|---|---|---|---|---|", *tl_rows, ""]
    with open(os.path.join(res, "results.json"), "w") as f:
        json.dump(out, f, indent=1)
    with open(os.path.join(res, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
