#!/usr/bin/env python3
"""Independent references for strata's experiments (logit lens, ablation, activation patching,
causal tracing), computed with Hugging Face transformers and PyTorch forward hooks only (nothing
from strata).

Run through `bash scripts/make-experiment-references.sh` (sets up the venv, fetches the models).
Writes tests/fixtures/experiments/<case>.json for three fixture families (llama, gemma2, gpt2:
tests/fixtures/models/<family>) and the two real GGUF models (models/*.gguf, which transformers
dequantizes to f32). CPU, f32, eager attention. Every case is one prompt with a target, a
distractor and a corrupted partner of the same token length:

  lens        per (layer, position): target rank (number of tokens with a strictly larger logit;
              `near_ties` counts the tokens within 1e-5 relative of the target logit, which float
              summation order may put on either side),
              target prob, target logit, KL(final || layer), entropy, top-5 ids. Layer l < L is the
              input of decoder layer l (forward pre-hook), layer L the output of the last decoder
              layer (forward hook), both sent through the final norm, lm_head and (Gemma 2) the
              final soft-cap.
  ablations   zero ablations at the last position's metrics (logit_diff, target_prob, loss, kl to
              the clean run): attention output (output of self_attn / attn; Gemma 2/3: of
              post_attention_layernorm) and MLP output (mlp; Gemma: post_feedforward_layernorm) set
              to zero, a block skipped (decoder layer output := its input), one head zeroed at the
              input of o_proj / c_proj.
  patch       denoising: corrupted run with the clean activation patched in. resid_pre (input of
              decoder layer l) for every layer and position; one head's z (input slice of o_proj)
              at all positions. Metric: logit difference at the last position.
  trace       causal tracing (ROME). The subject's tokens (offsets overlapping the subject string)
              get Gaussian noise added to their token embeddings (GPT-2: output of wte, before the
              position embeddings; others: the input of decoder layer 0, i.e. after Gemma's
              sqrt(d) scaling) of std noise_multiplier x sigma, sigma = the (unbiased) std of every
              entry of the token embedding matrix (x sqrt(d) for Gemma). The noise is drawn from
              SplitMix64 + Box-Muller (strata's documented generator, reimplemented below: seeded
              with seed XOR FNV-1a(item id), the item id being the case name; samples x subject
              positions x d_model in that order, f64 then rounded to f32). The noise samples run as the rows of one
              batch; for every layer l and position t the clean activation is restored at t:
              hidden = output of decoder layer l; mlp / attn = the MLP / attention outputs (as for
              ablations) of every layer in [l - w//2, l + ceil(w/2)) clamped to the model.
              Metric: target probability at the last position, averaged over the samples.

Metric arithmetic (softmax, KL, entropy) in float64 on the f32 logits.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "experiments"

FIXTURE_CASE = {
    "prompt": "The cat sat on the",
    "corrupted": "The dog sat on the",
    "target": " of",
    "distractor": " and",
}
REAL_CASE = {
    "prompt": "The capital of France is",
    "corrupted": "The capital of Italy is",
    "target": " Paris",
    "distractor": " Rome",
}
# Causal tracing settings: the fixtures have 2-3 layers, so a window of 2 exercises the clamping.
FIXTURE_TRACE = {"subject": "The cat", "samples": 10, "seed": 7, "window": 2, "noise_multiplier": 3.0}
REAL_TRACE = {"subject": "France", "samples": 3, "seed": 7, "window": 10, "noise_multiplier": 3.0}
CASES = {
    "llama": ("fixture", "llama"),
    "gemma2": ("fixture", "gemma2"),
    "gpt2": ("fixture", "gpt2"),
    "smollm2": ("gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("gguf", "gemma-3-270m-q4_k_m.gguf"),
}


def load(kind: str, name: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if kind == "fixture":
        from tokenizers import Tokenizer

        d = ROOT / "tests" / "fixtures" / "models" / name
        model = AutoModelForCausalLM.from_pretrained(str(d), dtype=torch.float32, attn_implementation="eager")
        tok = Tokenizer.from_file(str(d / "tokenizer.json"))
        encode = lambda s, special=True: tok.encode(s, add_special_tokens=special).ids  # noqa: E731

        def spans(s):
            enc = tok.encode(s)
            return [(a, b, m == 1) for (a, b), m in zip(enc.offsets, enc.special_tokens_mask)]
        rel = f"tests/fixtures/models/{name}"
    else:
        d = ROOT / "models"
        model = AutoModelForCausalLM.from_pretrained(
            str(d), gguf_file=name, dtype=torch.float32, attn_implementation="eager")
        tok = AutoTokenizer.from_pretrained(str(d), gguf_file=name)
        encode = lambda s, special=True: tok(s, add_special_tokens=special)["input_ids"]  # noqa: E731

        def spans(s):
            enc = tok(s, return_offsets_mapping=True, return_special_tokens_mask=True)
            return [(a, b, m == 1) for (a, b), m in zip(enc["offset_mapping"], enc["special_tokens_mask"])]
        rel = f"models/{name}"
    return model.eval(), encode, spans, rel


class Parts:
    """The modules the hooks attach to, by family."""

    def __init__(self, model):
        cfg = model.config
        self.gpt2 = cfg.model_type == "gpt2"
        self.sandwich = cfg.model_type.startswith("gemma2") or cfg.model_type.startswith("gemma3")
        if self.gpt2:
            self.layers = model.transformer.h
            self.norm = model.transformer.ln_f
        else:
            inner = model.model
            self.layers = getattr(inner, "layers", None) or inner.language_model.layers
            self.norm = getattr(inner, "norm", None) or inner.language_model.norm
        self.lm_head = model.lm_head
        self.softcap = getattr(cfg, "final_logit_softcapping", None)
        self.wte = model.transformer.wte if self.gpt2 else None
        self.n_heads = cfg.num_attention_heads if not self.gpt2 else cfg.n_head
        self.d_head = (getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)

    def attn_out(self, l):
        layer = self.layers[l]
        if self.gpt2:
            return layer.attn
        return layer.post_attention_layernorm if self.sandwich else layer.self_attn

    def mlp_out(self, l):
        layer = self.layers[l]
        return layer.post_feedforward_layernorm if self.sandwich else layer.mlp

    def embed_hook(self, fn):
        """A hook calling fn(x) -> x' on the token embeddings (hook_embed)."""
        if self.gpt2:
            return (self.wte, "post", lambda _m, _i, out: fn(out))

        def pre(_m, args, kwargs):
            return with_layer_input(args, kwargs, fn(layer_input(args, kwargs)))
        return (self.layers[0], "pre", pre)

    def o_proj(self, l):
        layer = self.layers[l]
        return layer.attn.c_proj if self.gpt2 else layer.self_attn.o_proj

    def unembed(self, resid):
        import torch

        logits = self.lm_head(self.norm(resid))
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def replace_first(out, new):
    if isinstance(out, tuple):
        return (new,) + tuple(out[1:])
    if isinstance(out, list):
        return [new] + out[1:]
    return new


def layer_input(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def with_layer_input(args, kwargs, new):
    if args:
        return (new,) + tuple(args[1:]), kwargs
    kwargs = dict(kwargs)
    kwargs["hidden_states"] = new
    return args, kwargs


def run(model, ids, hooks):
    """Forward with temporary hooks: list of (module, kind, fn)."""
    import torch

    handles = []
    for module, kind, fn in hooks:
        if kind == "pre":
            handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
        elif kind == "pre_plain":
            handles.append(module.register_forward_pre_hook(fn))
        else:
            handles.append(module.register_forward_hook(fn))
    try:
        with torch.no_grad():
            return model(input_ids=torch.tensor([ids]), use_cache=False).logits[0].double()
    finally:
        for h in handles:
            h.remove()


def run_rows(model, rows, hooks):
    """`run` for a batch of token rows: logits [B, T, V] in float64."""
    import torch

    handles = []
    for module, kind, fn in hooks:
        if kind == "pre":
            handles.append(module.register_forward_pre_hook(fn, with_kwargs=True))
        else:
            handles.append(module.register_forward_hook(fn))
    try:
        with torch.no_grad():
            return model(input_ids=torch.tensor(rows), use_cache=False).logits.double()
    finally:
        for h in handles:
            h.remove()


M64 = (1 << 64) - 1


class SplitMix64:
    """strata-experiments' rng.rs: SplitMix64, uniforms in [0, 1) from the top 53 bits, normals by
    Box-Muller (u1 = 1 - uniform, u2 = uniform; the cosine branch)."""

    def __init__(self, seed: int):
        self.state = (seed ^ 0x9E3779B97F4A7C15) & M64

    def next_u64(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def uniform(self) -> float:
        return (self.next_u64() >> 11) / float(1 << 53)

    def normal(self) -> float:
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def subject_positions(spans, prompt: str, subject: str) -> list:
    """Tokens (not special) whose non-empty offsets overlap the last occurrence of subject."""
    start = prompt.rindex(subject)
    end = start + len(subject)
    return [i for i, (a, b, special) in enumerate(spans(prompt)) if not special and b > a and a < end and b > start]


def window_layers(layer: int, window: int, n_layers: int) -> range:
    """ROME's window: layers [layer - window // 2, layer - (-window // 2)) within the model."""
    return range(max(0, layer - window // 2), min(n_layers, layer - (-window // 2)))


def item_seed(seed: int, item_id: str) -> int:
    """strata's trace.rs item_seed: seed XOR FNV-1a 64 of the item id's UTF-8 bytes."""
    h = 0xCBF29CE484222325
    for b in item_id.encode():
        h = ((h ^ b) * 0x100000001B3) & M64
    return seed ^ h


def embedding_std(model) -> float:
    """strata's trace.rs embedding_std: unbiased std of every entry of the token embedding
    matrix, times sqrt(hidden_size) for the Gemma families (their embedding scale)."""
    w = model.get_input_embeddings().weight.detach().double()
    cfg = getattr(model.config, "text_config", None) or model.config
    scale = cfg.hidden_size ** 0.5 if cfg.model_type.startswith("gemma") else 1.0
    return float(w.std()) * scale


def causal_trace(model, parts, ids, target, prompt, settings, spans, item_id) -> dict:
    import torch

    L = len(parts.layers)
    T = len(ids)
    S = settings["samples"]
    pos = subject_positions(spans, prompt, settings["subject"])

    # clean run: token embeddings, every layer's output, attention and MLP outputs
    clean = {}

    def keep(key):
        def fn(_m, _i, out):
            clean[key] = first(out).detach().clone()
        return fn

    def grab_embed(x):
        clean["embed"] = x.detach().clone()
        return x

    hooks = [parts.embed_hook(grab_embed)]
    for l in range(L):
        hooks += [(parts.layers[l], "post", keep(("hidden", l))),
                  (parts.attn_out(l), "post", keep(("attn", l))),
                  (parts.mlp_out(l), "post", keep(("mlp", l)))]
    clean_logits = run_rows(model, [ids], hooks)
    clean_p = float(torch.log_softmax(clean_logits[0, -1], dim=-1)[target].exp())

    sigma = embedding_std(model)
    noise_std = settings["noise_multiplier"] * sigma
    d = clean["embed"].shape[-1]
    rng = SplitMix64(item_seed(settings["seed"], item_id))
    noise = torch.zeros(S, T, d, dtype=torch.float64)
    for s in range(S):
        for p in pos:
            noise[s, p] = torch.tensor([rng.normal() * noise_std for _ in range(d)], dtype=torch.float64)
    noise = noise.float()
    add_noise = parts.embed_hook(lambda x: x + noise.to(x.dtype))
    rows = [ids] * S

    def prob(hooks):
        logits = run_rows(model, rows, [add_noise] + hooks)
        return float(torch.log_softmax(logits[:, -1], dim=-1)[:, target].exp().mean())

    def restore(key, t):
        def fn(_m, _i, out):
            x = first(out).clone()
            x[:, t] = clean[key][0, t]
            return replace_first(out, x)
        return fn

    corrupted = prob([])
    out_rows = []
    for kind in ("hidden", "mlp", "attn"):
        for l in range(L):
            for t in range(T):
                if kind == "hidden":
                    hooks = [(parts.layers[l], "post", restore(("hidden", l), t))]
                else:
                    module = parts.mlp_out if kind == "mlp" else parts.attn_out
                    hooks = [(module(ll), "post", restore((kind, ll), t))
                             for ll in window_layers(l, settings["window"], L)]
                out_rows.append({"kind": kind, "layer": l, "position": t, "value": prob(hooks)})
    return {
        **settings,
        "metric": "target_prob",
        "subject_positions": pos,
        "item_id": item_id,
        "embedding_std": sigma,
        "noise_std": noise_std,
        "clean": clean_p,
        "corrupted": corrupted,
        "rows": out_rows,
    }


def metrics(last_logits, target, distractor, clean_logp=None):
    import torch

    logp = torch.log_softmax(last_logits, dim=-1)
    out = {
        "logit_diff": float(last_logits[target] - last_logits[distractor]),
        "target_prob": float(logp[target].exp()),
        "loss": float(-logp[target]),
    }
    if clean_logp is not None:
        p = clean_logp.exp()
        out["kl"] = float((p * (clean_logp - logp)).sum())
    return out, logp


def make_case(key: str) -> dict:
    import torch

    kind, name = CASES[key]
    case = FIXTURE_CASE if kind == "fixture" else REAL_CASE
    model, encode, spans, rel = load(kind, name)
    parts = Parts(model)
    L = len(parts.layers)
    ids = encode(case["prompt"])
    cids = encode(case["corrupted"])
    assert len(ids) == len(cids), (key, ids, cids)
    (t,) = encode(case["target"], False)
    (dtr,) = encode(case["distractor"], False)
    T = len(ids)

    # ---- clean run: resid_pre of every layer, resid_post of the last ----
    resid = {}

    def grab_pre(l):
        def fn(_m, args, kwargs):
            resid[l] = layer_input(args, kwargs).detach().clone()
        return fn

    def grab_post(_m, _i, out):
        resid[L] = first(out).detach().clone()

    hooks = [(parts.layers[l], "pre", grab_pre(l)) for l in range(L)]
    hooks.append((parts.layers[L - 1], "post", grab_post))
    clean_logits = run(model, ids, hooks)
    with torch.no_grad():
        final = parts.unembed(resid[L])[0].double()
    assert torch.allclose(final, clean_logits, atol=1e-4), "final lens != logits"
    final_logp = torch.log_softmax(final, dim=-1)

    lens = []
    with torch.no_grad():
        for l in range(L + 1):
            logits = parts.unembed(resid[l])[0].double()  # [T, V]
            logp = torch.log_softmax(logits, dim=-1)
            for p in range(T):
                x = logits[p]
                pf = final_logp[p].exp()
                lens.append({
                    "layer": l,
                    "position": p,
                    "target_rank": int((x > x[t]).sum()),
                    # tokens other than the target whose logit is within 1e-5 * max(1, |target
                    # logit|) of it: f32 summation order can swap them with the target
                    "near_ties": int(((x - x[t]).abs() <= 1e-5 * max(1.0, abs(float(x[t])))).sum()) - 1,
                    "target_prob": float(logp[p, t].exp()),
                    "target_logit": float(x[t]),
                    "kl_to_final": float((pf * (final_logp[p] - logp[p])).sum()),
                    "entropy": float(-(logp[p].exp() * logp[p]).sum()),
                    "top5": torch.topk(x, 5).indices.tolist(),
                })

    clean_m, clean_logp = metrics(clean_logits[-1], t, dtr)
    corrupt_logits = run(model, cids, [])
    corrupt_m, _ = metrics(corrupt_logits[-1], t, dtr, clean_logp)
    clean_m["kl"] = 0.0

    # ---- zero ablations ----
    def zero_out(_m, _i, out):
        return replace_first(out, torch.zeros_like(first(out)))

    def skip_block(l):
        saved = {}

        def pre(_m, args, kwargs):
            saved["x"] = layer_input(args, kwargs)

        def post(_m, _i, out):
            return replace_first(out, saved["x"].clone())
        return [(parts.layers[l], "pre", pre), (parts.layers[l], "post", post)]

    def zero_head(l, h):
        def pre(_m, args):
            x = args[0].clone()
            x[..., h * parts.d_head:(h + 1) * parts.d_head] = 0
            return (x,) + tuple(args[1:])
        return [(parts.o_proj(l), "pre_plain", pre)]

    abl_layers = sorted({L // 2, L - 1})
    head = (L // 2, min(1, parts.n_heads - 1))
    ablations = []
    for l in abl_layers:
        for comp, hk in (("attn_out", [(parts.attn_out(l), "post", zero_out)]),
                         ("mlp_out", [(parts.mlp_out(l), "post", zero_out)]),
                         ("block", skip_block(l))):
            m, _ = metrics(run(model, ids, hk)[-1], t, dtr, clean_logp)
            ablations.append({"component": comp, "layer": l, "head": None, **m})
    m, _ = metrics(run(model, ids, zero_head(*head))[-1], t, dtr, clean_logp)
    ablations.append({"component": "head", "layer": head[0], "head": head[1], **m})

    # ---- denoising patching: resid_pre, every layer and position ----
    resid_clean = {l: resid[l] for l in range(L)}
    patch = []
    for l in range(L):
        for p in range(T):
            def pre(_m, args, kwargs, l=l, p=p):
                x = layer_input(args, kwargs).clone()
                x[:, p] = resid_clean[l][:, p]
                return with_layer_input(args, kwargs, x)
            v = run(model, cids, [(parts.layers[l], "pre", pre)])[-1]
            patch.append({"layer": l, "position": p, "value": float(v[t] - v[dtr])})

    # ---- one head's z (input of o_proj), all positions ----
    zl, zh = head
    z_clean = {}

    def grab_z(_m, args):
        z_clean["z"] = args[0].detach().clone()

    run(model, ids, [(parts.o_proj(zl), "pre_plain", grab_z)])

    def patch_z(_m, args):
        x = args[0].clone()
        sl = slice(zh * parts.d_head, (zh + 1) * parts.d_head)
        x[..., sl] = z_clean["z"][..., sl]
        return (x,) + tuple(args[1:])

    v = run(model, cids, [(parts.o_proj(zl), "pre_plain", patch_z)])[-1]
    z_patch = {"layer": zl, "head": zh, "value": float(v[t] - v[dtr])}

    trace = causal_trace(model, parts, ids, t, case["prompt"],
                         FIXTURE_TRACE if kind == "fixture" else REAL_TRACE, spans, key)

    import transformers
    return {
        "case": key,
        "model": rel,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "n_layers": L,
        "n_heads": parts.n_heads,
        **case,
        "input_ids": ids,
        "corrupted_ids": cids,
        "target_id": t,
        "distractor_id": dtr,
        "clean": clean_m,
        "corrupted_metrics": corrupt_m,
        "lens": lens,
        "ablations": ablations,
        "patch_resid_pre": patch,
        "patch_z": z_patch,
        "trace": trace,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--case", choices=sorted(CASES), action="append", help="only this case (repeatable)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", action="append", metavar="KEY",
                    help="replace only this top-level key (e.g. trace) in the existing file, keeping the "
                         "others byte for byte (repeatable; a rerun can move other values in the last digits)")
    args = ap.parse_args()
    import torch

    torch.manual_seed(0)
    args.out.mkdir(parents=True, exist_ok=True)
    for key in args.case or list(CASES):
        ref = make_case(key)
        path = args.out / f"{key}.json"
        if args.only:
            old = json.loads(path.read_text())
            old.update({k: ref[k] for k in args.only})
            ref = old
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(ref, indent=None, separators=(",", ":")) + "\n")
        os.replace(tmp, path)
        last = [r for r in ref["lens"] if r["position"] == len(ref["input_ids"]) - 1]
        top1 = [r["layer"] for r in last if r["target_rank"] == 0]
        print(f"[{key}] {len(ref['lens'])} lens rows, clean logit diff {ref['clean']['logit_diff']:.4f}, "
              f"corrupted {ref['corrupted_metrics']['logit_diff']:.4f}; target top-1 at layers {top1}; "
              f"trace: p clean {ref['trace']['clean']:.4f}, noised {ref['trace']['corrupted']:.4f}, "
              f"best hidden restore {max(r['value'] for r in ref['trace']['rows'] if r['kind'] == 'hidden'):.4f}; "
              f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ({path.stat().st_size / 1e3:.0f} kB)", flush=True)


if __name__ == "__main__":
    main()
