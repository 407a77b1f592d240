//! `strata dataset describe | correlate | importance | trends`: the seed study's dataset analyses.
//! Thin: parse flags, load, call `strata_dataset`, print / write tables (every number with its n).

use std::path::PathBuf;

use anyhow::{bail, Context};
use strata_dataset::analysis::{self, CorrelateOptions};
use strata_dataset::columns::{parse_column, Column, V1_BENCHMARKS, V2_BENCHMARKS};
use strata_dataset::figures;
use strata_dataset::importance::{self, ImportanceParams};
use strata_dataset::stats::Method;
use strata_dataset::table::Table;
use strata_dataset::{Dataset, LoadOptions};
use strata_report::Figure;

#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    #[command(subcommand)]
    pub command: DatasetCommand,
    /// Dataset CSV (the bundled data/structure_performance.csv when omitted; the paper's
    /// model_info.csv and other tables load through tolerant header mapping).
    #[arg(long, global = true, value_name = "FILE")]
    pub dataset: Option<PathBuf>,
    /// Skip rows with a malformed cell (they are counted and listed) instead of failing.
    #[arg(long, global = true)]
    pub skip_invalid: bool,
    /// Output format of the tables.
    #[arg(long, global = true, value_enum, default_value_t = Format::Md)]
    pub format: Format,
    /// Also write every table into DIR (one file per table, in --format), and the figures of
    /// `correlate`, `importance` and `trends` (PNG + SVG).
    #[arg(long, global = true, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --out, write the tables only (no figures).
    #[arg(long, global = true)]
    pub no_figures: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Md,
    Csv,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum DatasetCommand {
    /// The paper's descriptive table: Column | Mean | Mode | Q1 | Q2 | Q3 | Max | Skewness | Kurtosis | Miss Rate (+ n).
    Describe,
    /// Pearson, Spearman, Kendall tau-b and partial (given log10 params) correlations of every
    /// structural feature with every benchmark: p-values, Benjamini-Hochberg, bootstrap CIs.
    Correlate {
        /// Bootstrap resamples per confidence interval (0 = no intervals).
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
        /// Seed of the bootstrap.
        #[arg(long, default_value_t = 20250918)]
        seed: u64,
        /// Comma-separated methods among pearson, spearman, kendall.
        #[arg(long, default_value = "pearson,spearman,kendall")]
        methods: String,
        /// Skip the partial correlations.
        #[arg(long)]
        no_partial: bool,
        /// The method drawn in the heatmap written with --out (pearson, spearman, kendall,
        /// partial_pearson; it must be among the methods computed).
        #[arg(long, default_value = "spearman", value_name = "METHOD")]
        heatmap: String,
    },
    /// Random-forest regression per benchmark: CV R², impurity and permutation importances over
    /// seeds, partial dependence; the top feature against the paper's finding.
    Importance {
        /// Benchmarks: `v1` (the six of the Open LLM Leaderboard v1), `v2`, `all`, or a
        /// comma-separated list of columns.
        #[arg(long, default_value = "v1")]
        benchmarks: String,
        #[arg(long, default_value_t = 300)]
        trees: usize,
        #[arg(long, default_value_t = 5)]
        seeds: usize,
        #[arg(long, default_value_t = 5)]
        folds: usize,
        /// Permutation repeats per feature and fold.
        #[arg(long, default_value_t = 5)]
        repeats: usize,
        /// Comma-separated features to leave out (e.g. `params_b`: what matters beyond size).
        #[arg(long, default_value = "")]
        exclude: String,
    },
    /// Structural parameters by release year: n, Q1, median, Q3.
    Trends,
}

pub fn run(args: DatasetArgs) -> anyhow::Result<()> {
    let opts = LoadOptions {
        skip_invalid: args.skip_invalid,
    };
    let (ds, report) = match &args.dataset {
        Some(p) => strata_dataset::load(p, &opts).with_context(|| format!("loading {}", p.display()))?,
        None => strata_dataset::load_bundled(&opts).context("loading the bundled dataset")?,
    };
    eprintln!("{}", report.summary());
    for s in &report.skipped {
        eprintln!(
            "  skipped line {}, column {} `{}`: {}",
            s.line, s.column_index, s.column, s.message
        );
    }
    let mut figures: Vec<(String, Figure)> = Vec::new();
    let tables: Vec<(&str, Table)> = match &args.command {
        DatasetCommand::Describe => vec![("describe", analysis::describe_table(&ds))],
        DatasetCommand::Correlate {
            bootstrap,
            seed,
            methods,
            no_partial,
            heatmap,
        } => {
            let methods = methods
                .split(',')
                .map(|m| match m.trim() {
                    "pearson" => Ok(Method::Pearson),
                    "spearman" => Ok(Method::Spearman),
                    "kendall" => Ok(Method::Kendall),
                    other => bail!("unknown method `{other}` (pearson, spearman, kendall)"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let o = CorrelateOptions {
                methods,
                bootstrap: *bootstrap,
                seed: *seed,
                partial: !no_partial,
                ..Default::default()
            };
            let heatmap = heatmap.trim();
            let computed = o
                .methods
                .iter()
                .map(|m| m.name())
                .chain((o.partial).then_some("partial_pearson"));
            if !computed.clone().any(|m| m == heatmap) {
                bail!(
                    "--heatmap {heatmap}: not among the methods computed ({})",
                    computed.collect::<Vec<_>>().join(", ")
                );
            }
            let rows = analysis::correlate(&ds, &o);
            if let Some(h) = figures::correlation_heatmap(&rows, heatmap) {
                figures.push((format!("correlations_{heatmap}"), h.into()));
            }
            vec![("correlations", analysis::correlation_table(&rows, &o))]
        }
        DatasetCommand::Importance {
            benchmarks,
            trees,
            seeds,
            folds,
            repeats,
            exclude,
        } => {
            let benches = parse_benchmarks(benchmarks, &ds)?;
            let p = ImportanceParams {
                forest: strata_dataset::forest::ForestParams {
                    n_trees: *trees,
                    ..Default::default()
                },
                n_folds: *folds,
                n_seeds: *seeds,
                n_repeats: *repeats,
                partial_dependence: true,
                exclude: exclude
                    .split(',')
                    .map(|e| e.trim().to_string())
                    .filter(|e| !e.is_empty())
                    .collect(),
            };
            let mut results = Vec::new();
            for b in benches {
                match importance::analyse(&ds, b, &p) {
                    Ok(r) => results.push(r),
                    Err(e) => eprintln!("importance: {e}"),
                }
            }
            if results.is_empty() {
                bail!("no benchmark had enough rows for the random forest");
            }
            if let Some(p) = figures::importance_figure(&results) {
                figures.push(("importance".into(), p.into()));
            }
            let (summary, details) = analysis::importance_tables(&results, None);
            vec![("importance", summary), ("importance_features", details)]
        }
        DatasetCommand::Trends => {
            if let Some(p) = figures::trends_figure(&ds) {
                figures.push(("trends".into(), p.into()));
            }
            vec![("trends", analysis::trends_table(&ds))]
        }
    };
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    for (name, t) in &tables {
        let text = match args.format {
            Format::Md => t.to_markdown(),
            Format::Csv => t.to_csv(),
        };
        print_stdout(&text)?;
        if let Some(dir) = &args.out {
            let ext = if args.format == Format::Md { "md" } else { "csv" };
            let path = dir.join(format!("{name}.{ext}"));
            let tmp = dir.join(format!(".{name}.{ext}.tmp"));
            std::fs::write(&tmp, &text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
    }
    if let (Some(dir), false) = (&args.out, args.no_figures) {
        for (stem, fig) in &figures {
            let files = figures::write(fig.clone(), dir, stem)
                .with_context(|| format!("drawing the figure {stem} into {}", dir.display()))?;
            eprintln!("wrote {} and {}", files.png.display(), files.svg.display());
        }
    }
    Ok(())
}

fn parse_benchmarks(spec: &str, ds: &Dataset) -> anyhow::Result<Vec<Column>> {
    let present = |c: &Column| ds.numeric(*c).is_some();
    Ok(match spec {
        "v1" => V1_BENCHMARKS.iter().copied().filter(present).collect(),
        "v2" => V2_BENCHMARKS.iter().copied().filter(present).collect(),
        "all" => V1_BENCHMARKS
            .iter()
            .chain(V2_BENCHMARKS)
            .copied()
            .filter(present)
            .collect(),
        list => list
            .split(',')
            .map(|s| match parse_column(s.trim()) {
                Some(c) if c.is_benchmark() => Ok(c),
                _ => bail!("`{s}` is not a benchmark column"),
            })
            .collect::<anyhow::Result<Vec<_>>>()?,
    })
}

/// Print to stdout; a closed pipe (`| head`) ends the output quietly.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("writing to stdout"),
    }
}
