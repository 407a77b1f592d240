//! Every family against Hugging Face transformers: logits and every hook point, f32.
//!
//! References come from `scripts/make-fixtures.py` (tiny random-weight models saved by
//! transformers, activations captured with PyTorch hooks). Tolerance: |err| ≤ 4e-6 · max(1, max|ref|)
//! on logits and on every activation. f32 has a 1.2e-7 unit roundoff; candle and PyTorch sum
//! in different orders (matmul blocking, norms), so a few blocks of a 64-wide model accumulate
//! relative differences of order 1e-6 — a real bug (wrong rope, norm, mask) gives errors of
//! order 1e-2 or more. On these fixtures the largest |logit| is about 10.

mod common;

use candle_core::{IndexOp, Tensor};
use common::{fixture_model, load_fixture, max_abs, max_abs_diff, scratch, FAMILIES};
use std::collections::HashMap;
use strata_model::{ActivationCache, HookLayout, HookPoint, LoadOptions, Model, TokenBatch};

const RELATIVE_TOLERANCE: f32 = 4e-6;

fn tolerance(reference: &Tensor) -> f32 {
    RELATIVE_TOLERANCE * max_abs(reference).max(1.0)
}

fn reference(family: &str) -> HashMap<String, Tensor> {
    let path = fixture_model(family).join("reference.safetensors");
    candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap()
}

fn ids(t: &Tensor) -> Vec<Vec<u32>> {
    t.to_dtype(candle_core::DType::U32)
        .unwrap()
        .to_vec2::<u32>()
        .unwrap()
}

/// Logits and the hook points `cached` of the reference prompt against transformers; returns
/// the logits' error and the worst hook point's.
fn check_family(family: &str, fused: bool, cached: fn(HookPoint) -> bool) -> (f32, f32, String) {
    let model = load_fixture(family, fused);
    let refs = reference(family);
    let batch = TokenBatch::single(ids(&refs["input_ids"]).remove(0)).unwrap();
    let mut cache = ActivationCache::new(cached);
    let logits = model.decoder.forward(&batch, &mut cache).unwrap();
    let logit_err = max_abs_diff(&logits, &refs["logits"]);
    assert!(
        logit_err <= tolerance(&refs["logits"]),
        "{family}: logits differ by {logit_err}"
    );

    let (mut worst, mut worst_name) = (0f32, String::new());
    for point in HookPoint::all(HookLayout::from(&model.config))
        .into_iter()
        .filter(|&p| cached(p))
    {
        let name = point.to_string();
        let expected = refs
            .get(&name)
            .unwrap_or_else(|| panic!("{family}: reference lacks {name}"));
        let err = max_abs_diff(cache.get(point).unwrap(), expected);
        assert!(
            err <= tolerance(expected),
            "{family}: {name} differs by {err} (scale {})",
            max_abs(expected)
        );
        if err > worst {
            (worst, worst_name) = (err, name);
        }
    }
    (logit_err, worst, worst_name)
}

/// Right- and left-padded two-prompt batches: each row's logits on its real tokens equal the
/// unpadded prompt's in transformers.
fn check_padded_batches(family: &str, fused: bool) {
    let model = load_fixture(family, fused);
    let refs = reference(family);
    for (ids_key, mask_key) in [("batch_ids", "batch_mask"), ("batch_left_ids", "batch_left_mask")] {
        let mask: Vec<Vec<bool>> = ids(&refs[mask_key])
            .into_iter()
            .map(|r| r.into_iter().map(|m| m == 1).collect())
            .collect();
        let batch = TokenBatch::from_mask(ids(&refs[ids_key]), mask.clone()).unwrap();
        let logits = model.decoder.forward(&batch, &mut strata_model::NoHooks).unwrap();
        for row in 0..2 {
            let real: Vec<usize> = (0..mask[row].len()).filter(|&p| mask[row][p]).collect();
            let got = logits
                .i((row, real[0]..real[real.len() - 1] + 1))
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let expected = &refs[&format!("batch_logits_{row}")];
            let err = max_abs_diff(&got, expected);
            assert!(err <= tolerance(expected), "{family} {ids_key} row {row}: {err}");
        }
    }
}

#[test]
fn every_family_matches_transformers_at_every_hook() {
    println!("| family | max abs err logits | worst hook | its max abs err |");
    for family in FAMILIES {
        let (logit_err, worst, name) = check_family(family, false, |_| true);
        println!("| {family} | {logit_err:.2e} | {name} | {worst:.2e} |");
    }
}

#[test]
fn padded_batches_give_each_prompts_unpadded_result() {
    for family in FAMILIES {
        check_padded_batches(family, false);
    }
}

/// The path a GPU takes — strata's fused kernels (row norms, heads split and rotated out of the
/// qkv projection, attention in one kernel, gated activation), here as their CPU twins — against
/// transformers on every family: the decoder's use of the kernels (head slices, rotary tables
/// shared by the batch or per row, batch masks, z's layout) is checked without a GPU. Hook points
/// whose hooks would turn a kernel off (`HookPoint::inside_fused_kernels`) are not cached.
#[test]
fn fused_kernel_path_matches_transformers() {
    let keeps_fusion = |p: HookPoint| !p.inside_fused_kernels();
    println!("| family | max abs err logits | worst hook | its max abs err |");
    for family in FAMILIES {
        let (logit_err, worst, name) = check_family(family, true, keeps_fusion);
        println!("| {family} | {logit_err:.2e} | {name} | {worst:.2e} |");
        check_padded_batches(family, true);
    }
}

#[test]
fn classic_and_v5_config_layouts_load_the_same_model() {
    for family in FAMILIES.iter().filter(|f| **f != "gpt2") {
        let src = fixture_model(family);
        let dir = scratch(&format!("classic-{family}"));
        std::fs::copy(src.join("config.classic.json"), dir.join("config.json")).unwrap();
        std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
        let classic = Model::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap();
        let v5 = Model::load(src.to_str().unwrap(), &LoadOptions::default()).unwrap();
        assert_eq!(classic.config, v5.config, "{family}: configs differ");
        let batch = TokenBatch::single(ids(&reference(family)["input_ids"]).remove(0)).unwrap();
        let a = classic
            .decoder
            .forward(&batch, &mut strata_model::NoHooks)
            .unwrap();
        let b = v5.decoder.forward(&batch, &mut strata_model::NoHooks).unwrap();
        assert_eq!(max_abs_diff(&a, &b), 0.0, "{family}");
    }
}

/// An edit to `attn.hook_result` reaches the residual stream: zeroing one head's result is
/// zeroing its z (the output is the heads' sum + bias), on every family, both decoder paths.
#[test]
fn editing_a_heads_result_equals_editing_its_z() {
    use strata_model::{Edit, HookSet, Intervention};
    for family in FAMILIES {
        for fused in [false, true] {
            let model = load_fixture(family, fused);
            let refs = reference(family);
            let batch = TokenBatch::single(ids(&refs["input_ids"]).remove(0)).unwrap();
            let zeroed = |point: HookPoint| {
                let mut edit = HookSet::new().with(Intervention::new(point, Edit::Zero).at_heads(vec![1]));
                model.decoder.forward(&batch, &mut edit).unwrap()
            };
            let by_result = zeroed(HookPoint::HeadResult(0));
            let by_z = zeroed(HookPoint::Z(0));
            let err = max_abs_diff(&by_result, &by_z);
            assert!(
                err <= tolerance(&by_z),
                "{family} (fused {fused}): differ by {err}"
            );
            let untouched = model.decoder.forward(&batch, &mut strata_model::NoHooks).unwrap();
            assert!(
                max_abs_diff(&by_z, &untouched) > 1e-3,
                "{family}: head 0.1 has no effect"
            );
        }
    }
}

/// An edit to a norm's `hook_scale` reaches its output: doubling `ln_final.hook_scale` halves
/// the final RMSNorm's output, hence the logits (GPT-2's LayerNorm adds a bias after the scale
/// and Gemma 2 soft-caps its logits: neither is halved).
#[test]
fn editing_the_final_norms_scale_reaches_the_logits() {
    use strata_model::{Edit, HookSet, Intervention};
    for family in FAMILIES.iter().filter(|f| !matches!(**f, "gpt2" | "gemma2")) {
        let model = load_fixture(family, false);
        let refs = reference(family);
        let batch = TokenBatch::single(ids(&refs["input_ids"]).remove(0)).unwrap();
        let mut doubled = HookSet::new().with(Intervention::new(HookPoint::LnFinalScale, Edit::Scale(2.0)));
        let halved = model.decoder.forward(&batch, &mut doubled).unwrap();
        let logits = model.decoder.forward(&batch, &mut strata_model::NoHooks).unwrap();
        let expected = (logits * 0.5).unwrap();
        let err = max_abs_diff(&halved, &expected);
        assert!(err <= tolerance(&expected), "{family}: differ by {err}");
    }
}

/// TransformerLens' split inputs (on request), on every family and both decoder paths, against
/// the hook points they stand for. With `X` a second prompt's `hook_resid_pre` at layer 1:
/// - every head's q/k/v input set to `X` equals setting `ln1.hook_normalized` to the second
///   prompt's (attention alone reads `X`; the residual stream keeps the first prompt's);
/// - query head 0's input alone equals patching `attn.hook_q` head 0, key/value head 0's key
///   input alone `attn.hook_k` head 0 (each head reads its copy through its own projection rows);
/// - `hook_mlp_in` set to the second prompt's `hook_resid_mid` equals setting
///   `ln2.hook_normalized` to its;
/// - asked for and left alone, they change nothing and hold `hook_resid_pre` once per head.
#[test]
fn split_inputs_edit_what_transformerlens_does() {
    use strata_model::{ActivationCache, Edit, HookSet, Intervention};
    use HookPoint::{KInput, Ln1, Ln2, MlpIn, QInput, ResidMid, ResidPre, VInput, K, Q};
    let l = 1;
    for family in FAMILIES {
        for fused in [false, true] {
            let model = load_fixture(family, fused);
            let refs = reference(family);
            let first = ids(&refs["input_ids"]).remove(0);
            let second: Vec<u32> = first.iter().rev().copied().collect();
            let run = |ids: &[u32], hook: &mut dyn strata_model::Hook| {
                model
                    .decoder
                    .forward(&TokenBatch::single(ids.to_vec()).unwrap(), hook)
                    .unwrap()
            };
            let mut donor = ActivationCache::of([ResidPre(l), Ln1(l), Q(l), K(l), ResidMid(l), Ln2(l)]);
            run(&second, &mut donor);
            let from = |point| donor.get(point).unwrap().clone();
            let x = from(ResidPre(l)).unsqueeze(2).unwrap();
            let edited = |interventions: Vec<Intervention>| {
                let mut set = HookSet::new();
                for i in interventions {
                    set = set.with(i);
                }
                run(&first, &mut set)
            };
            let set = |point, value: &Tensor| Intervention::new(point, Edit::Set(value.clone()));
            let cases = [
                (
                    "q/k/v inputs vs ln1.hook_normalized",
                    edited(vec![set(QInput(l), &x), set(KInput(l), &x), set(VInput(l), &x)]),
                    edited(vec![set(Ln1(l), &from(Ln1(l)))]),
                ),
                (
                    "q input of head 0 vs attn.hook_q head 0",
                    edited(vec![set(QInput(l), &x).at_heads(vec![0])]),
                    edited(vec![set(Q(l), &from(Q(l))).at_heads(vec![0])]),
                ),
                (
                    "k input of head 0 vs attn.hook_k head 0",
                    edited(vec![set(KInput(l), &x).at_heads(vec![0])]),
                    edited(vec![set(K(l), &from(K(l))).at_heads(vec![0])]),
                ),
                (
                    "mlp input vs ln2.hook_normalized",
                    edited(vec![set(MlpIn(l), &from(ResidMid(l)))]),
                    edited(vec![set(Ln2(l), &from(Ln2(l)))]),
                ),
            ];
            let plain = run(&first, &mut strata_model::NoHooks);
            for (what, got, want) in &cases {
                let err = max_abs_diff(got, want);
                assert!(
                    err <= tolerance(want),
                    "{family} (fused {fused}): {what}: differ by {err}"
                );
                assert!(
                    max_abs_diff(want, &plain) > 1e-3,
                    "{family}: {what}: the edit has no effect"
                );
            }
            let mut asked = ActivationCache::of([ResidPre(l), QInput(l), KInput(l), MlpIn(l), ResidMid(l)]);
            let untouched = run(&first, &mut asked);
            let err = max_abs_diff(&untouched, &plain);
            assert!(
                err <= tolerance(&plain),
                "{family} (fused {fused}): asked, differ by {err}"
            );
            let resid = asked.get(ResidPre(l)).unwrap().unsqueeze(2).unwrap();
            let (h, g) = (model.config.n_heads, model.config.n_kv_heads);
            let q_input = asked.get(QInput(l)).unwrap();
            assert_eq!(q_input.dims()[2], h, "{family}");
            assert_eq!(
                max_abs_diff(q_input, &resid.broadcast_as(q_input.shape()).unwrap()),
                0.0
            );
            assert_eq!(asked.get(KInput(l)).unwrap().dims()[2], g, "{family}");
            assert_eq!(
                max_abs_diff(asked.get(MlpIn(l)).unwrap(), asked.get(ResidMid(l)).unwrap()),
                0.0
            );
        }
    }
}
