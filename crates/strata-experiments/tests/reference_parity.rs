//! strata's experiments against independent references computed with transformers and PyTorch
//! hooks (`scripts/make-experiment-references.py`, files in tests/fixtures/experiments/).
//!
//! Tolerances: fixtures 1e-4, real models (f32, dequantized GGUF) 1e-3 — absolute on
//! probabilities and logit differences, relative (× max(1, |ref|)) on logits, losses, KL and
//! entropies. Lens ranks must be identical.

mod common;

use common::{f, load_model, reference};
use strata_experiments::*;

#[derive(Default, Debug)]
struct Worst {
    prob: f64,
    logit: f64,
    kl: f64,
    entropy: f64,
    ablate: f64,
    patch: f64,
    /// Rows whose rank differs from the reference only among near-tied logits.
    ranks_within_ties: usize,
}

fn check(what: &str, actual: f64, expected: f64, tol: f64, relative: bool, worst: &mut f64) {
    let scale = if relative { expected.abs().max(1.0) } else { 1.0 };
    let err = (actual - expected).abs();
    assert!(
        err <= tol * scale,
        "{what}: strata {actual} vs reference {expected} (error {err:e}, tolerance {:e})",
        tol * scale
    );
    *worst = worst.max(err / scale);
}

fn run_case(case: &str, tol: f64) -> Worst {
    let r = reference(case);
    let model = load_model(&r);
    let item = Item::new(case, r["prompt"].as_str().unwrap(), r["target"].as_str().unwrap())
        .with_distractor(r["distractor"].as_str().unwrap())
        .with_corrupted(r["corrupted"].as_str().unwrap());
    let prepared = prepare(&model, &item).unwrap();
    let ref_ids: Vec<u32> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    assert_eq!(prepared.ids, ref_ids, "{case}: token ids");
    assert_eq!(prepared.target as u64, r["target_id"].as_u64().unwrap());
    let mut w = Worst::default();

    // Lens.
    let lens = logit_lens(&model, std::slice::from_ref(&item), &LensOptions::default()).unwrap();
    let lens = &lens[0];
    let ref_rows = r["lens"].as_array().unwrap();
    assert_eq!(lens.rows.len(), ref_rows.len(), "{case}: lens rows");
    for e in ref_rows {
        let (l, p) = (
            e["layer"].as_u64().unwrap() as usize,
            e["position"].as_u64().unwrap() as usize,
        );
        let a = lens.row(l, p).unwrap();
        let at = format!("{case} lens layer {l} position {p}");
        // Ranks are identical unless other tokens' logits lie within float noise of the
        // target's (`near_ties`), which can then fall on either side.
        let (rank, expected) = (a.target_rank as i64, e["target_rank"].as_i64().unwrap());
        let ties = e["near_ties"].as_i64().unwrap();
        assert!(
            (rank - expected).abs() <= ties,
            "{at}: rank {rank} vs reference {expected} ({ties} near ties)"
        );
        if rank != expected {
            w.ranks_within_ties += 1;
        }
        check(
            &format!("{at} prob"),
            a.target_prob,
            f(&e["target_prob"]),
            tol,
            false,
            &mut w.prob,
        );
        check(
            &format!("{at} logit"),
            a.target_logit,
            f(&e["target_logit"]),
            tol,
            true,
            &mut w.logit,
        );
        check(
            &format!("{at} kl"),
            a.kl_to_final,
            f(&e["kl_to_final"]),
            tol,
            true,
            &mut w.kl,
        );
        check(
            &format!("{at} entropy"),
            a.entropy,
            f(&e["entropy"]),
            tol,
            true,
            &mut w.entropy,
        );
        let top1 = e["top5"][0].as_u64().unwrap() as u32;
        assert_eq!(a.top[0].id, top1, "{at}: top-1 token");
    }

    // Zero ablations, every metric.
    let abl = r["ablations"].as_array().unwrap();
    let mut layers: Vec<usize> = abl
        .iter()
        .filter(|a| a["component"] != "head")
        .map(|a| a["layer"].as_u64().unwrap() as usize)
        .collect();
    layers.dedup();
    let head_ref = abl.iter().find(|a| a["component"] == "head").unwrap();
    let head_layer = head_ref["layer"].as_u64().unwrap() as usize;
    for metric in [Metric::LogitDiff, Metric::TargetProb, Metric::Loss, Metric::Kl] {
        let opts = AblateOptions {
            components: vec![
                AblateComponent::AttnOut,
                AblateComponent::MlpOut,
                AblateComponent::Block,
            ],
            metric,
            layers: Some(layers.clone()),
            ..Default::default()
        };
        let res = ablate(&model, std::slice::from_ref(&item), &opts, &mut |_| {}).unwrap();
        let heads = AblateOptions {
            components: vec![AblateComponent::Head],
            layers: Some(vec![head_layer]),
            ..opts.clone()
        };
        let res_h = ablate(&model, std::slice::from_ref(&item), &heads, &mut |_| {}).unwrap();
        let relative = matches!(metric, Metric::Loss | Metric::Kl);
        check(
            &format!("{case} clean {metric}"),
            res.clean,
            f(&r["clean"][metric.name()]),
            tol,
            relative,
            &mut w.ablate,
        );
        check(
            &format!("{case} corrupted {metric}"),
            res.corrupted.unwrap(),
            f(&r["corrupted_metrics"][metric.name()]),
            tol,
            relative,
            &mut w.ablate,
        );
        for e in abl {
            let comp = e["component"].as_str().unwrap();
            let l = e["layer"].as_u64().unwrap() as usize;
            let head = e["head"].as_u64().map(|h| h as usize);
            let rows = if comp == "head" { &res_h.rows } else { &res.rows };
            let a = rows
                .iter()
                .find(|x| x.component == comp && x.layer == l && x.head == head)
                .unwrap_or_else(|| panic!("{case}: no row {comp} {l} {head:?}"));
            check(
                &format!("{case} ablate {comp} layer {l} head {head:?} {metric}"),
                a.value,
                f(&e[metric.name()]),
                tol,
                relative,
                &mut w.ablate,
            );
        }
    }

    // Denoising patching: resid_pre sweep and one head's z.
    let opts = PatchOptions::default();
    let res = activation_patching(&model, std::slice::from_ref(&item), &opts, &mut |_| {}).unwrap();
    for e in r["patch_resid_pre"].as_array().unwrap() {
        let (l, p) = (
            e["layer"].as_u64().unwrap() as usize,
            e["position"].as_u64().unwrap() as usize,
        );
        let a = res
            .rows
            .iter()
            .find(|x| x.layer == l && x.position == Some(p))
            .unwrap();
        check(
            &format!("{case} patch resid_pre {l} {p}"),
            a.value,
            f(&e["value"]),
            tol,
            false,
            &mut w.patch,
        );
    }
    let z = &r["patch_z"];
    let (zl, zh) = (
        z["layer"].as_u64().unwrap() as usize,
        z["head"].as_u64().unwrap() as usize,
    );
    let zopts = PatchOptions {
        components: vec![PatchComponent::Z],
        per_position: false,
        layers: Some(vec![zl]),
        ..Default::default()
    };
    let zres = activation_patching(&model, std::slice::from_ref(&item), &zopts, &mut |_| {}).unwrap();
    let a = zres.rows.iter().find(|x| x.head == Some(zh)).unwrap();
    check(
        &format!("{case} patch z {zl}.{zh}"),
        a.value,
        f(&z["value"]),
        tol,
        false,
        &mut w.patch,
    );
    eprintln!("{case}: max errors {w:?}");
    w
}

#[test]
fn fixtures_match_transformers() {
    for case in ["llama", "gemma2", "gpt2"] {
        run_case(case, 1e-4);
    }
}

#[test]
fn smollm2_matches_transformers() {
    run_case("smollm2", 1e-3);
}

#[test]
fn gemma3_matches_transformers() {
    run_case("gemma3", 1e-3);
}
