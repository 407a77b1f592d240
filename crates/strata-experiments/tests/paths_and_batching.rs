//! The fast sweep path (restart at the patched block, several patched runs per forward) equals
//! the naive one (one full forward per patch); suites give the numbers of one-by-one runs;
//! inputs are checked with clear errors.

use std::path::PathBuf;
use strata_experiments::*;
use strata_model::{LoadOptions, Model};

const FAMILIES: &[&str] = &["llama", "gemma2", "gpt2", "qwen3", "gemma3", "mistral"];

fn fixture(family: &str) -> Model {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(family);
    Model::load(p.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn item() -> Item {
    Item::new("cat", "The cat sat on the", " of")
        .with_distractor(" and")
        .with_corrupted("The dog sat on the")
        .with_subject("cat")
}

fn suite() -> Vec<Item> {
    vec![
        item(),
        Item::new("paris", " Paris is in the", " of")
            .with_distractor(" the")
            .with_corrupted(" Rome is in the")
            .with_subject(" Paris"),
        Item::new("long", "When Mary and John went to the store", " to")
            .with_distractor(" a")
            .with_corrupted("When John and Mary went to the store")
            .with_subject("Mary"),
    ]
}

/// Largest |fast − naive| relative to max(1, |naive|): the two paths run matmuls of other
/// shapes (batched rows, suffix positions), so f32 sums differ in order; 1e-5 relative is ~80
/// f32 ulps, while a wrong shortcut (a changed prefix, a missed patch) is off by 1e-2 or more.
fn max_diff(a: &[SweepRow], b: &[SweepRow]) -> f64 {
    results::max_relative_difference(a, b).unwrap()
}

#[test]
fn patching_fast_path_equals_naive() {
    let mut worst = 0f64;
    for fam in FAMILIES {
        let m = fixture(fam);
        for (per_position, direction, max_batch) in [
            (true, Direction::Denoising, BatchSize::Fixed(5)),
            (false, Direction::Noising, BatchSize::Auto),
        ] {
            let mut opts = PatchOptions {
                components: PatchComponent::ALL.to_vec(),
                per_position,
                direction,
                max_batch,
                ..Default::default()
            };
            let fast = activation_patching(&m, &[item()], &opts, &mut |_| {}).unwrap();
            opts.exact_naive = true;
            let naive = activation_patching(&m, &[item()], &opts, &mut |_| {}).unwrap();
            let d = max_diff(&fast.rows, &naive.rows);
            assert!(d <= 1e-5, "{fam}: fast and naive patching differ by {d}");
            worst = worst.max(d);
            // Sanity: patching everything at the last layer's resid_post restores the clean run.
            if !per_position && direction == Direction::Noising {
                let row = fast
                    .rows
                    .iter()
                    .find(|r| r.component == "resid_post" && r.layer == m.config.n_layers - 1)
                    .unwrap();
                assert!((row.value - fast.corrupted).abs() < 1e-5, "{fam}");
            }
        }
    }
    eprintln!("patching fast vs naive: max |diff| {worst:e}");
}

/// The same on the GPU's path (`with_fused_kernels`: the fused kernels' CPU twins): the fast
/// path's suffix runs feed the fused attention fewer queries than keys and a narrowed mask.
#[test]
fn patching_on_the_fused_kernel_path_equals_naive() {
    for fam in ["llama", "mistral", "gemma2"] {
        let mut m = fixture(fam);
        m.decoder = m.decoder.with_fused_kernels();
        let mut opts = PatchOptions {
            components: PatchComponent::ALL.to_vec(),
            per_position: true,
            max_batch: BatchSize::Fixed(5),
            ..Default::default()
        };
        let fast = activation_patching(&m, &[item()], &opts, &mut |_| {}).unwrap();
        opts.exact_naive = true;
        let naive = activation_patching(&m, &[item()], &opts, &mut |_| {}).unwrap();
        let d = max_diff(&fast.rows, &naive.rows);
        assert!(
            d <= 1e-5,
            "{fam}: fast and naive patching differ by {d} on the fused path"
        );
    }
}

#[test]
fn ablation_fast_path_equals_naive_every_kind() {
    let mut worst = 0f64;
    for fam in FAMILIES {
        let m = fixture(fam);
        for kind in [AblationKind::Zero, AblationKind::Mean, AblationKind::Resample] {
            for metric in [Metric::LogitDiff, Metric::Kl] {
                let mut opts = AblateOptions {
                    components: AblateComponent::ALL.to_vec(),
                    kind,
                    metric,
                    per_position: kind == AblationKind::Mean,
                    seed: 3,
                    max_batch: BatchSize::Fixed(7),
                    ..Default::default()
                };
                let fast = ablate(&m, &suite(), &opts, &mut |_| {}).unwrap();
                opts.exact_naive = true;
                let naive = ablate(&m, &suite(), &opts, &mut |_| {}).unwrap();
                let d = max_diff(&fast.rows, &naive.rows);
                assert!(d <= 1e-5, "{fam} {kind:?} {metric}: fast and naive differ by {d}");
                worst = worst.max(d);
            }
        }
    }
    eprintln!("ablation fast vs naive: max |diff| {worst:e}");
}

#[test]
fn tracing_fast_path_equals_naive() {
    for fam in ["llama", "gpt2", "gemma2"] {
        let m = fixture(fam);
        let mut opts = TraceOptions {
            samples: 2,
            window: 2,
            max_batch: BatchSize::Fixed(9),
            ..Default::default()
        };
        let fast = causal_trace(&m, &[item()], &opts, &mut |_| {}).unwrap();
        opts.exact_naive = true;
        let naive = causal_trace(&m, &[item()], &opts, &mut |_| {}).unwrap();
        let (f, n) = (&fast[0], &naive[0]);
        assert_eq!(f.rows.len(), 3 * m.config.n_layers * 7);
        assert_eq!(f.subject_positions, vec![1, 2]);
        assert!((f.corrupted - n.corrupted).abs() < 1e-6);
        for (a, b) in f.rows.iter().zip(&n.rows) {
            assert!((a.value - b.value).abs() <= 1e-5, "{fam}: {a:?} vs {b:?}");
        }
        // Restoring the hidden state at the last layer and position restores the clean run.
        let last = f
            .rows
            .iter()
            .find(|r| r.kind == TraceKind::Hidden && r.layer == m.config.n_layers - 1 && r.position == 6)
            .unwrap();
        assert!(
            (last.value - f.clean).abs() < 1e-6,
            "{fam}: {last:?} clean {}",
            f.clean
        );
        // Same seed, same numbers.
        let again = causal_trace(&m, &[item()], &opts, &mut |_| {}).unwrap();
        assert_eq!(again[0].rows, n.rows);
    }
}

#[test]
fn lens_suite_batched_equals_one_by_one() {
    for fam in FAMILIES {
        let m = fixture(fam);
        let opts = LensOptions::default();
        let batched = logit_lens(&m, &suite(), &opts).unwrap();
        for (it, b) in suite().iter().zip(&batched) {
            let single = logit_lens(&m, std::slice::from_ref(it), &opts).unwrap().remove(0);
            assert_eq!(single.rows.len(), b.rows.len());
            for (x, y) in single.rows.iter().zip(&b.rows) {
                assert_eq!(
                    (x.layer, x.position, x.target_rank),
                    (y.layer, y.position, y.target_rank)
                );
                assert!((x.target_prob - y.target_prob).abs() < 1e-6, "{fam}");
                assert!((x.kl_to_final - y.kl_to_final).abs() < 1e-4, "{fam}");
                assert_eq!(x.top[0].id, y.top[0].id);
            }
        }
        // Last-position-only lens equals the full lens there.
        let last = logit_lens(
            &m,
            &suite(),
            &LensOptions {
                last_position_only: true,
                ..Default::default()
            },
        )
        .unwrap();
        for (full, l) in batched.iter().zip(&last) {
            let p = full.tokens.len() - 1;
            assert_eq!(l.rows.len(), m.config.n_layers + 1);
            for r in &l.rows {
                assert_eq!(r.position, p);
                let f = full.row(r.layer, p).unwrap();
                assert!((f.target_prob - r.target_prob).abs() < 1e-6);
            }
        }
        // The last lens layer is the model's own output.
        let lr = &batched[0];
        let final_row = lr.row(m.config.n_layers, lr.tokens.len() - 1).unwrap();
        assert!(final_row.kl_to_final.abs() < 1e-6);
    }
}

#[test]
fn suite_sweeps_equal_one_by_one_runs() {
    let m = fixture("llama");
    let opts = PatchOptions {
        components: vec![PatchComponent::ResidPre, PatchComponent::Z],
        ..Default::default()
    };
    let all = activation_patching(&m, &suite(), &opts, &mut |_| {}).unwrap();
    assert!(!all.summary.is_empty());
    for it in suite() {
        let one = activation_patching(&m, std::slice::from_ref(&it), &opts, &mut |_| {}).unwrap();
        let rows: Vec<SweepRow> = all.rows.iter().filter(|r| r.item == it.id).cloned().collect();
        assert!(max_diff(&rows, &one.rows) < 1e-6);
    }
    let aopts = AblateOptions {
        components: AblateComponent::ALL.to_vec(),
        ..Default::default()
    };
    let all = ablate(&m, &suite(), &aopts, &mut |_| {}).unwrap();
    for it in suite() {
        let one = ablate(&m, std::slice::from_ref(&it), &aopts, &mut |_| {}).unwrap();
        let rows: Vec<SweepRow> = all.rows.iter().filter(|r| r.item == it.id).cloned().collect();
        assert!(max_diff(&rows, &one.rows) < 1e-6);
    }
    // Tracing: σ is the model's and the noise is seeded by item id, so an item's trace does not
    // depend on the other items of the call (nor on its place among them).
    let topts = TraceOptions {
        samples: 2,
        window: 2,
        ..Default::default()
    };
    let mut reversed = suite();
    reversed.reverse();
    let all = causal_trace(&m, &reversed, &topts, &mut |_| {}).unwrap();
    for it in suite() {
        let one = causal_trace(&m, std::slice::from_ref(&it), &topts, &mut |_| {})
            .unwrap()
            .remove(0);
        let same = all.iter().find(|t| t.id == it.id).unwrap();
        assert_eq!(one.noise_std, same.noise_std);
        assert!((one.corrupted - same.corrupted).abs() < 1e-6, "{}", it.id);
        for (a, b) in one.rows.iter().zip(&same.rows) {
            assert!((a.value - b.value).abs() < 1e-6, "{}: {a:?} vs {b:?}", it.id);
        }
    }
}

#[test]
fn zero_ablation_of_a_block_is_a_skip_and_mean_over_self_is_identity() {
    let m = fixture("llama");
    let one = [item()];
    // Mean over the item itself = its own activation: no effect.
    let opts = AblateOptions {
        components: AblateComponent::ALL.to_vec(),
        kind: AblationKind::Mean,
        ..Default::default()
    };
    let r = ablate(&m, &one, &opts, &mut |_| {}).unwrap();
    for row in &r.rows {
        assert!((row.value - r.clean).abs() < 1e-5, "{row:?} vs clean {}", r.clean);
    }
}

#[test]
fn unequal_pair_lengths_show_both_tokenizations() {
    let m = fixture("llama");
    let bad = Item::new("bad", "The capital of France is", " of")
        .with_distractor(" and")
        .with_corrupted("The capital of Italy is");
    let err = activation_patching(&m, &[bad], &PatchOptions::default(), &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("'bad'") && err.contains("14 tokens") && err.contains("12 tokens"),
        "{err}"
    );
    assert!(err.contains("\"F\"") && err.contains("\"y\""), "{err}");
    let multi = Item::new("multi", "The cat", " Paris");
    let err = logit_lens(&m, &[multi], &LensOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("'multi'") && err.contains("not one"), "{err}");
    let err = activation_patching(
        &m,
        &[Item::new("nod", "The cat", " of").with_corrupted("The dog")],
        &PatchOptions::default(),
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("distractor"), "{err}");
}

#[test]
fn device_out_of_memory_is_restated_with_sizes_and_what_to_change() {
    let m = fixture("llama");
    // What candle reports when cuMemAllocAsync fails.
    let oom = ExperimentError::Candle(candle_core::Error::Msg(
        "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")".into(),
    ));
    let msg =
        batch_size::explain_out_of_memory(oom, &m.decoder, 8, 16, "use a smaller --max-batch").to_string();
    let c = &m.config;
    // f32 scores and probabilities of 8 runs, every head, 16 × 16 positions.
    let scores_mib = (2 * 8 * c.n_heads * 16 * 16 * 4) as f64 / (1u64 << 20) as f64;
    assert!(
        msg.contains("ran out of memory running 8 patched run(s) of 16 tokens"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("attention scores take {scores_mib:.1} MiB")),
        "{msg}"
    );
    assert!(
        msg.contains("--max-batch") && msg.contains("CUDA_ERROR_OUT_OF_MEMORY"),
        "{msg}"
    );
    // Other errors pass through unchanged.
    let other = ExperimentError::Input("token 'x' is not in the vocabulary".into());
    let msg = batch_size::explain_out_of_memory(other, &m.decoder, 8, 16, "").to_string();
    assert_eq!(msg, "token 'x' is not in the vocabulary");
}
