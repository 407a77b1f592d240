//! The real GGUF models (SmolLM2-135M Q4_1, Gemma 3 270M Q4_K_M) against Hugging Face
//! transformers loading the same files (dequantized to f32), references from
//! `scripts/make-real-references.py`.
//!
//! Tolerances: logits ≤ 1e-3 absolute (the floor; logit scale is ~20–40 here), top-1
//! identical at every position, 20 greedy tokens identical (decoded over the key/value cache, as
//! `strata generate` does), and every `hook_resid_post` within
//! 1e-4 · max(1, max|ref|) — residual streams of these models reach 1e2–1e3 in magnitude and
//! f32 summation-order differences grow with depth.

mod common;

use candle_core::{DType, IndexOp, Tensor};
use common::{max_abs, max_abs_diff, real_model, repo_root};
use std::collections::HashMap;
use strata_model::{ActivationCache, HookPoint, LoadOptions, Model, NoHooks, TokenBatch};

const LOGIT_TOLERANCE: f32 = 1e-3;
const RESID_RELATIVE_TOLERANCE: f32 = 1e-4;

fn ids_of(t: &Tensor) -> Vec<u32> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::U32)
        .unwrap()
        .to_vec1::<u32>()
        .unwrap()
}

fn check(file: &str, reference_dir: &str, n_prompts: usize) {
    let model = Model::load(real_model(file).to_str().unwrap(), &LoadOptions::default()).unwrap();
    let dir = repo_root().join("tests/fixtures/real").join(reference_dir);
    let refs: HashMap<String, Tensor> =
        candle_core::safetensors::load(dir.join("reference.safetensors"), &candle_core::Device::Cpu).unwrap();
    let fixed = ids_of(&refs["fixed_ids"]);
    let n = model.config.n_layers;
    println!(
        "| {file} | prompt | max abs err logits (last pos) | fixed-id logits | worst resid_post rel err |"
    );
    for i in 0..n_prompts {
        let p = |name: &str| &refs[&format!("p{i}.{name}")];
        let ids = ids_of(p("input_ids"));
        assert_eq!(
            model.tokenizer().unwrap().encode(&prompt_text(&dir, i)).unwrap(),
            ids,
            "{file}: prompt {i} ids"
        );
        let mut cache = ActivationCache::new(|p| {
            matches!(p, HookPoint::ResidPost(_) | HookPoint::Embed | HookPoint::LnFinal)
        });
        let logits = model
            .decoder
            .forward(&TokenBatch::single(ids.clone()).unwrap(), &mut cache)
            .unwrap()
            .i(0)
            .unwrap();
        let t = ids.len();
        let last_err = max_abs_diff(&logits.i(t - 1).unwrap(), p("logits_last"));
        assert!(
            last_err <= LOGIT_TOLERANCE,
            "{file} prompt {i}: last logits differ by {last_err}"
        );
        let fixed_idx = Tensor::new(fixed.as_slice(), &candle_core::Device::Cpu).unwrap();
        let fixed_err = max_abs_diff(&logits.index_select(&fixed_idx, 1).unwrap(), p("fixed_logits"));
        assert!(
            fixed_err <= LOGIT_TOLERANCE,
            "{file} prompt {i}: fixed-id logits differ by {fixed_err}"
        );
        let top1: Vec<u32> = logits.argmax(1).unwrap().to_vec1::<u32>().unwrap();
        let ref_top1: Vec<u32> = ids_of(&p("top5_ids").i((.., 0)).unwrap());
        assert_eq!(top1, ref_top1, "{file} prompt {i}: top-1 tokens differ");
        let top5_err = max_abs_diff(
            &logits
                .gather(&p("top5_ids").to_dtype(DType::U32).unwrap(), 1)
                .unwrap(),
            p("top5_logits"),
        );
        assert!(
            top5_err <= LOGIT_TOLERANCE,
            "{file} prompt {i}: top-5 logits differ by {top5_err}"
        );
        let mut worst = 0f32;
        for l in 0..n {
            let expected = p(&format!("blocks.{l}.hook_resid_post"));
            let got = cache.get(HookPoint::ResidPost(l)).unwrap().i(0).unwrap();
            let rel = max_abs_diff(&got, expected) / max_abs(expected).max(1.0);
            assert!(
                rel <= RESID_RELATIVE_TOLERANCE,
                "{file} prompt {i}: resid_post {l} relative error {rel}"
            );
            worst = worst.max(rel);
        }
        for (point, name) in [
            (HookPoint::Embed, "hook_embed"),
            (HookPoint::LnFinal, "ln_final.hook_normalized"),
        ] {
            let expected = p(name);
            let rel =
                max_abs_diff(&cache.get(point).unwrap().i(0).unwrap(), expected) / max_abs(expected).max(1.0);
            assert!(
                rel <= RESID_RELATIVE_TOLERANCE,
                "{file} prompt {i}: {name} relative error {rel}"
            );
        }
        println!("| {file} | {i} | {last_err:.2e} | {fixed_err:.2e} | {worst:.2e} |");
    }

    // Greedy decoding as `strata generate` runs it: the prompt once, then each token over the
    // cached keys and values.
    let mut ids = ids_of(&refs["gen.input_ids"]);
    let expected = ids_of(&refs["gen.output_ids"]);
    let (mut logits, mut kv, _) = model
        .decoder
        .forward_with_kv(&TokenBatch::single(ids.clone()).unwrap(), &mut NoHooks)
        .unwrap();
    for _ in 0..expected.len() {
        let last = logits.dim(1).unwrap() - 1;
        ids.push(
            logits
                .i((0, last))
                .unwrap()
                .argmax(0)
                .unwrap()
                .to_scalar::<u32>()
                .unwrap(),
        );
        (logits, kv) = model.decoder.forward_cached(&ids, &kv).unwrap();
    }
    assert_eq!(
        &ids[ids.len() - expected.len()..],
        expected.as_slice(),
        "{file}: greedy tokens differ"
    );
}

fn prompt_text(dir: &std::path::Path, i: usize) -> String {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    json["prompts"][i]["prompt"].as_str().unwrap().to_string()
}

#[test]
fn smollm2_matches_transformers() {
    check("SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct-q4_1", 3);
}

#[test]
fn gemma3_matches_transformers() {
    check("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m", 3);
}
