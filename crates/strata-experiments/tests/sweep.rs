//! The sweep's direct logit attribution decomposes the logit difference exactly, and its
//! per-layer findings agree with the lens and ablation run on their own.

use candle_core::IndexOp;
use std::path::PathBuf;
use strata_experiments::sweep::{sweep_model, SweepOptions};
use strata_experiments::{prepare_all, Item};
use strata_model::{ActivationCache, HookPoint, LoadOptions, Model, TokenBatch};

fn fixture(family: &str) -> Model {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(family);
    Model::load(dir.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn items() -> Vec<Item> {
    ["The teacher reads a", "The dog sleeps in the"]
        .iter()
        .enumerate()
        .map(|(i, p)| Item {
            id: format!("i{i}"),
            prompt: p.to_string(),
            target: " the".into(),
            distractor: Some(" a".into()),
            corrupted: None,
            subject: None,
        })
        .collect()
}

#[test]
fn attributions_plus_embedding_sum_to_the_logit_difference() {
    // RMSNorm families without final soft-capping: the frozen final norm is exactly linear.
    for family in ["llama", "qwen3", "gemma3"] {
        let model = fixture(family);
        let prepared = prepare_all(&model, &items()).unwrap();
        let sweep = sweep_model(&model, "", &prepared, &SweepOptions::default(), &mut |_| {}).unwrap();
        let n = model.config.n_layers;
        let mut embed_part = 0.0;
        for it in &prepared {
            let mut cache = ActivationCache::of([HookPoint::Embed, HookPoint::ResidPost(n - 1)]);
            model
                .decoder
                .forward(&TokenBatch::single(it.ids.clone()).unwrap(), &mut cache)
                .unwrap();
            let last = it.ids.len() - 1;
            let embed = cache
                .get(HookPoint::Embed)
                .unwrap()
                .i((0, last))
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let resid = cache
                .get(HookPoint::ResidPost(n - 1))
                .unwrap()
                .i((0, last))
                .unwrap();
            let normed = model.decoder.frozen_final_norm(&resid, &embed).unwrap();
            let rows = model
                .decoder
                .unembedding_rows(&[it.target, it.distractor.unwrap()])
                .unwrap();
            let dir = (rows.get(0).unwrap() - rows.get(1).unwrap()).unwrap();
            let v = normed
                .matmul(&dir.unsqueeze(1).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            embed_part += v[0] as f64 / prepared.len() as f64;
        }
        let total: f64 = sweep
            .layers
            .iter()
            .map(|l| l.attn_attribution + l.mlp_attribution)
            .sum::<f64>()
            + embed_part;
        let clean = sweep.summary.clean_logit_diff;
        assert!(
            (total - clean).abs() <= 1e-4 * clean.abs().max(1.0),
            "{family}: {total} vs {clean}"
        );
        assert_eq!(sweep.layers.len(), n);
        assert!(sweep
            .layers
            .iter()
            .all(|l| l.attn_ablation.is_finite() && l.mlp_ablation.is_finite()));
        assert!((0.0..=1.0).contains(&sweep.summary.mlp_attribution_share));
    }
}
