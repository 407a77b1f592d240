//! The real GGUF models (models/, fetched by `scripts/fetch-models.sh`) against the transformers
//! references in tests/fixtures/real/ (written by `scripts/make-real-references.sh`):
//! tokenizer ids on the whole corpus, the HF config, every dequantized tensor; plus the errors for a
//! missing, truncated or unsupported file. A missing model file fails the test (never skipped).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use strata_model::load::gguf::{load_gguf, read_gguf_header, tokenizer_from_gguf_file, GgufError, GgufModel};
use strata_model::ModelConfig;

const SMOL: (&str, &str) = ("smollm2-135m-instruct-q4_1", "SmolLM2-135M-Instruct.Q4_1.gguf");
const GEMMA: (&str, &str) = ("gemma-3-270m-q4_k_m", "gemma-3-270m-q4_k_m.gguf");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_path(file: &str) -> PathBuf {
    let dir = std::env::var_os("STRATA_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models"));
    let path = dir.join(file);
    assert!(
        path.is_file(),
        "model file {} is missing: run scripts/fetch-models.sh (it downloads the models into models/)",
        path.display()
    );
    path
}

fn fixture(model: &str, file: &str) -> PathBuf {
    let p = root().join("tests/fixtures/real").join(model).join(file);
    assert!(
        p.is_file(),
        "reference {} is missing: run scripts/make-real-references.sh",
        p.display()
    );
    p
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn check_tokenizer((model, file): (&str, &str)) {
    let path = model_path(file);
    let t0 = std::time::Instant::now();
    let tok = tokenizer_from_gguf_file(&path).unwrap();
    let built = t0.elapsed();
    let lines = read_jsonl(&fixture(model, "tokenizer_ids.jsonl"));
    assert!(lines.len() >= 200, "corpus has {} strings", lines.len());
    let (mut agree, mut agree_plain) = (0, 0);
    let mut failures = Vec::new();
    for line in &lines {
        let text = line["text"].as_str().unwrap();
        let want = ids(&line["ids"]);
        let want_plain = ids(&line["ids_plain"]);
        let got = tok.encode(text, true).unwrap().get_ids().to_vec();
        let got_plain = tok.encode(text, false).unwrap().get_ids().to_vec();
        if got == want {
            agree += 1;
        } else {
            failures.push(format!("{text:?}: got {got:?}, transformers {want:?}"));
        }
        if got_plain == want_plain {
            agree_plain += 1;
        } else {
            failures.push(format!(
                "{text:?} (no special tokens): got {got_plain:?}, transformers {want_plain:?}"
            ));
        }
    }
    println!(
        "{model}: tokenizer built in {built:.2?}; {agree}/{n} identical with special tokens, {agree_plain}/{n} without",
        n = lines.len()
    );
    assert!(
        failures.is_empty(),
        "{model}: {} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn tokenizer_smollm2_matches_transformers() {
    check_tokenizer(SMOL);
}

#[test]
fn tokenizer_gemma3_matches_transformers() {
    check_tokenizer(GEMMA);
}

/// Every key transformers' config has that ours has too must agree (numbers to 1e-12 relative).
fn check_config((model, file): (&str, &str), ours: &Value) {
    let theirs: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(model, "hf_config.json")).unwrap()).unwrap();
    let keys = [
        "vocab_size",
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "max_position_embeddings",
        "rms_norm_eps",
        "tie_word_embeddings",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "unk_token_id",
        "model_type",
        "hidden_act",
        "hidden_activation",
        "rope_parameters",
        "layer_types",
        "sliding_window",
        "query_pre_attn_scalar",
        "final_logit_softcapping",
        "attn_logit_softcapping",
        "attention_bias",
        "mlp_bias",
    ];
    let mut compared = 0;
    for key in keys {
        let Some(t) = theirs.get(key) else { continue };
        let o = ours
            .get(key)
            .unwrap_or_else(|| panic!("{file}: our config lacks '{key}' (transformers: {t})"));
        assert!(
            json_close(o, t),
            "{file}: config '{key}': ours {o}, transformers {t}"
        );
        compared += 1;
    }
    assert!(compared >= 12, "only {compared} keys compared");
}

fn json_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= 1e-12 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_close(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

/// Names, shapes, sums and sampled values of every tensor against transformers' state dict.
fn check_tensors((model, _): (&str, &str), m: &GgufModel) {
    let refs: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(model, "tensors.json")).unwrap()).unwrap();
    let want = refs["tensors"].as_object().unwrap();
    let ours: BTreeSet<&str> = m.tensors.keys().map(|s| s.as_str()).collect();
    let theirs: BTreeSet<&str> = want.keys().map(|s| s.as_str()).collect();
    assert_eq!(
        ours, theirs,
        "{model}: tensor names differ from transformers' state dict"
    );
    let mut max_val_err = 0f64;
    for (name, r) in want {
        let t = &m.tensors[name];
        let shape: Vec<usize> = r["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(t.dims(), shape.as_slice(), "{model}: shape of {name}");
        let flat: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        let (mut sum, mut sq, mut abs) = (0f64, 0f64, 0f64);
        for &x in &flat {
            let x = x as f64;
            sum += x;
            sq += x * x;
            abs += x.abs();
        }
        for (got, key) in [(sum, "sum"), (sq, "sq_sum"), (abs, "abs_sum")] {
            let w = r[key].as_f64().unwrap();
            let tol = 1e-9 * r["abs_sum"].as_f64().unwrap().max(1.0) + 1e-6;
            assert!(
                (got - w).abs() <= tol.max(1e-7 * w.abs()),
                "{model}: {key} of {name}: {got} vs transformers {w}"
            );
        }
        for (i, v) in r["idx"]
            .as_array()
            .unwrap()
            .iter()
            .zip(r["val"].as_array().unwrap())
        {
            let (i, v) = (i.as_u64().unwrap() as usize, v.as_f64().unwrap());
            // as f32: serde_json's float parsing may be off by one f64 ulp, never by one f32 ulp
            let err = (flat[i] as f64 - v).abs();
            max_val_err = max_val_err.max(err);
            assert!(
                flat[i] == v as f32,
                "{model}: {name}[{i}] = {} vs transformers {v}",
                flat[i]
            );
        }
    }
    println!(
        "{model}: {} tensors match transformers' (sums; sampled values equal as f32, max |diff| {max_val_err:e})",
        want.len()
    );
}

/// Shapes against the config, as the decoder will read them.
fn check_shapes(m: &GgufModel) {
    let c = &m.config;
    let u = |k: &str| c[k].as_u64().unwrap_or_else(|| panic!("config lacks {k}")) as usize;
    let (v, d, l, h, kv, ff) = (
        u("vocab_size"),
        u("hidden_size"),
        u("num_hidden_layers"),
        u("num_attention_heads"),
        u("num_key_value_heads"),
        u("intermediate_size"),
    );
    let hd = c["head_dim"].as_u64().map(|x| x as usize).unwrap_or(d / h);
    let dims = |n: &str| {
        m.tensors
            .get(n)
            .unwrap_or_else(|| panic!("missing tensor {n}"))
            .dims()
            .to_vec()
    };
    assert_eq!(dims("model.embed_tokens.weight"), vec![v, d]);
    assert_eq!(dims("lm_head.weight"), vec![v, d]);
    assert_eq!(dims("model.norm.weight"), vec![d]);
    for i in 0..l {
        let p = format!("model.layers.{i}");
        assert_eq!(dims(&format!("{p}.self_attn.q_proj.weight")), vec![h * hd, d]);
        assert_eq!(dims(&format!("{p}.self_attn.k_proj.weight")), vec![kv * hd, d]);
        assert_eq!(dims(&format!("{p}.self_attn.v_proj.weight")), vec![kv * hd, d]);
        assert_eq!(dims(&format!("{p}.self_attn.o_proj.weight")), vec![d, h * hd]);
        assert_eq!(dims(&format!("{p}.mlp.gate_proj.weight")), vec![ff, d]);
        assert_eq!(dims(&format!("{p}.mlp.up_proj.weight")), vec![ff, d]);
        assert_eq!(dims(&format!("{p}.mlp.down_proj.weight")), vec![d, ff]);
        assert_eq!(dims(&format!("{p}.input_layernorm.weight")), vec![d]);
        assert_eq!(dims(&format!("{p}.post_attention_layernorm.weight")), vec![d]);
    }
    for t in m.tensors.values() {
        assert_eq!(t.dtype(), DType::F32);
    }
}

#[test]
fn smollm2_loads_like_transformers() {
    let path = model_path(SMOL.1);
    let t0 = std::time::Instant::now();
    let m = load_gguf(&path, DType::F32, &Device::Cpu).unwrap();
    println!("{}: loaded in {:.2?}", SMOL.0, t0.elapsed());
    assert_eq!(m.architecture, "llama");
    assert_eq!(m.config["model_type"], "llama");
    assert_eq!(m.config["architectures"][0], "LlamaForCausalLM");
    assert_eq!(m.config["num_hidden_layers"], 30);
    assert_eq!(m.config["tie_word_embeddings"], true);
    check_config(SMOL, &m.config);
    check_shapes(&m);
    check_tensors(SMOL, &m);
    let groups = m.quant_groups();
    assert!(
        groups.contains(&("model.embed_tokens.weight".into(), "Q8_0".into(), 1)),
        "{groups:?}"
    );
    assert!(
        groups.contains(&("model.layers.*.self_attn.q_proj.weight".into(), "Q4_1".into(), 30)),
        "{groups:?}"
    );
    // tied: lm_head is the embedding
    let e = &m.tensors["model.embed_tokens.weight"];
    let o = &m.tensors["lm_head.weight"];
    assert_eq!(
        e.narrow(0, 100, 1).unwrap().to_vec2::<f32>().unwrap(),
        o.narrow(0, 100, 1).unwrap().to_vec2::<f32>().unwrap()
    );
}

#[test]
fn gemma3_loads_like_transformers() {
    let path = model_path(GEMMA.1);
    let t0 = std::time::Instant::now();
    let m = load_gguf(&path, DType::F32, &Device::Cpu).unwrap();
    println!("{}: loaded in {:.2?}", GEMMA.0, t0.elapsed());
    assert_eq!(m.architecture, "gemma3");
    assert_eq!(m.config["model_type"], "gemma3_text");
    assert_eq!(m.config["architectures"][0], "Gemma3ForCausalLM");
    assert_eq!(m.config["num_hidden_layers"], 18);
    check_config(GEMMA, &m.config);
    let mc = ModelConfig::from_hf_json(&m.config).unwrap();
    let windows: Vec<Option<usize>> = (0..18)
        .map(|i| if (i + 1) % 6 == 0 { None } else { Some(512) })
        .collect();
    assert_eq!(mc.layer_windows, windows);
    assert!(mc.tie_embeddings && mc.qk_norm && mc.sandwich_norms);
    check_shapes(&m);
    for i in 0..18 {
        for n in [
            "pre_feedforward_layernorm",
            "post_feedforward_layernorm",
            "self_attn.q_norm",
            "self_attn.k_norm",
        ] {
            assert!(
                m.tensors.contains_key(&format!("model.layers.{i}.{n}.weight")),
                "layer {i} lacks {n}"
            );
        }
    }
    check_tensors(GEMMA, &m);
    let types: BTreeSet<&str> = m.quant_types.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, BTreeSet::from(["F32", "Q4_K", "Q5_0", "Q6_K", "Q8_0"]));
}

#[test]
fn dtype_and_header_only_reads() {
    let path = model_path(SMOL.1);
    let header = read_gguf_header(&path).unwrap();
    assert_eq!(header.architecture().unwrap(), "llama");
    assert_eq!(header.entries().unwrap().len(), 272);
    let m = load_gguf(&path, DType::BF16, &Device::Cpu).unwrap();
    assert!(m.tensors.values().all(|t| t.dtype() == DType::BF16));
}

// ---- errors -----------------------------------------------------------------------------------

/// A fresh folder in the temp dir, removed with its files when dropped.
fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-gguf-test-")
        .tempdir()
        .unwrap()
}

#[test]
fn missing_file_is_named() {
    let dir = tmp();
    let path = dir.path().join("does-not-exist.gguf");
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, GgufError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("does-not-exist.gguf") && msg.contains("no such GGUF file"),
        "{msg}"
    );
}

#[test]
fn truncated_file_is_named_before_reading_data() {
    let src = model_path(SMOL.1);
    let bytes = std::fs::read(&src).unwrap();
    // cut in the middle of the tensor data: the header is intact, the last tensors are not
    let dir = tmp();
    let path = dir.path().join("smol-truncated.gguf");
    std::fs::write(&path, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GgufError::Truncated { .. }), "{msg}");
    assert!(
        msg.contains("smol-truncated.gguf") && msg.contains("truncated") && msg.contains("tensor '"),
        "{msg}"
    );
    // cut inside the metadata: the header itself is unreadable
    std::fs::write(&path, &bytes[..4096]).unwrap();
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GgufError::Header { .. }), "{msg}");
    assert!(
        msg.contains("smol-truncated.gguf") && msg.contains("truncated"),
        "{msg}"
    );
    // not a GGUF file at all
    std::fs::write(&path, b"this is not a gguf file, just some text").unwrap();
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    assert!(matches!(err, GgufError::Header { .. }), "{err}");
}

/// Writes a tiny GGUF file with the given metadata and one F32 tensor.
fn write_tiny(path: &Path, md: &[(&str, gguf_file::Value)]) {
    let t = Tensor::zeros((4, 8), DType::F32, &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, GgmlDType::F32).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    let md: Vec<(&str, &gguf_file::Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut f, &md, &[("token_embd.weight", &q)]).unwrap();
}

#[test]
fn unknown_architecture_and_missing_key_are_named() {
    use gguf_file::Value as V;
    let dir = tmp();
    let path = dir.path().join("tiny-mamba.gguf");
    write_tiny(&path, &[("general.architecture", V::String("mamba".into()))]);
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GgufError::UnsupportedArchitecture { .. }), "{msg}");
    assert!(
        msg.contains("tiny-mamba.gguf") && msg.contains("'mamba'") && msg.contains("llama"),
        "{msg}"
    );

    let path = dir.path().join("tiny-llama.gguf");
    write_tiny(
        &path,
        &[
            ("general.architecture", V::String("llama".into())),
            ("llama.block_count", V::U32(1)),
            ("llama.embedding_length", V::U32(8)),
            ("llama.attention.head_count", V::U32(2)),
            ("llama.vocab_size", V::U32(4)),
        ],
    );
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, GgufError::MissingMetadata { .. }), "{msg}");
    assert!(
        msg.contains("tiny-llama.gguf") && msg.contains("'llama.feed_forward_length'"),
        "{msg}"
    );

    let path = dir.path().join("tiny-noarch.gguf");
    write_tiny(&path, &[("general.name", V::String("x".into()))]);
    let err = load_gguf(&path, DType::F32, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("'general.architecture'"), "{err}");
}

#[test]
fn quant_type_names() {
    let m: Vec<(GgmlDType, &str)> = vec![
        (GgmlDType::Q4K, "Q4_K"),
        (GgmlDType::Q5K, "Q5_K"),
        (GgmlDType::Q6K, "Q6_K"),
        (GgmlDType::Q4_0, "Q4_0"),
        (GgmlDType::BF16, "BF16"),
    ];
    for (t, n) in m {
        assert_eq!(strata_model::load::gguf::ggml_type_name(t), n);
    }
}

// ---- every quantization type against gguf-py ------------------------------------------------

/// The types both candle and gguf-py (what transformers dequantizes with) handle.
const QUANT_TYPES: &[(GgmlDType, &str)] = &[
    (GgmlDType::F32, "F32"),
    (GgmlDType::F16, "F16"),
    (GgmlDType::BF16, "BF16"),
    (GgmlDType::Q4_0, "Q4_0"),
    (GgmlDType::Q4_1, "Q4_1"),
    (GgmlDType::Q5_0, "Q5_0"),
    (GgmlDType::Q5_1, "Q5_1"),
    (GgmlDType::Q8_0, "Q8_0"),
    (GgmlDType::Q2K, "Q2_K"),
    (GgmlDType::Q3K, "Q3_K"),
    (GgmlDType::Q4K, "Q4_K"),
    (GgmlDType::Q5K, "Q5_K"),
    (GgmlDType::Q6K, "Q6_K"),
];

fn quant_fixture(file: &str) -> PathBuf {
    root().join("tests/fixtures/gguf").join(file)
}

/// Writes tests/fixtures/gguf/quant-types.gguf: one [4, 256] tensor per type, quantized by candle
/// from fixed data. Run by hand (`-- --ignored write_quant_types_fixture`), then
/// `scripts/make-real-references.sh --quant-types` for gguf-py's dequantization of it.
#[test]
#[ignore]
fn write_quant_types_fixture() {
    let data: Vec<f32> = (0..4 * 256)
        .map(|i| {
            let row = (i / 256) as f32;
            ((i as f32) * 0.37).sin() * (1.0 + (i % 7) as f32 * 0.3) * 10f32.powf(row - 2.0)
        })
        .collect();
    let t = Tensor::from_vec(data, (4, 256), &Device::Cpu).unwrap();
    let qs: Vec<(String, QTensor)> = QUANT_TYPES
        .iter()
        .map(|(ty, name)| (format!("{name}.weight"), QTensor::quantize(&t, *ty).unwrap()))
        .collect();
    let refs: Vec<(&str, &QTensor)> = qs.iter().map(|(n, q)| (n.as_str(), q)).collect();
    let path = quant_fixture("quant-types.gguf");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(&path).unwrap();
    let arch = gguf_file::Value::String("quant-types-fixture".into());
    gguf_file::write(&mut f, &[("general.architecture", &arch)], &refs).unwrap();
}

#[test]
fn every_quant_type_dequantizes_like_gguf_py() {
    let path = quant_fixture("quant-types.gguf");
    let header = read_gguf_header(&path).unwrap();
    let want = candle_core::safetensors::load(quant_fixture("quant-types.gguf-py.safetensors"), &Device::Cpu)
        .unwrap();
    for (_, name) in QUANT_TYPES {
        let key = format!("{name}.weight");
        let got: Vec<f32> = header
            .read_tensor_f32(&key)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let w: Vec<f32> = want[&key].flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(got.len(), w.len(), "{name}");
        let bad = got
            .iter()
            .zip(&w)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        assert_eq!(bad, 0, "{name}: {bad} of {} values differ from gguf-py", w.len());
    }
}
