#!/usr/bin/env python3
"""Writes a Llama-shaped model with random weights (bf16 safetensors + config.json + a word-level
tokenizer.json) for the GPU benchmarks of scripts/gpu-check.sh. The 1B/8B files (2.5 / 16 GB)
cannot travel with the working tree, so they are generated on the GPU machine (a few seconds on
the GPU, then written to disk).

Shapes: 1b = Llama 3.2 1B (d 2048, 16 layers, 32/8 heads, MLP 8192, vocab 128256, tied),
8b = Llama 3.1 8B (d 4096, 32 layers, 32/8 heads, MLP 14336, vocab 128256), tiny = for tests;
qwen3-8b = Qwen3 8B (d 4096, 36 layers, 32/8 heads of 128 with q/k norms, MLP 12288, vocab
151936), qwen3-tiny = for tests: the q/k-norm families' path (not in gpu-check's default shapes).
No rope scaling (plain rope_theta 500000): the numbers are timings, not language.
Tokenizer: words w0 .. w{N-1} split on whitespace (word-level, ids 0..N-1, no special tokens
added), so "w1 w2 ... w20" is 20 tokens and " w500" one.

usage: make_random_llama.py --shape 8b --out DIR [--device cuda|cpu] [--seed 0] [--words 2000]
"""
import argparse
import json
import os
import sys
import time

import torch
from safetensors.torch import save_file

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=3000, tie_word_embeddings=False),
    "1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
               num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
    "qwen3-tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=3000, tie_word_embeddings=False),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=151936, tie_word_embeddings=False),
}


def config_for(shape):
    c = dict(SHAPES[shape])
    c.update(
        architectures=["LlamaForCausalLM"], model_type="llama", hidden_act="silu",
        head_dim=c["hidden_size"] // c["num_attention_heads"], max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_theta=500000.0, attention_bias=False, mlp_bias=False,
        bos_token_id=0, eos_token_id=1, torch_dtype="bfloat16", use_cache=True,
    )
    if shape.startswith("qwen3"):
        c.update(architectures=["Qwen3ForCausalLM"], model_type="qwen3", rms_norm_eps=1e-6,
                 rope_theta=1000000.0, use_sliding_window=False, max_window_layers=c["num_hidden_layers"])
        del c["mlp_bias"]
    return c


def tensors(c, device, seed):
    g = torch.Generator(device=device).manual_seed(seed)
    d, f, v = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    hd = c["head_dim"]
    q, kv = c["num_attention_heads"] * hd, c["num_key_value_heads"] * hd

    def rnd(*shape):
        # std 0.02 like transformers' init; generated in bf16 directly to keep 8B cheap
        t = torch.empty(*shape, dtype=torch.bfloat16, device=device)
        t.normal_(0.0, 0.02, generator=g)
        return t.cpu()

    def ones(n):
        return torch.ones(n, dtype=torch.bfloat16)

    out = {"model.embed_tokens.weight": rnd(v, d), "model.norm.weight": ones(d)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out[p + "self_attn.q_proj.weight"] = rnd(q, d)
        out[p + "self_attn.k_proj.weight"] = rnd(kv, d)
        out[p + "self_attn.v_proj.weight"] = rnd(kv, d)
        out[p + "self_attn.o_proj.weight"] = rnd(d, q)
        out[p + "mlp.gate_proj.weight"] = rnd(f, d)
        out[p + "mlp.up_proj.weight"] = rnd(f, d)
        out[p + "mlp.down_proj.weight"] = rnd(d, f)
        if c["model_type"] == "qwen3":  # RMSNorm of each query and key head
            out[p + "self_attn.q_norm.weight"] = ones(hd)
            out[p + "self_attn.k_norm.weight"] = ones(hd)
        out[p + "input_layernorm.weight"] = ones(d)
        out[p + "post_attention_layernorm.weight"] = ones(d)
    if not c["tie_word_embeddings"]:
        out["lm_head.weight"] = rnd(v, d)
    return out


def tokenizer_json(words):
    vocab = {f"w{i}": i for i in range(words)}
    vocab["[UNK]"] = words
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "pre_tokenizer": {"type": "Whitespace"}, "post_processor": None,
        "decoder": None, "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--words", type=int, default=2000)
    a = ap.parse_args()
    c = config_for(a.shape)
    if a.words >= c["vocab_size"]:
        sys.exit(f"--words {a.words} must be below the vocabulary ({c['vocab_size']})")
    marker = os.path.join(a.out, ".complete")
    want = json.dumps({"config": c, "seed": a.seed, "words": a.words}, sort_keys=True)
    if os.path.exists(marker) and open(marker).read() == want:
        print(f"{a.out}: already generated", file=sys.stderr)
        return
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    ts = tensors(c, a.device, a.seed)
    n = sum(t.numel() for t in ts.values())
    t1 = time.time()
    save_file(ts, os.path.join(a.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(c, f, indent=1)
    with open(os.path.join(a.out, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(a.words), f)
    with open(marker, "w") as f:
        f.write(want)
    print(f"{a.out}: {a.shape} {n / 1e9:.2f} B parameters, generated in {t1 - t0:.1f} s, written in "
          f"{time.time() - t1:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
