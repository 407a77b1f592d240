//! GGUF metadata -> the `config.json` transformers builds for the same file.
//!
//! transformers (legacy GGUF path, `integrations/ggml.py` `GGUF_CONFIG_MAPPING` plus the config
//! class defaults) maps `{arch}.context_length`, `block_count`, `feed_forward_length`,
//! `embedding_length`, `rope.freq_base`, `attention.head_count`, `attention.head_count_kv`,
//! `attention.layer_norm_rms_epsilon`, `vocab_size` (else the token count), `attention.key_length`
//! (Gemma: `head_dim`), `rope.dimension_count` (llama: `head_dim`), `attention.sliding_window`
//! (Gemma), the tokenizer's special ids, and sets `tie_word_embeddings` when the file has no
//! `output.weight`. Everything else comes from the config class's defaults; those defaults are
//! written out here so the decoder needs no GGUF special case. The output carries both the
//! transformers v5 keys (`rope_parameters`, `layer_types`) and the classic hub keys (`rope_theta`,
//! `rope_local_base_freq`, `sliding_window_pattern`).
//!
//! Where the metadata states a value transformers ignores, and the value is one the original
//! model's config has, it is used (documented per key below): `{arch}.rope.freq_base_swa`,
//! `{arch}.attention.sliding_window_pattern`, Gemma 2's soft-capping values, a linear rope scaling,
//! Phi-3's sliding window. Real Gemma 3 / SmolLM2 files do not carry these, so for them the result
//! equals transformers' config exactly.
use std::path::Path;

use serde_json::{json, Map, Value};

use super::{GgufError, GgufMetadata, Meta};

/// Architectures (`general.architecture`) this module converts.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "gemma3", "gemma2", "qwen2", "qwen3", "phi3"];

/// More layers than any model has: a larger `block_count` means a corrupt file.
pub const MAX_LAYERS: u64 = 65_536;

/// The HF config for a GGUF file's metadata and tensor names.
pub fn hf_config(md: &GgufMetadata, tensor_names: &[&str], path: &Path) -> Result<Value, GgufError> {
    let m = Meta::new(md, path);
    let arch = m.string("general.architecture")?;
    if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
        return Err(GgufError::UnsupportedArchitecture {
            path: path.to_path_buf(),
            arch,
            supported: SUPPORTED_ARCHITECTURES.join(", "),
        });
    }
    let k = |name: &str| format!("{arch}.{name}");

    let n_layers = m.u64(&k("block_count"))?;
    // per-layer lists are built below: refuse a corrupt count before allocating for it
    if n_layers > MAX_LAYERS {
        return Err(GgufError::BadMetadata {
            path: path.to_path_buf(),
            key: k("block_count"),
            message: format!(
                "{n_layers} layers is not plausible (at most {MAX_LAYERS}); the file is corrupt"
            ),
        });
    }
    let hidden = m.u64(&k("embedding_length"))?;
    let n_heads = m.u64(&k("attention.head_count"))?;
    let n_kv_heads = match m.per_layer_u64_opt(&k("attention.head_count_kv"))? {
        None => n_heads,
        Some(v) if v.is_empty() => n_heads,
        Some(v) => {
            if v.iter().any(|&x| x != v[0]) {
                return Err(GgufError::BadMetadata {
                    path: path.to_path_buf(),
                    key: k("attention.head_count_kv"),
                    message: format!("per-layer key/value head counts {v:?} are not supported"),
                });
            }
            v[0]
        }
    };
    if n_heads == 0 || hidden % n_heads != 0 {
        return Err(GgufError::BadMetadata {
            path: path.to_path_buf(),
            key: k("attention.head_count"),
            message: format!("{n_heads} heads do not divide embedding_length {hidden}"),
        });
    }
    let vocab = match m.u64_opt(&k("vocab_size"))? {
        Some(v) => v,
        None => match md.get("tokenizer.ggml.tokens") {
            Some(super::GgufValue::Array(a)) => a.len() as u64,
            _ => {
                return Err(GgufError::MissingMetadata {
                    path: path.to_path_buf(),
                    key: k("vocab_size"),
                })
            }
        },
    };
    let tied = !tensor_names.contains(&"output.weight");
    let has = |name: &str| tensor_names.contains(&name);

    let mut c = Map::new();
    c.insert("vocab_size".into(), json!(vocab));
    c.insert("hidden_size".into(), json!(hidden));
    c.insert(
        "intermediate_size".into(),
        json!(m.u64(&k("feed_forward_length"))?),
    );
    c.insert("num_hidden_layers".into(), json!(n_layers));
    c.insert("num_attention_heads".into(), json!(n_heads));
    c.insert("num_key_value_heads".into(), json!(n_kv_heads));
    c.insert(
        "max_position_embeddings".into(),
        json!(m.u64(&k("context_length"))?),
    );
    c.insert("tie_word_embeddings".into(), json!(tied));
    for (gguf, hf) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
        ("tokenizer.ggml.unknown_token_id", "unk_token_id"),
    ] {
        if let Some(id) = m.u64_opt(gguf)? {
            c.insert(hf.into(), json!(id));
        }
    }
    let eps_key = k("attention.layer_norm_rms_epsilon");
    let theta_key = k("rope.freq_base");
    let rope = |c: &mut Map<String, Value>, theta: f64| {
        c.insert("rope_theta".into(), json!(theta));
        c.insert(
            "rope_parameters".into(),
            json!({"rope_type": "default", "rope_theta": theta}),
        );
    };

    match arch.as_str() {
        "llama" => {
            c.insert("model_type".into(), json!("llama"));
            c.insert("architectures".into(), json!(["LlamaForCausalLM"]));
            c.insert("hidden_act".into(), json!("silu"));
            // transformers maps rope.dimension_count to head_dim for llama
            let head_dim = m.u64_opt(&k("rope.dimension_count"))?.unwrap_or(hidden / n_heads);
            c.insert("head_dim".into(), json!(head_dim));
            c.insert("rms_norm_eps".into(), json!(m.f64_opt(&eps_key)?.unwrap_or(1e-6)));
            rope(&mut c, m.f64_opt(&theta_key)?.unwrap_or(10_000.0));
            // a q bias in the file means the model has attention biases (transformers: default false)
            c.insert("attention_bias".into(), json!(has("blk.0.attn_q.bias")));
            c.insert("mlp_bias".into(), json!(false));
            c.insert("pretraining_tp".into(), json!(1));
        }
        "qwen2" => {
            c.insert("model_type".into(), json!("qwen2"));
            c.insert("architectures".into(), json!(["Qwen2ForCausalLM"]));
            c.insert("hidden_act".into(), json!("silu"));
            c.insert("rms_norm_eps".into(), json!(m.f64_opt(&eps_key)?.unwrap_or(1e-6)));
            rope(&mut c, m.f64_opt(&theta_key)?.unwrap_or(10_000.0));
            c.insert("use_sliding_window".into(), json!(false));
        }
        "qwen3" => {
            c.insert("model_type".into(), json!("qwen3"));
            c.insert("architectures".into(), json!(["Qwen3ForCausalLM"]));
            c.insert("hidden_act".into(), json!("silu"));
            // transformers leaves Qwen3Config's default (128); the file states it, and it is 128 for
            // every released dense Qwen3
            c.insert(
                "head_dim".into(),
                json!(m.u64_opt(&k("attention.key_length"))?.unwrap_or(128)),
            );
            c.insert("rms_norm_eps".into(), json!(m.f64_opt(&eps_key)?.unwrap_or(1e-6)));
            rope(&mut c, m.f64_opt(&theta_key)?.unwrap_or(10_000.0));
            c.insert("attention_bias".into(), json!(has("blk.0.attn_q.bias")));
            c.insert("use_sliding_window".into(), json!(false));
        }
        "phi3" => {
            c.insert("model_type".into(), json!("phi3"));
            c.insert("architectures".into(), json!(["Phi3ForCausalLM"]));
            c.insert("hidden_act".into(), json!("silu"));
            c.insert("rms_norm_eps".into(), json!(m.f64_opt(&eps_key)?.unwrap_or(1e-5)));
            rope(&mut c, m.f64_opt(&theta_key)?.unwrap_or(10_000.0));
            let head_dim = hidden / n_heads;
            let rot = m.u64_opt(&k("rope.dimension_count"))?.unwrap_or(head_dim);
            c.insert(
                "partial_rotary_factor".into(),
                json!(rot as f64 / head_dim as f64),
            );
            // Phi-3's own config has the sliding window llama.cpp writes; transformers' GGUF path drops it
            if let Some(w) = m.u64_opt(&k("attention.sliding_window"))? {
                c.insert("sliding_window".into(), json!(w));
            }
        }
        "gemma2" | "gemma3" => {
            let g3 = arch == "gemma3";
            c.insert(
                "model_type".into(),
                json!(if g3 { "gemma3_text" } else { "gemma2" }),
            );
            c.insert(
                "architectures".into(),
                json!([if g3 {
                    "Gemma3ForCausalLM"
                } else {
                    "Gemma2ForCausalLM"
                }]),
            );
            c.insert("hidden_activation".into(), json!("gelu_pytorch_tanh"));
            let head_dim = m.u64_opt(&k("attention.key_length"))?.unwrap_or(256);
            c.insert("head_dim".into(), json!(head_dim));
            c.insert("rms_norm_eps".into(), json!(m.f64_opt(&eps_key)?.unwrap_or(1e-6)));
            // transformers' default is 256 (= head_dim for every size but the 27B ones); llama.cpp
            // scales the 27B models (Gemma 2: 46 layers, Gemma 3: 62 layers) by hidden / heads
            let is_27b = (g3 && n_layers == 62) || (!g3 && n_layers == 46);
            c.insert(
                "query_pre_attn_scalar".into(),
                json!(if is_27b { hidden / n_heads } else { 256 }),
            );
            let window = m.u64_opt(&k("attention.sliding_window"))?.unwrap_or(4096);
            c.insert("sliding_window".into(), json!(window));
            let theta_global = m
                .f64_opt(&theta_key)?
                .unwrap_or(if g3 { 1_000_000.0 } else { 10_000.0 });
            // sliding-window layers: `layer_types`; Gemma 2 alternates, Gemma 3 has 5 local : 1 global
            let default_pattern: u64 = if g3 { 6 } else { 2 };
            let pattern_key = k("attention.sliding_window_pattern");
            let mut pattern = default_pattern;
            let sliding: Vec<bool> = match md.get(&pattern_key) {
                Some(super::GgufValue::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        super::GgufValue::Bool(b) => Ok(*b),
                        other => Err(GgufError::BadMetadata {
                            path: path.to_path_buf(),
                            key: pattern_key.clone(),
                            message: format!("expected bools, found {other:?}"),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
                _ => {
                    pattern = m.u64_opt(&pattern_key)?.unwrap_or(default_pattern).max(1);
                    (0..n_layers).map(|i| (i + 1) % pattern != 0).collect()
                }
            };
            if sliding.len() as u64 != n_layers {
                return Err(GgufError::BadMetadata {
                    path: path.to_path_buf(),
                    key: pattern_key,
                    message: format!("{} entries for {n_layers} layers", sliding.len()),
                });
            }
            let layer_types: Vec<&str> = sliding
                .iter()
                .map(|&s| if s { "sliding_attention" } else { "full_attention" })
                .collect();
            c.insert("layer_types".into(), json!(layer_types));
            c.insert("sliding_window_pattern".into(), json!(pattern));
            c.insert("attention_bias".into(), json!(false));
            c.insert("rope_theta".into(), json!(theta_global));
            if g3 {
                let theta_local = m.f64_opt(&k("rope.freq_base_swa"))?.unwrap_or(10_000.0);
                let mut global = json!({"rope_type": "default", "rope_theta": theta_global});
                // Gemma 3 4B+ scale the global layers' rope linearly (llama.cpp writes it; transformers'
                // GGUF path drops it)
                let scaling = m.string_opt(&k("rope.scaling.type"))?;
                let factor = m.f64_opt(&k("rope.scaling.factor"))?;
                if let (Some("linear"), Some(f)) = (scaling.as_deref(), factor) {
                    if f != 1.0 {
                        global = json!({"rope_type": "linear", "rope_theta": theta_global, "factor": f});
                        c.insert("rope_scaling".into(), json!({"rope_type": "linear", "factor": f}));
                    }
                }
                c.insert("rope_local_base_freq".into(), json!(theta_local));
                c.insert(
                    "rope_parameters".into(),
                    json!({
                        "sliding_attention": {"rope_type": "default", "rope_theta": theta_local},
                        "full_attention": global,
                    }),
                );
                c.insert("final_logit_softcapping".into(), Value::Null);
                c.insert("attn_logit_softcapping".into(), Value::Null);
                c.insert("use_bidirectional_attention".into(), json!(false));
            } else {
                c.insert(
                    "rope_parameters".into(),
                    json!({"rope_type": "default", "rope_theta": theta_global}),
                );
                // Gemma2Config defaults (50, 30) are what llama.cpp writes for every Gemma 2
                let attn_cap = m.f64_opt(&k("attn_logit_softcapping"))?.unwrap_or(50.0);
                let final_cap = m.f64_opt(&k("final_logit_softcapping"))?.unwrap_or(30.0);
                c.insert("attn_logit_softcapping".into(), json!(attn_cap));
                c.insert("final_logit_softcapping".into(), json!(final_cap));
            }
        }
        _ => unreachable!("checked against SUPPORTED_ARCHITECTURES"),
    }
    c.insert("attention_dropout".into(), json!(0.0));
    if let Some(name) = m.string_opt("general.name")? {
        c.insert("_model_name_or_path".into(), json!(name));
    }
    Ok(Value::Object(c))
}
