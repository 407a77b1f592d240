//! `strata report`: every experiment (logit lens, ablation, activation patching, causal tracing)
//! on a probe suite, written as result files, figures and one self-contained HTML report.
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use strata_experiments::ablate::{
    ablate_prepared, count_runs as ablate_runs, AblateComponent, AblateOptions, AblateResult, AblationKind,
};
use strata_experiments::lens::{logit_lens_prepared, LensOptions, LensResult, LensSource};
use strata_experiments::patch::{
    activation_patching_prepared, count_runs as patch_runs, Direction, PatchComponent, PatchOptions,
    PatchResult,
};
use strata_experiments::results::SweepRow;
use strata_experiments::trace::{
    causal_trace_prepared, count_runs as trace_runs, NoiseLevel, TraceKind, TraceOptions, TraceResult,
};
use strata_experiments::{prepare_all, Item, Metric, Prepared};
use strata_model::Model;
use strata_report::html::Report;

use super::common::{write_sweep_files, BatchArgs, ModelArgs};
use super::figures::{self, Saved};
use super::lens::{out_dir, progress, write_lens_files, ItemArgs};
use super::trace::write_trace_files;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A .gguf file, a local checkpoint directory, or a Hugging Face repo id (or --model).
    #[arg(value_name = "MODEL", required_unless_present = "model_flag")]
    pub model_pos: Option<String>,
    /// The model (same as the positional MODEL).
    #[arg(long = "model", value_name = "MODEL", conflicts_with = "model_pos")]
    pub model_flag: Option<String>,
    /// cpu, cuda, cuda:N, metal or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16 (weights are converted at load).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Hub revision (branch, tag or commit) for repo ids.
    #[arg(long)]
    pub revision: Option<String>,
    /// Probe suite: a shipped name (factual, ioi, induction, greater_than) or a JSONL file.
    /// Default: factual (unless --prompt is given).
    #[arg(long, conflicts_with = "prompt")]
    pub probe: Option<String>,
    /// One prompt instead of a suite (with --target; --distractor, --corrupted and --subject
    /// enable the logit difference, patching and tracing).
    #[arg(long)]
    pub prompt: Option<String>,
    #[arg(long, requires = "prompt")]
    pub target: Option<String>,
    #[arg(long, requires = "prompt")]
    pub distractor: Option<String>,
    /// Corrupted partner of --prompt (same token length) for activation patching.
    #[arg(long, requires = "prompt")]
    pub corrupted: Option<String>,
    /// Subject of --prompt (a substring) for causal tracing.
    #[arg(long, requires = "prompt")]
    pub subject: Option<String>,
    /// Skip (and report) invalid suite items instead of failing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Items for the logit lens and the layer ablations (the suite's first N).
    #[arg(long, default_value_t = 8)]
    pub max_items: usize,
    /// Items for single-head ablation (layers × heads runs each).
    #[arg(long, default_value_t = 2)]
    pub head_items: usize,
    /// Items with a corrupted partner for activation patching (layers × positions runs each).
    #[arg(long, default_value_t = 2)]
    pub patch_items: usize,
    /// Items with a subject for causal tracing (3 × layers × positions × samples runs each).
    #[arg(long, default_value_t = 2)]
    pub trace_items: usize,
    /// Noise samples per traced item (ROME: 10).
    #[arg(long, default_value_t = 10)]
    pub trace_samples: usize,
    /// Layers restored together for the MLP / attention traces (ROME: 10).
    #[arg(long, default_value_t = 10)]
    pub window: usize,
    /// Seed of the tracing noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Output directory: report.html, result JSON/CSV, figures/ (PNG + SVG).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
}

/// Wall time and size of one stage, for the report's run table.
struct Stage {
    name: &'static str,
    items: usize,
    runs: usize,
    seconds: f64,
}

struct Outputs {
    files: Vec<PathBuf>,
}

impl Outputs {
    fn add(&mut self, (a, b): (PathBuf, PathBuf)) {
        self.files.push(a);
        self.files.push(b);
    }
}

fn stage_header(k: usize, n: usize, what: &str) {
    eprintln!("[{k}/{n}] {what}");
}

fn metric_for(items: &[&Prepared]) -> Metric {
    if !items.is_empty() && items.iter().all(|p| p.distractor.is_some()) {
        Metric::LogitDiff
    } else {
        Metric::TargetProb
    }
}

fn f4(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.4}")
    } else {
        "–".into()
    }
}

fn opt_layer(x: Option<usize>) -> String {
    x.map(|l| l.to_string()).unwrap_or_else(|| "never".into())
}

fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\n', "\\n"))
}

pub fn run(args: ReportArgs) -> Result<()> {
    let started = Instant::now();
    let model_spec = args
        .model_flag
        .clone()
        .or_else(|| args.model_pos.clone())
        .context("give the model (MODEL or --model)")?;
    let margs = ModelArgs {
        model: model_spec.clone(),
        device: args.device.clone(),
        dtype: args.dtype.clone(),
        revision: args.revision.clone(),
    };
    anyhow::ensure!(args.max_items > 0, "--max-items must be at least 1");
    let probe = match (&args.probe, &args.prompt) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(_)) => None,
        (None, None) => Some("factual".to_string()),
    };
    if args.prompt.is_some() {
        anyhow::ensure!(args.target.is_some(), "--prompt needs --target");
    }
    let model = margs.load()?;
    let item_args = ItemArgs {
        prompt: args.prompt.clone(),
        target: args.target.clone(),
        distractor: args.distractor.clone(),
        probe: probe.clone(),
        skip_invalid: args.skip_invalid,
        limit: None,
    };
    let all_items = item_args.items(&model, args.corrupted.as_deref(), args.subject.as_deref())?;
    let n_suite = all_items.len();
    let lens_items: Vec<Item> = all_items.iter().take(args.max_items).cloned().collect();
    let patch_items: Vec<Item> = all_items
        .iter()
        .filter(|i| i.corrupted.is_some())
        .take(args.patch_items)
        .cloned()
        .collect();
    let trace_items: Vec<Item> = all_items
        .iter()
        .filter(|i| i.subject.is_some())
        .take(args.trace_items)
        .cloned()
        .collect();

    out_dir(&args.out)?;
    let fig_dir = args.out.join("figures");
    out_dir(&fig_dir)?;
    let mut outputs = Outputs { files: Vec::new() };
    let mut stages: Vec<Stage> = Vec::new();
    let n_stages = 6;

    // 1. Logit lens.
    stage_header(1, n_stages, &format!("logit lens on {} items", lens_items.len()));
    let t = Instant::now();
    let prepared = prepare_all(&model, &lens_items)?;
    let lens_opts = LensOptions {
        top_k: 5,
        last_position_only: false,
        source: LensSource::Resid,
        max_batch: 8,
    };
    let pb = progress(prepared.len(), "logit lens");
    let mut lens: Vec<LensResult> = Vec::new();
    for chunk in prepared.chunks(lens_opts.max_batch) {
        lens.extend(logit_lens_prepared(&model, chunk, &lens_opts)?);
        pb.inc(chunk.len() as u64);
    }
    pb.finish_and_clear();
    outputs.add(write_lens_files(&args.out, "lens", &model.name, &lens)?);
    stages.push(Stage {
        name: "logit lens",
        items: lens.len(),
        runs: lens.len(),
        seconds: t.elapsed().as_secs_f64(),
    });

    // 2. Layer ablations (zero, mean) and head ablation.
    let metric = metric_for(&prepared.iter().collect::<Vec<_>>());
    let mut ablations: Vec<AblateResult> = Vec::new();
    for (k, kind) in [AblationKind::Zero, AblationKind::Mean].into_iter().enumerate() {
        let kname = if kind == AblationKind::Zero {
            "zero"
        } else {
            "mean"
        };
        stage_header(
            2 + k,
            n_stages,
            &format!(
                "{kname} ablation of attention and MLP outputs on {} items",
                prepared.len()
            ),
        );
        let t = Instant::now();
        let opts = AblateOptions {
            components: vec![AblateComponent::AttnOut, AblateComponent::MlpOut],
            kind,
            metric,
            per_position: false,
            layers: None,
            reference: vec![],
            seed: args.seed,
            exact_naive: false,
            max_batch: args.batch.max_batch,
        };
        let runs = ablate_runs(&model, &prepared, &opts);
        let pb = progress(runs, &format!("{kname} ablation"));
        let res = ablate_prepared(&model, &prepared, &prepared, &opts, &mut |k| pb.inc(k as u64))?;
        pb.finish_and_clear();
        outputs.add(write_sweep_files(
            &args.out,
            &format!("ablate_{kname}"),
            &res,
            &res.rows,
            &res.summary,
        )?);
        stages.push(Stage {
            name: if kind == AblationKind::Zero {
                "zero ablation (attn, MLP)"
            } else {
                "mean ablation (attn, MLP)"
            },
            items: prepared.len(),
            runs,
            seconds: t.elapsed().as_secs_f64(),
        });
        ablations.push(res);
    }
    let head_prepared: Vec<Prepared> = prepared.iter().take(args.head_items).cloned().collect();
    let head_ablation = if head_prepared.is_empty() {
        None
    } else {
        stage_header(
            4,
            n_stages,
            &format!("zero ablation of single heads on {} items", head_prepared.len()),
        );
        let t = Instant::now();
        let opts = AblateOptions {
            components: vec![AblateComponent::Head],
            kind: AblationKind::Zero,
            metric: metric_for(&head_prepared.iter().collect::<Vec<_>>()),
            per_position: false,
            layers: None,
            reference: vec![],
            seed: args.seed,
            exact_naive: false,
            max_batch: args.batch.max_batch,
        };
        let runs = ablate_runs(&model, &head_prepared, &opts);
        let pb = progress(runs, "head ablation");
        let res = ablate_prepared(&model, &head_prepared, &head_prepared, &opts, &mut |k| {
            pb.inc(k as u64)
        })?;
        pb.finish_and_clear();
        outputs.add(write_sweep_files(
            &args.out,
            "ablate_heads",
            &res,
            &res.rows,
            &res.summary,
        )?);
        stages.push(Stage {
            name: "zero ablation (heads)",
            items: head_prepared.len(),
            runs,
            seconds: t.elapsed().as_secs_f64(),
        });
        Some(res)
    };

    // 3. Activation patching.
    let mut patch_pos: Option<PatchResult> = None;
    let mut patch_heads: Option<PatchResult> = None;
    if !patch_items.is_empty() {
        stage_header(
            5,
            n_stages,
            &format!("activation patching on {} items", patch_items.len()),
        );
        let pp = prepare_all(&model, &patch_items)?;
        let pmetric = metric_for(&pp.iter().collect::<Vec<_>>());
        for (per_position, components, stem) in [
            (
                true,
                vec![
                    PatchComponent::ResidPre,
                    PatchComponent::AttnOut,
                    PatchComponent::MlpOut,
                ],
                "patch",
            ),
            (false, vec![PatchComponent::Z], "patch_heads"),
        ] {
            let t = Instant::now();
            let opts = PatchOptions {
                components,
                per_position,
                direction: Direction::Denoising,
                metric: pmetric,
                layers: None,
                exact_naive: false,
                max_batch: args.batch.max_batch,
            };
            let runs = patch_runs(&model, &pp, &opts);
            let pb = progress(
                runs,
                if per_position {
                    "patch per position"
                } else {
                    "patch heads"
                },
            );
            let res = activation_patching_prepared(&model, &pp, &opts, &mut |k| pb.inc(k as u64))?;
            pb.finish_and_clear();
            outputs.add(write_sweep_files(&args.out, stem, &res, &res.rows, &res.summary)?);
            stages.push(Stage {
                name: if per_position {
                    "patching (resid_pre, attn_out, mlp_out per position)"
                } else {
                    "patching (heads, all positions)"
                },
                items: pp.len(),
                runs,
                seconds: t.elapsed().as_secs_f64(),
            });
            if per_position {
                patch_pos = Some(res);
            } else {
                patch_heads = Some(res);
            }
        }
    }

    // 4. Causal tracing.
    let mut traces: Vec<TraceResult> = Vec::new();
    if !trace_items.is_empty() {
        stage_header(
            6,
            n_stages,
            &format!(
                "causal tracing on {} items ({} noise samples)",
                trace_items.len(),
                args.trace_samples
            ),
        );
        let t = Instant::now();
        let tp = prepare_all(&model, &trace_items)?;
        let opts = TraceOptions {
            samples: args.trace_samples,
            noise: NoiseLevel::EmbeddingStd { multiplier: 3.0 },
            seed: args.seed,
            window: args.window,
            kinds: TraceKind::ALL.to_vec(),
            metric: Metric::TargetProb,
            exact_naive: false,
            max_batch: args.batch.max_batch,
        };
        let runs = trace_runs(&model, &tp, &opts);
        let pb = progress(runs, "causal tracing");
        traces = causal_trace_prepared(&model, &tp, &opts, &mut |k| pb.inc(k as u64))?;
        pb.finish_and_clear();
        outputs.add(write_trace_files(&args.out, "trace", &model.name, &traces)?);
        stages.push(Stage {
            name: "causal tracing",
            items: tp.len(),
            runs,
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    // Figures.
    eprintln!("figures and report");
    let lens_figs = figures::lens_figures(&lens, &fig_dir, lens.len())?;
    let range = figures::ablate_delta_range(&ablations.iter().collect::<Vec<_>>());
    let mut ablate_figs = Vec::new();
    for res in &ablations {
        let prefix = match res.kind {
            AblationKind::Zero => "ablate_zero",
            AblationKind::Mean => "ablate_mean",
            AblationKind::Resample => "ablate_resample",
        };
        ablate_figs.extend(figures::ablate_figures(res, &fig_dir, prefix, range)?);
    }
    if let Some(res) = &head_ablation {
        ablate_figs.extend(figures::ablate_figures(res, &fig_dir, "ablate", None)?);
    }
    let mut patch_figs = Vec::new();
    if let Some(res) = &patch_pos {
        patch_figs.extend(figures::patch_figures(res, &fig_dir, "patch", args.patch_items)?);
    }
    if let Some(res) = &patch_heads {
        patch_figs.extend(figures::patch_figures(res, &fig_dir, "patch", args.patch_items)?);
    }
    let trace_figs = figures::trace_figures(&traces, &fig_dir, args.trace_items)?;
    for f in lens_figs
        .iter()
        .chain(&ablate_figs)
        .chain(&patch_figs)
        .chain(&trace_figs)
    {
        outputs.files.push(f.files.png.clone());
        outputs.files.push(f.files.svg.clone());
    }

    // The HTML report.
    let ctx = Context_ {
        args: &args,
        model: &model,
        probe: probe.as_deref(),
        n_suite,
        stages: &stages,
        total_seconds: started.elapsed().as_secs_f64(),
    };
    let mut report = Report::new(format!(
        "strata report: {}{}",
        figures::short_model(&model.name),
        probe
            .as_deref()
            .map(|p| format!(", probe {p}"))
            .unwrap_or_default()
    ));
    run_section(&mut report, &ctx);
    lens_section(&mut report, &lens, &lens_figs)?;
    ablation_section(&mut report, &ablations, head_ablation.as_ref(), &ablate_figs)?;
    patch_section(&mut report, patch_pos.as_ref(), patch_heads.as_ref(), &patch_figs)?;
    trace_section(&mut report, &traces, &trace_figs)?;
    files_section(&mut report, &args.out, &outputs.files);
    let html = args.out.join("report.html");
    report
        .write(&html)
        .with_context(|| format!("writing {}", html.display()))?;
    println!(
        "wrote {} ({} result files, {} figures) in {:.0} s",
        html.display(),
        outputs.files.iter().filter(|f| !f.starts_with(&fig_dir)).count(),
        outputs.files.iter().filter(|f| f.starts_with(&fig_dir)).count() / 2,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

struct Context_<'a> {
    args: &'a ReportArgs,
    model: &'a Model,
    probe: Option<&'a str>,
    n_suite: usize,
    stages: &'a [Stage],
    total_seconds: f64,
}

fn embed(report: &mut Report, figs: &[Saved]) -> Result<()> {
    for f in figs {
        report
            .figure_file(&f.caption, &f.files.svg)
            .with_context(|| format!("embedding {}", f.files.svg.display()))?;
    }
    Ok(())
}

fn run_section(report: &mut Report, c: &Context_) {
    let a = c.args;
    let cfg = &c.model.config;
    report.section("Run");
    report.paragraph(format!(
        "Model {} ({}, {} layers, {} heads, d_model {}, vocabulary {}), device {}, dtype {}. {}",
        c.model.name,
        cfg.model_type,
        cfg.n_layers,
        cfg.n_heads,
        cfg.d_model,
        cfg.vocab_size,
        a.device,
        a.dtype,
        match c.probe {
            Some(p) => format!("Probe suite {p}: {} valid items.", c.n_suite),
            None => "A single prompt.".to_string(),
        }
    ));
    let cmd: Vec<String> = std::env::args()
        .map(|s| {
            if s.contains(' ') || s.is_empty() {
                format!("'{s}'")
            } else {
                s
            }
        })
        .collect();
    report.pre(cmd.join(" "));
    report.paragraph(format!(
        "Items used: the first {} for the logit lens and the per-layer ablations (--max-items), \
         the first {} for single-head ablation (--head-items), the first {} with a corrupted \
         partner for activation patching (--patch-items), the first {} with a subject for causal \
         tracing (--trace-items, {} noise samples, window {}). The defaults (8, 2, 2, 2, 10 samples, \
         window 10) keep a run on SmolLM2-135M (30 layers, release build) on two CPU cores within \
         a few minutes; raise them for tighter averages.",
        a.max_items, a.head_items, a.patch_items, a.trace_items, a.trace_samples, a.window
    ));
    let mut rows: Vec<Vec<String>> = c
        .stages
        .iter()
        .map(|s| {
            vec![
                s.name.to_string(),
                s.items.to_string(),
                s.runs.to_string(),
                format!("{:.1}", s.seconds),
            ]
        })
        .collect();
    rows.push(vec![
        "total (with loading and figures)".into(),
        String::new(),
        String::new(),
        format!("{:.1}", c.total_seconds),
    ]);
    report.table_with_caption(
        "Stages: items, modified forward runs and wall time",
        &["stage", "items", "runs", "seconds"],
        rows,
    );
}

fn lens_section(report: &mut Report, lens: &[LensResult], figs: &[Saved]) -> Result<()> {
    report.section("Logit lens");
    report.paragraph(
        "The model's own final norm and unembedding applied to the residual stream at every layer \
         (0 = the embeddings, the last layer = the model's output) and position. The table gives, \
         per item at the last position, the target's rank and probability at the output and the \
         first layer at which it is the top-1 token.",
    );
    let mut rows = Vec::new();
    let mut firsts = Vec::new();
    for r in lens {
        let last = r.tokens.len() - 1;
        let out_row = r.row(r.n_layers, last);
        let first = r.first_top1_layer(last);
        if let Some(f) = first {
            firsts.push(f);
        }
        rows.push(vec![
            r.id.clone(),
            q(&r.prompt),
            q(&r.target),
            out_row.map(|x| x.target_rank.to_string()).unwrap_or_default(),
            out_row.map(|x| f4(x.target_prob)).unwrap_or_default(),
            out_row
                .and_then(|x| x.top.first())
                .map(|t| q(&t.token))
                .unwrap_or_default(),
            opt_layer(first),
            opt_layer(r.top1_from_layer(last)),
        ]);
    }
    report.table_with_caption(
        format!("Target at the last position, n = {} items", lens.len()),
        &[
            "item",
            "prompt",
            "target",
            "rank at output",
            "p at output",
            "top-1 at output",
            "first top-1 layer",
            "top-1 from layer on",
        ],
        rows,
    );
    if !lens.is_empty() {
        firsts.sort_unstable();
        let median = firsts
            .get(firsts.len() / 2)
            .map(|l| format!("; median first top-1 layer {l}"))
            .unwrap_or_default();
        report.paragraph(format!(
            "The target becomes top-1 at some layer for {} of {} items{median}.",
            firsts.len(),
            lens.len()
        ));
    }
    embed(report, figs)
}

fn effect_rows(res: &AblateResult, kind: &str, take: usize) -> Vec<Vec<String>> {
    let shown: &[SweepRow] = if res.summary.is_empty() {
        &res.rows
    } else {
        &res.summary
    };
    let mut v: Vec<&SweepRow> = shown.iter().collect();
    v.sort_by(|a, b| {
        (b.value - res.clean)
            .abs()
            .total_cmp(&(a.value - res.clean).abs())
    });
    v.into_iter()
        .take(take)
        .map(|r| {
            vec![
                kind.to_string(),
                r.component.clone(),
                r.layer.to_string(),
                r.head.map(|h| h.to_string()).unwrap_or_default(),
                f4(r.value),
                f4(r.value - res.clean),
                r.normalized.map(f4).unwrap_or_else(|| "–".into()),
            ]
        })
        .collect()
}

fn ablation_section(
    report: &mut Report,
    ablations: &[AblateResult],
    heads: Option<&AblateResult>,
    figs: &[Saved],
) -> Result<()> {
    report.section("Ablation");
    let Some(first) = ablations.first() else {
        report.paragraph("No ablation was run.");
        return Ok(());
    };
    report.paragraph(format!(
        "Each layer's attention output and MLP output replaced by zero, or by its mean over the \
         {} items (per position), at all positions at once. Metric: {} at the last position \
         ({}), mean over {} items; clean run {}{}. normalized: {}.",
        first.items.len(),
        first.metric,
        if first.metric == Metric::LogitDiff {
            "target − distractor logit"
        } else {
            "probability of the target"
        },
        first.items.len(),
        f4(first.clean),
        first
            .corrupted
            .map(|c| format!(", corrupted prompts {}", f4(c)))
            .unwrap_or_default(),
        if first.corrupted.is_some() {
            "(ablated − corrupted) / (clean − corrupted), 1 = no effect, 0 = as bad as the corrupted prompt"
        } else {
            "ablated / clean"
        }
    ));
    let mut rows = Vec::new();
    for res in ablations {
        let k = match res.kind {
            AblationKind::Zero => "zero",
            AblationKind::Mean => "mean",
            AblationKind::Resample => "resample",
        };
        rows.extend(effect_rows(res, k, 5));
    }
    if let Some(h) = heads {
        rows.extend(effect_rows(h, "zero (head)", 5));
    }
    report.table_with_caption(
        "Largest effects (by |ablated − clean|)",
        &["kind", "component", "layer", "head", "value", "Δ", "normalized"],
        rows,
    );
    if let Some(h) = heads {
        report.paragraph(format!(
            "Single heads: each head's output (attn.hook_z) zeroed at all positions, on {} items \
             ({}); clean {}.",
            h.items.len(),
            h.items
                .iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            f4(h.clean)
        ));
    }
    embed(report, figs)
}

fn patch_section(
    report: &mut Report,
    pos: Option<&PatchResult>,
    heads: Option<&PatchResult>,
    figs: &[Saved],
) -> Result<()> {
    report.section("Activation patching");
    let Some(res) = pos.or(heads) else {
        report.paragraph("Skipped: no item has a corrupted partner.");
        return Ok(());
    };
    report.paragraph(format!(
        "Denoising: the corrupted prompt runs with one clean activation patched in — the residual \
         stream before each block, each attention output and each MLP output at one position, and \
         each head's output z at all positions. Metric {}, normalized (patched − corrupted) / \
         (clean − corrupted): 1 = the clean behaviour restored, 0 = no effect. The colour scales \
         are centred at 0 (white).",
        res.metric
    ));
    report.table_with_caption(
        "Items",
        &["item", "clean prompt", "corrupted prompt", "clean", "corrupted"],
        res.items
            .iter()
            .map(|i| {
                vec![
                    i.id.clone(),
                    q(&i.prompt),
                    i.corrupted_prompt.as_deref().map(q).unwrap_or_default(),
                    f4(i.clean),
                    i.corrupted.map(f4).unwrap_or_default(),
                ]
            })
            .collect(),
    );
    let mut best: Vec<(&PatchResult, &SweepRow)> = Vec::new();
    for r in [pos, heads].into_iter().flatten() {
        best.extend(r.rows.iter().filter(|x| x.normalized.is_some()).map(|x| (r, x)));
    }
    best.sort_by(|a, b| {
        b.1.normalized
            .unwrap_or(0.0)
            .abs()
            .total_cmp(&a.1.normalized.unwrap_or(0.0).abs())
    });
    // The strongest three per component (resid_pre at the subject would fill a global top 10).
    let mut seen: Vec<(String, usize)> = Vec::new();
    best.retain(|(_, x)| {
        let k = match seen.iter_mut().find(|(c, _)| *c == x.component) {
            Some(e) => e,
            None => {
                seen.push((x.component.clone(), 0));
                seen.last_mut().unwrap()
            }
        };
        k.1 += 1;
        k.1 <= 3
    });
    let rows = best
        .iter()
        .map(|(r, x)| {
            let tok = x
                .position
                .and_then(|p| {
                    r.items
                        .iter()
                        .find(|i| i.id == x.item)
                        .and_then(|i| i.tokens.get(p))
                })
                .map(|t| format!("{} {}", x.position.unwrap_or(0), q(t)))
                .unwrap_or_else(|| "all".into());
            vec![
                x.item.clone(),
                x.component.clone(),
                x.layer.to_string(),
                tok,
                x.head.map(|h| h.to_string()).unwrap_or_default(),
                f4(x.value),
                x.normalized.map(f4).unwrap_or_default(),
            ]
        })
        .collect();
    report.table_with_caption(
        "Largest normalized effects (three per component, over the items)",
        &[
            "item",
            "component",
            "layer",
            "position",
            "head",
            "value",
            "normalized",
        ],
        rows,
    );
    embed(report, figs)
}

fn trace_section(report: &mut Report, traces: &[TraceResult], figs: &[Saved]) -> Result<()> {
    report.section("Causal tracing");
    if traces.is_empty() {
        report.paragraph("Skipped: no item has a subject.");
        return Ok(());
    }
    report.paragraph(
        "Causal tracing (Meng et al. 2022): Gaussian noise (3 × the std of the model's token \
         embeddings) is added to the subject's token embeddings, then one clean state is restored: \
         a single layer's hidden state (resid_post) at one token, or the MLP / attention outputs \
         of a window of layers around a layer at one token. Metric: probability of the target, \
         mean over the noise samples.",
    );
    let mut rows = Vec::new();
    for r in traces {
        let strongest = |kind: TraceKind| {
            r.rows
                .iter()
                .filter(|x| x.kind == kind)
                .max_by(|a, b| a.value.total_cmp(&b.value))
                .map(|x| format!("layer {} {} ({})", x.layer, q(&r.tokens[x.position]), f4(x.value)))
                .unwrap_or_default()
        };
        rows.push(vec![
            r.id.clone(),
            q(&r.prompt),
            r.subject_positions
                .iter()
                .map(|&p| q(&r.tokens[p]))
                .collect::<Vec<_>>()
                .join(" "),
            f4(r.noise_std),
            f4(r.clean),
            f4(r.corrupted),
            strongest(TraceKind::Hidden),
            strongest(TraceKind::Mlp),
            strongest(TraceKind::Attn),
        ]);
    }
    report.table_with_caption(
        "Items and strongest restorations",
        &[
            "item",
            "prompt",
            "subject tokens",
            "noise std",
            "clean",
            "noised",
            "best hidden",
            "best MLP window",
            "best attention window",
        ],
        rows,
    );
    embed(report, figs)
}

fn files_section(report: &mut Report, out: &Path, files: &[PathBuf]) {
    report.section("Files");
    report.paragraph(format!(
        "Written into {} (schema: docs/results.md). Figures are in figures/ as PNG and SVG.",
        out.display()
    ));
    let rows = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json" || e == "csv"))
        .map(|f| {
            let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
            vec![
                f.strip_prefix(out).unwrap_or(f).display().to_string(),
                format!("{:.1} KiB", size as f64 / 1024.0),
            ]
        })
        .collect();
    report.table(&["result file", "size"], rows);
}
