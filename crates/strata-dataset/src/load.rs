//! Loading a structure × benchmark table: the bundled `data/structure_performance.csv` or the
//! paper's own `model_info.csv` (any CSV whose headers map onto [`Column`]s, see
//! [`crate::columns`]).
//!
//! Rules, in order:
//! 1. **Headers** are mapped through the aliases of [`Column`]; a column is required only for the
//!    model id. When two headers map to one column the one matching the earlier alias wins; the
//!    others and all unknown headers are listed in the report as unmapped.
//! 2. **Missing** cells: empty, `NA`, `N/A`, `NaN`, `nan`, `null`, `None`, `-`, `?`.
//! 3. **Types**: integers must be whole non-negative numbers (`4096` or `4096.0`); dates `YYYY`,
//!    `YYYY-MM` or `YYYY-MM-DD` (a `T…`/space time part is ignored); booleans `true/false/1/0/yes/no`.
//!    A row whose field count differs from the header's, or a cell that does not parse, is an error naming file, line and column — or, with
//!    [`LoadOptions::skip_invalid`], its row is skipped and counted in the [`LoadReport`].
//! 4. **Units**: parameters are stored in billions. A cell with a suffix (`7B`, `125M`, `1.3b`,
//!    `350k`, `1T`) is converted; a bare number is billions unless the column's largest value is
//!    above 100 000, in which case the whole column is raw counts and divided by 1e9. Scores are
//!    stored 0–100: a cell with `%` is a percentage; a column whose values all lie in [0, 1] is
//!    fractions and multiplied by 100. A score outside [0, 100] after that is an error.
//! 5. **Duplicates** (one model × several precisions, as in the leaderboard): one row per model id
//!    is kept — the preferred precision first (bfloat16, float16, float32, then anything else or
//!    none), then the row with the most non-missing cells, then the first in the file. The number
//!    dropped is reported.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::columns::{map_header, Column, Kind};
use crate::error::{DatasetError, Result};

#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Skip (and count) rows with a malformed cell instead of failing.
    pub skip_invalid: bool,
}

/// A row that was skipped because of a malformed cell.
#[derive(Debug, Clone)]
pub struct SkippedRow {
    pub line: u64,
    pub column_index: usize,
    pub column: String,
    pub message: String,
}

#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    pub path: PathBuf,
    /// Data rows read from the file.
    pub rows_read: usize,
    /// Rows in the dataset after skipping and de-duplication.
    pub rows_kept: usize,
    pub skipped: Vec<SkippedRow>,
    /// Rows dropped as duplicates of a kept row (same model id).
    pub duplicates_dropped: usize,
    /// Headers that map to no column, as written.
    pub unmapped_headers: Vec<String>,
    /// (header as written, canonical column) for every mapped header.
    pub mapping: Vec<(String, Column)>,
    /// Unit conversions applied to whole columns, in words.
    pub conversions: Vec<String>,
}

impl LoadReport {
    /// A one-paragraph human summary.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{}: {} rows read, {} kept, {} skipped as invalid, {} duplicates dropped",
            self.path.display(),
            self.rows_read,
            self.rows_kept,
            self.skipped.len(),
            self.duplicates_dropped
        );
        if !self.unmapped_headers.is_empty() {
            s.push_str(&format!(
                "; unmapped columns: {}",
                self.unmapped_headers.join(", ")
            ));
        }
        for c in &self.conversions {
            s.push_str("; ");
            s.push_str(c);
        }
        s
    }
}

/// One typed column.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// Integers, parameters, scores, booleans (as 1/0), dates (as fractional years).
    Numeric(Vec<Option<f64>>),
    Text(Vec<Option<String>>),
}

/// The loaded dataset: one row per model, columns typed and normalised.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub model_ids: Vec<String>,
    /// The 1-based line each row came from.
    pub lines: Vec<u64>,
    columns: BTreeMap<Column, Values>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.model_ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.model_ids.is_empty()
    }

    /// The canonical columns present, in [`Column::ALL`] order (the id excluded).
    pub fn columns(&self) -> Vec<Column> {
        self.columns.keys().copied().collect()
    }

    pub fn has(&self, c: Column) -> bool {
        self.columns.contains_key(&c)
    }

    /// A numeric column (dates as fractional years: `2023-07` → 2023 + 6/12); `None` when absent
    /// or textual.
    pub fn numeric(&self, c: Column) -> Option<&[Option<f64>]> {
        match self.columns.get(&c) {
            Some(Values::Numeric(v)) => Some(v),
            _ => None,
        }
    }

    pub fn text(&self, c: Column) -> Option<&[Option<String>]> {
        match self.columns.get(&c) {
            Some(Values::Text(v)) => Some(v),
            _ => None,
        }
    }

    /// Fraction of rows where the column is missing (1.0 when the column is absent).
    pub fn miss_rate(&self, c: Column) -> f64 {
        if self.is_empty() {
            return 1.0;
        }
        let missing = match self.columns.get(&c) {
            Some(Values::Numeric(v)) => v.iter().filter(|x| x.is_none()).count(),
            Some(Values::Text(v)) => v.iter().filter(|x| x.is_none()).count(),
            None => self.len(),
        };
        missing as f64 / self.len() as f64
    }

    /// The release year of each row: `release_date`, else `upload_date`.
    pub fn year(&self) -> Vec<Option<i32>> {
        let r = self.numeric(Column::ReleaseDate);
        let u = self.numeric(Column::UploadDate);
        (0..self.len())
            .map(|i| {
                r.and_then(|v| v[i])
                    .or_else(|| u.and_then(|v| v[i]))
                    .map(|y| y.floor() as i32)
            })
            .collect()
    }

    /// Keep the rows for which `keep(i)` is true.
    pub fn filter(&self, keep: impl Fn(usize) -> bool) -> Dataset {
        let idx: Vec<usize> = (0..self.len()).filter(|&i| keep(i)).collect();
        let columns = self
            .columns
            .iter()
            .map(|(c, v)| {
                let v = match v {
                    Values::Numeric(x) => Values::Numeric(idx.iter().map(|&i| x[i]).collect()),
                    Values::Text(x) => Values::Text(idx.iter().map(|&i| x[i].clone()).collect()),
                };
                (*c, v)
            })
            .collect();
        Dataset {
            model_ids: idx.iter().map(|&i| self.model_ids[i].clone()).collect(),
            lines: idx.iter().map(|&i| self.lines[i]).collect(),
            columns,
        }
    }
}

/// Load a CSV file.
pub fn load(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<(Dataset, LoadReport)> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| DatasetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, path, opts)
}

const MISSING: &[&str] = &["", "na", "n/a", "nan", "null", "none", "-", "?"];

fn is_missing(s: &str) -> bool {
    let t = s.trim().to_ascii_lowercase();
    MISSING.contains(&t.as_str())
}

struct Raw {
    line: u64,
    cells: Vec<String>,
}

/// Load CSV text; `path` is used in messages only.
pub fn load_str(text: &str, path: impl AsRef<Path>, opts: &LoadOptions) -> Result<(Dataset, LoadReport)> {
    let path = path.as_ref().to_path_buf();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| DatasetError::Csv {
            path: path.clone(),
            line: 1,
            message: e.to_string(),
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();

    let mut report = LoadReport {
        path: path.clone(),
        ..Default::default()
    };
    // header index -> column
    // header index -> column; when several headers map to one column, the one matching the
    // earlier alias wins (e.g. `model_id` before `name`) and the others count as unmapped.
    let mut best_for: HashMap<Column, (usize, usize)> = HashMap::new(); // column -> (alias rank, header idx)
    for (i, h) in headers.iter().enumerate() {
        if let Some(c) = map_header(h) {
            let n = crate::columns::normalise_header(h);
            let rank = c.aliases().iter().position(|a| *a == n).unwrap_or(usize::MAX);
            match best_for.get(&c) {
                Some(&(r, _)) if r <= rank => {}
                _ => {
                    best_for.insert(c, (rank, i));
                }
            }
        }
    }
    let mut mapped: Vec<(usize, Column)> = best_for.iter().map(|(c, &(_, i))| (i, *c)).collect();
    mapped.sort();
    let seen: HashMap<Column, usize> = mapped.iter().map(|&(i, c)| (c, i)).collect();
    for (i, h) in headers.iter().enumerate() {
        match mapped.iter().find(|(j, _)| *j == i) {
            Some(&(_, c)) => report.mapping.push((h.clone(), c)),
            None => report.unmapped_headers.push(h.clone()),
        }
    }
    let Some(&id_idx) = seen.get(&Column::ModelId) else {
        return Err(DatasetError::MissingColumn {
            path,
            what: "model_id (model, name, fullname, ...)".into(),
            headers: headers.join(", "),
        });
    };

    // read raw rows
    let mut raws: Vec<Raw> = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            DatasetError::Csv {
                path: path.clone(),
                line,
                message: e.to_string(),
            }
        })?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let cells: Vec<String> = rec.iter().map(|s| s.trim().to_string()).collect();
        if cells.iter().all(|c| c.is_empty()) {
            continue;
        }
        if cells.len() != headers.len() {
            // ragged row: point at the first missing cell, or at the first extra one
            let idx = cells.len().min(headers.len());
            let column = headers
                .get(idx)
                .cloned()
                .unwrap_or_else(|| "(beyond the header)".into());
            let value = cells.get(idx).cloned().unwrap_or_default();
            let msg = format!("row has {} fields, the header has {}", cells.len(), headers.len());
            let err = value_err(&path, line, idx, &column, &value, &msg);
            if opts.skip_invalid {
                report.rows_read += 1;
                push_skip(&mut report, err);
                continue;
            }
            return Err(err);
        }
        raws.push(Raw { line, cells });
    }
    report.rows_read += raws.len();

    // column-level unit decisions
    let mut params_raw_counts = false;
    let mut score_fraction: HashMap<Column, bool> = HashMap::new();
    for &(i, c) in &mapped {
        let vals: Vec<f64> = raws
            .iter()
            .filter_map(|r| r.cells.get(i))
            .filter(|s| !is_missing(s))
            .filter_map(|s| s.parse::<f64>().ok())
            .collect();
        match c.kind() {
            Kind::Params if vals.iter().any(|&v| v > 1e5) => {
                params_raw_counts = true;
                report
                    .conversions
                    .push(format!("`{}` read as raw parameter counts (/1e9)", headers[i]));
            }
            Kind::Score => {
                let frac = !vals.is_empty() && vals.iter().all(|&v| (0.0..=1.0).contains(&v));
                if frac {
                    report
                        .conversions
                        .push(format!("`{}` read as fractions (x100)", headers[i]));
                }
                score_fraction.insert(c, frac);
            }
            _ => {}
        }
    }

    // typed parse, row by row
    struct Parsed {
        line: u64,
        id: String,
        values: Vec<(Column, Cell)>,
        filled: usize,
    }
    let mut parsed: Vec<Parsed> = Vec::new();
    'rows: for r in raws {
        let id = r.cells.get(id_idx).cloned().unwrap_or_default();
        if is_missing(&id) {
            let err = value_err(
                &path,
                r.line,
                id_idx,
                &headers[id_idx],
                &id,
                "model id is missing",
            );
            if opts.skip_invalid {
                push_skip(&mut report, err);
                continue;
            }
            return Err(err);
        }
        let mut values = Vec::with_capacity(mapped.len());
        let mut filled = 0;
        for &(i, c) in &mapped {
            if c == Column::ModelId {
                continue;
            }
            let raw = r.cells.get(i).map(String::as_str).unwrap_or("");
            let frac = score_fraction.get(&c).copied().unwrap_or(false);
            match parse_cell(c, raw, params_raw_counts, frac) {
                Ok(cell) => {
                    if !matches!(cell, Cell::Missing) {
                        filled += 1;
                    }
                    values.push((c, cell));
                }
                Err(msg) => {
                    let err = value_err(&path, r.line, i, &headers[i], raw, &msg);
                    if opts.skip_invalid {
                        push_skip(&mut report, err);
                        continue 'rows;
                    }
                    return Err(err);
                }
            }
        }
        parsed.push(Parsed {
            line: r.line,
            id,
            values,
            filled,
        });
    }

    // duplicates: one row per model id
    let prec_rank = |p: &Parsed| -> u8 {
        let prec = p
            .values
            .iter()
            .find(|(c, _)| *c == Column::Precision)
            .and_then(|(_, v)| match v {
                Cell::Text(s) => Some(s.to_ascii_lowercase()),
                _ => None,
            });
        match prec.as_deref() {
            Some("bfloat16") | Some("bf16") => 0,
            Some("float16") | Some("fp16") | Some("half") => 1,
            Some("float32") | Some("fp32") => 2,
            _ => 3,
        }
    };
    let mut best: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for (k, p) in parsed.iter().enumerate() {
        match best.get(&p.id) {
            None => {
                best.insert(p.id.clone(), k);
                order.push(p.id.clone());
            }
            Some(&j) => {
                let q = &parsed[j];
                let better =
                    (prec_rank(p), std::cmp::Reverse(p.filled)) < (prec_rank(q), std::cmp::Reverse(q.filled));
                if better {
                    best.insert(p.id.clone(), k);
                }
                report.duplicates_dropped += 1;
            }
        }
    }
    let kept: Vec<&Parsed> = order.iter().map(|id| &parsed[best[id]]).collect();
    if kept.is_empty() {
        return Err(DatasetError::Empty { path });
    }

    let mut columns: BTreeMap<Column, Values> = BTreeMap::new();
    for &(_, c) in &mapped {
        if c == Column::ModelId {
            continue;
        }
        let v = if matches!(c.kind(), Kind::Category) {
            Values::Text(
                kept.iter()
                    .map(|p| p.values.iter().find(|(k, _)| *k == c).and_then(|(_, v)| v.text()))
                    .collect(),
            )
        } else {
            Values::Numeric(
                kept.iter()
                    .map(|p| p.values.iter().find(|(k, _)| *k == c).and_then(|(_, v)| v.num()))
                    .collect(),
            )
        };
        columns.insert(c, v);
    }
    report.rows_kept = kept.len();
    report.skipped.sort_by_key(|s| s.line);
    let ds = Dataset {
        model_ids: kept.iter().map(|p| p.id.clone()).collect(),
        lines: kept.iter().map(|p| p.line).collect(),
        columns,
    };
    Ok((ds, report))
}

fn value_err(path: &Path, line: u64, idx: usize, header: &str, value: &str, msg: &str) -> DatasetError {
    DatasetError::Value {
        path: path.to_path_buf(),
        line,
        column_index: idx + 1,
        column: header.to_string(),
        value: value.to_string(),
        message: msg.to_string(),
    }
}

fn push_skip(report: &mut LoadReport, err: DatasetError) {
    if let DatasetError::Value {
        line,
        column_index,
        column,
        message,
        value,
        ..
    } = err
    {
        report.skipped.push(SkippedRow {
            line,
            column_index,
            column,
            message: format!("{message} (value {value:?})"),
        });
    }
}

enum Cell {
    Missing,
    Num(f64),
    Text(String),
}

impl Cell {
    fn num(&self) -> Option<f64> {
        match self {
            Cell::Num(x) => Some(*x),
            _ => None,
        }
    }
    fn text(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

fn parse_cell(
    c: Column,
    raw: &str,
    params_raw_counts: bool,
    score_fraction: bool,
) -> std::result::Result<Cell, String> {
    let s = raw.trim();
    if is_missing(s) {
        return Ok(Cell::Missing);
    }
    match c.kind() {
        Kind::Id | Kind::Category => {
            // `["LlamaForCausalLM"]` (a config.json list) → LlamaForCausalLM
            let t = s
                .trim_matches(|ch| ch == '[' || ch == ']' || ch == '"' || ch == '\'')
                .trim();
            Ok(if t.is_empty() {
                Cell::Missing
            } else {
                Cell::Text(t.to_string())
            })
        }
        Kind::Integer => {
            let v: f64 = s
                .replace('_', "")
                .parse()
                .map_err(|_| "expected a whole number".to_string())?;
            if !v.is_finite() || v < 0.0 || v.fract() != 0.0 {
                return Err("expected a whole non-negative number".into());
            }
            Ok(Cell::Num(v))
        }
        Kind::Params => {
            let lower = s.to_ascii_lowercase().replace([',', '_'], "");
            let (num, mult) = match lower.chars().last() {
                Some('t') => (&lower[..lower.len() - 1], Some(1e3)),
                Some('b') => (&lower[..lower.len() - 1], Some(1.0)),
                Some('m') => (&lower[..lower.len() - 1], Some(1e-3)),
                Some('k') => (&lower[..lower.len() - 1], Some(1e-6)),
                _ => (lower.as_str(), None),
            };
            let v: f64 = num
                .trim()
                .parse()
                .map_err(|_| "expected a parameter count (e.g. 7, 6.74, 7B, 125M)".to_string())?;
            if !v.is_finite() || v < 0.0 {
                return Err("expected a non-negative parameter count".into());
            }
            if v == 0.0 {
                return Ok(Cell::Missing); // leaderboards write 0 for "unknown"
            }
            let b = match mult {
                Some(m) => v * m,
                None if params_raw_counts => v / 1e9,
                None => v,
            };
            Ok(Cell::Num(b))
        }
        Kind::Score => {
            let (num, pct) = match s.strip_suffix('%') {
                Some(n) => (n.trim(), true),
                None => (s, false),
            };
            let v: f64 = num
                .parse()
                .map_err(|_| "expected a score (0-1, 0-100 or NN%)".to_string())?;
            let v = if !pct && score_fraction { v * 100.0 } else { v };
            if !v.is_finite() || !(0.0..=100.0).contains(&v) {
                return Err("score outside 0-100 after normalisation".into());
            }
            Ok(Cell::Num(v))
        }
        Kind::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "y" | "t" => Ok(Cell::Num(1.0)),
            "false" | "0" | "no" | "n" | "f" => Ok(Cell::Num(0.0)),
            _ => Err("expected true/false".into()),
        },
        Kind::Date => parse_date(s).map(Cell::Num),
    }
}

/// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` (optionally followed by `T…` or a space and a time) → fractional
/// year `Y + (M-1)/12 + (D-1)/365`.
pub fn parse_date(s: &str) -> std::result::Result<f64, String> {
    let d = s.split(['T', ' ']).next().unwrap_or("");
    let parts: Vec<&str> = d.split(['-', '/']).collect();
    let bad = || "expected a date YYYY, YYYY-MM or YYYY-MM-DD".to_string();
    let y: i32 = parts.first().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    if !(1900..=2100).contains(&y) || parts.len() > 3 {
        return Err(bad());
    }
    let m: u32 = match parts.get(1) {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 1,
    };
    let day: u32 = match parts.get(2) {
        Some(p) => p.parse().map_err(|_| bad())?,
        None => 1,
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    Ok(y as f64 + (m - 1) as f64 / 12.0 + (day - 1) as f64 / 365.0)
}
