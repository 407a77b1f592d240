//! Attribution patching: its gradient agrees with finite differences of exact patched runs, its
//! rows obey the linear identity `value − corrupted = attr = (a_clean − a_corr)·∇M`, and its
//! agreement with exact activation patching is measured (printed; a lower bound asserted).

use std::path::PathBuf;
use strata_experiments::attribution::{agreement, attribution_patching_prepared, GradSites};
use strata_experiments::engine::{cached_run, last_residual, run_jobs, BaseRun, ExecMode, Job, Patch};
use strata_experiments::metric::{metric_tensor, MetricSpec};
use strata_experiments::patch::activation_patching_prepared;
use strata_experiments::*;
use strata_model::{LoadOptions, Model};

const FAMILIES: &[&str] = &["llama", "gemma2", "gpt2"];
const COMPONENTS: [PatchComponent; 3] = [
    PatchComponent::ResidPre,
    PatchComponent::AttnOut,
    PatchComponent::MlpOut,
];

fn fixture(family: &str) -> Model {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(family);
    Model::load(p.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn items() -> Vec<Item> {
    vec![
        Item::new("cat", "The cat sat on the", " of")
            .with_distractor(" and")
            .with_corrupted("The dog sat on the"),
        Item::new("long", "When Mary and John went to the store", " to")
            .with_distractor(" a")
            .with_corrupted("When John and Mary went to the store"),
    ]
}

fn opts() -> PatchOptions {
    PatchOptions {
        components: COMPONENTS.to_vec(),
        ..PatchOptions::default()
    }
}

fn row<'a>(res: &'a PatchResult, item: &str, c: PatchComponent, l: usize, p: usize) -> &'a SweepRow {
    head_row(res, item, c, l, p, None)
}

fn head_row<'a>(
    res: &'a PatchResult,
    item: &str,
    c: PatchComponent,
    l: usize,
    p: usize,
    head: Option<usize>,
) -> &'a SweepRow {
    res.rows
        .iter()
        .find(|r| {
            r.item == item
                && r.component == c.name()
                && r.layer == l
                && r.position == Some(p)
                && r.head == head
        })
        .unwrap()
}

/// `attr` is the directional derivative of the metric along `a_clean − a_corr` at one site, so
/// it must match the central difference `(M(a_corr + εΔ) − M(a_corr − εΔ)) / 2ε` of exact
/// patched runs (the non-differentiable forward). Central differences cancel the second-order
/// term; in f32 the metric carries ~1e-7 relative rounding, i.e. ~1e-4 absolute after dividing by
/// 2ε = 2e-3 at these logit scales, hence 1e-2 relative plus 1e-3 absolute. The per-head
/// components are checked at head 1 (whose rows come from `[pos, head]` or, for the pattern,
/// `[head, pos]` sums).
#[test]
fn gradient_matches_finite_differences() {
    let eps = 1e-3;
    let per_head = [
        PatchComponent::Z,
        PatchComponent::Q,
        PatchComponent::K,
        PatchComponent::V,
        PatchComponent::Pattern,
    ];
    let with_heads = PatchOptions {
        components: COMPONENTS.iter().chain(&per_head).copied().collect(),
        ..opts()
    };
    for fam in FAMILIES {
        let m = fixture(fam);
        let dec = &m.decoder;
        let prepared = prepare_all(&m, &items()[..1]).unwrap();
        let item = &prepared[0];
        let res = attribution_patching_prepared(&m, &prepared, &with_heads).unwrap();
        let corr_run = BaseRun::of(item.corrupted_ids.as_ref().unwrap());
        let n = m.config.n_layers;
        let sites: Vec<_> = COMPONENTS
            .iter()
            .flat_map(|&c| {
                [
                    (c, 0, 1, None),
                    (c, n - 1, item.last(), None),
                    (c, n / 2, item.last() - 1, None),
                ]
            })
            .chain(per_head.iter().map(|&c| (c, n / 2, item.last(), Some(1))))
            .collect();
        for (c, l, p, head) in sites {
            let point = c.point(l);
            let (clean, clean_last) = cached_run(dec, &BaseRun::of(&item.ids), [point]).unwrap();
            let (corr, _) = cached_run(dec, &corr_run, [point]).unwrap();
            let (spec, _) = MetricSpec::for_clean_run(dec, Metric::LogitDiff, item, &clean_last).unwrap();
            let delta = (clean.get(point).unwrap() - corr.get(point).unwrap()).unwrap();
            let job = |s: f64| {
                Job::one(Patch {
                    point,
                    positions: Some(vec![p]),
                    head,
                    value: (corr.get(point).unwrap() + (&delta * s).unwrap()).unwrap(),
                })
            };
            let m_ = run_jobs(
                dec,
                &corr_run,
                &[job(eps), job(-eps)],
                &spec,
                ExecMode::Naive,
                &mut |_| {},
            )
            .unwrap();
            let fd = (m_[0] - m_[1]) / (2.0 * eps);
            let r = head_row(&res, &item.id, c, l, p, head);
            let attr = r.value - res.items[0].corrupted.unwrap();
            let err = (attr - fd).abs();
            println!(
                "{fam} {} l{l} p{p}: attr {attr:.6} fd {fd:.6} |diff| {err:.2e}",
                c.name()
            );
            assert!(
                err <= 1e-2 * attr.abs().max(fd.abs()) + 1e-3,
                "{fam} {} l{l} p{p}: attr {attr} vs fd {fd}",
                c.name()
            );
        }
    }
}

/// Every row is `M_corr + attr` with `attr = Σ_d (a_clean − a_corr)·∂M/∂a` (recomputed here from
/// one tracked forward at resid_pre of block 0) and `normalized = attr / (M_clean − M_corr)`;
/// the all-positions row is the sum of the per-position rows.
#[test]
fn rows_are_the_linear_estimate() {
    let m = fixture("llama");
    let dec = &m.decoder;
    let prepared = prepare_all(&m, &items()).unwrap();
    let res = attribution_patching_prepared(&m, &prepared, &opts()).unwrap();
    let all = attribution_patching_prepared(
        &m,
        &prepared,
        &PatchOptions {
            per_position: false,
            ..opts()
        },
    )
    .unwrap();
    let point = PatchComponent::ResidPre.point(0);
    for (item, summary) in prepared.iter().zip(&res.items) {
        let (clean, corr) = (summary.clean, summary.corrupted.unwrap());
        let (clean_cache, clean_last) = cached_run(dec, &BaseRun::of(&item.ids), [point]).unwrap();
        let (spec, _) = MetricSpec::for_clean_run(dec, Metric::LogitDiff, item, &clean_last).unwrap();
        let grad_dec = dec.differentiable().unwrap();
        let mut sites = GradSites::new([point]);
        let last = last_residual(&grad_dec, item.corrupted_ids.as_ref().unwrap(), &mut sites).unwrap();
        let grads = metric_tensor(&grad_dec, &last, &spec)
            .unwrap()
            .backward()
            .unwrap();
        let (corr_act, grad) = sites.activation_and_grad(point, &grads).unwrap();
        let delta = (clean_cache.get(point).unwrap() - corr_act).unwrap();
        let by_pos: Vec<f32> = (delta * grad)
            .unwrap()
            .sum(2)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        for (p, &a) in by_pos.iter().enumerate() {
            let r = row(&res, &item.id, PatchComponent::ResidPre, 0, p);
            let attr = r.value - corr;
            assert!(
                (attr - a as f64).abs() <= 1e-5 * attr.abs().max(1e-3),
                "{}: p{p} {attr} vs {a}",
                item.id
            );
            let norm = r.normalized.unwrap();
            assert!((norm - attr / (clean - corr)).abs() <= 1e-9 * norm.abs().max(1.0));
        }
        for r in all.rows.iter().filter(|r| r.item == item.id) {
            let c: PatchComponent = r.component.parse().unwrap();
            let sum: f64 = (0..item.len())
                .map(|p| row(&res, &item.id, c, r.layer, p).value - corr)
                .sum();
            assert!(
                (r.value - corr - sum).abs() <= 1e-5 * sum.abs().max(1e-3),
                "{r:?} vs {sum}"
            );
        }
    }
}

/// Pearson r of attribution vs exact normalized effects, printed per component.
fn measure(m: &Model, items: &[Item]) -> Agreement {
    let prepared = prepare_all(m, items).unwrap();
    let attr = attribution_patching_prepared(m, &prepared, &opts()).unwrap();
    let exact = activation_patching_prepared(m, &prepared, &opts(), &mut |_| {}).unwrap();
    let a = agreement(&attr, &exact);
    println!("{}: {a:?}", m.name);
    a
}

#[test]
fn agreement_with_exact_patching_on_fixtures() {
    for fam in FAMILIES {
        let a = measure(&fixture(fam), &items());
        assert!(a.n_rows > 0 && a.overall.unwrap().is_finite(), "{fam}: {a:?}");
    }
}

/// The real model, five factual-recall items (skipped when the file is absent).
#[test]
fn agreement_with_exact_patching_on_smollm2() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let m = Model::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let suite = probes::load(
        "factual",
        m.tokenizer.as_ref().unwrap(),
        &probes::SuiteOptions::default(),
    )
    .unwrap();
    let items: Vec<Item> = suite.items().into_iter().take(5).collect();
    let a = measure(&m, &items);
    // Measured (CPU, f32): resid_pre 0.742, attn_out 0.774, mlp_out 0.796, all rows 0.765.
    for (c, r) in &a.per_component {
        assert!(r.unwrap() > 0.5, "{c}: r = {r:?}");
    }
}
