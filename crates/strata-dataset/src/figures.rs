//! The dataset analyses as figures (drawn by `strata-report`, written as PNG + SVG):
//!
//! - [`trends_figure`]: structural parameters over release year, one panel per parameter: the
//!   yearly median with the first and third quartiles, the number of models per year in each
//!   panel's x-axis label;
//! - [`importance_figure`]: random-forest importances, one panel per benchmark (horizontal bars,
//!   impurity and permutation importance, ± their standard deviation over seeds, a value axis
//!   shared by all panels), titled with the benchmark, n and the cross-validated R²;
//! - [`correlation_heatmap`]: features × benchmarks for one correlation method, diverging colours
//!   centred at 0 with limits ±1, the coefficient written in each cell and put in parentheses when
//!   its Benjamini–Hochberg adjusted p-value is at or above [`BH_ALPHA`].

use std::path::Path;

use strata_report::{BarSeries, Bars, Figure, FigureFiles, Heatmap, LineSeries, Lines, Panels, Scale};

use crate::analysis::CorrRow;
use crate::columns::{Column, STRUCTURE};
use crate::importance::BenchmarkResult;
use crate::load::Dataset;
use crate::trends;

/// Cells whose BH-adjusted p-value is at or above this level are marked as not significant.
pub const BH_ALPHA: f64 = 0.05;

/// The structural parameters shown over time, and whether each gets a log axis.
pub const TREND_COLUMNS: &[(Column, bool)] = &[
    (Column::ParamsB, true),
    (Column::DModel, false),
    (Column::DFfn, false),
    (Column::NLayers, false),
    (Column::NHeads, false),
    (Column::ContextLength, true),
];

fn unit(c: Column) -> &'static str {
    match c {
        Column::ParamsB => "params_b (billions, log)",
        Column::ContextLength => "context_length (tokens, log)",
        _ => c.name(),
    }
}

/// Structural parameters over release year (see the module docs); `None` when no row has a year.
pub fn trends_figure(ds: &Dataset) -> Option<Panels> {
    let mut panels = Vec::new();
    let mut total_years = std::collections::BTreeSet::new();
    for &(c, log) in TREND_COLUMNS {
        let ys = trends::yearly(ds, c);
        if ys.is_empty() {
            continue;
        }
        total_years.extend(ys.iter().map(|y| y.year));
        let pts = |f: fn(&trends::YearStat) -> f64| -> Vec<(f64, f64)> {
            ys.iter().map(|y| (y.year as f64, f(y))).collect()
        };
        let n_total: usize = ys.iter().map(|y| y.n).sum();
        let per_year = ys
            .iter()
            .map(|y| format!("{} {}", y.year, y.n))
            .collect::<Vec<_>>()
            .join(", ");
        let (lo, hi) = (ys[0].year as f64, ys[ys.len() - 1].year as f64);
        panels.push(Figure::Lines(Lines {
            title: format!("{} (n = {n_total})", c.name()),
            x_label: format!("release year; n per year: {per_year}"),
            y_label: unit(c).into(),
            series: vec![
                LineSeries::new("median", pts(|y| y.median)),
                LineSeries::new("Q1 (25%)", pts(|y| y.q1)),
                LineSeries::new("Q3 (75%)", pts(|y| y.q3)),
            ],
            y_log: log,
            x_range: Some((lo - 0.5, hi + 0.5)),
            y_range: None,
        }));
    }
    if panels.is_empty() {
        return None;
    }
    Some(Panels {
        title: format!(
            "Structure over release year: yearly median and quartiles ({} models, {} years)",
            ds.len(),
            total_years.len()
        ),
        panels,
        columns: 3,
    })
}

/// Importance bars, one panel per benchmark (see the module docs); `None` for no results.
pub fn importance_figure(results: &[BenchmarkResult]) -> Option<Panels> {
    let first = results.first()?;
    let mut lo = 0.0f64;
    let mut hi = 0.0f64;
    for r in results {
        for f in &r.features {
            for (m, s) in [
                (f.impurity_mean, f.impurity_sd),
                (f.permutation_mean, f.permutation_sd),
            ] {
                let s = if s.is_finite() { s } else { 0.0 };
                if m.is_finite() {
                    lo = lo.min(m - s);
                    hi = hi.max(m + s);
                }
            }
        }
    }
    let span = (hi - lo).max(1e-9);
    let range = (if lo < 0.0 { lo - 0.04 * span } else { 0.0 }, hi + 0.04 * span);
    let panels = results
        .iter()
        .map(|r| {
            let cats: Vec<String> = r.features.iter().map(|f| f.feature.clone()).collect();
            let series = |name: &str, m: fn(&crate::importance::FeatureResult) -> (f64, f64)| BarSeries {
                name: name.into(),
                values: r.features.iter().map(|f| m(f).0).collect(),
                errors: (r.cv_r2_per_seed.len() > 1).then(|| r.features.iter().map(|f| m(f).1).collect()),
            };
            let r2 = if r.cv_r2_per_seed.len() > 1 {
                format!("{:.3} ± {:.3}", r.cv_r2_mean, r.cv_r2_sd)
            } else {
                format!("{:.3}", r.cv_r2_mean)
            };
            Figure::Bars(Bars {
                title: format!("{}: n = {}, CV R² = {r2}", r.benchmark.name(), r.n),
                categories: cats,
                series: vec![
                    series("impurity", |f| (f.impurity_mean, f.impurity_sd)),
                    series("permutation ΔR²", |f| (f.permutation_mean, f.permutation_sd)),
                ],
                x_label: if r.cv_r2_per_seed.len() > 1 {
                    "importance (mean ± sd over seeds)"
                } else {
                    "importance (one seed)"
                }
                .into(),
                y_label: String::new(),
                horizontal: true,
                value_range: Some(range),
            })
        })
        .collect();
    Some(Panels {
        title: format!(
            "Random-forest importance per benchmark ({} seed{}, {}-fold CV; n = rows with the benchmark and full structure)",
            first.cv_r2_per_seed.len(),
            if first.cv_r2_per_seed.len() == 1 { "" } else { "s" },
            first.n_folds
        ),
        panels,
        columns: 3.min(results.len()),
    })
}

/// The coefficient's symbol, for the colour bar.
fn method_symbol(method: &str) -> &str {
    match method {
        "pearson" => "r",
        "spearman" => "ρ",
        "kendall" => "τ-b",
        "partial_pearson" => "partial r",
        m => m,
    }
}

fn method_label(method: &str) -> &str {
    match method {
        "pearson" => "Pearson r",
        "spearman" => "Spearman ρ",
        "kendall" => "Kendall τ-b",
        "partial_pearson" => "partial Pearson r given log10(params_b)",
        m => m,
    }
}

/// Features × benchmarks heatmap of one method's coefficients (see the module docs); `None` when
/// `rows` has no line of that method.
pub fn correlation_heatmap(rows: &[CorrRow], method: &str) -> Option<Heatmap> {
    let rows: Vec<&CorrRow> = rows.iter().filter(|r| r.method == method).collect();
    if rows.is_empty() {
        return None;
    }
    let feats: Vec<Column> = STRUCTURE
        .iter()
        .copied()
        .filter(|c| rows.iter().any(|r| r.feature == *c))
        .collect();
    let mut benches: Vec<Column> = Vec::new();
    for r in &rows {
        if !benches.contains(&r.benchmark) {
            benches.push(r.benchmark);
        }
    }
    let cell = |f: Column, b: Column| rows.iter().find(|r| r.feature == f && r.benchmark == b);
    let mut values = Vec::new();
    let mut ann = Vec::new();
    for &f in &feats {
        let mut vrow = Vec::new();
        let mut arow = Vec::new();
        for &b in &benches {
            match cell(f, b).filter(|r| r.r.is_finite()) {
                Some(r) => {
                    vrow.push(r.r);
                    arow.push(if r.p_bh < BH_ALPHA {
                        format!("{:.2}", r.r)
                    } else {
                        format!("({:.2})", r.r)
                    });
                }
                None => {
                    vrow.push(f64::NAN);
                    arow.push(String::new());
                }
            }
        }
        values.push(vrow);
        ann.push(arow);
    }
    let ns: Vec<usize> = rows.iter().map(|r| r.n).collect();
    let (nmin, nmax) = (
        ns.iter().copied().min().unwrap_or(0),
        ns.iter().copied().max().unwrap_or(0),
    );
    let n = if nmin == nmax {
        format!("n = {nmin}")
    } else {
        format!("n = {nmin}–{nmax}")
    };
    Some(Heatmap {
        title: format!(
            "{}: structure × benchmark ({n} per cell; (r): BH-adjusted p ≥ {BH_ALPHA})",
            method_label(method)
        ),
        values,
        row_labels: feats.iter().map(|c| c.name().to_string()).collect(),
        col_labels: benches.iter().map(|c| c.name().to_string()).collect(),
        x_label: "benchmark".into(),
        y_label: "structural feature".into(),
        annotations: Some(ann),
        scale: Scale::Diverging { center: 0.0 },
        limits: Some((-1.0, 1.0)),
        colorbar_label: method_symbol(method).into(),
        rows_bottom_up: false,
    })
}

/// Write a figure to `<dir>/<stem>.png` and `.svg`.
pub fn write(fig: impl Into<Figure>, dir: &Path, stem: &str) -> strata_report::Result<FigureFiles> {
    fig.into().save(dir.join(stem))
}
