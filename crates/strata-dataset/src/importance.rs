//! Random-forest importance of structural features for each benchmark, as the seed study mines
//! its dataset: cross-validated R², impurity and permutation importances (mean and spread over
//! seeds) and the partial dependence of the fitted forest along each feature.
//!
//! Design (shared with `scripts/stats-reference.py`, which runs scikit-learn on the same design):
//! - features: [`crate::columns::STRUCTURE`] (numeric, as stored) + `arch_class` as an ordinal code
//!   (the distinct classes of the rows used, sorted by byte order, numbered from 0);
//! - rows: those with the benchmark and every feature present, in file order;
//! - folds: row k (0-based, in that order) is in test fold `k % n_folds`;
//! - CV R²: mean over folds of `r2_score` on the test fold; repeated for each seed;
//! - impurity importance: forest fitted on all rows, per seed; permutation importance: on each test
//!   fold, the drop of R² when one feature's test values are permuted (`n_repeats` times), averaged
//!   over folds and repeats; both reported as mean ± standard deviation over seeds;
//! - partial dependence (forest fitted on all rows, first seed): mean prediction with the feature
//!   set to each grid value (the distinct linear quantiles at 5 %, 15 %, …, 95 %); its "gradient" is
//!   the least-squares slope of that curve, reported per standard deviation of the feature.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::columns::{Column, STRUCTURE};
use crate::error::DatasetError;
use crate::forest::{r2_score, Forest, ForestParams};
use crate::load::Dataset;
use crate::stats::quantile_sorted;

#[derive(Debug, Clone)]
pub struct ImportanceParams {
    pub forest: ForestParams,
    pub n_folds: usize,
    /// Seeds 0..n_seeds (added to `forest.seed`).
    pub n_seeds: usize,
    pub n_repeats: usize,
    /// Compute partial dependence (off saves time when only R² and importances are needed).
    pub partial_dependence: bool,
    /// Feature names left out of the design (e.g. `params_b`, to ask what matters beyond size).
    pub exclude: Vec<String>,
}

impl Default for ImportanceParams {
    fn default() -> Self {
        ImportanceParams {
            forest: ForestParams::default(),
            n_folds: 5,
            n_seeds: 5,
            n_repeats: 5,
            partial_dependence: true,
            exclude: Vec::new(),
        }
    }
}

/// The name used for the architecture-class feature.
pub const ARCH_FEATURE: &str = "arch_class";

/// The design matrix of one benchmark.
#[derive(Debug, Clone)]
pub struct Design {
    pub features: Vec<String>,
    pub x: Vec<Vec<f64>>,
    pub y: Vec<f64>,
    pub model_ids: Vec<String>,
    /// The architecture classes in code order.
    pub arch_classes: Vec<String>,
}

/// Build the design for `target` (see the module docs for the row and encoding rules).
pub fn design(ds: &Dataset, target: Column, exclude: &[String]) -> Result<Design, DatasetError> {
    let y = ds
        .numeric(target)
        .ok_or_else(|| DatasetError::Analysis(format!("the dataset has no `{}` column", target.name())))?;
    let cols: Vec<(Column, &[Option<f64>])> = STRUCTURE
        .iter()
        .filter(|c| !exclude.iter().any(|e| e == c.name()))
        .filter_map(|&c| ds.numeric(c).map(|v| (c, v)))
        .collect();
    let arch = ds
        .text(Column::ArchClass)
        .filter(|_| !exclude.iter().any(|e| e == ARCH_FEATURE));
    let rows: Vec<usize> = (0..ds.len())
        .filter(|&i| {
            y[i].is_some() && cols.iter().all(|(_, v)| v[i].is_some()) && arch.is_none_or(|a| a[i].is_some())
        })
        .collect();
    let mut classes: Vec<String> = match arch {
        Some(a) => rows.iter().filter_map(|&i| a[i].clone()).collect(),
        None => Vec::new(),
    };
    classes.sort();
    classes.dedup();
    let mut features: Vec<String> = cols.iter().map(|(c, _)| c.name().to_string()).collect();
    if arch.is_some() {
        features.push(ARCH_FEATURE.into());
    }
    let x = rows
        .iter()
        .map(|&i| {
            let mut r: Vec<f64> = cols.iter().map(|(_, v)| v[i].unwrap_or(f64::NAN)).collect();
            if let Some(a) = arch {
                let code = classes
                    .binary_search(a[i].as_ref().expect("filtered"))
                    .expect("present");
                r.push(code as f64);
            }
            r
        })
        .collect();
    Ok(Design {
        features,
        x,
        y: rows.iter().map(|&i| y[i].unwrap_or(f64::NAN)).collect(),
        model_ids: rows.iter().map(|&i| ds.model_ids[i].clone()).collect(),
        arch_classes: classes,
    })
}

#[derive(Debug, Clone)]
pub struct FeatureResult {
    pub feature: String,
    pub impurity_mean: f64,
    pub impurity_sd: f64,
    pub permutation_mean: f64,
    pub permutation_sd: f64,
    /// Least-squares slope of the partial-dependence curve × the feature's standard deviation
    /// (score points per SD); `None` for the categorical architecture feature or a constant one.
    pub pd_slope_per_sd: Option<f64>,
    /// max − min of the partial-dependence curve (score points).
    pub pd_range: f64,
    /// (grid value, mean prediction).
    pub pd_curve: Vec<(f64, f64)>,
}

#[derive(Debug, Clone)]
pub struct BenchmarkResult {
    pub benchmark: Column,
    pub n: usize,
    pub n_folds: usize,
    pub cv_r2_per_seed: Vec<f64>,
    pub cv_r2_mean: f64,
    pub cv_r2_sd: f64,
    pub features: Vec<FeatureResult>,
}

impl BenchmarkResult {
    /// The feature ranked first by mean impurity importance.
    pub fn top_impurity(&self) -> &str {
        top(&self.features, |f| f.impurity_mean)
    }

    /// The feature ranked first by mean permutation importance.
    pub fn top_permutation(&self) -> &str {
        top(&self.features, |f| f.permutation_mean)
    }
}

fn top(f: &[FeatureResult], key: impl Fn(&FeatureResult) -> f64) -> &str {
    f.iter()
        .max_by(|a, b| key(a).total_cmp(&key(b)))
        .map(|f| f.feature.as_str())
        .unwrap_or("")
}

/// The seed study's headline finding for a v1 benchmark: the structural feature it reports as most
/// important (`None` for benchmarks it did not analyse).
pub fn paper_top_feature(b: Column) -> Option<&'static str> {
    match b {
        Column::ArcC | Column::HellaSwag | Column::Winogrande => Some("n_layers"),
        Column::TruthfulQa | Column::Gsm8k => Some("d_ffn"),
        Column::Mmlu => Some(ARCH_FEATURE),
        _ => None,
    }
}

fn sd(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return 0.0;
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Cross-validated R² of one seed with the fixed fold rule; also returns the per-feature
/// permutation importance (mean R² drop over folds and repeats).
pub fn cross_validate(d: &Design, p: &ImportanceParams, seed: u64) -> (f64, Vec<f64>) {
    let k = p.n_folds.max(2);
    let n_feat = d.features.len();
    let mut r2s = Vec::with_capacity(k);
    let mut perm = vec![0.0; n_feat];
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9E37_79B9_7F4A_7C15);
    for fold in 0..k {
        let (mut xtr, mut ytr, mut xte, mut yte) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (i, (row, y)) in d.x.iter().zip(&d.y).enumerate() {
            if i % k == fold {
                xte.push(row.clone());
                yte.push(*y);
            } else {
                xtr.push(row.clone());
                ytr.push(*y);
            }
        }
        if xte.is_empty() || xtr.is_empty() {
            continue;
        }
        let fp = ForestParams {
            seed,
            ..p.forest.clone()
        };
        let f = Forest::fit(&xtr, &ytr, &fp);
        let base = r2_score(&yte, &f.predict(&xte));
        r2s.push(base);
        for (j, pj) in perm.iter_mut().enumerate() {
            let mut drop = 0.0;
            for _ in 0..p.n_repeats.max(1) {
                let mut col: Vec<f64> = xte.iter().map(|r| r[j]).collect();
                col.shuffle(&mut rng);
                let xp: Vec<Vec<f64>> = xte
                    .iter()
                    .zip(&col)
                    .map(|(r, v)| {
                        let mut r = r.clone();
                        r[j] = *v;
                        r
                    })
                    .collect();
                drop += base - r2_score(&yte, &f.predict(&xp));
            }
            *pj += drop / p.n_repeats.max(1) as f64;
        }
    }
    let nf = r2s.len().max(1) as f64;
    for v in perm.iter_mut() {
        *v /= nf;
    }
    (mean(&r2s), perm)
}

/// Partial-dependence curve of feature `j`.
pub fn partial_dependence(f: &Forest, x: &[Vec<f64>], j: usize) -> Vec<(f64, f64)> {
    let mut vals: Vec<f64> = x.iter().map(|r| r[j]).collect();
    vals.sort_by(|a, b| a.total_cmp(b));
    let mut grid: Vec<f64> = (0..10)
        .map(|q| quantile_sorted(&vals, 0.05 + 0.1 * q as f64))
        .collect();
    grid.dedup();
    grid.iter()
        .map(|&g| {
            let m = x
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r[j] = g;
                    f.predict_row(&r)
                })
                .sum::<f64>()
                / x.len() as f64;
            (g, m)
        })
        .collect()
}

fn ls_slope(curve: &[(f64, f64)]) -> Option<f64> {
    if curve.len() < 2 {
        return None;
    }
    let mx = curve.iter().map(|c| c.0).sum::<f64>() / curve.len() as f64;
    let my = curve.iter().map(|c| c.1).sum::<f64>() / curve.len() as f64;
    let sxx: f64 = curve.iter().map(|c| (c.0 - mx) * (c.0 - mx)).sum();
    let sxy: f64 = curve.iter().map(|c| (c.0 - mx) * (c.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Run the whole analysis for one benchmark.
pub fn analyse(ds: &Dataset, target: Column, p: &ImportanceParams) -> Result<BenchmarkResult, DatasetError> {
    let d = design(ds, target, &p.exclude)?;
    let n = d.y.len();
    if n < 2 * p.n_folds.max(2) {
        return Err(DatasetError::Analysis(format!(
            "{}: only {n} rows with the benchmark and full structure; too few for {}-fold CV",
            target.name(),
            p.n_folds
        )));
    }
    let nf = d.features.len();
    let mut r2 = Vec::new();
    let mut imp = vec![Vec::new(); nf];
    let mut perm = vec![Vec::new(); nf];
    let mut first: Option<Forest> = None;
    for s in 0..p.n_seeds.max(1) {
        let seed = p.forest.seed + s as u64;
        let (cv, pi) = cross_validate(&d, p, seed);
        r2.push(cv);
        let f = Forest::fit(
            &d.x,
            &d.y,
            &ForestParams {
                seed,
                ..p.forest.clone()
            },
        );
        for j in 0..nf {
            imp[j].push(f.impurity_importance[j]);
            perm[j].push(pi[j]);
        }
        if first.is_none() {
            first = Some(f);
        }
    }
    let forest = first.expect("at least one seed");
    let features = (0..nf)
        .map(|j| {
            let curve = if p.partial_dependence {
                partial_dependence(&forest, &d.x, j)
            } else {
                Vec::new()
            };
            let pd_range = curve.iter().map(|c| c.1).fold(f64::NEG_INFINITY, f64::max)
                - curve.iter().map(|c| c.1).fold(f64::INFINITY, f64::min);
            let col: Vec<f64> = d.x.iter().map(|r| r[j]).collect();
            let slope = if d.features[j] == ARCH_FEATURE {
                None
            } else {
                ls_slope(&curve).map(|s| s * sd(&col))
            };
            FeatureResult {
                feature: d.features[j].clone(),
                impurity_mean: mean(&imp[j]),
                impurity_sd: sd(&imp[j]),
                permutation_mean: mean(&perm[j]),
                permutation_sd: sd(&perm[j]),
                pd_slope_per_sd: slope,
                pd_range: if curve.is_empty() { f64::NAN } else { pd_range },
                pd_curve: curve,
            }
        })
        .collect();
    Ok(BenchmarkResult {
        benchmark: target,
        n,
        n_folds: p.n_folds,
        cv_r2_mean: mean(&r2),
        cv_r2_sd: sd(&r2),
        cv_r2_per_seed: r2,
        features,
    })
}
