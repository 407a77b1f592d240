//! Flags shared by the commands that load a model, and small output helpers.
use anyhow::{Context, Result};
use clap::Args;
use std::path::Path;
use strata_experiments::batch_size::runs_that_fit;
use strata_experiments::{BatchSize, Prepared};
use strata_model::{available_device_memory, parse_device, parse_dtype, LoadOptions, Model};

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// A .gguf file, a local checkpoint directory, or a Hugging Face repo id.
    pub model: String,
    /// cpu, cuda, cuda:N, metal or auto.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// f32, f16 or bf16 (weights are converted at load).
    #[arg(long, default_value = "f32")]
    pub dtype: String,
    /// Hub revision (branch, tag or commit) for repo ids.
    #[arg(long)]
    pub revision: Option<String>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Model> {
        let opts = LoadOptions {
            dtype: parse_dtype(&self.dtype)?,
            device: parse_device(&self.device)?,
            revision: self.revision.clone(),
        };
        Model::load(&self.model, &opts).with_context(|| format!("loading model '{}'", self.model))
    }
}

/// `--max-batch` of the commands that run many modified forwards (patch, ablate, trace, sweep,
/// report).
#[derive(Args, Debug, Clone, Copy)]
pub struct BatchArgs {
    /// Patched, ablated or restored runs per batched forward: a number, or auto (as many as fit
    /// in 80% of the free GPU memory; 32 on the CPU)
    #[arg(long, default_value = "auto")]
    pub max_batch: BatchSize,
}

impl BatchArgs {
    /// Says how many runs each batched forward holds when `auto` sizes it from the device's free
    /// memory (silent on the CPU, where auto is a fixed size, and for a fixed `--max-batch`).
    pub fn report(&self, model: &Model, prepared: &[Prepared]) -> Result<()> {
        if self.max_batch != BatchSize::Auto {
            return Ok(());
        }
        let device = model.decoder.device();
        let Some(free) = available_device_memory(device)? else {
            return Ok(());
        };
        let longest = prepared.iter().map(Prepared::len).max().unwrap_or(1);
        let runs = runs_that_fit(&model.config, model.decoder.dtype(), longest, free);
        eprintln!(
            "--max-batch auto: {runs} runs per forward for {longest}-token prompts ({:.1} GiB free on {device:?})",
            free as f64 / (1u64 << 30) as f64
        );
        Ok(())
    }
}

/// Token ids from `--prompt` or `--tokens 1,2,3`.
pub fn prompt_ids(model: &Model, prompt: Option<&str>, tokens: Option<&str>) -> Result<Vec<u32>> {
    let ids = match (prompt, tokens) {
        (Some(text), None) => model.tokenizer()?.encode(text)?,
        (None, Some(list)) => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<u32>()
                    .with_context(|| format!("--tokens: '{t}' is not a token id"))
            })
            .collect::<Result<Vec<_>>>()?,
        _ => anyhow::bail!("give exactly one of --prompt TEXT or --tokens IDS"),
    };
    anyhow::ensure!(!ids.is_empty(), "the prompt is empty: it has no tokens");
    Ok(ids)
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Writes an ablation / patching result as `dir/<stem>.json` and `dir/<stem>.csv` (rows, then
/// summary rows).
pub fn write_sweep_files<T: serde::Serialize>(
    dir: &Path,
    stem: &str,
    result: &T,
    rows: &[strata_experiments::SweepRow],
    summary: &[strata_experiments::SweepRow],
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    use strata_experiments::results::{sweep_csv_records, write_csv, write_json, SWEEP_CSV_HEADER};
    let json = dir.join(format!("{stem}.json"));
    write_json(&json, result)?;
    let csv = dir.join(format!("{stem}.csv"));
    let mut all = rows.to_vec();
    all.extend(summary.iter().cloned());
    write_csv(&csv, SWEEP_CSV_HEADER, &sweep_csv_records(&all))?;
    Ok((json, csv))
}

/// Several items' results in one file, with the schema header of a single result.
#[derive(serde::Serialize)]
struct Suite<'a, T> {
    schema_version: u32,
    experiment: &'a str,
    model: &'a str,
    items: &'a [T],
}

/// Writes one item's result as it is, several as `{schema_version, experiment, model, items}`.
/// `--repeat N` of the experiment commands, for benchmarks.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct RepeatArgs {
    /// Run the computation this many times (benchmarking): `elapsed_seconds` in the JSON is the
    /// fastest run and every run's time is printed. The first run pays one-time costs (thread
    /// pool start, device kernel loading, cuBLAS set-up).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
}

impl RepeatArgs {
    /// The last run's result and the fastest run's wall-clock seconds.
    pub fn run<T>(&self, what: &str, mut f: impl FnMut() -> Result<T>) -> Result<(T, f64)> {
        let mut times = Vec::new();
        loop {
            let started = std::time::Instant::now();
            let out = f()?;
            times.push(started.elapsed().as_secs_f64());
            if times.len() == self.repeat as usize {
                if times.len() > 1 {
                    let list: Vec<String> = times.iter().map(|t| format!("{t:.3}")).collect();
                    println!("{what} times (s): {}", list.join(", "));
                }
                let fastest = times.iter().copied().fold(f64::INFINITY, f64::min);
                return Ok((out, fastest));
            }
        }
    }
}

/// Writes `dir/<stem>.json` (one result, or `{schema_version, experiment, model, items}`) and
/// `dir/<stem>.csv` (`header`, then one record per row of every result).
pub fn write_item_files<T: serde::Serialize>(
    dir: &Path,
    stem: &str,
    experiment: &str,
    model: &str,
    results: &[T],
    header: &[&str],
    records: &[Vec<String>],
) -> Result<(std::path::PathBuf, std::path::PathBuf)> {
    let json = dir.join(format!("{stem}.json"));
    write_results_json(&json, experiment, model, results)?;
    let csv = dir.join(format!("{stem}.csv"));
    strata_experiments::results::write_csv(&csv, header, records)?;
    Ok((json, csv))
}

pub fn write_results_json<T: serde::Serialize>(
    path: &Path,
    experiment: &str,
    model: &str,
    results: &[T],
) -> Result<()> {
    use strata_experiments::results::{write_json, SCHEMA_VERSION};
    match results {
        [one] => write_json(path, one)?,
        _ => write_json(
            path,
            &Suite {
                schema_version: SCHEMA_VERSION,
                experiment,
                model,
                items: results,
            },
        )?,
    }
    Ok(())
}
