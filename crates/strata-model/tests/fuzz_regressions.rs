//! Inputs the fuzzers (fuzz/, see fuzz/README.md) or their review found to panic or to allocate
//! without bound; each must now fail with an error naming what is wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use strata_model::load::gguf::{config::hf_config, read_gguf_header, GgufValue};
use strata_model::ModelConfig;

fn regression(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/fuzz-regressions")
        .join(name)
}

/// gguf_header fuzzer: a tensor whose dimensions multiply past usize overflowed in
/// `GgufHeader::tensor_bytes` (candle's `Shape::elem_count` does not check).
#[test]
fn gguf_tensor_shape_whose_product_overflows_is_an_error() {
    let path = regression("gguf-shape-overflow.gguf");
    let header = read_gguf_header(&path).unwrap();
    let e = header.entries().unwrap_err().to_string();
    assert!(
        e.contains("gguf-shape-overflow.gguf") && e.contains("than can be addressed"),
        "{e}"
    );
    // (the file's first tensor in file order is also cut short: either error will do, no panic)
    assert!(header.check_sizes().is_err());
}

/// Review of the gguf_header target: a Gemma `block_count` of 2^40 built a per-layer list of that
/// length before anything else failed.
#[test]
fn gguf_absurd_block_count_is_refused_before_allocating() {
    let mut md: HashMap<String, GgufValue> = HashMap::new();
    let s = |v: &str| GgufValue::String(v.to_string());
    md.insert("general.architecture".into(), s("gemma2"));
    md.insert("gemma2.block_count".into(), GgufValue::U64(1 << 40));
    md.insert("gemma2.embedding_length".into(), GgufValue::U32(64));
    md.insert("gemma2.attention.head_count".into(), GgufValue::U32(4));
    md.insert("gemma2.feed_forward_length".into(), GgufValue::U32(128));
    md.insert("gemma2.context_length".into(), GgufValue::U32(128));
    md.insert("gemma2.vocab_size".into(), GgufValue::U32(100));
    let e = hf_config(&md, &[], Path::new("x.gguf")).unwrap_err().to_string();
    assert!(
        e.contains("gemma2.block_count") && e.contains("not plausible"),
        "{e}"
    );
}

fn config(extra: serde_json::Value) -> serde_json::Value {
    let mut c = serde_json::json!({
        "model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "intermediate_size": 128, "vocab_size": 100, "sliding_window": 4
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// Review of the safetensors_config target: config.json's layer count sized per-layer lists.
#[test]
fn config_absurd_layer_count_is_refused_before_allocating() {
    let e = ModelConfig::from_hf_json(&config(serde_json::json!({"num_hidden_layers": 1u64 << 40})))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("num_hidden_layers") && e.contains("not plausible"),
        "{e}"
    );
}

/// Review of the safetensors_config target: Gemma 3's `sliding_window_pattern: 0` divided by zero.
#[test]
fn config_sliding_window_pattern_zero_is_an_error() {
    let e = ModelConfig::from_hf_json(&config(serde_json::json!({"sliding_window_pattern": 0})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("sliding_window_pattern"), "{e}");
}
