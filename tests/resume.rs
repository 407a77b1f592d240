//! The sweep shortcuts of the decoder are exact: resuming a run at a layer and a position over
//! cached keys/values gives what a full forward with the same patch gives.

mod common;

use candle_core::{IndexOp, Tensor};
use common::{fixture_model, max_abs, max_abs_diff};
use strata_model::{
    ActivationCache, Edit, HookPoint, HookSet, Intervention, LoadOptions, Model, NoHooks, TokenBatch,
};

/// Covers learned positions (gpt2), GQA + llama3 rope (llama), soft-caps + sliding windows (gemma2),
/// local/global rope + q/k norm (gemma3) and partial fused projections (phi3).
const FAMILIES: &[&str] = &["gpt2", "llama", "gemma2", "gemma3", "phi3"];

#[test]
fn resuming_at_any_layer_and_position_equals_the_patched_full_forward() {
    for family in FAMILIES {
        let model = Model::load(fixture_model(family).to_str().unwrap(), &LoadOptions::default()).unwrap();
        let d = &model.decoder;
        let n = model.config.n_layers;
        let clean: Vec<u32> = (0..10).map(|i| 3 + 17 * i).collect();
        let corrupted: Vec<u32> = (0..10).map(|i| 5 + 23 * i).collect();
        let t = clean.len();
        let mut clean_cache = ActivationCache::new(|p| matches!(p, HookPoint::ResidPre(_)));
        d.forward(&TokenBatch::single(clean).unwrap(), &mut clean_cache)
            .unwrap();
        let corrupted_batch = TokenBatch::single(corrupted).unwrap();
        let mut corrupted_cache = ActivationCache::new(|p| matches!(p, HookPoint::ResidPre(_)));
        let (_, kv, ctx) = d.forward_with_kv(&corrupted_batch, &mut corrupted_cache).unwrap();
        let vocab: Vec<u32> = (0..model.config.vocab_size as u32).collect();
        // Same rounding budget as the parity tests: matmuls of other shapes sum in other orders.
        let mut worst = 0f32;
        let mut scale = 1f32;
        for l in 0..n {
            let clean_pre = clean_cache.get(HookPoint::ResidPre(l)).unwrap();
            let corrupted_pre = corrupted_cache.get(HookPoint::ResidPre(l)).unwrap();
            for p in [0, 3, t - 1] {
                let patch = Intervention::new(HookPoint::ResidPre(l), Edit::Set(clean_pre.clone()))
                    .at_positions(vec![p]);
                let naive = d
                    .forward(&corrupted_batch, &mut HookSet::new().with(patch))
                    .unwrap()
                    .i((0, t - 1))
                    .unwrap();
                // Row 0: the clean value at p; row 1: the unpatched run (must equal the cache).
                let patched_row = Tensor::cat(
                    &[
                        &clean_pre.i((.., p..p + 1)).unwrap(),
                        &corrupted_pre.i((.., p + 1..)).unwrap(),
                    ],
                    1,
                )
                .unwrap();
                let rows = Tensor::cat(&[&patched_row, &corrupted_pre.i((.., p..)).unwrap()], 0).unwrap();
                let out = d.run_suffix(l..n, rows, p, &kv, &ctx, &mut NoHooks).unwrap();
                let last = out.i((.., t - p - 1)).unwrap();
                let fast = d.logits_of(&last, &vocab).unwrap();
                worst = worst.max(max_abs_diff(&fast.i(0).unwrap(), &naive));
                scale = scale.max(max_abs(&naive));
                let plain = d
                    .forward(&corrupted_batch, &mut NoHooks)
                    .unwrap()
                    .i((0, t - 1))
                    .unwrap();
                worst = worst.max(max_abs_diff(&fast.i(1).unwrap(), &plain));
            }
        }
        assert!(
            worst <= 4e-6 * scale,
            "{family}: resumed runs differ from full forwards by {worst} (scale {scale})"
        );
    }
}
