//! `strata correlate`: per-model findings of `strata sweep` beside the structural dataset.
use anyhow::{Context, Result};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use strata_dataset::analysis::numeric_columns;
use strata_dataset::stats::{complete_pairs, pearson, spearman};

/// Below this many models a correlation is reported but flagged as meaningless.
const MIN_MEANINGFUL_N: usize = 8;
/// Below this many models (or complete pairs) no correlation is computed.
const MIN_COMPUTABLE_N: usize = 3;

#[derive(Args, Debug)]
pub struct CorrelateArgs {
    /// `models.csv` written by `strata sweep`.
    #[arg(long)]
    pub findings: PathBuf,
    /// Dataset CSV (default: the bundled data/structure_performance.csv).
    #[arg(long)]
    pub dataset: Option<PathBuf>,
}

const FINDINGS: &[&str] = &[
    "first_top1_relative_depth",
    "costly_attn_share",
    "costly_mlp_share",
    "mlp_attribution_share",
    "clean_logit_diff",
];

pub fn run(args: CorrelateArgs) -> Result<()> {
    let opts = strata_dataset::load::LoadOptions { skip_invalid: false };
    let (ds, _) = match &args.dataset {
        Some(p) => strata_dataset::load::load(p, &opts)?,
        None => strata_dataset::load_bundled(&opts)?,
    };
    let mut reader = csv::Reader::from_path(&args.findings)
        .with_context(|| format!("reading {}", args.findings.display()))?;
    let header = reader.headers()?.clone();
    let col = |name: &str| {
        header.iter().position(|h| h == name).with_context(|| {
            format!(
                "{}: no column '{name}' (is it a strata sweep models.csv?)",
                args.findings.display()
            )
        })
    };
    let id_col = col("model_id")?;
    let finding_cols: Vec<usize> = FINDINGS.iter().map(|f| col(f)).collect::<Result<_>>()?;
    let index: HashMap<&str, usize> = ds
        .model_ids
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    let (mut rows, mut unmatched) = (Vec::new(), Vec::new());
    for (line, rec) in reader.records().enumerate() {
        let rec = rec.with_context(|| format!("{}: line {}", args.findings.display(), line + 2))?;
        let id = rec.get(id_col).unwrap_or_default().to_string();
        match index.get(id.as_str()) {
            Some(&i) => {
                let values: Vec<Option<f64>> = finding_cols
                    .iter()
                    .map(|&c| rec.get(c).and_then(|v| v.parse().ok()))
                    .collect();
                rows.push((i, values));
            }
            None => unmatched.push(id),
        }
    }
    println!(
        "{} models in findings joined to the dataset ({} rows); not in the dataset: {}",
        rows.len(),
        ds.len(),
        if unmatched.is_empty() {
            "none".to_string()
        } else {
            unmatched.join(", ")
        }
    );
    if rows.len() < MIN_COMPUTABLE_N {
        anyhow::bail!(
            "{}: {} model(s) found in the dataset, a correlation needs at least {MIN_COMPUTABLE_N}: \
             sweep more models (strata sweep --models FILE=HF_ID, so that the ids match the \
             dataset's model_id column)",
            args.findings.display(),
            rows.len()
        );
    }
    if rows.len() < MIN_MEANINGFUL_N {
        println!(
            "warning: n = {} models; correlations over fewer than {MIN_MEANINGFUL_N} models mean nothing — \
             sweep more models before reading these numbers",
            rows.len()
        );
    }
    println!(
        "\n| finding | dataset column | n | Pearson r | p | Spearman ρ | p |\n|---|---|---|---|---|---|---|"
    );
    for (f, name) in FINDINGS.iter().enumerate() {
        let x: Vec<Option<f64>> = rows.iter().map(|(_, v)| v[f]).collect();
        for column in numeric_columns(&ds) {
            let values = ds.numeric(column).expect("numeric column");
            let y: Vec<Option<f64>> = rows.iter().map(|(i, _)| values[*i]).collect();
            let (xs, ys) = complete_pairs(&x, &y);
            if xs.len() < MIN_COMPUTABLE_N {
                println!("| {name} | {} | {} | – | – | – | – |", column.name(), xs.len());
                continue;
            }
            let (p, s) = (pearson(&xs, &ys), spearman(&xs, &ys));
            println!(
                "| {name} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |",
                column.name(),
                p.n,
                p.r,
                p.p,
                s.r,
                s.p
            );
        }
    }
    Ok(())
}
