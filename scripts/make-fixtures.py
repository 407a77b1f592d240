#!/usr/bin/env python3
"""Build the tiny random-weight reference models in tests/fixtures/models/<family>/.

Run through `bash scripts/make-fixtures.sh` (sets up the venv). For every family this writes

  config.json               what transformers 5 `save_pretrained` wrote (rope in `rope_parameters`)
  config.classic.json       the same model in the older hub layout (top-level rope_theta / rope_scaling,
                            ...), only for families with rotary embeddings; checked to load into an
                            identical model
  model.safetensors         the weights (f32), as `save_pretrained(safe_serialization=True)` wrote them
  tokenizer.json            a tiny byte-level BPE trained here on a built-in English text (same for all)
  reference.safetensors     input ids, logits and every hook point of docs/hooks.md for every layer,
                            plus a right- and a left-padded batch with the logits of each prompt alone
  reference.json            family, prompts, token ids, the shapes stored, model facts, and the ids
                            transformers' greedy `generate` adds to the prompt (`greedy_new_ids`)

How each hook point is captured (all on the Hugging Face modules, eager attention, f32, CPU):

  hook_embed                 output of the token embedding module (Gemma: the scaled embedding module,
                             so already multiplied by sqrt(d_model) in f32)
  hook_pos_embed             output of `wpe` (GPT-2 only)
  blocks.L.hook_resid_pre    input of decoder layer L (forward pre-hook)
  blocks.L.ln1.hook_scale    computed: sqrt(mean(x^2) + eps) of the norm's input (GPT-2's LayerNorm:
                             centred first), [b, p, 1]; likewise ln2.hook_scale, ln_final.hook_scale
  blocks.L.ln1.hook_normalized  output of input_layernorm / ln_1
  blocks.L.attn.hook_q/k/v   q/k: output of q_norm/k_norm where they exist (Qwen3, Gemma 3), else the
                             projection output, reshaped to [b, p, heads, d_head]; Phi-3: the fused
                             qkv_proj output split (q | k | v); GPT-2: c_attn output split in 3
  blocks.L.attn.hook_attn_scores  recorded by a wrapper that replaces each modeling module's
                             `eager_attention_forward` (transformers looks that global up at call time
                             when attn_implementation == "eager"): it computes
                             `query @ repeat_kv(key)^T * scaling` exactly as the eager function does,
                             applies `tanh(x / softcap) * softcap` when the layer passes a softcap
                             (Gemma 2 only: Gemma 3 never passes one), then sets to -inf every entry
                             that the attention mask actually passed to the layer masks out (the 4D
                             float mask holds 0 or finfo.min; sliding window, causal and padding
                             are all in it), and then calls the original eager function
  blocks.L.attn.hook_pattern the attention weights the eager function returns (== the
                             `output_attentions=True` weights; checked)
  blocks.L.attn.hook_z       input of o_proj / c_proj (forward pre-hook) reshaped to [b, p, h, d_head]
  blocks.L.attn.hook_result  computed (transformers never forms it): z of head h times o_proj's columns
                             h*d_head..(h+1)*d_head, [b, p, h, d]; checked to sum (+ bias, + Gemma 2/3's
                             post-attention norm) to hook_attn_out
  blocks.L.hook_attn_out     output of o_proj / c_proj; Gemma 2/3: output of post_attention_layernorm
  blocks.L.hook_resid_mid    input of the norm before the MLP (post_attention_layernorm, ln_2;
                             Gemma 2/3: pre_feedforward_layernorm)
  blocks.L.ln2.hook_normalized  output of that norm
  blocks.L.attn.hook_rot_q/k the query and key the eager attention function is given (after rotary,
                             before repeat_kv), transposed to [b, p, heads, d_head]; not GPT-2
  blocks.L.mlp.hook_pre      gate_proj output; Phi-3: first half of gate_up_proj output; GPT-2: c_fc out
  blocks.L.mlp.hook_pre_linear  up_proj output; Phi-3: second half of gate_up_proj output; not GPT-2
  blocks.L.mlp.hook_post     input of down_proj / mlp.c_proj (forward pre-hook)
  blocks.L.hook_mlp_out      output of the MLP module; Gemma 2/3: output of post_feedforward_layernorm
  blocks.L.hook_resid_post   output of decoder layer L
  ln_final.hook_normalized   output of the final norm (model.norm / ln_f)
  logits                     model output logits (Gemma 2: after final soft-capping)

The batches: `batch_ids`/`batch_mask` are right-padded, `batch_left_ids`/`batch_left_mask`
left-padded, with the tokenizer's pad id in the padding. `batch_logits_{i}` [1, len_i, V] are the
logits of prompt i run alone, unpadded. The script checks that HF, given the padded batch, the mask
and position ids counted from the first real token (cumsum(mask) - 1), reproduces them at the real
positions.

Determinism: fixed seeds, CPU, f32; running twice writes byte-identical files.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

import transformers.models.gemma.modeling_gemma as m_gemma
import transformers.models.gemma2.modeling_gemma2 as m_gemma2
import transformers.models.gemma3.modeling_gemma3 as m_gemma3
import transformers.models.gpt2.modeling_gpt2 as m_gpt2
import transformers.models.llama.modeling_llama as m_llama
import transformers.models.mistral.modeling_mistral as m_mistral
import transformers.models.phi3.modeling_phi3 as m_phi3
import transformers.models.qwen2.modeling_qwen2 as m_qwen2
import transformers.models.qwen3.modeling_qwen3 as m_qwen3

ROOT = Path(__file__).resolve().parent.parent
TOL = 1e-5

# ----------------------------------------------------------------------------------------------
# Tokenizer
# ----------------------------------------------------------------------------------------------

VOCAB = 384  # model vocab of every family; the tokenizer's vocab is <= this
SPECIAL = ["<|endoftext|>", "<pad>"]  # ids 0 and 1
BOS_ID = EOS_ID = 0
PAD_ID = 1

CORPUS = """\
The quick brown fox jumps over the lazy dog. The dog sleeps in the sun, and the fox runs into the
forest. In the morning the small birds sing in the trees, and the children walk to the school by
the river. The teacher reads a story about a king who lived in a castle on a hill. The king had a
daughter who liked to read books about the stars, the moon and the sea.
A language model predicts the next word from the words that came before it. It reads the text one
token at a time, and every layer of the model adds a little more information to the residual
stream. Attention lets each position look back at the positions before it, and the feed forward
network transforms what it finds. Interpretability is the study of what these networks compute,
which features they represent and how the information flows from the input to the output.
When the weather is warm we go to the beach, swim in the water and eat ice cream. When it is cold
we stay at home, drink hot tea and read by the fire. There is a time for work and a time for rest.
She said that the house on the corner was painted green and blue, with a red door and white
windows. He answered that he had never seen such a beautiful garden, full of roses and tall grass.
Numbers like one, two, three, four, five, six, seven, eight, nine and ten are easy to learn.
The city was quiet at night, but in the day the streets were full of people, cars and noise.
"""

PROMPT = "The teacher reads a story"
BATCH_PROMPTS = ["The king had a", "The dog sleeps in the sun"]


def train_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS.splitlines(), trainer=trainer)
    assert tok.get_vocab_size() <= VOCAB, tok.get_vocab_size()
    assert tok.token_to_id(SPECIAL[0]) == BOS_ID and tok.token_to_id(SPECIAL[1]) == PAD_ID
    return tok


# ----------------------------------------------------------------------------------------------
# Families
# ----------------------------------------------------------------------------------------------

COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=256,
    bos_token_id=BOS_ID,
    eos_token_id=EOS_ID,
    pad_token_id=PAD_ID,
)


def family_configs():
    """name -> (model class, config, spec). spec describes where the hook points live."""
    T = transformers
    fams = {}
    fams["gpt2"] = (
        T.GPT2LMHeadModel,
        T.GPT2Config(
            vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64, n_inner=None,
            activation_function="gelu_new", bos_token_id=BOS_ID, eos_token_id=EOS_ID, pad_token_id=PAD_ID,
        ),
        dict(arch="gpt2", module=m_gpt2),
    )
    fams["llama"] = (
        T.LlamaForCausalLM,
        T.LlamaConfig(
            **COMMON, num_hidden_layers=2, rms_norm_eps=1e-5, tie_word_embeddings=False,
            # llama3 rope scaling, with an original context so short (32) that at our positions all
            # three frequency bands (kept / smoothed / divided by factor) matter for head_dim 16.
            rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0, low_freq_factor=1.0,
                                 high_freq_factor=4.0, original_max_position_embeddings=32),
        ),
        dict(arch="llama", module=m_llama, rope_bites=True),
    )
    fams["llama_tied"] = (  # SmolLM2-style
        T.LlamaForCausalLM,
        T.LlamaConfig(**COMMON, num_hidden_layers=2, rms_norm_eps=1e-5, tie_word_embeddings=True,
                      rope_parameters=dict(rope_type="default", rope_theta=100000.0)),
        dict(arch="llama", module=m_llama),
    )
    fams["mistral"] = (
        T.MistralForCausalLM,
        T.MistralConfig(**COMMON, num_hidden_layers=2, head_dim=64, sliding_window=4, rms_norm_eps=1e-5,
                        tie_word_embeddings=False, rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        dict(arch="llama", module=m_mistral, sliding={0: 4, 1: 4}),
    )
    fams["qwen2"] = (
        T.Qwen2ForCausalLM,
        T.Qwen2Config(**COMMON, num_hidden_layers=2, tie_word_embeddings=True,
                      rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
        dict(arch="llama", module=m_qwen2),
    )
    fams["qwen3"] = (
        T.Qwen3ForCausalLM,
        T.Qwen3Config(**COMMON, num_hidden_layers=2, head_dim=24, tie_word_embeddings=True,
                      rope_parameters=dict(rope_type="default", rope_theta=1000000.0)),
        dict(arch="llama", module=m_qwen3, qk_norm=True),
    )
    gemma_common = dict(COMMON, num_key_value_heads=1)  # Gemma 1 2B is multi-query
    fams["gemma"] = (
        T.GemmaForCausalLM,
        T.GemmaConfig(**gemma_common, num_hidden_layers=2, head_dim=16, hidden_act="gelu_pytorch_tanh",
                      rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        dict(arch="llama", module=m_gemma),
    )
    fams["gemma2"] = (
        T.Gemma2ForCausalLM,
        T.Gemma2Config(**COMMON, num_hidden_layers=3, head_dim=16, hidden_activation="gelu_pytorch_tanh",
                       query_pre_attn_scalar=24, sliding_window=4,
                       layer_types=["sliding_attention", "full_attention", "sliding_attention"],
                       attn_logit_softcapping=5.0, final_logit_softcapping=5.0,
                       rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        dict(arch="gemma2", module=m_gemma2, sliding={0: 4, 2: 4}, softcap=True),
    )
    fams["gemma3"] = (
        T.Gemma3ForCausalLM,
        T.Gemma3TextConfig(**COMMON, num_hidden_layers=3, head_dim=16, hidden_activation="gelu_pytorch_tanh",
                           query_pre_attn_scalar=12, sliding_window=4,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                           rope_parameters={
                               "sliding_attention": dict(rope_type="default", rope_theta=10000.0),
                               "full_attention": dict(rope_type="linear", factor=8.0, rope_theta=1000000.0),
                           }),
        dict(arch="gemma2", module=m_gemma3, qk_norm=True, sliding={0: 4, 1: 4}, rope_bites=True),
    )
    fams["phi3"] = (
        T.Phi3ForCausalLM,
        T.Phi3Config(**COMMON, num_hidden_layers=2, sliding_window=6, tie_word_embeddings=False,
                     original_max_position_embeddings=256,
                     rope_parameters=dict(rope_type="default", rope_theta=10000.0)),
        dict(arch="phi3", module=m_phi3, sliding={0: 6, 1: 6}),
    )
    return fams


def classic_config(family: str, cfg: dict) -> dict | None:
    """The config in the layout older hub repos carry, checked (check_classic) to give the same model:
    all: rope_theta / rope_scaling at top level (rope_scaling null unless the type is not default),
         `torch_dtype` instead of `dtype`;
    gemma: hidden_act "gelu" (the legacy value; transformers maps it to gelu_pytorch_tanh);
    gemma2: no layer_types (implied: even layers sliding, odd layers full);
    gemma3: rope_theta (global) + rope_local_base_freq (sliding) + rope_scaling (global layers only),
            sliding_window_pattern instead of layer_types (every N-th layer full);
    qwen2/qwen3: no layer_types; qwen2: sliding_window 32768 though use_sliding_window is false."""
    if "rope_parameters" not in cfg:
        return None
    c = copy.deepcopy(cfg)
    rp = c.pop("rope_parameters")
    if family == "gemma3":
        full, local = rp["full_attention"], rp["sliding_attention"]
        assert local.get("rope_type", "default") == "default"
        c["rope_theta"] = full["rope_theta"]
        c["rope_local_base_freq"] = local["rope_theta"]
        scaling = {k: v for k, v in full.items() if k != "rope_theta"}
        c["rope_scaling"] = scaling if scaling.get("rope_type", "default") != "default" else None
        # older gemma 3 configs: sliding_window_pattern N = every N-th layer is global
        lt = c.pop("layer_types")
        c.pop("_sliding_window_pattern", None)
        pattern = next(i + 1 for i, t in enumerate(lt) if t == "full_attention")
        assert lt == ["sliding_attention" if (i + 1) % pattern else "full_attention" for i in range(len(lt))]
        c["sliding_window_pattern"] = pattern
    else:
        rp = dict(rp)
        c["rope_theta"] = rp.pop("rope_theta")
        prf = rp.pop("partial_rotary_factor", None)
        if prf is not None and prf != 1.0:
            c["partial_rotary_factor"] = prf
        c["rope_scaling"] = rp if rp.get("rope_type", "default") != "default" else None
        if family == "gemma2":
            # older gemma 2 configs have no layer_types: even layers sliding, odd layers global
            lt = c.pop("layer_types")
            assert lt == ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(len(lt))]
        if family in ("qwen2", "qwen3"):
            # no layer_types in older Qwen configs (all layers full while use_sliding_window is false)
            assert c.pop("layer_types") == ["full_attention"] * c["num_hidden_layers"]
        if family == "qwen2":
            # Qwen2.5 hub configs carry a sliding_window value although use_sliding_window is false
            assert c["use_sliding_window"] is False and c["sliding_window"] is None
            c["sliding_window"] = 32768
        if family == "gemma":
            # Gemma 1 hub configs say "gelu", which transformers reads as gelu_pytorch_tanh
            assert c["hidden_act"] == "gelu_pytorch_tanh"
            c["hidden_act"] = "gelu"
    if "dtype" in c:
        c["torch_dtype"] = c.pop("dtype")
    return c


# ----------------------------------------------------------------------------------------------
# Random weights
# ----------------------------------------------------------------------------------------------

W_STD = 0.2     # every matrix
E_STD = 0.5     # embeddings (Gemma: 0.2, they are multiplied by sqrt(64) = 8)
B_STD = 0.1     # every bias (incl. LayerNorm bias)
N_STD = 0.1     # norm weights: 1 + N(0, N_STD); Gemma's (1 + w) norms: N(0, N_STD)


@torch.no_grad()
def randomize(model: torch.nn.Module, family: str, seed: int):
    g = torch.Generator().manual_seed(seed)

    def normal_(p, mean, std):
        p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float32) * std + mean)

    gemma = family.startswith("gemma")
    done = set()
    for mname, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            if id(p) in done:
                continue
            done.add(id(p))
            cls = type(mod).__name__
            qk = mname.endswith("q_norm") or mname.endswith("k_norm")
            if "RMSNorm" in cls or isinstance(mod, torch.nn.LayerNorm):
                if pname == "bias":
                    normal_(p, 0.0, B_STD)
                elif gemma:  # (1 + w)
                    normal_(p, 0.3 if qk else 0.0, 0.2 if qk else N_STD)
                else:
                    normal_(p, 1.5 if qk else 1.0, 0.2 if qk else N_STD)
            elif isinstance(mod, torch.nn.Embedding):
                normal_(p, 0.0, 0.2 if gemma else E_STD)
            elif pname == "bias":
                normal_(p, 0.0, B_STD)
            else:
                normal_(p, 0.0, W_STD)


# ----------------------------------------------------------------------------------------------
# Attention recorder (wraps each modeling module's eager_attention_forward)
# ----------------------------------------------------------------------------------------------


class AttnRecorder:
    def __init__(self):
        self.active = False
        self.reset()

    def reset(self):
        self.scores: dict[int, torch.Tensor] = {}
        self.pattern: dict[int, torch.Tensor] = {}
        self.rot_q: dict[int, torch.Tensor] = {}
        self.rot_k: dict[int, torch.Tensor] = {}
        self.raw_max: dict[int, float] = {}
        self.info: dict[int, dict] = {}


REC = AttnRecorder()


def _wrap_eager(orig):
    def eager_recording(module, query, key, value, attention_mask, *args, **kwargs):
        assert not args, "eager attention called with positional extras"
        out, weights = orig(module, query, key, value, attention_mask, **kwargs)
        if not REC.active:
            return out, weights
        scaling = kwargs.get("scaling")
        assert scaling is not None, "every family passes scaling explicitly"
        n_rep = query.shape[1] // key.shape[1]
        key_states = m_llama.repeat_kv(key, n_rep)
        s = torch.matmul(query, key_states.transpose(2, 3)) * scaling
        raw_max = s.abs().max().item()
        softcap = kwargs.get("softcap")
        if softcap is not None:
            s = s / softcap
            s = torch.tanh(s)
            s = s * softcap
        assert attention_mask is not None, "eager attention got no mask"
        m = attention_mask[:, :, :, : key.shape[-2]]
        assert m.dtype == s.dtype, m.dtype
        min_v = torch.finfo(m.dtype).min
        assert bool(((m == 0) | (m == min_v)).all()), "mask holds values other than 0 / finfo.min"
        s = s.masked_fill(m == min_v, float("-inf"))
        li = module.layer_idx
        REC.scores[li] = s.detach().clone()
        REC.pattern[li] = weights.detach().clone()
        # the query and key the eager function is given: after rotary, [b, heads, p, e]
        REC.rot_q[li] = query.transpose(1, 2).detach().clone().contiguous()
        REC.rot_k[li] = key.transpose(1, 2).detach().clone().contiguous()
        REC.raw_max[li] = raw_max
        REC.info[li] = dict(scaling=float(scaling), softcap=softcap, sliding_window=kwargs.get("sliding_window"))
        return out, weights

    eager_recording.__wrapped_eager__ = orig
    return eager_recording


for _m in (m_gemma, m_gemma2, m_gemma3, m_gpt2, m_llama, m_mistral, m_phi3, m_qwen2, m_qwen3):
    if not hasattr(_m.eager_attention_forward, "__wrapped_eager__"):
        _m.eager_attention_forward = _wrap_eager(_m.eager_attention_forward)


# ----------------------------------------------------------------------------------------------
# Hook capture
# ----------------------------------------------------------------------------------------------


def parts(model, spec):
    """Module handles for the hook points."""
    if spec["arch"] == "gpt2":
        tr = model.transformer
        return dict(embed=tr.wte, pos=tr.wpe, layers=tr.h, norm=tr.ln_f)
    base = model.model
    return dict(embed=base.embed_tokens, pos=None, layers=base.layers, norm=base.norm)


def capture(model, spec, cfg, input_ids):
    """Run the model once; return {hook name: tensor} in docs/hooks.md layout, and the output."""
    P = parts(model, spec)
    arch = spec["arch"]
    n_h = cfg.num_attention_heads if arch != "gpt2" else cfg.n_head
    n_g = cfg.num_key_value_heads if arch != "gpt2" else cfg.n_head
    d = cfg.hidden_size
    e = getattr(cfg, "head_dim", None) or d // n_h
    m_dim = cfg.intermediate_size if arch != "gpt2" else (cfg.n_inner or 4 * d)
    b, p = input_ids.shape
    store: dict[str, torch.Tensor] = {}
    handles = []

    def put(name, t):
        assert name not in store, name
        store[name] = t.detach().clone().contiguous()

    def out_hook(name, fn=lambda t: t):
        def h(mod, args, out):
            put(name, fn(out[0] if isinstance(out, tuple) else out))
        return h

    def in_hook(name, fn=lambda t: t):
        def h(mod, args, kwargs):
            x = args[0] if args else kwargs["hidden_states"]
            put(name, fn(x))
        return h

    def reg_out(mod, name, fn=lambda t: t):
        handles.append(mod.register_forward_hook(out_hook(name, fn)))

    def reg_in(mod, name, fn=lambda t: t):
        handles.append(mod.register_forward_pre_hook(in_hook(name, fn), with_kwargs=True))

    heads = lambda n: (lambda t: t.reshape(b, p, n, e))

    reg_out(P["embed"], "hook_embed")
    if P["pos"] is not None:
        reg_out(P["pos"], "hook_pos_embed", lambda t: t.expand(b, p, d))
    for l, layer in enumerate(P["layers"]):
        pre = f"blocks.{l}"
        reg_in(layer, f"{pre}.hook_resid_pre")
        reg_out(layer, f"{pre}.hook_resid_post")
        if arch == "gpt2":
            attn, mlp = layer.attn, layer.mlp
            reg_out(layer.ln_1, f"{pre}.ln1.hook_normalized")
            reg_in(layer.ln_2, f"{pre}.hook_resid_mid")
            reg_out(layer.ln_2, f"{pre}.ln2.hook_normalized")

            def split_qkv(mod, args, out, pre=pre):
                q, k, v = out.split(d, dim=2)
                put(f"{pre}.attn.hook_q", q.reshape(b, p, n_h, e))
                put(f"{pre}.attn.hook_k", k.reshape(b, p, n_g, e))
                put(f"{pre}.attn.hook_v", v.reshape(b, p, n_g, e))
            handles.append(attn.c_attn.register_forward_hook(split_qkv))
            reg_in(attn.c_proj, f"{pre}.attn.hook_z", heads(n_h))
            reg_out(attn.c_proj, f"{pre}.hook_attn_out")
            reg_out(mlp.c_fc, f"{pre}.mlp.hook_pre")
            reg_in(mlp.c_proj, f"{pre}.mlp.hook_post")
            reg_out(mlp, f"{pre}.hook_mlp_out")
            continue
        attn, mlp = layer.self_attn, layer.mlp
        reg_out(layer.input_layernorm, f"{pre}.ln1.hook_normalized")
        ln2 = layer.pre_feedforward_layernorm if arch == "gemma2" else layer.post_attention_layernorm
        reg_in(ln2, f"{pre}.hook_resid_mid")
        reg_out(ln2, f"{pre}.ln2.hook_normalized")
        if arch == "phi3":
            def split_qkv(mod, args, out, pre=pre):
                q, k, v = out.split([n_h * e, n_g * e, n_g * e], dim=2)
                put(f"{pre}.attn.hook_q", q.reshape(b, p, n_h, e))
                put(f"{pre}.attn.hook_k", k.reshape(b, p, n_g, e))
                put(f"{pre}.attn.hook_v", v.reshape(b, p, n_g, e))
            handles.append(attn.qkv_proj.register_forward_hook(split_qkv))
        elif spec.get("qk_norm"):
            def norm_out(n):
                def f(t):
                    # Qwen3 normalises [b, p, n, e]; Gemma 3 normalises after transpose, [b, n, p, e]
                    if t.shape == (b, n, p, e) and n != p:
                        t = t.transpose(1, 2)
                    assert t.shape == (b, p, n, e), t.shape
                    return t
                return f
            reg_out(attn.q_norm, f"{pre}.attn.hook_q", norm_out(n_h))
            reg_out(attn.k_norm, f"{pre}.attn.hook_k", norm_out(n_g))
            reg_out(attn.v_proj, f"{pre}.attn.hook_v", heads(n_g))
        else:
            reg_out(attn.q_proj, f"{pre}.attn.hook_q", heads(n_h))
            reg_out(attn.k_proj, f"{pre}.attn.hook_k", heads(n_g))
            reg_out(attn.v_proj, f"{pre}.attn.hook_v", heads(n_g))
        reg_in(attn.o_proj, f"{pre}.attn.hook_z", heads(n_h))
        if arch == "gemma2":
            reg_out(layer.post_attention_layernorm, f"{pre}.hook_attn_out")
            reg_out(layer.post_feedforward_layernorm, f"{pre}.hook_mlp_out")
        else:
            reg_out(attn.o_proj, f"{pre}.hook_attn_out")
            reg_out(mlp, f"{pre}.hook_mlp_out")
        if arch == "phi3":
            reg_out(mlp.gate_up_proj, f"{pre}.mlp.hook_pre", lambda t: t[..., :m_dim])
            reg_out(mlp.gate_up_proj, f"{pre}.mlp.hook_pre_linear", lambda t: t[..., m_dim:])
        else:
            reg_out(mlp.gate_proj, f"{pre}.mlp.hook_pre")
            reg_out(mlp.up_proj, f"{pre}.mlp.hook_pre_linear")
        reg_in(mlp.down_proj, f"{pre}.mlp.hook_post")
    reg_out(P["norm"], "ln_final.hook_normalized")

    REC.reset()
    REC.active = True
    try:
        with torch.no_grad():
            out = model(input_ids=input_ids, output_attentions=True, use_cache=False)
    finally:
        REC.active = False
        for h in handles:
            h.remove()
    n_layers = len(P["layers"])
    for l in range(n_layers):
        store[f"blocks.{l}.attn.hook_attn_scores"] = REC.scores[l]
        store[f"blocks.{l}.attn.hook_pattern"] = REC.pattern[l]
        if arch != "gpt2":
            store[f"blocks.{l}.attn.hook_rot_q"] = REC.rot_q[l]
            store[f"blocks.{l}.attn.hook_rot_k"] = REC.rot_k[l]
        assert torch.equal(out.attentions[l], REC.pattern[l]), "output_attentions differ from recorded weights"
    # ln1/ln2/ln_final.hook_scale: what each norm divides its (LayerNorm: centred) input by,
    # sqrt(mean(x^2) + eps), [b, p, 1] (TransformerLens' definition; transformers never stores it).
    def scale(norm, x):
        eps = getattr(norm, "variance_epsilon", None) or norm.eps
        if arch == "gpt2":
            x = x - x.mean(-1, keepdim=True)
        return (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()

    for l, layer in enumerate(P["layers"]):
        if arch == "gpt2":
            ln1, ln2 = layer.ln_1, layer.ln_2
        else:
            ln1 = layer.input_layernorm
            ln2 = layer.pre_feedforward_layernorm if arch == "gemma2" else layer.post_attention_layernorm
        store[f"blocks.{l}.ln1.hook_scale"] = scale(ln1, store[f"blocks.{l}.hook_resid_pre"])
        store[f"blocks.{l}.ln2.hook_scale"] = scale(ln2, store[f"blocks.{l}.hook_resid_mid"])
    store["ln_final.hook_scale"] = scale(P["norm"], store[f"blocks.{len(P['layers']) - 1}.hook_resid_post"])
    # attn.hook_result: each head's z times its columns of the output projection (transformers
    # never forms it; TransformerLens' definition), whose sum over heads + bias is o_proj's output.
    for l, layer in enumerate(P["layers"]):
        if arch == "gpt2":
            w_o = layer.attn.c_proj.weight.T  # Conv1D stores [in, out]
        else:
            w_o = layer.self_attn.o_proj.weight
        z = store[f"blocks.{l}.attn.hook_z"]
        store[f"blocks.{l}.attn.hook_result"] = torch.einsum("bphe,dhe->bphd", z, w_o.detach().reshape(d, n_h, e))
    store["logits"] = out.logits.detach().clone()
    return store, out, dict(n_h=n_h, n_g=n_g, e=e, d=d, m=m_dim, n_layers=n_layers,
                            raw_max=dict(REC.raw_max), attn_info=dict(REC.info))


HOOK_ORDER = [
    "hook_resid_pre", "ln1.hook_scale", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k",
    "attn.hook_v", "attn.hook_rot_q", "attn.hook_rot_k", "attn.hook_attn_scores", "attn.hook_pattern",
    "attn.hook_z", "attn.hook_result", "hook_attn_out", "hook_resid_mid", "ln2.hook_scale",
    "ln2.hook_normalized", "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_mlp_out",
    "hook_resid_post",
]
# What GPT-2 (learned positions, ungated MLP) does not have.
NOT_GPT2 = {"attn.hook_rot_q", "attn.hook_rot_k", "mlp.hook_pre_linear"}


def expected_shapes(dims, b, p, vocab, gpt2):
    n_h, n_g, e, d, m = dims["n_h"], dims["n_g"], dims["e"], dims["d"], dims["m"]
    per = {
        "hook_resid_pre": (b, p, d), "ln1.hook_scale": (b, p, 1), "ln2.hook_scale": (b, p, 1),
        "ln1.hook_normalized": (b, p, d), "attn.hook_q": (b, p, n_h, e),
        "attn.hook_k": (b, p, n_g, e), "attn.hook_v": (b, p, n_g, e), "attn.hook_rot_q": (b, p, n_h, e),
        "attn.hook_rot_k": (b, p, n_g, e), "attn.hook_attn_scores": (b, n_h, p, p),
        "attn.hook_pattern": (b, n_h, p, p), "attn.hook_z": (b, p, n_h, e),
        "attn.hook_result": (b, p, n_h, d), "hook_attn_out": (b, p, d),
        "hook_resid_mid": (b, p, d), "ln2.hook_normalized": (b, p, d), "mlp.hook_pre": (b, p, m),
        "mlp.hook_pre_linear": (b, p, m),
        "mlp.hook_post": (b, p, m), "hook_mlp_out": (b, p, d), "hook_resid_post": (b, p, d),
    }
    shapes = {"hook_embed": (b, p, d)}
    if gpt2:
        shapes["hook_pos_embed"] = (b, p, d)
    for l in range(dims["n_layers"]):
        for k in HOOK_ORDER:
            if not (gpt2 and k in NOT_GPT2):
                shapes[f"blocks.{l}.{k}"] = per[k]
    shapes["ln_final.hook_scale"] = (b, p, 1)
    shapes["ln_final.hook_normalized"] = (b, p, d)
    shapes["logits"] = (b, p, vocab)
    return shapes


# ----------------------------------------------------------------------------------------------
# Sanity checks
# ----------------------------------------------------------------------------------------------


def close(a, b, what, tol=TOL):
    err = (a - b).abs().max().item()
    assert err <= tol, f"{what}: max abs err {err:.3g} > {tol:.1g}"
    return err


@torch.no_grad()
def sanity(family, model, spec, cfg, store, dims, input_ids):
    arch = spec["arch"]
    L, d = dims["n_layers"], dims["d"]
    b, p = input_ids.shape
    P = parts(model, spec)
    emb = store["hook_embed"] + store.get("hook_pos_embed", 0)
    close(store["blocks.0.hook_resid_pre"], emb, f"{family}: resid_pre[0] == embed (+pos)", 0)
    if family.startswith("gemma"):
        raw = P["embed"].weight[input_ids]
        close(store["hook_embed"], raw * torch.tensor(math.sqrt(d), dtype=torch.float32), "gemma embed scale", 0)
    pos_ids = torch.arange(p)[None]
    for l in range(L):
        s = lambda k: store[f"blocks.{l}.{k}"]
        close(s("hook_resid_mid"), s("hook_resid_pre") + s("hook_attn_out"), f"{family} L{l}: resid_mid")
        close(s("hook_resid_post"), s("hook_resid_mid") + s("hook_mlp_out"), f"{family} L{l}: resid_post")
        if l + 1 < L:
            close(store[f"blocks.{l + 1}.hook_resid_pre"], s("hook_resid_post"), f"{family} L{l}: chain", 0)
        # pattern == softmax(scores)
        pat, sc = s("attn.hook_pattern"), s("attn.hook_attn_scores")
        close(pat, torch.softmax(sc, dim=-1), f"{family} L{l}: pattern == softmax(scores)")
        # z == pattern @ v (GQA: query head h reads kv head h // (n_h / n_g))
        n_rep = dims["n_h"] // dims["n_g"]
        v = s("attn.hook_v").repeat_interleave(n_rep, dim=2)  # b p h e
        z = torch.einsum("bhqk,bkhe->bqhe", pat, v)
        close(s("attn.hook_z"), z, f"{family} L{l}: z == pattern @ v")
        # attn_out == sum of the heads' results + bias (before Gemma 2/3's post-attention norm)
        o_proj = model.transformer.h[l].attn.c_proj if arch == "gpt2" else P["layers"][l].self_attn.o_proj
        heads_sum = s("attn.hook_result").sum(2) + (o_proj.bias if o_proj.bias is not None else 0)
        if arch == "gemma2":
            heads_sum = P["layers"][l].post_attention_layernorm(heads_sum)
        close(s("hook_attn_out"), heads_sum, f"{family} L{l}: attn_out == sum of head results")
        # scores == rotary(q) . rotary(k) * scaling (+ softcap), from the stored pre-rotary q / k
        info = dims["attn_info"][l]
        q = s("attn.hook_q").transpose(1, 2)
        k = s("attn.hook_k").transpose(1, 2)
        if arch != "gpt2":
            layer = P["layers"][l]
            rot = model.model.rotary_emb
            if family == "gemma3":
                cos, sin = rot(q, pos_ids, layer.self_attn.layer_type)
            else:
                cos, sin = rot(q, pos_ids)
            q, k = spec["module"].apply_rotary_pos_emb(q, k, cos, sin)
            close(s("attn.hook_rot_q"), q.transpose(1, 2), f"{family} L{l}: rot_q == rope(q)")
            close(s("attn.hook_rot_k"), k.transpose(1, 2), f"{family} L{l}: rot_k == rope(k)")
        k = k.repeat_interleave(n_rep, dim=1)
        s2 = torch.matmul(q, k.transpose(2, 3)) * info["scaling"]
        if info["softcap"] is not None:
            s2 = torch.tanh(s2 / info["softcap"]) * info["softcap"]
        finite = torch.isfinite(sc)
        close(sc[finite], s2[finite], f"{family} L{l}: scores == rope(q).rope(k)*scale", 1e-4)
        # causal / sliding window structure of the -inf entries
        qi = torch.arange(p)[:, None]
        ki = torch.arange(p)[None, :]
        allowed = ki <= qi
        win = spec.get("sliding", {}).get(l)
        if win is not None:
            allowed = allowed & (ki > qi - win)
            assert info["sliding_window"] == win, info
        assert torch.equal(finite[0, 0], allowed), f"{family} L{l}: mask structure"
        # MLP: hook_post == act(hook_pre) * up
        x = s("ln2.hook_normalized")
        mlp = P["layers"][l].mlp
        if arch == "gpt2":
            close(s("mlp.hook_post"), mlp.act(s("mlp.hook_pre")), f"{family} L{l}: mlp post")
        elif arch == "phi3":
            up = mlp.gate_up_proj(x)[..., dims["m"]:]
            close(s("mlp.hook_pre_linear"), up, f"{family} L{l}: mlp pre_linear == up half")
            close(s("mlp.hook_post"), up * mlp.activation_fn(s("mlp.hook_pre")), f"{family} L{l}: mlp post")
        else:
            close(s("mlp.hook_pre_linear"), mlp.up_proj(x), f"{family} L{l}: mlp pre_linear == up_proj")
            close(s("mlp.hook_post"), mlp.act_fn(s("mlp.hook_pre")) * s("mlp.hook_pre_linear"), f"{family} L{l}: mlp post")
    # final norm and logits
    last = store[f"blocks.{L - 1}.hook_resid_post"]
    close(P["norm"](last), store["ln_final.hook_normalized"], f"{family}: ln_final(resid_post[-1])", 0)
    logits = model.lm_head(store["ln_final.hook_normalized"])
    pre_cap_max = logits.abs().max().item()
    fcap = getattr(cfg, "final_logit_softcapping", None)
    if fcap is not None:
        assert pre_cap_max > fcap, f"{family}: final softcap never bites ({pre_cap_max} <= {fcap})"
        logits = torch.tanh(logits / fcap) * fcap
    close(store["logits"], logits, f"{family}: logits == lm_head(ln_final)", 0)
    if spec.get("softcap"):
        cap = cfg.attn_logit_softcapping
        for l in range(L):
            assert dims["attn_info"][l]["softcap"] == cap, f"{family} L{l}: softcap not passed"
        assert max(dims["raw_max"].values()) > cap, f"{family}: attn softcap never bites"
    else:
        assert all(v["softcap"] is None for v in dims["attn_info"].values())
    # attention is not trivial: some query attends with > 0.5 to one key at a position > 2
    pats = torch.stack([store[f"blocks.{l}.attn.hook_pattern"] for l in range(L)])
    return dict(pre_cap_max=pre_cap_max, max_attn=pats[..., 3:, :].max().item())


# ----------------------------------------------------------------------------------------------
# Greedy generation
# ----------------------------------------------------------------------------------------------

GREEDY_TOKENS = 8


@torch.no_grad()
def greedy(model, ids):
    """transformers' `generate` without sampling: up to GREEDY_TOKENS new ids, ending at the
    first end-of-sequence id if one comes (what `strata generate` prints)."""
    out = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS, do_sample=False, pad_token_id=PAD_ID)
    new = out[0, len(ids):].tolist()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    end = next((i + 1 for i, t in enumerate(new) if t in eos), len(new))
    return new[:end]


# ----------------------------------------------------------------------------------------------
# Batches
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def batches(family, model, tok):
    seqs = [tok.encode(t).ids for t in BATCH_PROMPTS]
    assert len(seqs[0]) != len(seqs[1])
    P2 = max(len(s) for s in seqs)
    assert P2 <= 12, P2
    out = {}
    singles = []
    for i, s in enumerate(seqs):
        logits = model(input_ids=torch.tensor([s]), use_cache=False).logits
        out[f"batch_logits_{i}"] = logits.clone()
        singles.append(logits[0])
    for side, prefix in (("right", "batch"), ("left", "batch_left")):
        ids = torch.full((2, P2), PAD_ID, dtype=torch.int64)
        mask = torch.zeros((2, P2), dtype=torch.int64)
        for i, s in enumerate(seqs):
            sl = slice(0, len(s)) if side == "right" else slice(P2 - len(s), P2)
            ids[i, sl] = torch.tensor(s)
            mask[i, sl] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False).logits
        for i, s in enumerate(seqs):
            sl = slice(0, len(s)) if side == "right" else slice(P2 - len(s), P2)
            close(logits[i, sl], singles[i], f"{family}: {side}-padded batch row {i} vs single run", 1e-4)
        out[f"{prefix}_ids"] = ids
        out[f"{prefix}_mask"] = mask
    return out, seqs


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_classic(family, cls, classic: dict, model_dir: Path, input_ids, ref_logits):
    """The classic config must give the same model as config.json."""
    with tempfile.TemporaryDirectory() as td:
        td = Path(td)
        (td / "config.json").write_text(json.dumps(classic))
        shutil.copy(model_dir / "model.safetensors", td / "model.safetensors")
        m = cls.from_pretrained(td, attn_implementation="eager", dtype=torch.float32).eval()
        with torch.no_grad():
            logits = m(input_ids=input_ids, use_cache=False).logits
        close(logits, ref_logits, f"{family}: config.classic.json reproduces the logits", 0)


def check_rope_scaling_bites(family, cls, cfg, model_dir: Path, input_ids, ref_logits):
    """The rope scaling in the config must change the logits (else the fixture would not test it)."""
    plain = copy.deepcopy(cfg)
    rp = copy.deepcopy(cfg.rope_parameters)
    if family == "gemma3":
        rp["full_attention"] = dict(rope_type="default", rope_theta=rp["full_attention"]["rope_theta"])
    else:
        rp = dict(rope_type="default", rope_theta=rp["rope_theta"])
    plain.rope_parameters = rp
    m = cls.from_pretrained(model_dir, config=plain, attn_implementation="eager", dtype=torch.float32).eval()
    with torch.no_grad():
        diff = (m(input_ids=input_ids, use_cache=False).logits - ref_logits).abs().max().item()
    assert diff > 1e-2, f"{family}: rope scaling barely matters (max logit diff {diff:.3g})"
    return diff


def build(family, cls, cfg, spec, tok, out_dir: Path, seed: int):
    fdir = out_dir / family
    if fdir.exists():
        shutil.rmtree(fdir)
    fdir.mkdir(parents=True)
    torch.manual_seed(seed)
    cfg._attn_implementation = "eager"
    model = cls(cfg).to(torch.float32).eval()
    randomize(model, family, seed)
    model.save_pretrained(fdir, safe_serialization=True)
    for extra in ("generation_config.json",):
        if (fdir / extra).exists():
            (fdir / extra).unlink()
    tok.save(str(fdir / "tokenizer.json"))

    # reload exactly what was written, and reference *that* model
    model = cls.from_pretrained(fdir, attn_implementation="eager", dtype=torch.float32).eval()
    cfg = model.config
    ids = tok.encode(PROMPT).ids
    input_ids = torch.tensor([ids], dtype=torch.int64)
    store, out, dims = capture(model, spec, cfg, input_ids)
    shapes = expected_shapes(dims, 1, len(ids), cfg.vocab_size, spec["arch"] == "gpt2")
    assert set(shapes) == set(store), sorted(set(shapes) ^ set(store))
    for k, shp in shapes.items():
        assert tuple(store[k].shape) == shp, (k, tuple(store[k].shape), shp)
        assert store[k].dtype == torch.float32, (k, store[k].dtype)
    stats = sanity(family, model, spec, cfg, store, dims, input_ids)
    batch, batch_seqs = batches(family, model, tok)
    if spec.get("rope_bites"):
        stats["rope_scaling_diff"] = check_rope_scaling_bites(family, cls, cfg, fdir, input_ids, store["logits"])

    tensors = {"input_ids": input_ids}
    tensors.update({k: store[k] for k in shapes})
    tensors.update(batch)
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, str(fdir / "reference.safetensors"), metadata={"family": family})

    saved_cfg = json.loads((fdir / "config.json").read_text())
    classic = classic_config(family, saved_cfg)
    if classic is not None:
        (fdir / "config.classic.json").write_text(json.dumps(classic, indent=2, sort_keys=True) + "\n")
        check_classic(family, cls, classic, fdir, input_ids, store["logits"])

    info = {
        "family": family,
        "model_class": cls.__name__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "prompt": PROMPT,
        "input_ids": ids,
        "greedy_new_ids": greedy(model, ids),
        "batch_prompts": BATCH_PROMPTS,
        "batch_input_ids": batch_seqs,
        "pad_token_id": PAD_ID,
        "batch_position_ids": "cumsum(mask) - 1 (counted from the first real token)",
        "n_layers": dims["n_layers"],
        "d_model": dims["d"],
        "n_heads": dims["n_h"],
        "n_kv_heads": dims["n_g"],
        "d_head": dims["e"],
        "d_mlp": dims["m"],
        "d_vocab": cfg.vocab_size,
        "attention": {str(l): {"scaling": v["scaling"], "softcap": v["softcap"], "sliding_window": v["sliding_window"]}
                      for l, v in sorted(dims["attn_info"].items())},
        "tensors": {k: list(v.shape) for k, v in tensors.items()},
    }
    (fdir / "reference.json").write_text(json.dumps(info, indent=2) + "\n")

    n_params = sum(p.numel() for p in model.parameters())
    sizes = {f.name: f.stat().st_size for f in sorted(fdir.iterdir())}
    return dict(family=family, params=n_params, max_logit=store["logits"].abs().max().item(),
                pre_cap_max=stats["pre_cap_max"], max_attn=stats["max_attn"],
                raw_score_max=max(dims["raw_max"].values()), P=len(ids), sizes=sizes,
                rope_diff=stats.get("rope_scaling_diff"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "models")
    ap.add_argument("--only", nargs="*", help="families to build (default: all)")
    args = ap.parse_args()

    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    tok = train_tokenizer()
    ids = tok.encode(PROMPT).ids
    assert 8 <= len(ids) <= 12, (len(ids), tok.encode(PROMPT).tokens)

    fams = family_configs()
    names = args.only or list(fams)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(fams):
        if name not in names:
            continue
        cls, cfg, spec = fams[name]
        rows.append(build(name, cls, cfg, spec, tok, args.out, seed=1000 + i))

    print(f"tokenizer: vocab {tok.get_vocab_size()}, prompt {len(ids)} tokens: {tok.encode(PROMPT).tokens}")
    hdr = f"{'family':<11} {'params':>7} {'P':>3} {'max|logit|':>10} {'pre-cap':>8} {'max|score|':>10} {'max attn':>8} " \
          f"{'model KB':>8} {'ref KB':>7} {'total KB':>8} {'rope-scaling Δlogit':>19}"
    print("pre-cap: max |logit| before the final soft-cap; max|score|: largest |scaled q.k| before any soft-cap;")
    print("max attn: largest attention weight at query positions >= 3; rope-scaling Δlogit: max logit change")
    print("when the config's rope scaling is replaced by plain rope")
    print(hdr)
    print("-" * len(hdr))
    total = 0
    for r in rows:
        s = r["sizes"]
        t = sum(s.values())
        total += t
        print(f"{r['family']:<11} {r['params']:>7} {r['P']:>3} {r['max_logit']:>10.3f} {r['pre_cap_max']:>8.3f} "
              f"{r['raw_score_max']:>10.3f} {r['max_attn']:>8.3f} {s['model.safetensors'] / 1024:>8.1f} "
              f"{s['reference.safetensors'] / 1024:>7.1f} {t / 1024:>8.1f} "
              f"{'' if r['rope_diff'] is None else format(r['rope_diff'], '.3f'):>19}")
    print(f"total {total / 1024:.1f} KB in {args.out}")


if __name__ == "__main__":
    main()
