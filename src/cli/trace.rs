//! `strata trace`: causal tracing (ROME) of a factual prompt's subject.
use anyhow::Result;
use clap::Args;
use std::path::{Path, PathBuf};
use strata_experiments::trace::{
    causal_trace_prepared, count_runs, NoiseLevel, TraceKind, TraceOptions, TraceResult,
};
use strata_experiments::{prepare_all, Metric};

use super::common::{BatchArgs, ModelArgs};
use super::lens::{out_dir, progress, ItemArgs};

#[derive(Args, Debug)]
pub struct TraceArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub items: ItemArgs,
    /// The subject: a substring of the prompt whose tokens are noised (e.g. "France").
    #[arg(long, required_unless_present = "probe")]
    pub subject: Option<String>,
    /// Which restorations, comma-separated: hidden, mlp, attn.
    #[arg(long, value_delimiter = ',', default_value = "hidden,mlp,attn")]
    pub component: Vec<String>,
    /// Noise samples per item.
    #[arg(long, default_value_t = 10)]
    pub samples: usize,
    /// Noise std as a multiple of the std of the token embeddings (ROME: 3).
    #[arg(long, default_value_t = 3.0)]
    pub noise_multiplier: f64,
    /// A fixed noise std instead.
    #[arg(long)]
    pub noise_std: Option<f64>,
    /// Layers restored together for mlp / attn.
    #[arg(long, default_value_t = 10)]
    pub window: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// target_prob (default), logit_diff, loss or kl.
    #[arg(long, default_value = "target_prob")]
    pub metric: String,
    /// One full forward per restored run instead of restart + batching.
    #[arg(long)]
    pub exact_naive: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Output directory (trace.json, trace.csv).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

pub fn run(args: TraceArgs) -> Result<()> {
    let model = args.model.load()?;
    let items = args.items.items(&model, None, args.subject.as_deref())?;
    let kinds = args
        .component
        .iter()
        .map(|c| match c.as_str() {
            "hidden" | "resid" | "resid_post" => Ok(TraceKind::Hidden),
            "mlp" | "mlp_out" => Ok(TraceKind::Mlp),
            "attn" | "attn_out" => Ok(TraceKind::Attn),
            _ => anyhow::bail!("unknown trace component '{c}'; use hidden, mlp or attn"),
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = TraceOptions {
        samples: args.samples,
        noise: match args.noise_std {
            Some(std) => NoiseLevel::Fixed { std },
            None => NoiseLevel::EmbeddingStd {
                multiplier: args.noise_multiplier,
            },
        },
        seed: args.seed,
        window: args.window,
        kinds,
        metric: args.metric.parse::<Metric>()?,
        exact_naive: args.exact_naive,
        max_batch: args.batch.max_batch,
    };
    let prepared = prepare_all(&model, &items)?;
    args.batch.report(&model, &prepared)?;
    let pb = progress(count_runs(&model, &prepared, &opts), "trace");
    let results = causal_trace_prepared(&model, &prepared, &opts, &mut |k| pb.inc(k as u64))?;
    pb.finish_and_clear();
    out_dir(&args.out)?;
    let (json, csv) = write_trace_files(&args.out, "trace", &model.name, &results)?;
    for r in &results {
        println!(
            "{} {:?}: subject tokens {:?}, noise std {:.4}; {} clean {:.4}, corrupted {:.4}",
            r.id, r.prompt, r.subject_positions, r.noise_std, r.metric, r.clean, r.corrupted
        );
        for kind in &opts.kinds {
            if let Some(best) = r
                .rows
                .iter()
                .filter(|x| x.kind == *kind)
                .max_by(|a, b| a.value.total_cmp(&b.value))
            {
                println!(
                    "  {:>6}: strongest restoration at layer {} token {} {:?}: {:.4}",
                    kind.name(),
                    best.layer,
                    best.position,
                    r.tokens[best.position],
                    best.value
                );
            }
        }
    }
    let figs = super::figures::trace_figures(&results, &args.out, 4)?;
    println!(
        "wrote {} and {}, {} figures (PNG + SVG)",
        json.display(),
        csv.display(),
        figs.len()
    );
    Ok(())
}

/// Writes `dir/<stem>.json` and `dir/<stem>.csv` (one row per restoration).
pub fn write_trace_files(
    dir: &Path,
    stem: &str,
    model: &str,
    results: &[TraceResult],
) -> Result<(PathBuf, PathBuf)> {
    let records: Vec<Vec<String>> = results
        .iter()
        .flat_map(|r| {
            r.rows.iter().map(|row| {
                vec![
                    r.id.clone(),
                    row.kind.name().to_string(),
                    row.layer.to_string(),
                    row.position.to_string(),
                    r.tokens[row.position].clone(),
                    row.value.to_string(),
                    row.normalized.map(|x| x.to_string()).unwrap_or_default(),
                ]
            })
        })
        .collect();
    let header = [
        "item",
        "kind",
        "layer",
        "position",
        "token",
        "value",
        "normalized",
    ];
    super::common::write_item_files(dir, stem, "trace", model, results, &header, &records)
}
