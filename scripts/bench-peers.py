#!/usr/bin/env python3
"""Side-by-side benchmark of strata against TransformerLens 4.x and a plain PyTorch + HF hook loop.

Same machine, same thread count, same weights (the real SmolLM2-135M-Instruct Q4_1 GGUF, which
transformers dequantizes to f32 offline), same clean/corrupted prompt pair (16 tokens each).

Tasks (rows of the table):
  sweep resid_pre / attn_out / mlp_out   activation patching (denoising: corrupted run, clean
                                          activation patched in), every layer x every position,
                                          metric = logit(target) - logit(distractor) at the last
                                          position
  forward                                 one forward of the 16-token clean prompt
  logit lens (all)                        every layer's residual stream (resid_pre of layers 0..L-1
                                          plus the final output) at every position through the
                                          final norm + unembedding, with log-softmax, top-1 and
                                          the target's log-prob
  logit lens (last)                       the same at the last position only

Peers:
  tl      TransformerLens 4.x: TransformerBridge.boot_transformers(name, hf_model=, tokenizer=)
          over the already-loaded HF model (no hub access), then
          transformer_lens.patching.get_act_patch_{resid_pre,attn_out,mlp_out}
  torch   plain PyTorch: one HF forward per (layer, position) with a forward pre-hook on the
          decoder layer (resid_pre) or a forward hook on self_attn (attn_out) / mlp (mlp_out)
  strata  target/release/strata patch / run / lens / inspect (a separate process per run)

Every peer task runs in its own worker process (this script with --worker), so that each peak
RSS (ru_maxrss) belongs to that task alone (it includes the loaded model). Times: warm-up, then
the median of --repeats runs. Writes bench/peers-<date>.md and bench/peers-<date>.json.

Run through scripts/bench-peers.sh (venv, models, thread env). Direct use:
  python scripts/bench-peers.py [--threads 2] [--repeats 3] [--peers tl,torch,strata] [--quick]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# TransformerLens needs an architecture name to pick its adapter; the weights come from hf_model.
TL_NAME = "HuggingFaceTB/SmolLM2-135M-Instruct"
# 16 tokens each with the SmolLM2 tokenizer (no BOS is added); checked at run time.
CLEAN = "Answer with a single word. The Eiffel Tower is located in the city of"
CORRUPTED = "Answer with a single word. The Colosseum is located in the city of"
TARGET = " Paris"
DISTRACTOR = " Rome"
COMPONENTS = ["resid_pre", "attn_out", "mlp_out"]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def median(xs):
    return statistics.median(xs) if xs else None


def timed(fn, warmup: int, repeats: int):
    for _ in range(warmup):
        fn()
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# worker side (one process per peer task)
# ----------------------------------------------------------------------------------------------
def load_hf(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(args.models_dir), gguf_file=args.gguf)
    model = AutoModelForCausalLM.from_pretrained(
        str(args.models_dir), gguf_file=args.gguf, dtype=torch.float32,
        attn_implementation=args.attn,
    ).eval()
    load_s = time.perf_counter() - t0
    return tok, model, load_s


def encode(tok, args):
    import torch

    ids = {}
    for name, text in (("clean", args.clean), ("corrupted", args.corrupted)):
        ids[name] = torch.tensor([tok(text)["input_ids"]])
    for name, text in (("target", args.target), ("distractor", args.distractor)):
        t = tok(text, add_special_tokens=False)["input_ids"]
        if len(t) != 1:
            raise SystemExit(f"{name} {text!r} is {len(t)} tokens, must be one")
        ids[name] = t[0]
    if ids["clean"].shape != ids["corrupted"].shape:
        raise SystemExit(
            f"clean ({ids['clean'].shape[1]} tokens) and corrupted "
            f"({ids['corrupted'].shape[1]} tokens) differ in length")
    return ids


def worker_torch(args, task):
    import torch

    tok, model, load_s = load_hf(args)
    ids = encode(tok, args)
    rss_load = peak_rss_mib()
    T, D = ids["target"], ids["distractor"]
    clean, corrupted = ids["clean"], ids["corrupted"]
    layers = model.model.layers
    n_layers, n_pos = len(layers), clean.shape[1]
    res = {"load_seconds": load_s, "rss_after_load_mib": rss_load, "n_layers": n_layers,
           "n_positions": n_pos, "attn_implementation": args.attn}

    def logit_diff_last(x):
        return (x[0, -1, T] - x[0, -1, D]).item()

    with torch.inference_mode():
        lc = model(clean).logits
        lx = model(corrupted).logits
        res["clean_metric"] = logit_diff_last(lc)
        res["corrupted_metric"] = logit_diff_last(lx)

        if task.startswith("sweep:"):
            comp = task.split(":", 1)[1]

            def module_of(layer):
                return {"resid_pre": layers[layer], "attn_out": layers[layer].self_attn,
                        "mlp_out": layers[layer].mlp}[comp]

            # clean activations
            cache = {}
            handles = []
            for l in range(n_layers):
                if comp == "resid_pre":
                    def pre(mod, a, kw, l=l):
                        h = a[0] if a else kw["hidden_states"]
                        cache[l] = h.detach().clone()
                    handles.append(module_of(l).register_forward_pre_hook(pre, with_kwargs=True))
                else:
                    def post(mod, a, out, l=l):
                        o = out[0] if isinstance(out, tuple) else out
                        cache[l] = o.detach().clone()
                    handles.append(module_of(l).register_forward_hook(post))
            model(clean, logits_to_keep=1)
            for h in handles:
                h.remove()

            def patched_run(l, p):
                if comp == "resid_pre":
                    def pre(mod, a, kw):
                        if a:
                            h = a[0].clone()
                            h[:, p] = cache[l][:, p]
                            return (h,) + tuple(a[1:]), kw
                        h = kw["hidden_states"].clone()
                        h[:, p] = cache[l][:, p]
                        kw["hidden_states"] = h
                        return a, kw
                    handle = module_of(l).register_forward_pre_hook(pre, with_kwargs=True)
                else:
                    def post(mod, a, out):
                        if isinstance(out, tuple):
                            o = out[0].clone()
                            o[:, p] = cache[l][:, p]
                            return (o,) + tuple(out[1:])
                        o = out.clone()
                        o[:, p] = cache[l][:, p]
                        return o
                    handle = module_of(l).register_forward_hook(post)
                try:
                    return logit_diff_last(model(corrupted, logits_to_keep=1).logits)
                finally:
                    handle.remove()

            sweep_layers = args.layer_list or list(range(n_layers))

            def sweep(layer_range=sweep_layers):
                return [[patched_run(l, p) for p in range(n_pos)] for l in layer_range]

            # warm-up: one layer's positions (same code path); then full sweeps
            for _ in range(args.warmup):
                sweep(sweep_layers[:1])
            times, mat = timed(sweep, 0, args.repeats)
            res.update(times=times, seconds=median(times), matrix=mat, layers=sweep_layers,
                       forwards_per_sweep=len(sweep_layers) * n_pos)

        elif task == "forward":
            times, _ = timed(lambda: model(clean).logits, args.warmup * 3, args.fwd_repeats)
            res.update(times=times, seconds=median(times))

        elif task.startswith("lens"):
            last_only = task == "lens_last"
            norm, head = model.model.norm, model.lm_head

            def lens():
                out = model(clean, output_hidden_states=True)
                hs = out.hidden_states  # embeddings, layer 1..L-1 inputs, final (already normed)
                pre = torch.stack([h[0] for h in hs[:-1]])  # [L, pos, d]: resid_pre of 0..L-1
                final = hs[-1][0][None]  # [1, pos, d]
                if last_only:
                    pre, final = pre[:, -1:], final[:, -1:]
                x = torch.cat([norm(pre), final])  # [L+1, pos, d]
                lp = torch.log_softmax(head(x), dim=-1)
                return lp.argmax(-1), lp[..., T]

            times, (top1, tlp) = timed(lens, args.warmup * 2, args.fwd_repeats)
            res.update(times=times, seconds=median(times), lens_shape=list(top1.shape),
                       top1_final_last=int(top1[-1, -1]))
            if not last_only:
                # reference: one large matmul of the all-positions unembedding shape
                rows = (n_layers + 1) * n_pos
                d = model.config.hidden_size
                V = head.weight.shape[0]
                a = torch.randn(rows, d)
                w = head.weight
                mm_times, _ = timed(lambda: a @ w.T, 2, max(5, args.fwd_repeats // 2))
                flop = 2.0 * rows * d * V
                res["unembed_matmul"] = {"shape": [rows, d, V], "seconds": median(mm_times),
                                         "gflops": flop / median(mm_times) / 1e9}
        else:
            raise SystemExit(f"unknown task {task}")
    res["peak_rss_mib"] = peak_rss_mib()
    return res


def worker_tl(args, task):
    import torch
    import transformer_lens
    from transformer_lens import patching
    from transformer_lens.model_bridge import TransformerBridge

    tok, model, load_s = load_hf(args)
    ids = encode(tok, args)
    t0 = time.perf_counter()
    bridge = TransformerBridge.boot_transformers(TL_NAME, hf_model=model, tokenizer=tok)
    bridge.eval()
    boot_s = time.perf_counter() - t0
    rss_load = peak_rss_mib()
    T, D = ids["target"], ids["distractor"]
    clean, corrupted = ids["clean"], ids["corrupted"]
    n_layers, n_pos = bridge.cfg.n_layers, clean.shape[1]
    res = {"load_seconds": load_s, "boot_seconds": boot_s, "rss_after_load_mib": rss_load,
           "n_layers": n_layers, "n_positions": n_pos,
           "transformer_lens": getattr(transformer_lens, "__version__", None),
           "attn_implementation": getattr(model.config, "_attn_implementation", None)}

    def metric(logits):
        return logits[0, -1, T] - logits[0, -1, D]

    with torch.inference_mode():
        clean_logits, clean_cache = bridge.run_with_cache(clean)
        res["clean_metric"] = metric(clean_logits).item()
        res["corrupted_metric"] = metric(bridge(corrupted)).item()
        if task.startswith("sweep:"):
            comp = task.split(":", 1)[1]
            fn = {"resid_pre": patching.get_act_patch_resid_pre,
                  "attn_out": patching.get_act_patch_attn_out,
                  "mlp_out": patching.get_act_patch_mlp_out}[comp]
            import pandas as pd
            sweep_layers = args.layer_list or list(range(n_layers))

            def df_of(layers):
                return pd.DataFrame({"layer": [l for l in layers for _ in range(n_pos)],
                                     "pos": [p for _ in layers for p in range(n_pos)]})
            for _ in range(args.warmup):  # one layer's positions, same code path
                # the get_act_patch_* partials fix index_axis_names; an explicit index_df needs
                # it cleared (generic_activation_patch asserts that only one of the two is given)
                fn(bridge, corrupted, clean_cache, metric, index_axis_names=None,
                   index_df=df_of(sweep_layers[:1]))
            if args.layer_list:  # explicit rows: a flat result, one value per (layer, pos)
                times, out = timed(lambda: fn(bridge, corrupted, clean_cache, metric,
                                              index_axis_names=None,
                                              index_df=df_of(sweep_layers)), 0, args.repeats)
                out = out.reshape(len(sweep_layers), n_pos)
            else:
                times, out = timed(lambda: fn(bridge, corrupted, clean_cache, metric), 0,
                                   args.repeats)
            res.update(times=times, seconds=median(times), matrix=out.tolist(),
                       layers=sweep_layers, forwards_per_sweep=len(sweep_layers) * n_pos)
        elif task == "forward":
            times, _ = timed(lambda: bridge(clean), args.warmup * 3, args.fwd_repeats)
            res.update(times=times, seconds=median(times))
        else:
            raise SystemExit(f"tl: task {task} not measured")
    res["peak_rss_mib"] = peak_rss_mib()
    return res


# ----------------------------------------------------------------------------------------------
# strata side (its CLI, one process per run)
# ----------------------------------------------------------------------------------------------
def run_proc(cmd, env):
    """Run cmd; return (seconds, peak RSS MiB of that child alone, rc, stdout, stderr)."""
    with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=env, cwd=ROOT)
        _, status, ru = os.wait4(p.pid, 0)
        secs = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        return (secs, ru.ru_maxrss / 1024.0, p.returncode,
                fo.read().decode(errors="replace"), fe.read().decode(errors="replace"))


def newest_source_mtime():
    newest = 0.0
    for base in [ROOT / "src", ROOT / "crates", ROOT / "Cargo.toml", ROOT / "Cargo.lock"]:
        paths = [base] if base.is_file() else base.rglob("*")
        for p in paths:
            if p.is_file() and (p.suffix in (".rs", ".toml", ".lock") or p.name == "build.rs"):
                newest = max(newest, p.stat().st_mtime)
    return newest


def find_timing(obj):
    """A sweep time in seconds written by strata into its JSON, if any."""
    if not isinstance(obj, dict):
        return None, None
    for key in ("elapsed_seconds", "sweep_seconds", "seconds", "elapsed_s", "wall_seconds"):
        if isinstance(obj.get(key), (int, float)):
            return float(obj[key]), key
    for key in ("timing", "timings", "elapsed"):
        sub = obj.get(key)
        if isinstance(sub, (int, float)):
            return float(sub), key
        if isinstance(sub, dict):
            for k2 in ("sweep_seconds", "experiment_seconds", "compute_seconds", "elapsed_seconds",
                       "total_seconds", "seconds"):
                if isinstance(sub.get(k2), (int, float)):
                    return float(sub[k2]), f"{key}.{k2}"
    return None, None


class Strata:
    def __init__(self, args, env):
        self.args, self.env = args, env
        self.bin = Path(args.strata)
        self.model = str(Path(args.models_dir) / args.gguf)
        self.notes = []
        self.load_seconds = None
        self.load_rss = None
        self.helps = {}

    def ensure_built(self):
        if self.args.no_build:
            return self.bin.exists()
        stale = (not self.bin.exists()) or self.bin.stat().st_mtime < newest_source_mtime()
        if stale:
            log("strata: target/release/strata missing or older than the sources; cargo build --release")
            r = subprocess.run(["cargo", "build", "--release", "--bin", "strata"], cwd=ROOT,
                               env=self.env)
            if r.returncode != 0:
                self.notes.append("cargo build --release failed; strata not measured"
                                  if not self.bin.exists() else
                                  "cargo build --release failed; measured the existing (older) binary")
        return self.bin.exists()

    def help(self, sub):
        if sub not in self.helps:
            r = subprocess.run([str(self.bin), sub, "--help"], capture_output=True, text=True,
                               env=self.env, cwd=ROOT)
            self.helps[sub] = r.stdout if r.returncode == 0 else None
        return self.helps[sub]

    def model_args(self, sub):
        h = self.help(sub) or ""
        return ["--model", self.model] if re.search(r"^\s*(-\w, )?--model\b", h, re.M) else [self.model]

    def measure_load(self):
        """Median time / peak RSS of `strata inspect MODEL` (loads the model, nothing else)."""
        if self.load_seconds is None:
            times, rss = [], []
            for i in range(self.args.warmup + self.args.repeats):
                s, m, rc, _, err = run_proc([str(self.bin), "inspect", *self.model_args("inspect")],
                                            self.env)
                if rc != 0:
                    raise RuntimeError(f"strata inspect failed: {err[-400:]}")
                if i >= self.args.warmup:
                    times.append(s)
                    rss.append(m)
            self.load_seconds, self.load_rss = median(times), max(rss)
        return self.load_seconds

    def sweep(self, comp):
        if self.help("patch") is None:
            return {"error": "`strata patch` is not in this build (strata patch --help fails)"}
        times, rss, result, how = [], [], None, None
        base = [str(self.bin), "patch", *self.model_args("patch"), "--prompt", self.args.clean,
                "--corrupted", self.args.corrupted, "--target", self.args.target,
                "--distractor", self.args.distractor, "--component", comp]
        if self.args.layer_list:
            base += ["--layers", ",".join(map(str, self.args.layer_list))]
        with tempfile.TemporaryDirectory() as td:
            for i in range(self.args.warmup + self.args.repeats):
                out = Path(td) / f"run{i}"
                s, m, rc, so, se = run_proc(base + ["--out", str(out)], self.env)
                if rc != 0:
                    return {"error": f"strata patch exited {rc}: {(se or so).strip()[-600:]}",
                            "command": shlex.join(base + ["--out", "DIR"])}
                result = json.loads((out / "patch.json").read_text())
                t, key = find_timing(result)
                if t is None:
                    t = s - self.measure_load()
                    how = "process wall time - median `strata inspect` (load) time"
                else:
                    how = f"patch.json field `{key}`"
                if i >= self.args.warmup:
                    times.append(t)
                    rss.append(m)
        mat = matrix_from_rows(result, comp, self.args.layer_list)
        return {"times": times, "seconds": median(times), "peak_rss_mib": max(rss),
                "timing_source": how, "clean_metric": result.get("clean"),
                "corrupted_metric": result.get("corrupted"), "metric": result.get("metric"),
                "matrix_normalized": mat, "command": shlex.join(base + ["--out", "DIR"])}

    def forward(self):
        h = self.help("run")
        if h is None:
            return {"error": "`strata run` is not in this build"}
        base = [str(self.bin), "run", *self.model_args("run"), "--prompt", self.args.clean]
        if "--repeat" in h:
            n = self.args.fwd_repeats
            s, m, rc, so, se = run_proc(base + ["--repeat", str(n)], self.env)
            if rc == 0:
                t = parse_forward_time(so + "\n" + se)
                if t is not None:
                    return {"seconds": t, "peak_rss_mib": m, "timing_source":
                            f"`strata run --repeat {n}` reported time",
                            "command": shlex.join(base + ["--repeat", str(n)])}
                self.notes.append("`strata run --repeat` output had no recognisable time "
                                  "(want a line like `forward median 12.3 ms`)")
        times, rss = [], []
        for i in range(self.args.warmup + self.args.repeats):
            s, m, rc, so, se = run_proc(base + ["--top", "1"], self.env)
            if rc != 0:
                return {"error": f"strata run exited {rc}: {se.strip()[-400:]}"}
            if i >= self.args.warmup:
                times.append(s - self.measure_load())
                rss.append(m)
        return {"times": times, "seconds": median(times), "peak_rss_mib": max(rss),
                "timing_source": "process wall time - median `strata inspect` (load) time "
                                 "(coarse: one forward is small next to the load)",
                "command": shlex.join(base + ["--top", "1"])}

    def lens(self, last_only):
        if self.help("lens") is None:
            return {"error": "`strata lens` is not in this build"}
        base = [str(self.bin), "lens", *self.model_args("lens"), "--prompt", self.args.clean,
                "--target", self.args.target]
        if last_only:
            base.append("--last-only")
        if "--repeat" in (self.help("lens") or ""):
            # in-process repeats: lens.json's elapsed_seconds is the fastest (no cold start)
            base += ["--repeat", str(max(3, self.args.fwd_repeats // 4))]
        times, rss, how = [], [], None
        with tempfile.TemporaryDirectory() as td:
            for i in range(self.args.warmup + self.args.repeats):
                out = Path(td) / f"run{i}"
                s, m, rc, so, se = run_proc(base + ["--out", str(out)], self.env)
                if rc != 0:
                    return {"error": f"strata lens exited {rc}: {(se or so).strip()[-400:]}"}
                try:
                    t, key = find_timing(json.loads((out / "lens.json").read_text()))
                except (OSError, ValueError):
                    t, key = None, None
                if t is None:
                    t = s - self.measure_load()
                    how = "process wall time - median `strata inspect` (load) time"
                else:
                    how = f"lens.json field `{key}`"
                if i >= self.args.warmup:
                    times.append(t)
                    rss.append(m)
        return {"times": times, "seconds": median(times), "peak_rss_mib": max(rss),
                "timing_source": how, "command": shlex.join(base + ["--out", "DIR"])}


def parse_forward_time(text):
    """A per-forward time from `strata run --repeat N` output: a line with 'forward'/'median'
    and a number with unit (s, ms, µs/us)."""
    for line in text.splitlines():
        if not re.search(r"forward|median|per run|mean", line, re.I):
            continue
        m = re.search(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|µs|us|s)\b", line)
        if m:
            v = float(m.group(1))
            return v * {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "us": 1e-6}[m.group(2)]
    return None


def matrix_from_rows(result, comp, layer_list=None):
    rows = [r for r in result.get("rows", []) if r.get("component", comp) == comp
            and r.get("layer") is not None and r.get("position") is not None]
    if not rows:
        return None
    L = max(r["layer"] for r in rows) + 1
    P = max(r["position"] for r in rows) + 1
    mat = [[None] * P for _ in range(L)]
    for r in rows:
        v = r.get("normalized")
        if v is None and result.get("clean") is not None:
            v = normalize(r["value"], result["clean"], result["corrupted"])
        mat[r["layer"]][r["position"]] = v
    return [mat[l] for l in layer_list] if layer_list else mat


# ----------------------------------------------------------------------------------------------
# orchestration
# ----------------------------------------------------------------------------------------------
def normalize(v, clean, corrupted):
    return (v - corrupted) / (clean - corrupted)


def agreement(a, b):
    xs, ys = [], []
    for ra, rb in zip(a, b):
        for x, y in zip(ra, rb):
            if x is not None and y is not None:
                xs.append(float(x))
                ys.append(float(y))
    if len(xs) < 2 or len(a) != len(b) or len(a[0]) != len(b[0]):
        return {"error": f"shapes differ: {len(a)}x{len(a[0])} vs {len(b)}x{len(b[0])}"}
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    r = sxy / (sxx * syy) ** 0.5 if sxx > 0 and syy > 0 else float("nan")
    return {"pearson_r": r, "max_abs_diff": max(abs(x - y) for x, y in zip(xs, ys)), "n": len(xs)}


def run_worker(args, peer, task, env):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = f.name
    cmd = [sys.executable, __file__, "--worker", peer, "--task", task, "--result", out,
           "--threads", str(args.threads), "--repeats", str(args.repeats),
           "--warmup", str(args.warmup), "--fwd-repeats", str(args.fwd_repeats),
           "--models-dir", str(args.models_dir), "--gguf", args.gguf, "--attn", args.attn,
           "--clean", args.clean, "--corrupted", args.corrupted, "--target", args.target,
           "--distractor", args.distractor]
    if args.layers:
        cmd += ["--layers", args.layers]
    if args.flush_denormal:
        cmd.append("--flush-denormal")
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    try:
        if r.returncode != 0:
            return {"error": f"worker exited {r.returncode}: {r.stderr.strip()[-1500:]}"}
        res = json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)
    res["loadavg_before"] = list(load0)
    res["loadavg_after"] = list(os.getloadavg())
    res["worker_wall_seconds"] = wall
    return res


def fmt_s(x):
    if x is None:
        return "—"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def fmt_ratio(a, b):
    if a is None or b is None or b <= 0:
        return "—"
    return f"{a / b:.1f}×"


def fmt_mib(x):
    return "—" if x is None else f"{x:.0f}"


def machine_info(args):
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "threads_used": args.threads, "memory": mem,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def versions():
    v = {}
    for mod in ("torch", "transformers", "transformer_lens", "numpy"):
        try:
            from importlib.metadata import version
            v[mod] = version(mod.replace("_", "-"))
        except Exception:  # noqa: BLE001
            v[mod] = None
    try:
        v["strata_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
            text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        if dirty:
            v["strata_commit"] += " (+ uncommitted changes in the working tree)"
    except OSError:
        v["strata_commit"] = None
    return v


TASKS = [("resid_pre sweep", "sweep:resid_pre"), ("attn_out sweep", "sweep:attn_out"),
         ("mlp_out sweep", "sweep:mlp_out"), ("forward (16 tok)", "forward"),
         ("logit lens, all layers × positions", "lens_all"),
         ("logit lens, all layers, last position", "lens_last")]


def main_orchestrate(args):
    peers = args.peers.split(",")
    comps = args.components.split(",")
    tasks = [(label, key) for label, key in TASKS
             if not key.startswith("sweep:") or key.split(":")[1] in comps]
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               RAYON_NUM_THREADS=str(args.threads), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1", PYTHONWARNINGS="ignore")
    command = "bash scripts/bench-peers.sh " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    report = {"date": dt.datetime.now().isoformat(timespec="seconds"), "command": command,
              "machine": machine_info(args), "versions": versions(),
              "model": str(Path(args.models_dir) / args.gguf),
              "prompts": {"clean": args.clean, "corrupted": args.corrupted, "target": args.target,
                          "distractor": args.distractor},
              "settings": {"threads": args.threads, "repeats": args.repeats,
                           "warmup": args.warmup, "fwd_repeats": args.fwd_repeats,
                           "attn_implementation": args.attn, "layers": args.layers or "all",
                           "flush_denormal": args.flush_denormal},
              "loadavg_start": list(os.getloadavg()), "results": {}, "notes": []}
    results = report["results"]

    for label, key in tasks:
        results[key] = {}
        for peer in ("tl", "torch"):
            if peer not in peers or (peer == "tl" and key.startswith("lens")):
                continue
            log(f"[{peer}] {label} ...")
            r = run_worker(args, peer, key, env)
            results[key][peer] = r
            log(f"[{peer}] {label}: {fmt_s(r.get('seconds'))}, peak RSS "
                f"{fmt_mib(r.get('peak_rss_mib'))} MiB, load avg {r.get('loadavg_before', ['?'])[0]}"
                if "error" not in r else f"[{peer}] {label}: ERROR {r['error'][-300:]}")

    if "strata" in peers:
        st = Strata(args, env)
        if not st.ensure_built():
            report["notes"].append(f"strata: {st.bin} missing and could not be built; not measured")
        else:
            report["versions"]["strata_binary_mtime"] = dt.datetime.fromtimestamp(
                st.bin.stat().st_mtime).isoformat(timespec="seconds")
            for label, key in tasks:
                log(f"[strata] {label} ...")
                load0 = os.getloadavg()
                try:
                    if key.startswith("sweep:"):
                        r = st.sweep(key.split(":")[1])
                    elif key == "forward":
                        r = st.forward()
                    else:
                        r = st.lens(key == "lens_last")
                except Exception as e:  # noqa: BLE001  (report and go on with the rest)
                    r = {"error": f"{type(e).__name__}: {e}"}
                r["loadavg_before"] = list(load0)
                results[key]["strata"] = r
                log(f"[strata] {label}: {fmt_s(r.get('seconds'))}" if "error" not in r
                    else f"[strata] {label}: {r['error']}")
            if st.load_seconds is not None:
                report["strata_load"] = {"seconds": st.load_seconds, "peak_rss_mib": st.load_rss,
                                         "how": "median wall time of `strata inspect MODEL`"}
            report["notes"].extend(st.notes)

    # agreement of the patching matrices (normalized logit difference)
    report["agreement"] = {}
    for label, key in tasks:
        if not key.startswith("sweep:"):
            continue
        mats = {}
        for peer in ("tl", "torch"):
            r = results[key].get(peer, {})
            if "matrix" in r:
                mats[peer] = [[normalize(v, r["clean_metric"], r["corrupted_metric"]) for v in row]
                              for row in r["matrix"]]
                r["matrix_normalized"] = mats[peer]
        r = results[key].get("strata", {})
        if r.get("matrix_normalized"):
            mats["strata"] = r["matrix_normalized"]
        ag = {}
        for a, b in (("tl", "torch"), ("strata", "torch"), ("strata", "tl")):
            if a in mats and b in mats:
                ag[f"{a} vs {b}"] = agreement(mats[a], mats[b])
        report["agreement"][key] = ag
    report["loadavg_end"] = list(os.getloadavg())

    md = render_markdown(report, tasks)
    print(md)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"peers-{dt.date.today().isoformat()}{('-' + args.tag) if args.tag else ''}"
    (out_dir / f"{stem}.md").write_text(md)
    (out_dir / f"{stem}.json").write_text(json.dumps(report, indent=1))
    log(f"wrote {out_dir / (stem + '.md')} and {out_dir / (stem + '.json')}")


def render_markdown(rep, tasks):
    m, v = rep["machine"], rep["versions"]
    L = []
    L.append(f"# strata vs TransformerLens vs PyTorch — {rep['date']}\n")
    L.append(f"- Machine: {m['cpu']}, {m['cores']} cores, {m['memory']} RAM, {m['os']}; "
             f"**{m['threads_used']} threads** for every peer (torch.set_num_threads, "
             f"OMP_NUM_THREADS, RAYON_NUM_THREADS)")
    la = rep["loadavg_start"], rep["loadavg_end"]
    L.append(f"- Load average (1/5/15 min) at start {la[0][0]:.2f}/{la[0][1]:.2f}/{la[0][2]:.2f}, "
             f"at end {la[1][0]:.2f}/{la[1][1]:.2f}/{la[1][2]:.2f}")
    L.append(f"- Versions: torch {v.get('torch')}, transformers {v.get('transformers')}, "
             f"transformer-lens {v.get('transformer_lens')}, strata {v.get('strata_commit')}")
    L.append(f"- Model: `{rep['model']}` (transformers dequantizes the GGUF to f32; "
             f"attn_implementation={rep['settings']['attn_implementation']} for the PyTorch loop, "
             f"TransformerBridge forces eager)")
    p = rep["prompts"]
    L.append(f"- Prompts (16 tokens each): clean {p['clean']!r}, corrupted {p['corrupted']!r}; "
             f"metric logit({p['target']!r}) − logit({p['distractor']!r}) at the last position")
    s = rep["settings"]
    if s.get("layers", "all") != "all":
        L.append(f"- **Sweeps over layers {s['layers']} only** (× all positions), not all layers")
    if s.get("flush_denormal"):
        L.append("- torch.set_flush_denormal(True) in the PyTorch / TL workers")
    L.append(f"- Median of {s['repeats']} sweeps after warm-up ({s['warmup']}× one layer's "
             f"positions); forward and lens: median of {s['fwd_repeats']}")
    L.append(f"- Command: `{rep['command']}`\n")
    L.append("| task | TransformerLens | PyTorch hook loop | strata | TL / strata | PyTorch / strata "
             "| peak RSS MiB (TL / PyTorch / strata) |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    for label, key in tasks:
        r = rep["results"].get(key, {})
        tl, pt, st = (r.get(k, {}) for k in ("tl", "torch", "strata"))
        ts = [x.get("seconds") if "error" not in x else None for x in (tl, pt, st)]
        cell = [fmt_s(t) if "error" not in x else "error" for t, x in zip(ts, (tl, pt, st))]
        rss = " / ".join(fmt_mib(x.get("peak_rss_mib")) for x in (tl, pt, st))
        L.append(f"| {label} | {cell[0]} | {cell[1]} | {cell[2]} | {fmt_ratio(ts[0], ts[2])} | "
                 f"{fmt_ratio(ts[1], ts[2])} | {rss} |")
    L.append("")
    L.append("Peak RSS is each task's own process (model load included; the f32 model alone is "
             "~0.5 GiB).")
    ag = rep.get("agreement", {})
    if any(ag.values()):
        L.append("\n## Agreement (normalized logit difference, layer × position)\n")
        L.append("| sweep | pair | Pearson r | max abs diff |")
        L.append("|---|---|---:|---:|")
        for key, pairs in ag.items():
            for pair, a in pairs.items():
                if "error" in a:
                    L.append(f"| {key.split(':')[1]} | {pair} | {a['error']} | |")
                else:
                    L.append(f"| {key.split(':')[1]} | {pair} | {a['pearson_r']:.6f} | "
                             f"{a['max_abs_diff']:.2e} |")
    extra = []
    for key in ("lens_all",):
        um = rep["results"].get(key, {}).get("torch", {}).get("unembed_matmul")
        if um:
            extra.append(f"- Reference matmul [{um['shape'][0]}×{um['shape'][1]}]·"
                         f"[{um['shape'][1]}×{um['shape'][2]}] in torch: {fmt_s(um['seconds'])}, "
                         f"{um['gflops']:.1f} GFLOP/s")
    if rep.get("strata_load"):
        sl = rep["strata_load"]
        extra.append(f"- strata model load (`strata inspect`): {fmt_s(sl['seconds'])}, peak RSS "
                     f"{fmt_mib(sl['peak_rss_mib'])} MiB")
    for label, key in tasks:
        for peer, r in rep["results"].get(key, {}).items():
            if "error" in r:
                extra.append(f"- {peer} {label}: {r['error'].splitlines()[-1][:300]}")
            elif peer == "strata" and r.get("timing_source"):
                extra.append(f"- strata {label}: time = {r['timing_source']}")
            elif peer in ("tl", "torch") and r.get("loadavg_before"):
                extra.append(f"- {peer} {label}: load average {r['loadavg_before'][0]:.2f} → "
                             f"{r['loadavg_after'][0]:.2f}")
    extra.extend(f"- {n}" for n in rep.get("notes", []))
    if extra:
        L.append("\n## Notes\n")
        L.extend(extra)
    return "\n".join(L) + "\n"


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("STRATA_BENCH_THREADS", 2)))
    ap.add_argument("--repeats", type=int, default=3, help="timed sweeps (median)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--fwd-repeats", type=int, default=20, help="timed forwards / lens runs")
    ap.add_argument("--peers", default="tl,torch,strata")
    ap.add_argument("--components", default=",".join(COMPONENTS))
    ap.add_argument("--models-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--gguf", default=GGUF)
    ap.add_argument("--attn", default="sdpa", choices=["eager", "sdpa"],
                    help="attn_implementation of the PyTorch loop's model (TL forces eager)")
    ap.add_argument("--strata", default=str(ROOT / "target/release/strata"))
    ap.add_argument("--no-build", action="store_true", help="never run cargo build")
    ap.add_argument("--out-dir", default=str(ROOT / "bench"))
    ap.add_argument("--tag", default="", help="suffix of the output file names")
    ap.add_argument("--quick", action="store_true",
                    help="1 timed sweep, 5 forwards (a smoke run, not for the README)")
    ap.add_argument("--layers", default="",
                    help="sweep only these layers (comma-separated), e.g. on a busy machine; "
                         "default: all")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True) in the PyTorch / TL workers")
    ap.add_argument("--clean", default=CLEAN)
    ap.add_argument("--corrupted", default=CORRUPTED)
    ap.add_argument("--target", default=TARGET)
    ap.add_argument("--distractor", default=DISTRACTOR)
    ap.add_argument("--worker", choices=["tl", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.fwd_repeats = 1, 5
    args.layer_list = [int(x) for x in args.layers.split(",") if x.strip()]
    return args


def main():
    args = parse_args()
    if args.worker:
        import warnings
        warnings.filterwarnings("ignore")
        res = (worker_tl if args.worker == "tl" else worker_torch)(args, args.task)
        Path(args.result).write_text(json.dumps(res))
        return
    main_orchestrate(args)


if __name__ == "__main__":
    main()
