//! `strata ablate`: zero / mean / resample ablation of blocks, attention, MLPs and heads.
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use strata_experiments::ablate::{ablate_prepared, count_runs, AblateComponent, AblateOptions, AblationKind};
use strata_experiments::prepare_all;
use strata_experiments::Metric;

use super::common::{write_sweep_files, BatchArgs, ModelArgs};
use super::lens::{out_dir, progress, ItemArgs};

#[derive(Args, Debug)]
pub struct AblateArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub items: ItemArgs,
    /// A corrupted prompt (optional: its metric becomes the 0 of `normalized`).
    #[arg(long)]
    pub corrupted: Option<String>,
    /// Components, comma-separated: block, attn_out, mlp_out, head.
    #[arg(long, value_delimiter = ',', default_value = "block,attn_out,mlp_out")]
    pub component: Vec<String>,
    /// zero, mean (over --reference prompts, default the items) or resample.
    #[arg(long, default_value = "zero")]
    pub kind: String,
    /// logit_diff (needs --distractor), target_prob, loss or kl.
    #[arg(long)]
    pub metric: Option<String>,
    /// Prompts that mean / resample ablation draws from (repeatable); default: the items.
    #[arg(long)]
    pub reference: Vec<String>,
    /// Ablate each position separately instead of all at once.
    #[arg(long)]
    pub per_position: bool,
    /// Only these blocks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// One full forward per ablation (the reference path) instead of restart + batching.
    #[arg(long)]
    pub exact_naive: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Output directory (ablate.json, ablate.csv).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

pub fn run(args: AblateArgs) -> Result<()> {
    let model = args.model.load()?;
    let items = args.items.items(&model, args.corrupted.as_deref(), None)?;
    let metric: Metric = match &args.metric {
        Some(m) => m.parse()?,
        None if items.iter().all(|i| i.distractor.is_some()) => Metric::LogitDiff,
        None => Metric::TargetProb,
    };
    let components = args
        .component
        .iter()
        .map(|c| c.parse::<AblateComponent>())
        .collect::<Result<Vec<_>, _>>()?;
    let reference: Vec<strata_experiments::Item> = args
        .reference
        .iter()
        .enumerate()
        .map(|(i, p)| strata_experiments::Item::new(format!("ref{i}"), p.clone(), items[0].target.clone()))
        .collect();
    let opts = AblateOptions {
        components,
        kind: args.kind.parse::<AblationKind>()?,
        metric,
        per_position: args.per_position,
        layers: args.layers.clone(),
        reference: reference.clone(),
        seed: args.seed,
        exact_naive: args.exact_naive,
        max_batch: args.batch.max_batch,
    };
    let prepared = prepare_all(&model, &items)?;
    args.batch.report(&model, &prepared)?;
    let refs = if reference.is_empty() {
        prepared.clone()
    } else {
        prepare_all(&model, &reference)?
    };
    let pb = progress(count_runs(&model, &prepared, &opts), "ablate");
    let res = ablate_prepared(&model, &prepared, &refs, &opts, &mut |k| pb.inc(k as u64))?;
    pb.finish_and_clear();
    out_dir(&args.out)?;
    let (json, csv) = write_sweep_files(&args.out, "ablate", &res, &res.rows, &res.summary)?;
    println!(
        "{} ablation, metric {}: clean {:.4}{}",
        args.kind,
        res.metric,
        res.clean,
        res.corrupted
            .map(|c| format!(", corrupted {c:.4}"))
            .unwrap_or_default()
    );
    let shown = if res.summary.is_empty() {
        &res.rows
    } else {
        &res.summary
    };
    let mut by_effect: Vec<_> = shown.iter().collect();
    by_effect.sort_by(|a, b| {
        (b.value - res.clean)
            .abs()
            .total_cmp(&(a.value - res.clean).abs())
    });
    println!("  largest effects:");
    for r in by_effect.iter().take(10) {
        println!(
            "  {:>9} layer {:>3}{}{}  {:>10.4}  (normalized {})",
            r.component,
            r.layer,
            r.head.map(|h| format!(" head {h}")).unwrap_or_default(),
            r.position.map(|p| format!(" pos {p}")).unwrap_or_default(),
            r.value,
            r.normalized
                .map(|x| format!("{x:.3}"))
                .unwrap_or_else(|| "-".into())
        );
    }
    let figs = super::figures::ablate_figures(&res, &args.out, "ablate", None)?;
    println!(
        "wrote {} and {}, {} figures (PNG + SVG)",
        json.display(),
        csv.display(),
        figs.len()
    );
    Ok(())
}
