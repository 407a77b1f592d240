//! `strata patch`: activation patching between a clean and a corrupted prompt.
use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use strata_experiments::attribution::{agreement, attribution_patching_prepared};
use strata_experiments::patch::{
    activation_patching_prepared, count_runs, Direction, PatchComponent, PatchOptions, PatchResult,
};
use strata_experiments::prepare_all;
use strata_experiments::Metric;

use super::common::{write_sweep_files, BatchArgs, ModelArgs, RepeatArgs};
use super::lens::{out_dir, progress, ItemArgs};

#[derive(Args, Debug)]
pub struct PatchArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub items: ItemArgs,
    /// The corrupted prompt (same token length as --prompt).
    #[arg(long, required_unless_present = "probe")]
    pub corrupted: Option<String>,
    /// Components, comma-separated: resid_pre, resid_mid, resid_post, attn_out, mlp_out, and per
    /// head z, q, k, v (key/value heads) and pattern.
    #[arg(long, value_delimiter = ',', default_value = "resid_pre")]
    pub component: Vec<String>,
    /// denoising (corrupted run, clean activations patched in) or noising.
    #[arg(long, default_value = "denoising")]
    pub direction: String,
    /// logit_diff (default), target_prob, loss or kl.
    #[arg(long, default_value = "logit_diff")]
    pub metric: String,
    /// Patch all positions at once instead of one position at a time.
    #[arg(long)]
    pub all_positions: bool,
    /// Only these blocks (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<usize>>,
    /// One full forward per patch (the reference path) instead of restart + batching.
    #[arg(long)]
    pub exact_naive: bool,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Attribution patching: estimate every effect from one clean forward, one corrupted forward
    /// and one backward per item (a linear first pass; f32 weights).
    #[arg(long)]
    pub attribution: bool,
    /// With --attribution: also run exact patching and print the Pearson correlation of the
    /// normalized effects (all rows and per component).
    #[arg(long, requires = "attribution")]
    pub compare_exact: bool,
    #[command(flatten)]
    pub repeat: RepeatArgs,
    /// Output directory (patch.json, patch.csv).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

pub fn run(args: PatchArgs) -> Result<()> {
    let model = args.model.load()?;
    let items = args.items.items(&model, args.corrupted.as_deref(), None)?;
    let components = args
        .component
        .iter()
        .map(|c| c.parse::<PatchComponent>())
        .collect::<Result<Vec<_>, _>>()?;
    let opts = PatchOptions {
        components,
        per_position: !args.all_positions,
        direction: args.direction.parse::<Direction>()?,
        metric: args.metric.parse::<Metric>()?,
        layers: args.layers.clone(),
        exact_naive: args.exact_naive,
        max_batch: args.batch.max_batch,
    };
    let prepared = prepare_all(&model, &items)?;
    args.batch.report(&model, &prepared)?;
    let runs = count_runs(&model, &prepared, &opts);
    let exact = || -> Result<PatchResult> {
        let pb = progress(runs, "patch");
        let res = activation_patching_prepared(&model, &prepared, &opts, &mut |k| pb.inc(k as u64));
        pb.finish_and_clear();
        Ok(res?)
    };
    let (mut res, seconds) = if args.attribution {
        args.repeat.run("attribution", || {
            Ok(attribution_patching_prepared(&model, &prepared, &opts)?)
        })?
    } else {
        args.repeat.run("sweep", exact)?
    };
    res.elapsed_seconds = Some(seconds);
    if args.compare_exact {
        let a = agreement(&res, &exact()?);
        let r = |r: Option<f64>| r.map_or("n/a".into(), |r| format!("{r:.3}"));
        let per: Vec<String> = a
            .per_component
            .iter()
            .map(|(c, v)| format!("{c} {}", r(*v)))
            .collect();
        println!(
            "attribution vs exact patching, Pearson r of normalized effects: all {} ({} rows); {}",
            r(a.overall),
            a.n_rows,
            per.join(", ")
        );
    }
    out_dir(&args.out)?;
    let (json, csv) = write_sweep_files(&args.out, "patch", &res, &res.rows, &res.summary)?;
    println!(
        "{}{} patching, metric {}: clean {:.4}, corrupted {:.4} ({:.3} s, {} runs)",
        if args.attribution { "attribution, " } else { "" },
        args.direction,
        res.metric,
        res.clean,
        res.corrupted,
        res.elapsed_seconds.unwrap_or_default(),
        res.rows.len()
    );
    let shown = if res.summary.is_empty() {
        &res.rows
    } else {
        &res.summary
    };
    let mut best: Vec<_> = shown.iter().filter(|r| r.normalized.is_some()).collect();
    best.sort_by(|a, b| {
        b.normalized
            .unwrap()
            .abs()
            .total_cmp(&a.normalized.unwrap().abs())
    });
    println!("  largest normalized effects:");
    for r in best.iter().take(10) {
        let pos = match (r.position, res.items.first()) {
            (Some(p), Some(it)) if res.summary.is_empty() => format!(" pos {p} {:?}", it.tokens[p]),
            (Some(p), _) => format!(" pos {p}"),
            _ => String::new(),
        };
        println!(
            "  {:>10} layer {:>3}{}{}  {:>8.3}",
            r.component,
            r.layer,
            r.head.map(|h| format!(" head {h}")).unwrap_or_default(),
            pos,
            r.normalized.unwrap()
        );
    }
    let figs = super::figures::patch_figures(&res, &args.out, "patch", 4)?;
    println!(
        "wrote {} and {}, {} figures (PNG + SVG)",
        json.display(),
        csv.display(),
        figs.len()
    );
    Ok(())
}
