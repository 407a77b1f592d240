//! Bad input gets a clear error naming the file, field or item, and exit code 1 (2 for a bad
//! flag value, which the argument parser rejects) — never a panic.

mod common;

use common::{fixture_model, repo_root, scratch, Scratch};
use std::path::Path;
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

/// `strata inspect <path>` fails with every fragment.
fn inspect_fails_with(path: &Path, fragments: &[&str]) {
    fails_with(&["inspect", path.to_str().unwrap()], fragments);
}

fn fixture_copy(family: &str, name: &str) -> Scratch {
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
    inspect_fails_with(&d, &["model.safetensors", "truncated"]);
    std::fs::write(d.join("model.safetensors"), &bytes[..4]).unwrap();
    inspect_fails_with(&d, &["model.safetensors", "truncated"]);
}

#[test]
fn safetensors_header_with_absurd_shape_fails_before_allocating() {
    let d = fixture_copy("llama", "absurd-st");
    let header = br#"{"model.embed_tokens.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,16]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 16]);
    std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    inspect_fails_with(&d, &["model.embed_tokens.weight", "does not match"]);
}

#[test]
fn unknown_safetensors_dtype() {
    let d = fixture_copy("llama", "dtype-st");
    let header = br#"{"model.embed_tokens.weight":{"dtype":"F7","shape":[2],"data_offsets":[0,2]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(&[0u8; 2]);
    std::fs::write(d.join("model.safetensors"), bytes).unwrap();
    inspect_fails_with(&d, &["unknown dtype 'F7'"]);
}

#[test]
fn truncated_gguf() {
    let src = repo_root().join("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(src.is_file(), "run `bash scripts/fetch-models.sh` first");
    let d = scratch("trunc-gguf");
    let path = d.join("cut.gguf");
    let bytes = std::fs::read(&src).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    inspect_fails_with(&path, &["cut.gguf", "truncated"]);
}

#[test]
fn config_missing_or_wrongly_typed_field() {
    let d = fixture_copy("llama", "cfg-missing");
    edit_config(&d, |j| {
        j.as_object_mut().unwrap().remove("intermediate_size");
    });
    inspect_fails_with(&d, &["config.json", "intermediate_size", "missing"]);
    let d = fixture_copy("llama", "cfg-type");
    edit_config(&d, |j| j["num_hidden_layers"] = "two".into());
    inspect_fails_with(&d, &["config.json", "num_hidden_layers", "integer"]);
}

#[test]
fn unsupported_architecture_lists_supported_ones() {
    let d = fixture_copy("llama", "cfg-arch");
    edit_config(&d, |j| j["model_type"] = "mamba".into());
    inspect_fails_with(&d, &["mamba", "gemma3_text", "phi3"]);
}

/// `strata inspect` lists the hook points this model has, per block once, and apart those that
/// exist only on request (split inputs).
#[test]
fn inspect_lists_the_models_hook_points() {
    let listed = |family: &str| {
        let (code, stdout, stderr) = strata(&["inspect", fixture_model(family).to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        let start = stdout.find("hook points").unwrap_or_else(|| panic!("{stdout}"));
        stdout[start..]
            .lines()
            .skip(1)
            .map(|l| l.trim().to_string())
            .collect::<Vec<_>>()
    };
    let llama = listed("llama");
    for name in [
        "hook_embed",
        "blocks.{l}.attn.hook_rot_q",
        "blocks.{l}.mlp.hook_pre_linear",
        "logits",
    ] {
        assert!(llama.iter().any(|l| l == name), "llama lacks {name}: {llama:?}");
    }
    assert!(!llama.iter().any(|l| l == "hook_pos_embed"));
    let on_request = llama
        .iter()
        .position(|l| l.starts_with("on request only"))
        .unwrap_or_else(|| panic!("no on-request section: {llama:?}"));
    for name in ["blocks.{l}.hook_q_input", "blocks.{l}.hook_mlp_in"] {
        let at = llama.iter().position(|l| l == name);
        assert!(at > Some(on_request), "{name} not listed on request: {llama:?}");
    }
    let gpt2 = listed("gpt2");
    assert!(gpt2.iter().any(|l| l == "hook_pos_embed"), "{gpt2:?}");
    assert!(!gpt2
        .iter()
        .any(|l| l.contains("hook_rot_") || l.contains("hook_pre_linear")));
}

#[test]
fn unknown_hook_suggests_names() {
    let m = fixture_model("llama");
    let run_with_hook = |hook: &str, fragments: &[&str]| {
        fails_with(
            &[
                "run",
                m.to_str().unwrap(),
                "--prompt",
                "The king",
                "--hooks",
                hook,
            ],
            fragments,
        )
    };
    run_with_hook(
        "blocks.0.hook_resid_psot",
        &[
            "blocks.0.hook_resid_psot",
            "did you mean",
            "blocks.0.hook_resid_post",
        ],
    );
    // A hook this model lacks is an error too, not an empty selection.
    run_with_hook(
        "hook_pos_embed",
        &["hook_pos_embed", "no learned position embeddings"],
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
    let out = scratch("save").child("acts.safetensors");
    let (code, stdout, stderr) = strata(&[
        "run",
        m.to_str().unwrap(),
        "--prompt",
        "The teacher reads a story",
        "--hooks",
        "blocks.*.hook_resid_post",
        "blocks.1.attn.hook_pattern",
        "blocks.*.hook_q_input",
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
            "blocks.0.hook_q_input",
            "blocks.0.hook_resid_post",
            "blocks.1.attn.hook_pattern",
            "blocks.1.hook_q_input",
            "blocks.1.hook_resid_post",
            "input_ids",
            "logits"
        ]
    );
    assert_eq!(saved["blocks.1.attn.hook_pattern"].dims(), &[1, 4, 10, 10]);
    // split inputs, by a pattern that names them (they exist only on request): a copy per query head
    assert_eq!(&saved["blocks.0.hook_q_input"].dims()[..3], &[1, 10, 4]);
}

// ---- GGUF headers that lie ---------------------------------------------------------------------

const TINY_TENSOR: &str = "token_embd.weight";

/// Writes a tiny llama GGUF (complete metadata, one [4, 8] F32 tensor), applies `corrupt` to its
/// bytes, and returns the file's path.
fn corrupt_gguf(name: &str, corrupt: impl Fn(&mut Vec<u8>, usize)) -> Scratch {
    use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
    use gguf_file::Value as V;
    let md = [
        ("general.architecture", V::String("llama".into())),
        ("llama.block_count", V::U32(1)),
        ("llama.embedding_length", V::U32(8)),
        ("llama.attention.head_count", V::U32(2)),
        ("llama.feed_forward_length", V::U32(16)),
        ("llama.context_length", V::U32(32)),
        ("llama.vocab_size", V::U32(4)),
    ];
    let md: Vec<(&str, &V)> = md.iter().map(|(k, v)| (*k, v)).collect();
    let t = candle_core::Tensor::zeros((4, 8), candle_core::DType::F32, &candle_core::Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, GgmlDType::F32).unwrap();
    let mut bytes = Vec::new();
    gguf_file::write(&mut std::io::Cursor::new(&mut bytes), &md, &[(TINY_TENSOR, &q)]).unwrap();
    // The tensor's info record follows its name: n_dims (u32), dims (u64 each), type (u32),
    // data offset (u64).
    let info = bytes
        .windows(TINY_TENSOR.len())
        .position(|w| w == TINY_TENSOR.as_bytes())
        .unwrap()
        + TINY_TENSOR.len();
    corrupt(&mut bytes, info);
    let path = scratch(name).child(format!("{name}.gguf"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn put_u32(bytes: &mut [u8], at: usize, v: u32) {
    bytes[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(bytes: &mut [u8], at: usize, v: u64) {
    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

// Offsets in a tensor's info record, counted from the end of its name.
const N_DIMS: usize = 0;
const DIM0: usize = 4;
const TYPE: usize = 4 + 2 * 8;
const OFFSET: usize = TYPE + 4;

#[test]
fn gguf_tensor_data_beyond_end_of_file() {
    let path = corrupt_gguf("beyond-eof", |b, info| put_u64(b, info + OFFSET, 1 << 30));
    inspect_fails_with(
        &path,
        &[
            "beyond-eof.gguf",
            "truncated",
            TINY_TENSOR,
            "bytes long",
            "download",
        ],
    );
}

#[test]
fn gguf_unknown_tensor_type() {
    let path = corrupt_gguf("bad-type", |b, info| put_u32(b, info + TYPE, 99));
    inspect_fails_with(
        &path,
        &["bad-type.gguf", TINY_TENSOR, "type 99", "Q4_K", "re-quantize"],
    );
}

#[test]
fn gguf_absurd_counts_fail_before_allocating() {
    // tensor count: bytes 8..16 of a GGUF v3 header
    let path = corrupt_gguf("tensor-count", |b, _| put_u64(b, 8, u64::MAX / 2));
    inspect_fails_with(&path, &["tensor-count.gguf", "tensor_count", "corrupt"]);
    let path = corrupt_gguf("n-dims", |b, info| put_u32(b, info + N_DIMS, u32::MAX));
    inspect_fails_with(&path, &["n-dims.gguf", TINY_TENSOR, "dimensions", "corrupt"]);
    let path = corrupt_gguf("huge-dim", |b, info| put_u64(b, info + DIM0, u64::MAX / 2));
    inspect_fails_with(
        &path,
        &[
            "huge-dim.gguf",
            TINY_TENSOR,
            "more elements than can be addressed",
            "re-download",
        ],
    );
    let path = corrupt_gguf("big-dim", |b, info| put_u64(b, info + DIM0, 1 << 40));
    inspect_fails_with(&path, &["big-dim.gguf", TINY_TENSOR, "truncated"]);
}

// ---- checkpoint directories ------------------------------------------------------------------

#[test]
fn sharded_index_naming_a_missing_shard() {
    let d = fixture_copy("llama", "missing-shard");
    std::fs::rename(
        d.join("model.safetensors"),
        d.join("model-00001-of-00002.safetensors"),
    )
    .unwrap();
    let index = serde_json::json!({"weight_map": {
        "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
        "lm_head.weight": "model-00002-of-00002.safetensors",
    }});
    std::fs::write(d.join("model.safetensors.index.json"), index.to_string()).unwrap();
    inspect_fails_with(
        &d,
        &[
            "model.safetensors.index.json",
            "model-00002-of-00002.safetensors",
            "missing",
            "download",
        ],
    );
}

#[test]
fn pickle_weights_are_refused_with_conversion_advice() {
    let d = fixture_copy("llama", "pickle");
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    std::fs::write(d.join("pytorch_model.bin"), b"\x80\x02not really a pickle").unwrap();
    inspect_fails_with(
        &d,
        &["pytorch_model.bin", "never unpickles", "safe_serialization=True"],
    );
}

/// Rewrites the fixture copy's weights through `edit(name, tensor)`.
fn edit_weights(dir: &Path, edit: impl Fn(&str, candle_core::Tensor) -> candle_core::Tensor) {
    let path = dir.join("model.safetensors");
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    let edited: std::collections::HashMap<String, candle_core::Tensor> = tensors
        .into_iter()
        .map(|(n, t)| (n.clone(), edit(&n, t)))
        .collect();
    candle_core::safetensors::save(&edited, &path).unwrap();
}

#[test]
fn tokenizer_larger_than_the_embedding_matrix() {
    let d = fixture_copy("llama", "vocab");
    edit_config(&d, |j| j["vocab_size"] = 100.into());
    edit_weights(&d, |n, t| {
        if n.contains("embed_tokens") || n.contains("lm_head") {
            t.narrow(0, 0, 100).unwrap()
        } else {
            t
        }
    });
    inspect_fails_with(
        &d,
        &[
            "tokenizer.json",
            "384 tokens",
            "100 rows",
            "does not belong to these weights",
            "use the tokenizer.json",
        ],
    );
}

// ---- prompts, targets and probe files -----------------------------------------------------------

#[test]
fn patch_prompts_of_different_token_length_show_both_tokenizations() {
    let m = fixture_model("llama");
    fails_with(
        &[
            "patch",
            m.to_str().unwrap(),
            "--prompt",
            "The king reads",
            "--corrupted",
            "The teacher reads",
            "--target",
            " a",
        ],
        &[
            "same number of tokens",
            r#"clean     (4 tokens): "The" " king" " read" "s""#,
            r#"corrupted (6 tokens): "The" " tea" "c" "her" " read" "s""#,
        ],
    );
}

/// A batch size that is neither a positive count nor `auto` is a usage error (clap's exit code
/// 2) that says what the flag takes.
#[test]
fn bad_batch_size_says_what_the_flag_takes() {
    let m = fixture_model("llama");
    for bad in ["0", "lots"] {
        let (code, _, stderr) = strata(&[
            "patch",
            m.to_str().unwrap(),
            "--prompt",
            "The cat",
            "--max-batch",
            bad,
        ]);
        assert_eq!(code, 2, "{stderr}");
        for f in ["--max-batch", &format!("'{bad}'"), "positive number", "'auto'"] {
            assert!(stderr.contains(f), "stderr lacks {f:?}:\n{stderr}");
        }
    }
}

/// There is no flag taking a multi-token target's first token: the target must be one token.
#[test]
fn multi_token_target_is_refused_with_its_tokens() {
    let m = fixture_model("llama");
    fails_with(
        &[
            "lens",
            m.to_str().unwrap(),
            "--prompt",
            "The king reads",
            "--target",
            " teacher",
        ],
        &[
            r#"target " teacher" is 3 tokens (" tea" "c" "her")"#,
            "choose a single-token target",
        ],
    );
}

#[test]
fn malformed_probe_file_names_file_line_and_field() {
    let file = scratch("probe").child("mine.jsonl");
    std::fs::write(
        &file,
        "# a comment\n{\"id\": \"a\", \"prompt\": \"The king\", \"target\": \" a\"}\n\
         {\"id\": \"b\", \"prompt\": \"The king\", \"target\": 7}\n",
    )
    .unwrap();
    let m = fixture_model("llama");
    let probe = ["lens", m.to_str().unwrap(), "--probe", file.to_str().unwrap()];
    fails_with(
        &probe,
        &[
            "mine.jsonl:3",
            "field 'target'",
            "expected a string, found a number",
        ],
    );
    std::fs::write(
        &file,
        "{\"id\": \"a\", \"prompt\": \"The king\", \"targte\": \" a\"}\n",
    )
    .unwrap();
    fails_with(
        &probe,
        &["mine.jsonl:1", "unknown field 'targte'", "expected one of"],
    );
}

// ---- numerics ----------------------------------------------------------------------------------

#[test]
fn nan_weights_name_the_first_non_finite_hook_point() {
    let d = fixture_copy("llama", "nan");
    edit_weights(&d, |n, t| {
        if n == "model.layers.1.mlp.down_proj.weight" {
            t.affine(0.0, f64::NAN).unwrap()
        } else {
            t
        }
    });
    fails_with(
        &["run", d.to_str().unwrap(), "--prompt", "The king"],
        &["non-finite", "blocks.1.hook_mlp_out", "check the weights"],
    );
}
