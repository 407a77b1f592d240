//! `strata sweep`: per-layer findings of several models on one probe suite, resumable;
//! `layers.csv` and `models.csv` join the structural dataset (`strata correlate`).
use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use strata_experiments::prepare_all;
use strata_experiments::results::{write_csv, write_json};
use strata_experiments::sweep::{sweep_model, LayerFinding, ModelSweep, SweepOptions};
use strata_model::{parse_device, parse_dtype, LoadOptions, Model};

use super::common::BatchArgs;
use super::lens::{out_dir, progress, ItemArgs};

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// Models, each `MODEL` or `MODEL=DATASET_ID` (the id joins the dataset's model_id).
    #[arg(long, num_args = 1.., required = true)]
    pub models: Vec<String>,
    #[command(flatten)]
    pub items: ItemArgs,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// A layer's ablation is costly when it removes more than this share of the logit difference.
    #[arg(long, default_value_t = 0.1)]
    pub costly_threshold: f64,
    #[command(flatten)]
    pub batch: BatchArgs,
    /// Output directory; finished models are kept in DIR/models/ and skipped when rerun.
    #[arg(long, default_value = "sweep")]
    pub out: PathBuf,
    /// Recompute models already finished in DIR/models/.
    #[arg(long)]
    pub fresh: bool,
}

/// `path=id` → (path, id); a bare path is its own id.
fn split_spec(spec: &str) -> (&str, &str) {
    spec.split_once('=').unwrap_or((spec, spec))
}

fn checkpoint_path(out: &Path, model: &str) -> PathBuf {
    let slug: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.join("models").join(format!("{slug}.json"))
}

/// What a checkpoint must match to be reused.
#[derive(serde::Serialize, serde::Deserialize, PartialEq)]
struct Checkpoint {
    probe: String,
    limit: Option<usize>,
    dtype: String,
    costly_threshold: f64,
    sweep: ModelSweep,
}

pub fn run(args: SweepArgs) -> Result<()> {
    out_dir(&args.out.join("models"))?;
    remove_stale_temporaries(&args.out.join("models"));
    remove_stale_temporaries(&args.out);
    let probe = args
        .items
        .probe
        .clone()
        .context("strata sweep needs --probe SUITE")?;
    let opts = LoadOptions {
        dtype: parse_dtype(&args.dtype)?,
        device: parse_device(&args.device)?,
        revision: None,
    };
    let mut sweeps = Vec::new();
    for spec in &args.models {
        let (path, id) = split_spec(spec);
        let ckpt_path = checkpoint_path(&args.out, spec);
        if !args.fresh && ckpt_path.is_file() {
            let text = std::fs::read_to_string(&ckpt_path)?;
            if let Ok(c) = serde_json::from_str::<Checkpoint>(&text) {
                if c.probe == probe
                    && c.limit == args.items.limit
                    && c.dtype == args.dtype
                    && c.costly_threshold == args.costly_threshold
                {
                    eprintln!("{path}: finished earlier, reusing {}", ckpt_path.display());
                    sweeps.push(c.sweep);
                    continue;
                }
            }
            eprintln!(
                "{path}: checkpoint {} is for other settings; recomputing",
                ckpt_path.display()
            );
        }
        let model = Model::load(path, &opts).with_context(|| format!("loading model '{path}'"))?;
        let items = prepare_all(&model, &args.items.items(&model, None, None)?)?;
        let pb = progress(3 * items.len(), &format!("sweep {path}"));
        let sweep_opts = SweepOptions {
            costly_threshold: args.costly_threshold,
            max_batch: args.batch.max_batch,
        };
        let sweep = sweep_model(&model, id, &items, &sweep_opts, &mut |k| pb.inc(k as u64))?;
        pb.finish_and_clear();
        let ckpt = Checkpoint {
            probe: probe.clone(),
            limit: args.items.limit,
            dtype: args.dtype.clone(),
            costly_threshold: args.costly_threshold,
            sweep,
        };
        write_json(&ckpt_path, &ckpt)?;
        print_summary(&ckpt.sweep);
        sweeps.push(ckpt.sweep);
    }
    write_tables(&args.out, &sweeps)?;
    let fig = profiles_figure(&sweeps, &args.out.join("profiles"))?;
    println!(
        "wrote {}, {} and {}",
        args.out.join("layers.csv").display(),
        args.out.join("models.csv").display(),
        fig.png.display()
    );
    Ok(())
}

/// A run killed between writing a checkpoint's temporary file and renaming it leaves
/// `.NAME.tmp-PID` behind (see `write_atomic`); remove those whose process is gone.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some((_, pid)) = name.strip_prefix('.').and_then(|n| n.rsplit_once(".tmp-")) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

fn print_summary(s: &ModelSweep) {
    let m = &s.summary;
    println!(
        "{}: {} items, {} layers; target first top-1 at relative depth {} ({} of {} items reach top-1); \
         costly ablations: attention {:.0}% / MLP {:.0}% of layers; MLP share of attribution {:.2}",
        m.model,
        m.n_items,
        m.n_layers,
        m.first_top1_relative_depth
            .map_or("never".to_string(), |d| format!("{d:.3}")),
        m.items_reaching_top1,
        m.n_items,
        100.0 * m.costly_attn_share,
        100.0 * m.costly_mlp_share,
        m.mlp_attribution_share
    );
}

fn write_tables(out: &Path, sweeps: &[ModelSweep]) -> Result<()> {
    let f = |x: f64| format!("{x:.6}");
    let layer_rows: Vec<Vec<String>> = sweeps
        .iter()
        .flat_map(|s| s.layers.iter())
        .map(|l: &LayerFinding| {
            vec![
                l.model.clone(),
                l.layer.to_string(),
                f(l.relative_depth),
                f(l.lens_target_prob),
                f(l.lens_target_rank),
                f(l.attn_ablation),
                f(l.mlp_ablation),
                f(l.attn_attribution),
                f(l.mlp_attribution),
            ]
        })
        .collect();
    write_csv(
        &out.join("layers.csv"),
        &[
            "model",
            "layer",
            "relative_depth",
            "lens_target_prob",
            "lens_target_rank",
            "attn_ablation",
            "mlp_ablation",
            "attn_attribution",
            "mlp_attribution",
        ],
        &layer_rows,
    )?;
    let model_rows: Vec<Vec<String>> = sweeps
        .iter()
        .map(|s| {
            let m = &s.summary;
            vec![
                m.model_id.clone(),
                m.model.clone(),
                m.n_layers.to_string(),
                m.n_items.to_string(),
                m.first_top1_relative_depth.map(f).unwrap_or_default(),
                m.items_reaching_top1.to_string(),
                f(m.costly_attn_share),
                f(m.costly_mlp_share),
                f(m.mlp_attribution_share),
                f(m.clean_logit_diff),
            ]
        })
        .collect();
    write_csv(
        &out.join("models.csv"),
        &[
            "model_id",
            "model",
            "n_layers",
            "n_items",
            "first_top1_relative_depth",
            "items_reaching_top1",
            "costly_attn_share",
            "costly_mlp_share",
            "mlp_attribution_share",
            "clean_logit_diff",
        ],
        &model_rows,
    )?;
    Ok(())
}

/// Per-layer profiles of every model on a relative-depth axis, one panel per finding.
fn profiles_figure(sweeps: &[ModelSweep], stem: &Path) -> Result<strata_report::FigureFiles> {
    type Pick = fn(&LayerFinding) -> f64;
    let findings: [(&str, &str, Pick); 5] = [
        ("Logit lens: target probability", "p(target)", |l| {
            l.lens_target_prob
        }),
        (
            "Attention zeroed: logit difference left",
            "normalised logit diff",
            |l| l.attn_ablation,
        ),
        (
            "MLP zeroed: logit difference left",
            "normalised logit diff",
            |l| l.mlp_ablation,
        ),
        ("Direct logit attribution: attention", "logit diff", |l| {
            l.attn_attribution
        }),
        ("Direct logit attribution: MLP", "logit diff", |l| {
            l.mlp_attribution
        }),
    ];
    let panels = findings
        .iter()
        .map(|(title, y_label, pick)| {
            strata_report::Figure::Lines(strata_report::Lines {
                title: title.to_string(),
                x_label: "relative depth (block / L)".into(),
                y_label: y_label.to_string(),
                series: sweeps
                    .iter()
                    .map(|s| {
                        let short = s.summary.model_id.rsplit('/').next().unwrap_or_default();
                        let name = format!("{short} (L={})", s.summary.n_layers);
                        strata_report::LineSeries::new(
                            name,
                            s.layers.iter().map(|l| (l.relative_depth, pick(l))).collect(),
                        )
                    })
                    .collect(),
                x_range: Some((0.0, 1.0)),
                ..Default::default()
            })
        })
        .collect();
    let fig = strata_report::Panels {
        title: "Per-layer findings by relative depth".into(),
        panels,
        columns: 2,
    };
    Ok(strata_report::panels(&fig, stem)?)
}
