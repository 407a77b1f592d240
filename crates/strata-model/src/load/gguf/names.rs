//! llama.cpp tensor names -> transformers parameter names, and the per-tensor conversions that
//! undo llama.cpp's storage conventions (the ones transformers' GGUF tensor processors undo).
//!
//! The name table is gguf-py's `TensorNameMap` read backwards, restricted to the parameters that
//! transformers' model classes for these architectures have.
use candle_core::{Result, Tensor};

/// transformers' name for a llama.cpp tensor name, `None` if transformers has no such parameter.
pub fn hf_name(arch: &str, gguf_name: &str, n_layers: usize) -> Option<String> {
    let top = match gguf_name {
        "token_embd.weight" => Some("model.embed_tokens.weight"),
        "output_norm.weight" => Some("model.norm.weight"),
        "output_norm.bias" => Some("model.norm.bias"),
        "output.weight" => Some("lm_head.weight"),
        "output.bias" => Some("lm_head.bias"),
        _ => None,
    };
    if let Some(t) = top {
        return Some(t.to_string());
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    if layer >= n_layers {
        return None;
    }
    let (base, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let gemma = matches!(arch, "gemma2" | "gemma3");
    let module = match base {
        "attn_norm" => "input_layernorm",
        "ffn_norm" if gemma => "pre_feedforward_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "post_attention_norm" if gemma => "post_attention_layernorm",
        "post_ffw_norm" if gemma => "post_feedforward_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_qkv" if arch == "phi3" => "self_attn.qkv_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" if matches!(arch, "gemma3" | "qwen3") => "self_attn.q_norm",
        "attn_k_norm" if matches!(arch, "gemma3" | "qwen3") => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" if arch == "phi3" => "mlp.gate_up_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{module}.{suffix}"))
}

/// Converts a dequantized (f32, row-major, HF-shaped) tensor from llama.cpp's convention to
/// transformers': the llama q/k row permutation reversed, Gemma's `1 + w` norms back to `w`.
pub fn to_hf(arch: &str, gguf_name: &str, t: Tensor, n_heads: usize, n_kv_heads: usize) -> Result<Tensor> {
    match arch {
        // transformers' LlamaTensorProcessor (only for the `llama` architecture)
        "llama" if gguf_name.contains(".attn_q.") && n_heads > 0 => reverse_permute(&t, n_heads),
        "llama" if gguf_name.contains(".attn_k.") && n_kv_heads > 0 => reverse_permute(&t, n_kv_heads),
        // transformers' Gemma2TensorProcessor (gemma2 and gemma3)
        "gemma2" | "gemma3" if gguf_name.contains("norm.weight") => t.affine(1.0, -1.0),
        _ => Ok(t),
    }
}

/// Undoes llama.cpp's `permute(w, n_head)`: rows `[h, 2, d/2]` were reordered to `[h, d/2, 2]`.
/// Same as transformers' `_reverse_permute_weights`: `w.reshape(h, d/2, 2, ...).swapaxes(1, 2)`.
pub fn reverse_permute(t: &Tensor, n_head: usize) -> Result<Tensor> {
    let dims = t.dims().to_vec();
    let rows = dims[0];
    if !rows.is_multiple_of(2 * n_head) {
        candle_core::bail!("cannot un-permute {rows} rows for {n_head} heads");
    }
    let half = rows / n_head / 2;
    let rest: usize = dims[1..].iter().product();
    t.reshape((n_head, half, 2, rest))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape(dims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn names() {
        assert_eq!(
            hf_name("llama", "blk.3.attn_q.weight", 30).unwrap(),
            "model.layers.3.self_attn.q_proj.weight"
        );
        assert_eq!(
            hf_name("llama", "blk.3.ffn_norm.weight", 30).unwrap(),
            "model.layers.3.post_attention_layernorm.weight"
        );
        assert_eq!(
            hf_name("gemma3", "blk.3.ffn_norm.weight", 18).unwrap(),
            "model.layers.3.pre_feedforward_layernorm.weight"
        );
        assert_eq!(
            hf_name("gemma3", "blk.0.post_ffw_norm.weight", 18).unwrap(),
            "model.layers.0.post_feedforward_layernorm.weight"
        );
        assert_eq!(
            hf_name("gemma3", "blk.0.attn_k_norm.weight", 18).unwrap(),
            "model.layers.0.self_attn.k_norm.weight"
        );
        assert_eq!(
            hf_name("phi3", "blk.0.ffn_up.weight", 2).unwrap(),
            "model.layers.0.mlp.gate_up_proj.weight"
        );
        assert_eq!(
            hf_name("qwen2", "blk.1.attn_q.bias", 2).unwrap(),
            "model.layers.1.self_attn.q_proj.bias"
        );
        assert_eq!(hf_name("llama", "output.weight", 2).unwrap(), "lm_head.weight");
        assert_eq!(hf_name("llama", "rope_freqs.weight", 2), None);
        assert_eq!(hf_name("llama", "blk.5.attn_q.weight", 2), None);
    }

    #[test]
    fn permute_roundtrip() -> Result<()> {
        // llama.cpp's permute: w.reshape(h, 2, d/2, in).swapaxes(1, 2)
        let (h, d, inp) = (3usize, 4usize, 5usize);
        let w = Tensor::arange(0f32, (h * d * inp) as f32, &Device::Cpu)?.reshape((h * d, inp))?;
        let permuted = w
            .reshape((h, 2, d / 2, inp))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((h * d, inp))?;
        let back = reverse_permute(&permuted, h)?;
        assert_eq!(back.to_vec2::<f32>()?, w.to_vec2::<f32>()?);
        Ok(())
    }
}
