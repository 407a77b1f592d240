#!/usr/bin/env python3
"""PyTorch + Hugging Face side of scripts/gpu-check.sh's benchmarks, on the same model directory
strata reads (make_random_llama.py):

- forward throughput: full forward (logits at every position, like strata's `forward`) of B x T
  token batches, bf16, tokens/s after warm-up, synchronised;
- on CUDA, the forward's building blocks alone (GEMMs of strata's projection shapes, SDPA) and the
  GPU kernels of one forward by time (torch.profiler), to compare with strata op by op;
- resid_pre patching sweep (denoising): one clean run caching every layer's input, the corrupted
  run, then per layer ONE batched forward of all T single-position patches (a forward pre-hook
  writes clean resid_pre[l][p] into row p at position p), metric = logit(target) - logit(distractor)
  at the last position. Timed twice (first, warm); load time reported separately;
- where TransformerLens is installed: the same forward through a TransformerBridge around the
  same model, and TransformerLens' own resid_pre patching (one forward per layer x position).

usage: bench_torch.py --model DIR --prompt "..." --corrupted "..." --target w500 --distractor w501
                      [--shapes 1x512,8x512] [--device cuda] [--out FILE.json]
"""
import argparse
import json
import sys
import time

import torch


def sync(dev):
    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def load(model_dir, device):
    from transformers import AutoModelForCausalLM
    t0 = time.time()
    try:
        m = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
    except TypeError:  # transformers < 4.56 spells it torch_dtype
        m = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.bfloat16)
    m = m.to(device).eval()
    sync(device)
    return m, time.time() - t0


def forward_bench(run, device, vocab, shapes, label="torch"):
    """Tokens/s of run(ids) (a full forward, logits at every position) at each B x T."""
    out = []
    for shape in shapes:
        b, t = (int(x) for x in shape.split("x"))
        ids = (torch.arange(t).unsqueeze(0) * 7919 + torch.arange(b).unsqueeze(1) * 104729 + 13) % vocab
        ids = ids.to(device)
        with torch.inference_mode():
            for _ in range(2):
                run(ids)
            sync(device)
            n, start = 0, time.time()
            while n < 3 or (time.time() - start < 2.0 and n < 20):
                run(ids)
                sync(device)
                n += 1
        per = (time.time() - start) / n
        out.append({"batch": b, "tokens": t, "seconds_per_forward": per, "tokens_per_s": b * t / per, "runs": n})
        print(f"{label} forward bf16 {b}x{t}: {per * 1e3:.2f} ms/forward, {b * t / per:.0f} tokens/s", file=sys.stderr)
    return out


def time_ms(device, run):
    """Median milliseconds of run() (synchronised) over 10 runs after 3 warm-ups."""
    for _ in range(3):
        run()
    sync(device)
    ms = []
    for _ in range(10):
        t0 = time.time()
        run()
        sync(device)
        ms.append((time.time() - t0) * 1e3)
    return sorted(ms)[5]


def ops_bench(m, device, shapes):
    """The forward's building blocks alone at each B x T, bf16, random inputs: the projections'
    GEMMs with strata's shapes (q|k|v and gate|up fused; transformers runs them separately) and
    the attention core as SDPA (causal, grouped-query); strata's gpu_bench_forward times the same."""
    import torch.nn.functional as F
    c = m.config
    d, h, g = c.hidden_size, c.num_attention_heads, c.num_key_value_heads
    e = getattr(c, "head_dim", None) or d // h
    mlp, vocab = c.intermediate_size, c.vocab_size
    out = []
    for shape in shapes:
        b, t = (int(x) for x in shape.split("x"))
        first = len(out)
        rand = lambda *dims: torch.randn(*dims, device=device, dtype=torch.bfloat16) * 0.02
        with torch.inference_mode():
            for name, n_in, n_out in [("gemm qkv", d, (h + 2 * g) * e), ("gemm o", h * e, d),
                                      ("gemm gate_up", d, 2 * mlp), ("gemm down", mlp, d),
                                      ("gemm lm_head", d, vocab)]:
                x, w = rand(b * t, n_in), rand(n_out, n_in)
                out.append({"batch": b, "tokens": t, "op": name, "ms": time_ms(device, lambda: F.linear(x, w))})
            q, k, v = rand(b, h, t, e), rand(b, g, t, e), rand(b, g, t, e)
            try:
                attn = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                attn()
            except TypeError:  # torch < 2.5: no enable_gqa
                kk, vv = k.repeat_interleave(h // g, 1), v.repeat_interleave(h // g, 1)
                attn = lambda: F.scaled_dot_product_attention(q, kk, vv, is_causal=True)
            out.append({"batch": b, "tokens": t, "op": "attention core (SDPA)",
                        "ms": time_ms(device, attn)})
        for o in out[first:]:
            print(f"torch op {b}x{t} {o['op']}: {o['ms']:.3f} ms", file=sys.stderr)
    return out


def kernel_profile(m, device, vocab, shape, top=15):
    """The GPU kernels of one forward at `shape` by total time (torch.profiler), to set against
    strata's per-hook-point profile."""
    from torch.profiler import ProfilerActivity, profile
    b, t = (int(x) for x in shape.split("x"))
    ids = (torch.arange(t).unsqueeze(0) * 7919 + torch.arange(b).unsqueeze(1) * 104729 + 13) % vocab
    ids = ids.to(device)
    with torch.inference_mode():
        m(input_ids=ids, use_cache=False)
        sync(device)
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            m(input_ids=ids, use_cache=False)
            sync(device)
    rows = []
    for ev in prof.key_averages():
        us = getattr(ev, "device_time_total", None) or getattr(ev, "cuda_time_total", 0)
        if us > 0:
            rows.append({"kernel": ev.key[:120], "calls": ev.count, "ms": us / 1e3})
    rows.sort(key=lambda r: -r["ms"])
    total = sum(r["ms"] for r in rows)
    for r in rows[:top]:
        print(f"torch kernel {shape} {r['ms']:8.3f} ms x{r['calls']:<4} {r['kernel']}", file=sys.stderr)
    return {"shape": shape, "total_ms": total, "kernels": rows[:top]}


def encode(tok, text):
    return tok.encode(text, add_special_tokens=False).ids


def call(m, ids, keep_last):
    if keep_last:
        try:
            return m(input_ids=ids, use_cache=False, logits_to_keep=1).logits[:, -1]
        except TypeError:
            pass
    return m(input_ids=ids, use_cache=False).logits[:, -1]


def patch_sweep(m, device, clean, corrupted, target, distractor):
    layers = m.model.layers
    n_layers, t = len(layers), clean.shape[1]
    results = torch.empty(n_layers, t)
    with torch.inference_mode():
        out = m(input_ids=clean, use_cache=False, output_hidden_states=True)
        # hidden_states[l] is the input of block l (resid_pre) for l < n_layers
        cached = [out.hidden_states[l][0] for l in range(n_layers)]
        clean_diff = (out.logits[0, -1, target] - out.logits[0, -1, distractor]).item()
        cl = call(m, corrupted, True)[0]
        corrupted_diff = (cl[target] - cl[distractor]).item()
        batch = corrupted.expand(t, -1).contiguous()
        rows = torch.arange(t, device=clean.device)
        for l in range(n_layers):
            def hook(module, args, kwargs, l=l):
                if args:
                    h = args[0].clone()
                    h[rows, rows] = cached[l][rows]
                    return (h,) + tuple(args[1:]), kwargs
                h = kwargs["hidden_states"].clone()
                h[rows, rows] = cached[l][rows]
                kwargs["hidden_states"] = h
                return args, kwargs
            handle = layers[l].register_forward_pre_hook(hook, with_kwargs=True)
            try:
                lg = call(m, batch, True)
            finally:
                handle.remove()
            results[l] = (lg[:, target] - lg[:, distractor]).float().cpu()
        sync(device)
    return clean_diff, corrupted_diff, results


def transformer_lens_bench(m, a, vocab, shapes, clean, corrupted, target, distractor, torch_grid):
    """TransformerLens 4 on the same loaded model (a TransformerBridge booted from the model's
    folder, no hub): forward throughput and its own resid_pre patching, one forward per layer x
    position (`patching.get_act_patch_resid_pre`), values compared with the batched sweep's."""
    import transformer_lens
    from transformer_lens import patching
    from transformer_lens.model_bridge import TransformerBridge
    from transformers import AutoTokenizer
    bridge = TransformerBridge.boot_transformers(a.model, hf_model=m, tokenizer=AutoTokenizer.from_pretrained(a.model))
    bridge.eval()
    res = {"version": getattr(transformer_lens, "__version__", None),
           "forward": forward_bench(bridge, a.device, vocab, shapes, "transformer_lens")}

    def metric(logits):
        return logits[0, -1, target] - logits[0, -1, distractor]

    with torch.inference_mode():
        _, clean_cache = bridge.run_with_cache(clean)
        sync(a.device)
        t0 = time.time()
        grid = patching.get_act_patch_resid_pre(bridge, corrupted, clean_cache, metric)
        sync(a.device)
    seconds = time.time() - t0
    grid = grid.float().cpu()
    res["patch_sweep"] = {"layers": grid.shape[0], "positions": grid.shape[1], "seconds": seconds,
                          "max_abs_diff_vs_torch": (grid - torch_grid).abs().max().item()}
    print(f"transformer_lens resid_pre sweep {grid.shape[0]}x{grid.shape[1]}: {seconds:.3f} s", file=sys.stderr)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--prompt", required=True)
    ap.add_argument("--corrupted", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--distractor", required=True)
    ap.add_argument("--shapes", default="1x512,8x512")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out")
    a = ap.parse_args()
    from tokenizers import Tokenizer
    import transformers

    tok = Tokenizer.from_file(f"{a.model}/tokenizer.json")
    m, load_s = load(a.model, a.device)
    vocab = m.config.vocab_size
    res = {"engine": "pytorch+transformers", "torch": torch.__version__, "transformers": transformers.__version__,
           "device": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
           "model": a.model, "dtype": "bf16", "load_s": load_s,
           "attn_implementation": getattr(m.config, "_attn_implementation", None)}
    shapes = [s for s in a.shapes.split(",") if s]
    res["forward"] = forward_bench(lambda ids: m(input_ids=ids, use_cache=False), a.device, vocab, shapes)
    if a.device.startswith("cuda"):
        res["ops"] = ops_bench(m, a.device, shapes)
        try:
            res["kernel_profile"] = kernel_profile(m, a.device, vocab, shapes[-1])
        except Exception as err:  # the profiler is a diagnostic; the benchmark stands without it
            res["kernel_profile"] = {"error": repr(err)}
    clean = torch.tensor([encode(tok, a.prompt)], device=a.device)
    corrupted = torch.tensor([encode(tok, a.corrupted)], device=a.device)
    if clean.shape != corrupted.shape:
        sys.exit(f"clean {clean.shape[1]} tokens, corrupted {corrupted.shape[1]}")
    (target,), (distractor,) = encode(tok, a.target), encode(tok, a.distractor)
    timings = []
    for _ in range(2):
        sync(a.device)
        t0 = time.time()
        clean_diff, corrupted_diff, grid = patch_sweep(m, a.device, clean, corrupted, target, distractor)
        timings.append(time.time() - t0)
    res["patch_sweep"] = {"layers": grid.shape[0], "positions": grid.shape[1], "seconds_first": timings[0],
                          "seconds_warm": timings[1], "clean_logit_diff": clean_diff,
                          "corrupted_logit_diff": corrupted_diff,
                          "forwards": 2 + grid.shape[0], "patched_runs": grid.numel(),
                          "logit_diff": grid.tolist()}
    print(f"torch resid_pre sweep {grid.shape[0]}x{grid.shape[1]}: first {timings[0]:.3f} s, warm {timings[1]:.3f} s",
          file=sys.stderr)
    try:
        import transformer_lens  # noqa: F401
    except ImportError:
        res["transformer_lens"] = "not installed"
    else:
        res["transformer_lens"] = transformer_lens_bench(m, a, vocab, shapes, clean, corrupted, target, distractor, grid)
    text = json.dumps(res, indent=1)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
