//! The `strata` command line.
mod cli;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Mechanistic interpretability on open-weight LLMs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture of a model (table, CSV row joinable to the dataset, or JSON).
    Inspect(cli::inspect::InspectArgs),
    /// One forward; print the top next tokens and save logits and hook activations.
    Run(cli::run::RunArgs),
    /// Greedy generation.
    Generate(cli::generate::GenerateArgs),
    /// Logit lens: the model's own unembedding applied at every layer and position.
    Lens(cli::lens::LensArgs),
    /// Ablation of blocks, attention, MLPs or heads (zero, mean, resample).
    Ablate(cli::ablate::AblateArgs),
    /// Activation patching between clean and corrupted prompts.
    Patch(cli::patch::PatchArgs),
    /// Causal tracing (ROME): noise the subject, restore states layer by layer.
    Trace(cli::trace::TraceArgs),
    /// Every experiment on a probe suite: results, figures and one self-contained HTML report.
    Report(cli::report::ReportArgs),
    /// The structural dataset of LLMs and benchmark scores.
    Dataset(cli::dataset::DatasetArgs),
    /// Per-layer findings (lens, ablation, attribution) of several models, resumable.
    Sweep(cli::sweep::SweepArgs),
    /// Findings of `strata sweep` correlated with the structural dataset.
    Correlate(cli::correlate::CorrelateArgs),
}

fn main() {
    // Like other Unix tools, end quietly when the reader of our output goes away (`| head`).
    #[cfg(unix)]
    // SAFETY: restoring the default SIGPIPE action before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let result = match Cli::parse().command {
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Run(a) => cli::run::run(a),
        Command::Generate(a) => cli::generate::run(a),
        Command::Lens(a) => cli::lens::run(a),
        Command::Ablate(a) => cli::ablate::run(a),
        Command::Patch(a) => cli::patch::run(a),
        Command::Trace(a) => cli::trace::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::Dataset(a) => cli::dataset::run(a),
        Command::Sweep(a) => cli::sweep::run(a),
        Command::Correlate(a) => cli::correlate::run(a),
    };
    if let Err(e) = result {
        let msg = format!("{e:#}");
        eprintln!("error: {msg}");
        if msg.contains("OUT_OF_MEMORY") && !msg.contains("ran out of memory") {
            eprintln!(
                "hint: the device ran out of memory: try --dtype bf16, a smaller --max-batch, \
                 shorter prompts, or --device cpu"
            );
        }
        std::process::exit(1);
    }
}
