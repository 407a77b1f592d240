//! The structural dataset of LLMs (one row per model: structure facts + benchmark scores) and the
//! statistics the seed study (arXiv 2509.18136) runs on it.
//!
//! - [`load`]: reads the bundled `data/structure_performance.csv` or the paper's own `model_info.csv`
//!   with tolerant header mapping, type checks, unit normalisation and a stated duplicate rule.
//! - [`stats`]: descriptive statistics (the paper's table), Pearson / Spearman / Kendall tau-b with
//!   scipy's p-values, Benjamini–Hochberg, bootstrap confidence intervals, partial correlation.
//! - [`forest`] and [`importance`]: random-forest regression per benchmark with cross-validated R²,
//!   impurity and permutation importances over several seeds, partial dependence.
//! - [`trends`]: structural parameters by release year.
//! - [`figures`]: the analyses as figures (trends, importance panels, correlation heatmap), PNG + SVG.
//! - [`table`]: a small table type rendered as Markdown or CSV, every number with the n it rests on.
//!
//! Definitions (checked against scipy / scikit-learn by the fixtures in `tests/fixtures/dataset/`):
//! quantiles are numpy/pandas' default linear interpolation (`h = (n-1)p`); skewness and kurtosis are
//! scipy's defaults (`bias=True`, kurtosis `fisher=True`, i.e. excess kurtosis of the population
//! moments); the mode is the smallest of the most frequent values (`scipy.stats.mode`).

pub mod analysis;
pub mod columns;
pub mod error;
pub mod figures;
pub mod forest;
pub mod importance;
pub mod load;
pub mod stats;
pub mod table;
pub mod trends;

pub use columns::{Column, Kind};
pub use error::DatasetError;
pub use load::{load, load_str, Dataset, LoadOptions, LoadReport};

/// The bundled dataset (`data/structure_performance.csv`, built by `scripts/build-dataset.sh`;
/// provenance in `data/SOURCES.md`), embedded so the CLI works from any directory.
pub const BUNDLED_CSV: &str = include_str!("../../../data/structure_performance.csv");

/// The name the bundled dataset is reported under.
pub const BUNDLED_NAME: &str = "data/structure_performance.csv (bundled)";

/// Load the bundled dataset.
pub fn load_bundled(opts: &LoadOptions) -> Result<(Dataset, LoadReport), DatasetError> {
    load_str(BUNDLED_CSV, BUNDLED_NAME, opts)
}
