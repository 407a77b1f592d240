//! Structural parameters over release year: per year, n, median and quartiles (linear quantiles)
//! of each numeric column. The year is `release_date`, else `upload_date` ([`Dataset::year`]).

use std::collections::BTreeMap;

use crate::columns::Column;
use crate::load::Dataset;
use crate::stats::quantile_sorted;

#[derive(Debug, Clone, PartialEq)]
pub struct YearStat {
    pub year: i32,
    pub n: usize,
    pub q1: f64,
    pub median: f64,
    pub q3: f64,
}

/// Yearly statistics of `col` (years with no value are left out).
pub fn yearly(ds: &Dataset, col: Column) -> Vec<YearStat> {
    let Some(v) = ds.numeric(col) else {
        return Vec::new();
    };
    let years = ds.year();
    let mut by: BTreeMap<i32, Vec<f64>> = BTreeMap::new();
    for (y, x) in years.iter().zip(v) {
        if let (Some(y), Some(x)) = (y, x) {
            by.entry(*y).or_default().push(*x);
        }
    }
    by.into_iter()
        .map(|(year, mut xs)| {
            xs.sort_by(|a, b| a.total_cmp(b));
            YearStat {
                year,
                n: xs.len(),
                q1: quantile_sorted(&xs, 0.25),
                median: quantile_sorted(&xs, 0.5),
                q3: quantile_sorted(&xs, 0.75),
            }
        })
        .collect()
}
