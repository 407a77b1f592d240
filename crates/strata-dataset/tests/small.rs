//! Small hand-made cases against scipy (`tests/fixtures/dataset/small.json`, made by
//! `scripts/stats-reference.py`): the exact Kendall path (n <= 33, no ties), ties, BH with ties.

use strata_dataset::stats::{benjamini_hochberg, describe, kendall, pearson, spearman};

fn load() -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/dataset/small.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn v(x: &serde_json::Value) -> Vec<f64> {
    x.as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_f64().unwrap())
        .collect()
}

#[test]
fn correlations_and_p_values() {
    let j = load();
    for (name, c) in j["correlations"].as_object().unwrap() {
        let (x, y) = (v(&c["x"]), v(&c["y"]));
        for (m, got) in [
            ("pearson", pearson(&x, &y)),
            ("spearman", spearman(&x, &y)),
            ("kendall", kendall(&x, &y)),
        ] {
            let want = v(&c[m]);
            assert!(
                (got.r - want[0]).abs() <= 1e-9,
                "{name} {m} r: {} vs {}",
                got.r,
                want[0]
            );
            assert!(
                (got.p - want[1]).abs() <= 1e-6,
                "{name} {m} p: {} vs {}",
                got.p,
                want[1]
            );
            assert_eq!(got.n, x.len());
        }
    }
}

#[test]
fn describe_small() {
    let j = load();
    for (name, c) in j["describe"].as_object().unwrap() {
        let x: Vec<Option<f64>> = v(&c["x"]).into_iter().map(Some).collect();
        let d = describe(&x);
        for (k, got) in [
            ("mean", d.mean),
            ("mode", d.mode),
            ("q1", d.q1),
            ("q2", d.q2),
            ("q3", d.q3),
            ("skewness", d.skewness),
            ("kurtosis", d.kurtosis),
        ] {
            let want = c[k].as_f64().unwrap();
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{name} {k}: {got} vs {want}"
            );
        }
    }
}

#[test]
fn benjamini_hochberg_matches_scipy() {
    let j = load();
    let got = benjamini_hochberg(&v(&j["bh"]["p"]));
    for (g, w) in got.iter().zip(v(&j["bh"]["adjusted"])) {
        assert!((g - w).abs() <= 1e-12, "{g} vs {w}");
    }
}
