//! `strata lens`: logit lens at every layer and position; also the shared prompt flags
//! ([`ItemArgs`]) and progress bar of the experiment commands.
use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use strata_experiments::lens::{logit_lens, LensOptions, LensResult, LensSource};
use strata_experiments::probes::{self, SuiteOptions};
use strata_experiments::Item;
use strata_model::Model;

use super::common::ModelArgs;

/// The prompt(s) of an experiment: one prompt with its target, or a probe suite.
#[derive(Args, Debug, Clone)]
pub struct ItemArgs {
    /// The (clean) prompt.
    #[arg(long, required_unless_present = "probe", conflicts_with = "probe")]
    pub prompt: Option<String>,
    /// The expected next token, e.g. " Paris" (must be one token).
    #[arg(long, required_unless_present = "probe")]
    pub target: Option<String>,
    /// A competing token for the logit difference, e.g. " Rome".
    #[arg(long)]
    pub distractor: Option<String>,
    /// A probe suite instead of a prompt: a shipped name (factual, ioi, induction, greater_than)
    /// or a JSONL file.
    #[arg(long)]
    pub probe: Option<String>,
    /// Skip (and report) invalid suite items instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Use only the first N suite items.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl ItemArgs {
    /// The items: the suite's, or one built from the flags (with `corrupted` / `subject`).
    pub fn items(&self, model: &Model, corrupted: Option<&str>, subject: Option<&str>) -> Result<Vec<Item>> {
        if let Some(spec) = &self.probe {
            let opts = SuiteOptions {
                skip_invalid: self.skip_invalid,
                vocab_size: Some(model.config.vocab_size),
            };
            let suite = probes::load(spec, model.tokenizer()?, &opts)?;
            eprintln!("{}", suite.summary());
            let mut items = suite.items();
            if let Some(n) = self.limit {
                items.truncate(n);
            }
            anyhow::ensure!(!items.is_empty(), "probe suite {spec}: no valid items");
            return Ok(items);
        }
        let prompt = self.prompt.clone().context("give --prompt or --probe")?;
        let target = self.target.clone().context("give --target with --prompt")?;
        let mut item = Item::new("prompt", prompt, target);
        item.distractor = self.distractor.clone();
        item.corrupted = corrupted.map(str::to_string);
        item.subject = subject.map(str::to_string);
        Ok(vec![item])
    }
}

/// A progress bar over `total` runs (hidden when stderr is not a terminal).
pub fn progress(total: usize, what: &str) -> ProgressBar {
    let pb = ProgressBar::new(total as u64);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} runs, {elapsed} (eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(what.to_string());
    pb
}

pub fn out_dir(out: &Path) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))
}

#[derive(Args, Debug)]
pub struct LensArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub items: ItemArgs,
    /// What the lens reads: resid (residual stream, layers 0..=L), attn_out or mlp_out.
    #[arg(long, default_value = "resid")]
    pub component: String,
    /// Top tokens kept per (layer, position).
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Only the last position (cheaper on large vocabularies).
    #[arg(long)]
    pub last_only: bool,
    /// Prompts per forward.
    #[arg(long, default_value_t = 8)]
    pub max_batch: usize,
    #[command(flatten)]
    pub repeat: super::common::RepeatArgs,
    /// Output directory (lens.json, lens.csv).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

pub fn run(args: LensArgs) -> Result<()> {
    let model = args.model.load()?;
    let items = args.items.items(&model, None, None)?;
    let source: LensSource = args.component.parse()?;
    let opts = LensOptions {
        top_k: args.top_k,
        last_position_only: args.last_only,
        source,
        max_batch: args.max_batch,
    };
    let (mut results, seconds) = args
        .repeat
        .run("lens", || Ok(logit_lens(&model, &items, &opts)?))?;
    for r in &mut results {
        r.elapsed_seconds = Some(seconds);
    }
    out_dir(&args.out)?;
    let (json, csv) = write_lens_files(&args.out, "lens", &model.name, &results)?;
    for r in &results {
        let last = r.tokens.len() - 1;
        println!(
            "{} {:?} -> {:?} ({} lens, last position {:?})",
            r.id,
            r.prompt,
            r.target,
            r.source.name(),
            r.tokens[last]
        );
        println!("  layer  rank    p(target)   KL(final||l)  top token");
        for row in r.rows.iter().filter(|x| x.position == last) {
            println!(
                "  {:>5}  {:>6}  {:>10.4}  {:>12.4}  {:?} ({:.3})",
                row.layer,
                row.target_rank,
                row.target_prob,
                row.kl_to_final,
                row.top.first().map(|t| t.token.as_str()).unwrap_or(""),
                row.top.first().map(|t| t.prob).unwrap_or(0.0)
            );
        }
        match (r.first_top1_layer(last), r.top1_from_layer(last)) {
            (Some(a), Some(b)) => println!("  target first top-1 at layer {a}; top-1 from layer {b} on"),
            (Some(a), None) => println!("  target first top-1 at layer {a}, not top-1 at the output"),
            _ => println!("  target never top-1 at the last position"),
        }
    }
    let figs = super::figures::lens_figures(&results, &args.out, 8)?;
    println!(
        "wrote {} and {}, {} figures (PNG + SVG)",
        json.display(),
        csv.display(),
        figs.len()
    );
    Ok(())
}

/// Writes `dir/<stem>.json` and `dir/<stem>.csv` (one row per layer and position).
pub fn write_lens_files(
    dir: &Path,
    stem: &str,
    model: &str,
    results: &[LensResult],
) -> Result<(PathBuf, PathBuf)> {
    let records: Vec<Vec<String>> = results
        .iter()
        .flat_map(|r| {
            r.rows.iter().map(|row| {
                vec![
                    r.id.clone(),
                    row.layer.to_string(),
                    row.position.to_string(),
                    r.tokens[row.position].clone(),
                    row.target_rank.to_string(),
                    row.target_prob.to_string(),
                    row.target_logit.to_string(),
                    row.kl_to_final.to_string(),
                    row.entropy.to_string(),
                    row.top.first().map(|t| t.token.clone()).unwrap_or_default(),
                    row.top.first().map(|t| t.prob.to_string()).unwrap_or_default(),
                ]
            })
        })
        .collect();
    let header = [
        "item",
        "layer",
        "position",
        "token",
        "target_rank",
        "target_prob",
        "target_logit",
        "kl_to_final",
        "entropy",
        "top1_token",
        "top1_prob",
    ];
    super::common::write_item_files(dir, stem, "lens", model, results, &header, &records)
}
