//! strata-dataset against the scipy / scikit-learn references in `tests/fixtures/dataset/`
//! (made by `scripts/stats-reference.py` from the bundled dataset; never from this crate's output).

use std::collections::HashMap;
use std::path::PathBuf;

use strata_dataset::analysis::{correlate, CorrelateOptions};
use strata_dataset::columns::{parse_column, V1_BENCHMARKS};
use strata_dataset::importance::{analyse, ImportanceParams};
use strata_dataset::stats::describe;
use strata_dataset::{load, Dataset, LoadOptions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn bundled() -> Dataset {
    let (ds, report) = load(
        root().join("data/structure_performance.csv"),
        &LoadOptions::default(),
    )
    .expect("bundled dataset loads");
    assert!(report.skipped.is_empty());
    assert_eq!(report.duplicates_dropped, 0);
    ds
}

fn fixture(name: &str) -> Vec<HashMap<String, String>> {
    let path = root().join("tests/fixtures/dataset").join(name);
    let mut rdr = csv::Reader::from_path(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = rdr.headers().unwrap().clone();
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            headers
                .iter()
                .zip(r.iter())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

fn f(s: &str) -> f64 {
    s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn dataset_size_and_coverage() {
    let ds = bundled();
    assert!(ds.len() >= 100);
    // at least 100 models with all six v1 scores and full structure
    let full = (0..ds.len())
        .filter(|&i| {
            V1_BENCHMARKS.iter().all(|b| ds.numeric(*b).unwrap()[i].is_some())
                && strata_dataset::columns::STRUCTURE
                    .iter()
                    .all(|c| ds.numeric(*c).unwrap()[i].is_some())
        })
        .count();
    assert!(full >= 100, "only {full} complete models");
}

#[test]
fn describe_matches_scipy() {
    let ds = bundled();
    let rows = fixture("describe.csv");
    assert!(rows.len() >= 20);
    for r in rows {
        let c = parse_column(&r["column"]).unwrap_or_else(|| panic!("unknown column {}", r["column"]));
        let d = describe(ds.numeric(c).unwrap());
        assert_eq!(d.n, r["n"].parse::<usize>().unwrap(), "{}: n", r["column"]);
        for (name, ours) in [
            ("mean", d.mean),
            ("mode", d.mode),
            ("q1", d.q1),
            ("q2", d.q2),
            ("q3", d.q3),
            ("max", d.max),
            ("skewness", d.skewness),
            ("kurtosis", d.kurtosis),
            ("miss_rate", d.miss_rate),
        ] {
            let want = f(&r[name]);
            assert!(
                close(ours, want, 1e-9),
                "{} {name}: ours {ours} scipy {want}",
                r["column"]
            );
        }
    }
}

#[test]
fn correlations_match_scipy() {
    let ds = bundled();
    let o = CorrelateOptions {
        bootstrap: 0,
        ..Default::default()
    };
    let ours = correlate(&ds, &o);
    let want = fixture("correlations.csv");
    assert_eq!(ours.len(), want.len(), "same feature x benchmark x method grid");
    let by: HashMap<(String, String, String), &strata_dataset::analysis::CorrRow> = ours
        .iter()
        .map(|r| {
            (
                (
                    r.feature.name().to_string(),
                    r.benchmark.name().to_string(),
                    r.method.to_string(),
                ),
                r,
            )
        })
        .collect();
    let mut kendall_asym = 0;
    for w in &want {
        let key = (w["feature"].clone(), w["benchmark"].clone(), w["method"].clone());
        let o = by.get(&key).unwrap_or_else(|| panic!("missing {key:?}"));
        assert_eq!(o.n, w["n"].parse::<usize>().unwrap(), "{key:?} n");
        assert!(
            close(o.r, f(&w["r"]), 1e-9),
            "{key:?} r: ours {} scipy {}",
            o.r,
            w["r"]
        );
        assert!(
            (o.p - f(&w["p"])).abs() <= 1e-6,
            "{key:?} p: ours {} scipy {}",
            o.p,
            w["p"]
        );
        assert!(
            (o.p_bh - f(&w["p_bh"])).abs() <= 1e-6,
            "{key:?} p_bh: ours {} scipy {}",
            o.p_bh,
            w["p_bh"]
        );
        if w["method"] == "kendall" {
            kendall_asym += 1;
        }
    }
    assert!(kendall_asym > 0);
}

#[test]
fn bootstrap_ci_is_seeded_and_brackets_r() {
    let ds = bundled().filter(|i| i % 2 == 0);
    let o = CorrelateOptions {
        bootstrap: 200,
        ..Default::default()
    };
    let a = correlate(&ds, &o);
    let b = correlate(&ds, &o);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.ci_lo.to_bits(), y.ci_lo.to_bits());
        assert_eq!(x.ci_hi.to_bits(), y.ci_hi.to_bits());
        if x.n >= 20 && x.r.is_finite() && x.ci_lo.is_finite() {
            assert!(x.ci_lo <= x.ci_hi);
        }
    }
}

#[test]
fn random_forest_matches_sklearn() {
    let ds = bundled();
    let text = std::fs::read_to_string(root().join("tests/fixtures/dataset/forest.json")).unwrap();
    let refj: serde_json::Value = serde_json::from_str(&text).unwrap();
    let meta = &refj["meta"];
    let p = ImportanceParams {
        forest: strata_dataset::forest::ForestParams {
            n_trees: meta["n_trees"].as_u64().unwrap() as usize,
            ..Default::default()
        },
        n_folds: meta["n_folds"].as_u64().unwrap() as usize,
        n_seeds: meta["seeds"].as_array().unwrap().len(),
        n_repeats: 1,
        partial_dependence: false,
        exclude: Vec::new(),
    };
    for &b in V1_BENCHMARKS {
        let w = &refj["benchmarks"][b.name()];
        let r = analyse(&ds, b, &p).unwrap();
        assert_eq!(r.n as u64, w["n"].as_u64().unwrap(), "{}: n", b.name());
        let sk = w["cv_r2_mean"].as_f64().unwrap();
        assert!(
            (r.cv_r2_mean - sk).abs() <= 0.05,
            "{}: CV R² ours {} sklearn {sk}",
            b.name(),
            r.cv_r2_mean
        );
        assert_eq!(
            r.top_impurity(),
            w["top_feature"].as_str().unwrap(),
            "{}: top feature",
            b.name()
        );
    }
}
