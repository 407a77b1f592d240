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
    /// The structural dataset of LLMs and benchmark scores.
    Dataset(cli::dataset::DatasetArgs),
}

fn main() {
    let result = match Cli::parse().command {
        Command::Inspect(a) => cli::inspect::run(a),
        Command::Run(a) => cli::run::run(a),
        Command::Generate(a) => cli::generate::run(a),
        Command::Dataset(a) => cli::dataset::run(a),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
