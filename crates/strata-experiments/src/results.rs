//! Result files: JSON (versioned schema, see docs/results.md) and CSV, written atomically.

use serde::Serialize;
use std::path::Path;

use crate::error::{ExperimentError, Result};

/// Version of the JSON schema of every result file; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// Writes through a temporary file in the same directory and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| ExperimentError::Io { path: p, source }
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    Ok(())
}

pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)
}

/// CSV from a header and string records.
pub fn write_csv(path: &Path, header: &[&str], records: &[Vec<String>]) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let err = |e: csv::Error| ExperimentError::Csv(e.to_string());
    w.write_record(header).map_err(err)?;
    for r in records {
        w.write_record(r).map_err(err)?;
    }
    let bytes = w.into_inner().map_err(|e| ExperimentError::Csv(e.to_string()))?;
    write_atomic(path, &bytes)
}

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// One measured variant of an ablation or patching sweep.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SweepRow {
    /// Item id (`"mean"` in a suite's `summary`).
    pub item: String,
    pub component: String,
    pub layer: usize,
    /// Patched / ablated position (`null`: all positions).
    pub position: Option<usize>,
    /// Head (`null`: not a per-head component).
    pub head: Option<usize>,
    /// Raw metric of the modified run.
    pub value: f64,
    /// See docs/results.md; `null` where undefined.
    pub normalized: Option<f64>,
    /// Items averaged (summary rows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
}

/// An item as run: its tokens and the metric of its unmodified runs.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ItemSummary {
    pub id: String,
    pub prompt: String,
    pub tokens: Vec<String>,
    pub target: String,
    pub target_id: u32,
    pub distractor: Option<String>,
    pub distractor_id: Option<u32>,
    pub corrupted_prompt: Option<String>,
    pub corrupted_tokens: Option<Vec<String>>,
    /// Metric of the clean run.
    pub clean: f64,
    /// Metric of the corrupted run (`null` without a corrupted prompt).
    pub corrupted: Option<f64>,
}

impl ItemSummary {
    pub fn new(p: &crate::prepare::Prepared, clean: f64, corrupted: Option<f64>) -> Self {
        ItemSummary {
            id: p.id.clone(),
            prompt: p.prompt.clone(),
            tokens: p.tokens.clone(),
            target: p.target_text.clone(),
            target_id: p.target,
            distractor: p.distractor_text.clone(),
            distractor_id: p.distractor,
            corrupted_prompt: p.corrupted.clone(),
            corrupted_tokens: p.corrupted_tokens.clone(),
            clean,
            corrupted,
        }
    }
}

/// Rows averaged over items, per (component, layer, position, head) present for ≥ 1 item.
pub fn mean_rows(rows: &[SweepRow]) -> Vec<SweepRow> {
    type Key = (String, usize, Option<usize>, Option<usize>);
    let mut acc: std::collections::BTreeMap<Key, (f64, f64, usize, usize)> = Default::default();
    for r in rows {
        let e = acc
            .entry((r.component.clone(), r.layer, r.position, r.head))
            .or_default();
        e.0 += r.value;
        e.2 += 1;
        if let Some(x) = r.normalized {
            e.1 += x;
            e.3 += 1;
        }
    }
    acc.into_iter()
        .map(|((component, layer, position, head), (v, nv, n, nn))| SweepRow {
            item: "mean".into(),
            component,
            layer,
            position,
            head,
            value: v / n as f64,
            normalized: (nn == n).then(|| nv / nn as f64),
            n: Some(n),
        })
        .collect()
}

/// Largest |a − b| / max(1, |b|) of the metric values of two runs of the same sweep (paths,
/// devices or batch sizes compared row by row); an error when their rows do not line up.
pub fn max_relative_difference(a: &[SweepRow], b: &[SweepRow]) -> crate::Result<f64> {
    if a.len() != b.len() {
        return crate::error::input(format!("{} rows against {}", a.len(), b.len()));
    }
    let mut worst = 0f64;
    for (x, y) in a.iter().zip(b) {
        let key = |r: &SweepRow| (r.item.clone(), r.component.clone(), r.layer, r.position, r.head);
        if key(x) != key(y) {
            return crate::error::input(format!("row {:?} against {:?}", key(x), key(y)));
        }
        worst = worst.max((x.value - y.value).abs() / y.value.abs().max(1.0));
    }
    Ok(worst)
}

pub const SWEEP_CSV_HEADER: &[&str] = &[
    "item",
    "component",
    "layer",
    "position",
    "head",
    "value",
    "normalized",
];

pub fn sweep_csv_records(rows: &[SweepRow]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| {
            vec![
                r.item.clone(),
                r.component.clone(),
                r.layer.to_string(),
                opt(r.position),
                opt(r.head),
                r.value.to_string(),
                opt(r.normalized),
            ]
        })
        .collect()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        s / n as f64
    }
}

pub(crate) fn mean_clean(items: &[ItemSummary]) -> f64 {
    mean(items.iter().map(|i| i.clean))
}

pub(crate) fn mean_corrupted(items: &[ItemSummary]) -> Option<f64> {
    items
        .iter()
        .map(|i| i.corrupted)
        .collect::<Option<Vec<f64>>>()
        .map(|v| mean(v.into_iter()))
}
