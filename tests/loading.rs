//! Loading paths on fixtures the project generates: sharded safetensors, the hub cache offline,
//! dtypes, and refusals (pickle weights, missing shards, bad configs).

mod common;

use candle_core::{DType, Tensor};
use common::{fixture_model, max_abs, max_abs_diff, scratch};
use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use strata_model::{LoadOptions, Model, NoHooks, TokenBatch};

fn logits(model: &Model) -> Tensor {
    let ids = model
        .tokenizer()
        .unwrap()
        .encode("The teacher reads a story")
        .unwrap();
    model
        .decoder
        .forward(&TokenBatch::single(ids).unwrap(), &mut NoHooks)
        .unwrap()
}

fn copy_fixture(family: &str, to: &Path) {
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_model(family).join(f), to.join(f)).unwrap();
    }
}

/// Splits a checkpoint in two shards with an index, as large hub repos are stored.
fn shard(dir: &Path) {
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut weight_map = serde_json::Map::new();
    for (file, part) in [
        ("model-00001-of-00002.safetensors", a),
        ("model-00002-of-00002.safetensors", b),
    ] {
        let sub: HashMap<String, Tensor> = part
            .iter()
            .map(|n| (n.to_string(), tensors[*n].clone()))
            .collect();
        candle_core::safetensors::save(&sub, dir.join(file)).unwrap();
        for n in part {
            weight_map.insert(n.to_string(), file.into());
        }
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    std::fs::write(dir.join("model.safetensors.index.json"), index.to_string()).unwrap();
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
}

#[test]
fn sharded_checkpoint_equals_single_file() {
    let dir = scratch("sharded");
    copy_fixture("qwen2", &dir);
    shard(&dir);
    let sharded = Model::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let single = Model::load(fixture_model("qwen2").to_str().unwrap(), &LoadOptions::default()).unwrap();
    assert_eq!(max_abs_diff(&logits(&sharded), &logits(&single)), 0.0);

    std::fs::remove_file(dir.join("model-00002-of-00002.safetensors")).unwrap();
    let err = Model::load(dir.to_str().unwrap(), &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("model-00002-of-00002.safetensors") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn hub_repo_resolves_from_the_cache_offline() {
    let home = scratch("hf-home");
    let snapshot = home.join("hub/models--strata-fixtures--tiny-llama/snapshots/0123abcd");
    std::fs::create_dir_all(&snapshot).unwrap();
    copy_fixture("llama", &snapshot);
    std::fs::create_dir_all(home.join("hub/models--strata-fixtures--tiny-llama/refs")).unwrap();
    std::fs::write(
        home.join("hub/models--strata-fixtures--tiny-llama/refs/main"),
        "0123abcd",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["inspect", "strata-fixtures/tiny-llama", "--format", "csv"])
        .env("HF_HOME", &home)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("strata-fixtures/tiny-llama,LlamaForCausalLM"),
        "{stdout}"
    );

    let missing = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["inspect", "strata-fixtures/absent"])
        .env("HF_HOME", &home)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr.contains("HF_HUB_OFFLINE") && stderr.contains("strata-fixtures/absent"),
        "{stderr}"
    );
}

#[test]
fn half_precision_stays_close_to_f32() {
    // bf16 keeps 8 mantissa bits (relative step 2^-8 ≈ 4e-3), f16 keeps 11 (≈ 5e-4); errors
    // compound over the blocks, so we allow 5e-2 (bf16) and 1e-2 (f16) of the logit scale.
    let path = fixture_model("gemma2");
    let reference = logits(&Model::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap());
    for (dtype, tolerance) in [(DType::BF16, 5e-2), (DType::F16, 1e-2)] {
        let opts = LoadOptions {
            dtype,
            ..Default::default()
        };
        let got = logits(&Model::load(path.to_str().unwrap(), &opts).unwrap());
        assert_eq!(got.dtype(), dtype);
        let err = max_abs_diff(&got, &reference) / max_abs(&reference);
        assert!(err < tolerance, "{dtype:?}: relative error {err}");
    }
}

#[test]
fn pickle_weights_are_refused_with_conversion_advice() {
    let dir = scratch("pickle");
    std::fs::copy(
        fixture_model("llama").join("config.json"),
        dir.join("config.json"),
    )
    .unwrap();
    std::fs::write(dir.join("pytorch_model.bin"), b"\x80\x02not really a pickle").unwrap();
    let err = Model::load(dir.to_str().unwrap(), &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("pytorch_model.bin") && err.contains("safetensors"),
        "{err}"
    );
}

#[test]
fn tokenizer_larger_than_the_embedding_is_refused() {
    let dir = scratch("vocab");
    copy_fixture("llama", &dir);
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    config["vocab_size"] = 100.into();
    let tensors =
        candle_core::safetensors::load(dir.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    let shrunk: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(n, t)| {
            let t = if n.contains("embed_tokens") || n.contains("lm_head") {
                t.narrow(0, 0, 100).unwrap()
            } else {
                t
            };
            (n, t)
        })
        .collect();
    candle_core::safetensors::save(&shrunk, dir.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let err = Model::load(dir.to_str().unwrap(), &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tokenizer.json") && err.contains("384 tokens") && err.contains("100 rows"),
        "{err}"
    );
}
