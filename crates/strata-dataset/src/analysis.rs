//! Dataset-level analyses assembled into [`Table`]s for the CLI (which only prints or writes them).

use crate::columns::{Column, STRUCTURE, V1_BENCHMARKS, V2_BENCHMARKS};
use crate::importance::{paper_top_feature, BenchmarkResult};
use crate::load::Dataset;
use crate::stats::{self, benjamini_hochberg, bootstrap_ci, complete_pairs, describe, Method};
use crate::table::{fmt, pct, Table};
use crate::trends;

/// Numeric columns present in the dataset, structure first then benchmarks.
pub fn numeric_columns(ds: &Dataset) -> Vec<Column> {
    Column::ALL
        .iter()
        .copied()
        .filter(|c| c.is_numeric() && ds.numeric(*c).is_some())
        .collect()
}

/// Benchmarks present (v1 then v2) with at least one value.
pub fn benchmarks(ds: &Dataset) -> Vec<Column> {
    V1_BENCHMARKS
        .iter()
        .chain(V2_BENCHMARKS)
        .copied()
        .filter(|c| ds.numeric(*c).is_some_and(|v| v.iter().any(Option::is_some)))
        .collect()
}

/// The paper's descriptive table (exactly its columns) plus n.
pub fn describe_table(ds: &Dataset) -> Table {
    let mut t = Table::new(
        format!("Descriptive statistics ({} models)", ds.len()),
        &[
            "Column",
            "Mean",
            "Mode",
            "Q1",
            "Q2",
            "Q3",
            "Max",
            "Skewness",
            "Kurtosis",
            "Miss Rate",
            "n",
        ],
    );
    for c in numeric_columns(ds) {
        let d = describe(ds.numeric(c).unwrap_or(&[]));
        t.push(vec![
            c.name().into(),
            fmt(d.mean),
            fmt(d.mode),
            fmt(d.q1),
            fmt(d.q2),
            fmt(d.q3),
            fmt(d.max),
            fmt(d.skewness),
            fmt(d.kurtosis),
            pct(d.miss_rate),
            d.n.to_string(),
        ]);
    }
    t.notes = vec![
        "Quantiles: numpy/pandas linear interpolation. Skewness: scipy.stats.skew (bias=True). \
         Kurtosis: scipy.stats.kurtosis (Fisher, excess; bias=True). Mode: smallest most frequent value. \
         Miss Rate over all rows; n = non-missing values each statistic rests on."
            .into(),
        "Units: params_b in billions, scores 0-100.".into(),
    ];
    t
}

#[derive(Debug, Clone)]
pub struct CorrelateOptions {
    pub methods: Vec<Method>,
    /// Bootstrap resamples for the confidence intervals (0 = none).
    pub bootstrap: usize,
    pub level: f64,
    pub seed: u64,
    /// Also compute partial correlations controlling for log10(params_b).
    pub partial: bool,
}

impl Default for CorrelateOptions {
    fn default() -> Self {
        CorrelateOptions {
            methods: vec![Method::Pearson, Method::Spearman, Method::Kendall],
            bootstrap: 1000,
            level: 0.95,
            seed: 20250918,
            partial: true,
        }
    }
}

#[derive(Debug, Clone)]
pub struct CorrRow {
    pub feature: Column,
    pub benchmark: Column,
    /// "pearson" | "spearman" | "kendall" | "partial_pearson"
    pub method: &'static str,
    pub n: usize,
    pub r: f64,
    pub p: f64,
    /// Benjamini–Hochberg adjusted over all rows of the same method.
    pub p_bh: f64,
    pub ci_lo: f64,
    pub ci_hi: f64,
}

/// Every structural feature × every benchmark, pairwise-complete.
pub fn correlate(ds: &Dataset, o: &CorrelateOptions) -> Vec<CorrRow> {
    let feats: Vec<Column> = STRUCTURE
        .iter()
        .copied()
        .filter(|c| ds.numeric(*c).is_some())
        .collect();
    let benches = benchmarks(ds);
    let logp: Option<Vec<Option<f64>>> = ds
        .numeric(Column::ParamsB)
        .map(|v| v.iter().map(|x| x.filter(|&p| p > 0.0).map(f64::log10)).collect());
    let mut out = Vec::new();
    let mut methods: Vec<&'static str> = o.methods.iter().map(|m| m.name()).collect();
    if o.partial && logp.is_some() {
        methods.push("partial_pearson");
    }
    for &f in &feats {
        for &b in &benches {
            let xv = ds.numeric(f).unwrap_or(&[]);
            let yv = ds.numeric(b).unwrap_or(&[]);
            let (x, y) = complete_pairs(xv, yv);
            for (k, &m) in o.methods.iter().enumerate() {
                let c = m.compute(&x, &y);
                let (lo, hi) = if o.bootstrap > 0 {
                    bootstrap_ci(
                        &x,
                        &y,
                        |a, b| m.compute(a, b).r,
                        o.bootstrap,
                        o.level,
                        o.seed + k as u64,
                    )
                } else {
                    (f64::NAN, f64::NAN)
                };
                out.push(CorrRow {
                    feature: f,
                    benchmark: b,
                    method: m.name(),
                    n: c.n,
                    r: c.r,
                    p: c.p,
                    p_bh: f64::NAN,
                    ci_lo: lo,
                    ci_hi: hi,
                });
            }
            if let (true, Some(lp)) = (o.partial && f != Column::ParamsB, logp.as_ref()) {
                let mut x = Vec::new();
                let mut y = Vec::new();
                let mut z = Vec::new();
                for i in 0..ds.len() {
                    if let (Some(a), Some(b), Some(c)) = (xv[i], yv[i], lp[i]) {
                        x.push(a);
                        y.push(b);
                        z.push(c);
                    }
                }
                let c = stats::partial(&x, &y, &[&z]);
                let (lo, hi) = if o.bootstrap > 0 {
                    // resample (x, y, z) rows together: pack z into the pair via index
                    let idx: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
                    bootstrap_ci(
                        &idx,
                        &idx,
                        |a, _| {
                            let ii: Vec<usize> = a.iter().map(|v| *v as usize).collect();
                            let bx: Vec<f64> = ii.iter().map(|&i| x[i]).collect();
                            let by: Vec<f64> = ii.iter().map(|&i| y[i]).collect();
                            let bz: Vec<f64> = ii.iter().map(|&i| z[i]).collect();
                            stats::partial(&bx, &by, &[&bz]).r
                        },
                        o.bootstrap,
                        o.level,
                        o.seed + 100,
                    )
                } else {
                    (f64::NAN, f64::NAN)
                };
                out.push(CorrRow {
                    feature: f,
                    benchmark: b,
                    method: "partial_pearson",
                    n: c.n,
                    r: c.r,
                    p: c.p,
                    p_bh: f64::NAN,
                    ci_lo: lo,
                    ci_hi: hi,
                });
            }
        }
    }
    for m in methods {
        let idx: Vec<usize> = (0..out.len()).filter(|&i| out[i].method == m).collect();
        let p: Vec<f64> = idx.iter().map(|&i| out[i].p).collect();
        for (k, adj) in benjamini_hochberg(&p).into_iter().enumerate() {
            out[idx[k]].p_bh = adj;
        }
    }
    out
}

/// Long-format table of [`correlate`]'s rows.
pub fn correlation_table(rows: &[CorrRow], o: &CorrelateOptions) -> Table {
    let mut t = Table::new(
        "Correlations of structure with benchmarks",
        &[
            "Feature",
            "Benchmark",
            "Method",
            "n",
            "r",
            "p",
            "p (BH)",
            "CI lo",
            "CI hi",
        ],
    );
    for r in rows {
        t.push(vec![
            r.feature.name().into(),
            r.benchmark.name().into(),
            r.method.into(),
            r.n.to_string(),
            fmt(r.r),
            fmt(r.p),
            fmt(r.p_bh),
            fmt(r.ci_lo),
            fmt(r.ci_hi),
        ]);
    }
    t.notes = vec![
        format!(
            "Pairwise-complete rows (n per line). p: two-sided, as scipy.stats.pearsonr / spearmanr / kendalltau (tau-b). \
             p (BH): Benjamini-Hochberg over all lines of the same method. CI: {:.0}% percentile bootstrap, {} resamples, seed {}. \
             partial_pearson: Pearson r of residuals after regressing both on log10(params_b), t with n-3 df.",
            100.0 * o.level,
            o.bootstrap,
            o.seed
        ),
        "Small n (< 20) makes any coefficient unreliable; check the n column.".into(),
    ];
    t
}

/// Importance tables: a summary (one line per benchmark) and the per-feature details.
pub fn importance_tables(results: &[BenchmarkResult], sklearn_note: Option<&str>) -> (Table, Table) {
    let mut s = Table::new(
        "Random-forest importance per benchmark",
        &[
            "Benchmark",
            "n",
            "CV R² (mean ± sd over seeds)",
            "Top (impurity)",
            "Top (permutation)",
            "Paper's top",
            "Matches paper",
        ],
    );
    for r in results {
        let paper = paper_top_feature(r.benchmark);
        s.push(vec![
            r.benchmark.name().into(),
            r.n.to_string(),
            format!("{} ± {}", fmt(r.cv_r2_mean), fmt(r.cv_r2_sd)),
            r.top_impurity().into(),
            r.top_permutation().into(),
            paper.unwrap_or("-").into(),
            match paper {
                Some(p) => if p == r.top_impurity() { "yes" } else { "no" }.into(),
                None => "-".into(),
            },
        ]);
    }
    s.notes.push(
        format!(
            "Rows with the benchmark and every feature present (n). Features: {} (arch_class as an ordinal code). \
             CV: fold = row index mod k in file order. Importances: mean over seeds; 'Matches paper' compares the impurity \
             top feature with the seed study's headline finding.",
            results.first().map(|r| r.features.iter().map(|f| f.feature.as_str()).collect::<Vec<_>>().join(", ")).unwrap_or_default()
        ),
    );
    if let Some(n) = sklearn_note {
        s.notes.push(n.into());
    }
    let mut d = Table::new(
        "Feature importances and partial dependence",
        &[
            "Benchmark",
            "n",
            "Feature",
            "Impurity (mean)",
            "Impurity (sd)",
            "Permutation ΔR² (mean)",
            "Permutation (sd)",
            "PD slope per SD",
            "PD range",
        ],
    );
    for r in results {
        for f in &r.features {
            d.push(vec![
                r.benchmark.name().into(),
                r.n.to_string(),
                f.feature.clone(),
                fmt(f.impurity_mean),
                fmt(f.impurity_sd),
                fmt(f.permutation_mean),
                fmt(f.permutation_sd),
                f.pd_slope_per_sd.map(fmt).unwrap_or_default(),
                fmt(f.pd_range),
            ]);
        }
    }
    d.notes.push(
        "PD: partial dependence of the forest fitted on all n rows (first seed) over the 5%..95% quantile grid; \
         slope = least-squares slope of the PD curve x the feature's SD (score points per SD); range = max-min of the curve."
            .into(),
    );
    (s, d)
}

/// Yearly medians and quartiles of the structural columns.
pub fn trends_table(ds: &Dataset) -> Table {
    let mut t = Table::new(
        "Structure over release year",
        &["Column", "Year", "n", "Q1", "Median", "Q3"],
    );
    for &c in STRUCTURE {
        for y in trends::yearly(ds, c) {
            t.push(vec![
                c.name().into(),
                y.year.to_string(),
                y.n.to_string(),
                fmt(y.q1),
                fmt(y.median),
                fmt(y.q3),
            ]);
        }
    }
    t.notes.push(
        "Year: release_date, else upload_date. n: models of that year with the column present. Quartiles: linear.".into(),
    );
    t
}
