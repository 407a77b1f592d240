//! Hot paths of the engine on the real SmolLM2-135M weights (f32, CPU): one forward of a
//! 16-token prompt, and the full-vocabulary unembedding of every layer (the logit lens' cost).
//! Run `bash scripts/fetch-models.sh` first. Side-by-side timings against PyTorch and
//! TransformerLens come from `scripts/bench-peers.sh`.
use candle_core::{Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use strata_model::{LoadOptions, Model, NoHooks, TokenBatch};

fn smollm2() -> Model {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    );
    Model::load(path, &LoadOptions::default()).expect("run scripts/fetch-models.sh first")
}

fn forward(c: &mut Criterion) {
    let model = smollm2();
    let ids: Vec<u32> = (0..16).map(|i| 100 + 37 * i).collect();
    let batch = TokenBatch::single(ids).unwrap();
    c.bench_function("forward_smollm2_16tok", |b| {
        b.iter(|| model.decoder.forward(&batch, &mut NoHooks).unwrap())
    });
    // One large matmul of the logit lens' shape: 31 layers x 16 positions against the vocabulary.
    let x = Tensor::randn(0f32, 1.0, (31 * 16, 576), &Device::Cpu).unwrap();
    let w = model.decoder.unembedding().unwrap();
    c.bench_function("unembed_496x576_by_49152", |b| {
        b.iter(|| x.matmul(&w.t().unwrap()).unwrap())
    });
}

/// Logit lens over all 31 layers: at the last position (compare with one forward) and at all
/// 16 positions (compare with the big matmul above, the same FLOPs).
fn lens(c: &mut Criterion) {
    let model = smollm2();
    let prompt = "After a long and pleasant trip across Europe, we learned the capital of France is";
    let items = vec![strata_experiments::Item::new(
        "bench",
        prompt.to_string(),
        " Paris".to_string(),
    )];
    for (name, last) in [
        ("lens_last_position_smollm2_16tok", true),
        ("lens_all_positions_smollm2_16tok", false),
    ] {
        let opts = strata_experiments::LensOptions {
            last_position_only: last,
            top_k: 5,
            ..Default::default()
        };
        c.bench_function(name, |b| {
            b.iter(|| strata_experiments::logit_lens(&model, &items, &opts).unwrap())
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = forward, lens
}
criterion_main!(benches);
