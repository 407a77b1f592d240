//! One architecture description for every supported family.
//!
//! [`ModelConfig`] is read from a Hugging Face `config.json` (both the classic layout with
//! `rope_theta`/`rope_scaling` and transformers v5's `rope_parameters`/`layer_types`) or from the
//! HF-style config that the GGUF loader derives from a file's metadata. Family quirks are plain
//! fields (norm kind, soft-caps, windows, …) so the decoder has a single code path.

use serde_json::Value;
use std::fmt;

use crate::error::{ModelError, Result};

/// The model families the hooked decoder implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gpt2,
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Gemma,
    Gemma2,
    Gemma3,
    Phi3,
}

/// `model_type` values accepted in config.json, with their family.
pub const SUPPORTED_MODEL_TYPES: &[(&str, Family)] = &[
    ("gpt2", Family::Gpt2),
    ("llama", Family::Llama),
    ("mistral", Family::Mistral),
    ("qwen2", Family::Qwen2),
    ("qwen3", Family::Qwen3),
    ("gemma", Family::Gemma),
    ("gemma2", Family::Gemma2),
    ("gemma3_text", Family::Gemma3),
    ("gemma3", Family::Gemma3),
    ("phi3", Family::Phi3),
];

impl Family {
    pub fn from_model_type(model_type: &str) -> Result<Self> {
        SUPPORTED_MODEL_TYPES
            .iter()
            .find(|(name, _)| *name == model_type)
            .map(|(_, family)| *family)
            .ok_or_else(|| ModelError::UnsupportedArchitecture {
                found: model_type.to_string(),
                supported: SUPPORTED_MODEL_TYPES
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Gemma3 => "gemma3",
            Family::Phi3 => "phi3",
        }
    }

    /// The transformers class name (the dataset's `arch_class`).
    pub fn hf_class(self) -> &'static str {
        match self {
            Family::Gpt2 => "GPT2LMHeadModel",
            Family::Llama => "LlamaForCausalLM",
            Family::Mistral => "MistralForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
            Family::Qwen3 => "Qwen3ForCausalLM",
            Family::Gemma => "GemmaForCausalLM",
            Family::Gemma2 => "Gemma2ForCausalLM",
            Family::Gemma3 => "Gemma3ForCausalLM",
            Family::Phi3 => "Phi3ForCausalLM",
        }
    }

    fn is_gemma(self) -> bool {
        matches!(self, Family::Gemma | Family::Gemma2 | Family::Gemma3)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormKind {
    /// LayerNorm with weight and bias (GPT-2).
    LayerNorm,
    /// RMSNorm scaled by `w` (Llama, Mistral, Qwen, Phi-3).
    RmsNorm,
    /// RMSNorm scaled by `1 + w` (Gemma 1/2/3).
    RmsNormOnePlus,
}

impl NormKind {
    pub fn name(self) -> &'static str {
        match self {
            NormKind::LayerNorm => "LayerNorm",
            NormKind::RmsNorm => "RMSNorm",
            NormKind::RmsNormOnePlus => "RMSNorm(1+w)",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// tanh approximation (`gelu_new`, `gelu_pytorch_tanh`).
    GeluTanh,
    /// exact erf GELU (`gelu`).
    Gelu,
    Silu,
    Relu,
}

impl Activation {
    fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" | "gelu_tanh" => Activation::GeluTanh,
            "gelu" => Activation::Gelu,
            "silu" | "swish" => Activation::Silu,
            "relu" => Activation::Relu,
            other => {
                return Err(ModelError::config(
                    "hidden_act",
                    format!(
                    "activation '{other}' is not supported (gelu_new, gelu_pytorch_tanh, gelu, silu, relu)"
                ),
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Activation::GeluTanh => "gelu_tanh",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Relu => "relu",
        }
    }
}

/// How rotary frequencies are adjusted for long contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    None,
    /// Positions divided by `factor`.
    Linear {
        factor: f64,
    },
    /// Llama 3.x frequency-dependent scaling.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: f64,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rope {
    pub theta: f64,
    pub scaling: RopeScaling,
    /// Number of leading dimensions of each head that are rotated (Phi-3 `partial_rotary_factor`).
    pub rotary_dim: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Positions {
    /// Learned absolute position embeddings (GPT-2), with the table's length.
    Learned { n_ctx: usize },
    /// Rotary embeddings; local (sliding-window) layers may use their own base (Gemma 3).
    Rotary { global: Rope, local: Option<Rope> },
}

/// Everything the hooked decoder needs to know about an architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub family: Family,
    /// `model_type` as written in the config.
    pub model_type: String,
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_head: usize,
    pub d_mlp: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub activation: Activation,
    /// Gated MLP (`act(gate) * up`) rather than `act(fc)`.
    pub gated_mlp: bool,
    pub positions: Positions,
    /// Sliding window per layer (`None` = full attention).
    pub layer_windows: Vec<Option<usize>>,
    pub qkv_bias: bool,
    /// Bias on the attention output and MLP projections (GPT-2).
    pub proj_bias: bool,
    /// RMSNorm of queries and keys per head (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Norms after attention and MLP outputs, before they join the residual (Gemma 2/3).
    pub sandwich_norms: bool,
    pub attn_softcap: Option<f64>,
    pub final_softcap: Option<f64>,
    /// Multiplier of `q·k` (1/sqrt(d_head), or 1/sqrt(query_pre_attn_scalar) for Gemma 2/3).
    pub attn_scale: f64,
    /// Multiplier of token embeddings (sqrt(d_model) for Gemma).
    pub embed_scale: Option<f64>,
    pub tie_embeddings: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub pad_token_id: Option<u32>,
}

/// Typed access to config.json fields, with errors that name the field.
struct Fields<'a>(&'a Value);

impl<'a> Fields<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn usize_opt(&self, keys: &[&str]) -> Result<Option<usize>> {
        for key in keys {
            if let Some(v) = self.get(key) {
                return v.as_u64().map(|x| Some(x as usize)).ok_or_else(|| {
                    ModelError::config(key, format!("expected a non-negative integer, found {v}"))
                });
            }
        }
        Ok(None)
    }

    fn usize(&self, keys: &[&str]) -> Result<usize> {
        self.usize_opt(keys)?
            .ok_or_else(|| ModelError::config(keys[0], "missing (required)".to_string()))
    }

    fn f64_opt(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| ModelError::config(key, format!("expected a number, found {v}"))),
        }
    }

    fn bool_opt(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| ModelError::config(key, format!("expected true or false, found {v}"))),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&'a str>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| ModelError::config(key, format!("expected a string, found {v}"))),
        }
    }

    /// Token ids may be an integer or a list (eos in Llama 3); the first is kept.
    fn token_id(&self, key: &str) -> Option<u32> {
        match self.get(key)? {
            Value::Number(n) => n.as_u64().map(|x| x as u32),
            Value::Array(a) => a.first().and_then(|x| x.as_u64()).map(|x| x as u32),
            _ => None,
        }
    }
}

impl ModelConfig {
    /// Parses a Hugging Face `config.json` value.
    pub fn from_hf_json(json: &Value) -> Result<Self> {
        // Multimodal Gemma 3 checkpoints nest the language model's config.
        let json = match json.get("text_config") {
            Some(text) if text.is_object() => text,
            _ => json,
        };
        let f = Fields(json);
        let model_type = f
            .str_opt("model_type")?
            .ok_or_else(|| ModelError::config("model_type", "missing (required)".to_string()))?;
        let family = Family::from_model_type(model_type)?;

        let d_model = f.usize(&["hidden_size", "n_embd", "d_model"])?;
        let n_layers = f.usize(&["num_hidden_layers", "n_layer"])?;
        // per-layer lists are built from it: refuse a corrupt count before allocating for it
        if n_layers > 65_536 {
            return Err(ModelError::config(
                "num_hidden_layers",
                format!("{n_layers} layers is not plausible (at most 65536)"),
            ));
        }
        let n_heads = f.usize(&["num_attention_heads", "n_head"])?;
        let n_kv_heads = f.usize_opt(&["num_key_value_heads"])?.unwrap_or(n_heads);
        if n_heads == 0 || n_kv_heads == 0 || n_heads % n_kv_heads != 0 {
            return Err(ModelError::config(
                "num_key_value_heads",
                format!("{n_kv_heads} key/value heads must divide {n_heads} attention heads"),
            ));
        }
        let d_head = match f.usize_opt(&["head_dim"])? {
            Some(d) => d,
            None => {
                if d_model % n_heads != 0 {
                    return Err(ModelError::config(
                        "num_attention_heads",
                        format!("hidden_size {d_model} is not divisible by {n_heads} heads and no head_dim is given"),
                    ));
                }
                d_model / n_heads
            }
        };
        let d_mlp = match family {
            Family::Gpt2 => f.usize_opt(&["n_inner"])?.unwrap_or(d_model.saturating_mul(4)),
            _ => f.usize(&["intermediate_size"])?,
        };
        let vocab_size = f.usize(&["vocab_size"])?;
        let max_position_embeddings = f
            .usize_opt(&["max_position_embeddings", "n_positions", "n_ctx"])?
            .unwrap_or(2048);

        let activation = match family {
            Family::Gpt2 => Activation::from_name(f.str_opt("activation_function")?.unwrap_or("gelu_new"))?,
            // Gemma 1 configs carry `hidden_act: gelu` but transformers runs `hidden_activation`,
            // defaulting to the tanh approximation.
            Family::Gemma => {
                Activation::from_name(f.str_opt("hidden_activation")?.unwrap_or("gelu_pytorch_tanh"))?
            }
            _ => Activation::from_name(
                f.str_opt("hidden_activation")?
                    .or(f.str_opt("hidden_act")?)
                    .unwrap_or(if family.is_gemma() {
                        "gelu_pytorch_tanh"
                    } else {
                        "silu"
                    }),
            )?,
        };
        let norm = match family {
            Family::Gpt2 => NormKind::LayerNorm,
            f if f.is_gemma() => NormKind::RmsNormOnePlus,
            _ => NormKind::RmsNorm,
        };
        let norm_eps = f
            .f64_opt("rms_norm_eps")?
            .or(f.f64_opt("layer_norm_epsilon")?)
            .or(f.f64_opt("layer_norm_eps")?)
            .unwrap_or(1e-6);

        let positions = match family {
            Family::Gpt2 => Positions::Learned {
                n_ctx: max_position_embeddings,
            },
            _ => rotary_positions(&f, family, d_head)?,
        };
        let layer_windows = layer_windows(&f, family, n_layers)?;

        let qkv_bias = match family {
            Family::Gpt2 | Family::Qwen2 => true,
            _ => f.bool_opt("attention_bias")?.unwrap_or(false),
        };
        let attn_scale = match family {
            Family::Gemma2 | Family::Gemma3 => {
                1.0 / f
                    .f64_opt("query_pre_attn_scalar")?
                    .unwrap_or(d_head as f64)
                    .sqrt()
            }
            _ => 1.0 / (d_head as f64).sqrt(),
        };
        let (attn_softcap, final_softcap) = match family {
            Family::Gemma2 | Family::Gemma3 => (
                f.f64_opt("attn_logit_softcapping")?,
                f.f64_opt("final_logit_softcapping")?,
            ),
            _ => (None, None),
        };
        let tie_default = matches!(
            family,
            Family::Gpt2 | Family::Gemma | Family::Gemma2 | Family::Gemma3
        );
        let tie_embeddings = f.bool_opt("tie_word_embeddings")?.unwrap_or(tie_default);

        Ok(ModelConfig {
            family,
            model_type: model_type.to_string(),
            vocab_size,
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            d_head,
            d_mlp,
            norm,
            norm_eps,
            activation,
            gated_mlp: family != Family::Gpt2,
            positions,
            layer_windows,
            qkv_bias,
            proj_bias: family == Family::Gpt2,
            qk_norm: matches!(family, Family::Qwen3 | Family::Gemma3),
            sandwich_norms: matches!(family, Family::Gemma2 | Family::Gemma3),
            attn_softcap,
            final_softcap,
            attn_scale,
            embed_scale: family.is_gemma().then(|| (d_model as f64).sqrt()),
            tie_embeddings,
            max_position_embeddings,
            bos_token_id: f.token_id("bos_token_id"),
            eos_token_id: f.token_id("eos_token_id"),
            pad_token_id: f.token_id("pad_token_id"),
        })
    }

    pub fn positional_scheme(&self) -> &'static str {
        match &self.positions {
            Positions::Learned { .. } => "learned",
            Positions::Rotary { .. } => "rotary",
        }
    }

    /// Parameter count of the weights the decoder holds (tied embeddings counted once).
    pub fn parameter_count(&self) -> usize {
        let (d, v, m) = (self.d_model, self.vocab_size, self.d_mlp);
        let q = self.n_heads * self.d_head;
        let kv = self.n_kv_heads * self.d_head;
        let norm_params = if self.norm == NormKind::LayerNorm {
            2 * d
        } else {
            d
        };
        let mut block = d * (q + 2 * kv) + q * d + if self.gated_mlp { 3 * d * m } else { 2 * d * m };
        block += norm_params * if self.sandwich_norms { 4 } else { 2 };
        if self.qkv_bias {
            block += q + 2 * kv;
        }
        if self.proj_bias {
            block += d + m + d;
        }
        if self.qk_norm {
            block += 2 * self.d_head;
        }
        let mut total = self.n_layers * block + v * d + norm_params;
        if !self.tie_embeddings {
            total += v * d;
        }
        if let Positions::Learned { n_ctx } = self.positions {
            total += n_ctx * d;
        }
        total
    }
}

/// The rope parameters of one attention type: v5 `rope_parameters` (flat, or keyed by layer
/// type for Gemma 3) first, then the classic top-level keys.
fn rotary_positions(f: &Fields, family: Family, d_head: usize) -> Result<Positions> {
    let rotary_dim = |params: Option<&Value>| -> Result<usize> {
        let factor = params
            .and_then(|p| p.get("partial_rotary_factor"))
            .and_then(Value::as_f64)
            .map(Ok)
            .or_else(|| f.f64_opt("partial_rotary_factor").transpose())
            .transpose()?
            .unwrap_or(1.0);
        Ok(((d_head as f64) * factor).round() as usize)
    };
    let classic_scaling = f.get("rope_scaling");
    let params = f.get("rope_parameters");
    let per_type =
        params.filter(|p| p.get("full_attention").is_some() || p.get("sliding_attention").is_some());

    let global_params = per_type.map(|p| p.get("full_attention")).unwrap_or(params);
    let global = Rope {
        theta: rope_theta(global_params, f.f64_opt("rope_theta")?, 10_000.0)?,
        scaling: rope_scaling(global_params.or(classic_scaling))?,
        rotary_dim: rotary_dim(global_params)?,
    };
    let local = if family == Family::Gemma3 {
        let local_params = per_type.and_then(|p| p.get("sliding_attention"));
        Some(Rope {
            theta: rope_theta(local_params, f.f64_opt("rope_local_base_freq")?, 10_000.0)?,
            scaling: match local_params {
                Some(p) => rope_scaling(Some(p))?,
                None => RopeScaling::None,
            },
            rotary_dim: rotary_dim(local_params)?,
        })
    } else {
        None
    };
    Ok(Positions::Rotary { global, local })
}

fn rope_theta(params: Option<&Value>, classic: Option<f64>, default: f64) -> Result<f64> {
    match params.and_then(|p| p.get("rope_theta")) {
        Some(v) => v.as_f64().ok_or_else(|| {
            ModelError::config(
                "rope_parameters.rope_theta",
                format!("expected a number, found {v}"),
            )
        }),
        None => Ok(classic.unwrap_or(default)),
    }
}

fn rope_scaling(params: Option<&Value>) -> Result<RopeScaling> {
    let Some(p) = params.filter(|p| p.is_object()) else {
        return Ok(RopeScaling::None);
    };
    let kind = p
        .get("rope_type")
        .or_else(|| p.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let num = |key: &str| -> Result<f64> {
        p.get(key).and_then(Value::as_f64).ok_or_else(|| {
            ModelError::config(
                &format!("rope_scaling.{key}"),
                format!("missing for rope type '{kind}'"),
            )
        })
    };
    Ok(match kind {
        "default" => RopeScaling::None,
        "linear" => RopeScaling::Linear {
            factor: num("factor")?,
        },
        "llama3" => RopeScaling::Llama3 {
            factor: num("factor")?,
            low_freq_factor: num("low_freq_factor")?,
            high_freq_factor: num("high_freq_factor")?,
            original_max_position_embeddings: num("original_max_position_embeddings")?,
        },
        other => {
            return Err(ModelError::config(
                "rope_scaling.rope_type",
                format!("rope type '{other}' is not supported (default, linear, llama3)"),
            ))
        }
    })
}

/// Sliding windows per layer: v5 `layer_types`, else each family's classic rule.
fn layer_windows(f: &Fields, family: Family, n_layers: usize) -> Result<Vec<Option<usize>>> {
    let window = f.usize_opt(&["sliding_window"])?;
    if let Some(types) = f.get("layer_types") {
        let types = types
            .as_array()
            .ok_or_else(|| ModelError::config("layer_types", "expected a list".to_string()))?;
        if types.len() != n_layers {
            return Err(ModelError::config(
                "layer_types",
                format!("has {} entries for {n_layers} layers", types.len()),
            ));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                Some("full_attention") => Ok(None),
                Some("sliding_attention") => window.map(Some).ok_or_else(|| {
                    ModelError::config(
                        "sliding_window",
                        "missing while layer_types has sliding_attention".to_string(),
                    )
                }),
                _ => Err(ModelError::config(
                    "layer_types",
                    format!("unknown layer type {t} (full_attention, sliding_attention)"),
                )),
            })
            .collect();
    }
    let every =
        |sliding: &dyn Fn(usize) -> bool| (0..n_layers).map(|l| window.filter(|_| sliding(l))).collect();
    Ok(match family {
        Family::Gemma2 => every(&|l| l % 2 == 0),
        Family::Gemma3 => {
            let pattern = f.usize_opt(&["sliding_window_pattern"])?.unwrap_or(6);
            if pattern == 0 {
                return Err(ModelError::config(
                    "sliding_window_pattern",
                    "must be at least 1".to_string(),
                ));
            }
            every(&|l| (l + 1) % pattern != 0)
        }
        Family::Mistral | Family::Phi3 => every(&|_| true),
        Family::Qwen2 | Family::Qwen3 => {
            let on = f.bool_opt("use_sliding_window")?.unwrap_or(false);
            let max_window_layers = f.usize_opt(&["max_window_layers"])?.unwrap_or(n_layers);
            every(&|l| on && l >= max_window_layers)
        }
        _ => vec![None; n_layers],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_architecture_lists_supported() {
        let err = ModelConfig::from_hf_json(&json!({"model_type": "mamba"}))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("mamba") && err.contains("llama") && err.contains("gemma3_text"),
            "{err}"
        );
    }

    #[test]
    fn wrongly_typed_field_is_named() {
        let cfg = json!({"model_type": "llama", "hidden_size": "big", "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 8, "vocab_size": 10});
        let err = ModelConfig::from_hf_json(&cfg).unwrap_err().to_string();
        assert!(err.contains("hidden_size") && err.contains("integer"), "{err}");
    }

    #[test]
    fn missing_field_is_named() {
        let cfg = json!({"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10});
        let err = ModelConfig::from_hf_json(&cfg).unwrap_err().to_string();
        assert!(
            err.contains("intermediate_size") && err.contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn gemma3_classic_and_v5_layouts_agree() {
        let common = json!({"model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 6,
            "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "intermediate_size": 128,
            "vocab_size": 100, "sliding_window": 4, "query_pre_attn_scalar": 16});
        let mut classic = common.clone();
        classic["rope_theta"] = json!(1_000_000.0);
        classic["rope_local_base_freq"] = json!(10_000.0);
        classic["sliding_window_pattern"] = json!(6);
        let mut v5 = common;
        v5["rope_parameters"] = json!({"full_attention": {"rope_type": "default", "rope_theta": 1_000_000.0},
            "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0}});
        v5["layer_types"] = json!([
            "sliding_attention",
            "sliding_attention",
            "sliding_attention",
            "sliding_attention",
            "sliding_attention",
            "full_attention"
        ]);
        let a = ModelConfig::from_hf_json(&classic).unwrap();
        let b = ModelConfig::from_hf_json(&v5).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.layer_windows,
            vec![Some(4), Some(4), Some(4), Some(4), Some(4), None]
        );
        let Positions::Rotary { global, local } = &a.positions else {
            panic!("rotary expected")
        };
        assert_eq!(global.theta, 1_000_000.0);
        assert_eq!(local.as_ref().map(|r| r.theta), Some(10_000.0));
    }

    #[test]
    fn llama3_scaling_classic_layout() {
        let cfg = json!({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128, "vocab_size": 100,
            "rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}});
        let c = ModelConfig::from_hf_json(&cfg).unwrap();
        let Positions::Rotary { global, .. } = c.positions else {
            panic!("rotary expected")
        };
        assert!(matches!(global.scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
        assert_eq!(global.theta, 500000.0);
    }
}
