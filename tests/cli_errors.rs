//! Bad input gets a clear error naming the file, field or item, and exit code 1 — never a panic.

mod common;

use common::{fixture_model, repo_root};
use std::path::{Path, PathBuf};
use std::process::Command;

fn strata(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "panic for {args:?}: {stderr}");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    )
}

/// Asserts exit code 1 and that stderr contains every fragment.
fn fails_with(args: &[&str], fragments: &[&str]) {
    let (code, _, stderr) = strata(args);
    assert_eq!(code, 1, "{args:?}: {stderr}");
    for f in fragments {
        assert!(stderr.contains(f), "{args:?}: stderr lacks {f:?}:\n{stderr}");
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("strata-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn fixture_copy(family: &str, name: &str) -> PathBuf {
    let d = scratch(name);
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(fixture_model(family).join(f), d.join(f)).unwrap();
    }
    d
}

fn edit_config(dir: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(path, json.to_string()).unwrap();
}

#[test]
fn missing_model_file() {
    fails_with(
        &["inspect", "/nonexistent/model.gguf"],
        &["/nonexistent/model.gguf"],
    );
    fails_with(
        &["inspect", "./no-such-dir"],
        &["no-such-dir", "no such file or directory"],
    );
}

#[test]
fn truncated_safetensors() {
    let d = fixture_copy("llama", "trunc-st");
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    std::fs::write(d.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["model.safetensors", "truncated"],
    );
    std::fs::write(d.join("model.safetensors"), &bytes[..4]).unwrap();
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["model.safetensors", "truncated"],
    );
}

#[test]
fn safetensors_header_with_absurd_shape_fails_before_allocating() {
    let d = fixture_copy("llama", "absurd-st");
    let header = br#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["model.embed_tokens.weight", "does not match"],
    );
}

#[test]
fn unknown_safetensors_dtype() {
    let d = fixture_copy("llama", "dtype-st");
    let header = br#"{"model.embed_tokens.weight":{"dtype":"F7","shape":[2],"data_offsets":[0,2]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 2]);
    std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    fails_with(&["inspect", d.to_str().unwrap()], &["unknown dtype 'F7'"]);
}

#[test]
fn truncated_gguf() {
    let src = repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(src.is_file(), "run `bash scripts/fetch-models.sh` first");
    let d = scratch("trunc-gguf");
    let path = d.join("cut.gguf");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    fails_with(&["inspect", path.to_str().unwrap()], &["cut.gguf", "truncated"]);
}

#[test]
fn config_missing_or_wrongly_typed_field() {
    let d = fixture_copy("llama", "cfg-missing");
    edit_config(&d, |j| {
        j.as_object_mut().unwrap().remove("intermediate_size");
    });
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["config.json", "intermediate_size", "missing"],
    );
    let d = fixture_copy("llama", "cfg-type");
    edit_config(&d, |j| j["num_hidden_layers"] = "two".into());
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["config.json", "num_hidden_layers", "integer"],
    );
}

#[test]
fn unsupported_architecture_lists_supported_ones() {
    let d = fixture_copy("llama", "cfg-arch");
    edit_config(&d, |j| j["model_type"] = "mamba".into());
    fails_with(
        &["inspect", d.to_str().unwrap()],
        &["mamba", "gemma3_text", "phi3"],
    );
}

#[test]
fn unknown_hook_suggests_names() {
    let m = fixture_model("llama");
    fails_with(
        &[
            "run",
            m.to_str().unwrap(),
            "--prompt",
            "The king",
            "--hooks",
            "blocks.0.hook_resid_psot",
        ],
        &[
            "blocks.0.hook_resid_psot",
            "did you mean",
            "blocks.0.hook_resid_post",
        ],
    );
}

#[test]
fn empty_and_too_long_prompts() {
    let m = fixture_model("gpt2");
    fails_with(&["run", m.to_str().unwrap(), "--prompt", ""], &["empty"]);
    let long = vec!["7"; 80].join(",");
    fails_with(
        &["run", m.to_str().unwrap(), "--tokens", &long],
        &["80 tokens", "context length of 64"],
    );
    fails_with(
        &["run", m.to_str().unwrap(), "--tokens", "1,99999"],
        &["99999", "outside the vocabulary"],
    );
    fails_with(
        &["run", m.to_str().unwrap(), "--tokens", "1,x"],
        &["'x' is not a token id"],
    );
}

#[test]
fn run_saves_named_activations() {
    let m = fixture_model("llama");
    let out = scratch("save").join("acts.safetensors");
    let (code, stdout, stderr) = strata(&[
        "run",
        m.to_str().unwrap(),
        "--prompt",
        "The teacher reads a story",
        "--hooks",
        "blocks.*.hook_resid_post",
        "blocks.1.attn.hook_pattern",
        "--save",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("saved"), "{stdout}");
    let saved = candle_core::safetensors::load(&out, &candle_core::Device::Cpu).unwrap();
    let mut names: Vec<_> = saved.keys().cloned().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "blocks.0.hook_resid_post",
            "blocks.1.attn.hook_pattern",
            "blocks.1.hook_resid_post",
            "input_ids",
            "logits"
        ]
    );
    assert_eq!(saved["blocks.1.attn.hook_pattern"].dims(), &[1, 4, 10, 10]);
}
