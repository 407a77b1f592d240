//! `strata run`: one forward; saves logits and the selected hook activations by hook name.
use anyhow::{Context, Result};
use clap::Args;
use std::collections::HashMap;
use std::path::PathBuf;
use strata_model::hooks::first_non_finite;
use strata_model::{ActivationCache, HookLayout, HookPoint, HookSet, TokenBatch};

use super::common::{prompt_ids, write_atomic, ModelArgs};

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[arg(long, conflicts_with = "tokens")]
    pub prompt: Option<String>,
    /// Comma-separated token ids instead of a prompt.
    #[arg(long)]
    pub tokens: Option<String>,
    /// Hook names to save; `*` and `?` are wildcards (e.g. `blocks.*.hook_resid_post`).
    #[arg(long, num_args = 1..)]
    pub hooks: Vec<String>,
    /// Output safetensors file (logits, input_ids and the hooks under their names).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// How many top next tokens to print.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Time N extra forwards (no hooks) and print the median, for benchmarks.
    #[arg(long, default_value_t = 0)]
    pub repeat: usize,
}

pub fn run(args: RunArgs) -> Result<()> {
    let model = args.model.load()?;
    let ids = prompt_ids(&model, args.prompt.as_deref(), args.tokens.as_deref())?;
    let c = &model.config;
    let layout = HookLayout::from(c);
    let matching = |points: Vec<HookPoint>, pattern: &str| -> Vec<HookPoint> {
        points
            .into_iter()
            .filter(|p| wildcard(pattern, &p.to_string()))
            .collect()
    };
    let mut selected = Vec::new();
    for pattern in &args.hooks {
        // Patterns match the hook points every forward has; the split inputs, which exist only on
        // request, when nothing else matches (`blocks.*.hook_q_input`, not `*`).
        let mut matched = matching(HookPoint::all(layout), pattern);
        if matched.is_empty() {
            matched = matching(HookPoint::on_request(layout), pattern);
        }
        if matched.is_empty() {
            // An exact name that does not exist gets the closest suggestions.
            HookPoint::parse_for(pattern, layout)?;
        }
        selected.extend(matched);
    }
    let batch = TokenBatch::single(ids.clone())?;
    let mut cache = ActivationCache::of(selected);
    let logits = model.decoder.forward(&batch, &mut cache)?;
    if first_non_finite(HookPoint::Logits, &logits)?.is_some() {
        // Run again, checking every activation, to name where the NaN/Inf first appears.
        model
            .decoder
            .forward(&batch, &mut HookSet::new().checking_finite())?;
    }

    let last = logits
        .get(0)?
        .get(ids.len() - 1)?
        .to_dtype(candle_core::DType::F32)?
        .to_vec1::<f32>()?;
    let max = last.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f32 = last.iter().map(|x| (x - max).exp()).sum();
    let probs: Vec<f32> = last.iter().map(|x| (x - max).exp() / total).collect();
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    println!("{} tokens; top next tokens:", ids.len());
    for &i in order.iter().take(args.top) {
        let tok = model
            .tokenizer
            .as_ref()
            .map_or(format!("<{i}>"), |t| t.token(i as u32));
        println!("  {i:>7} {:>8.4} {tok:?}", probs[i]);
    }
    if args.repeat > 0 {
        let mut times: Vec<f64> = (0..args.repeat)
            .map(|_| {
                let t = std::time::Instant::now();
                model
                    .decoder
                    .forward(&batch, &mut strata_model::NoHooks)
                    .map(|_| t.elapsed().as_secs_f64())
            })
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        println!(
            "forward median {:.3} ms over {} runs",
            1e3 * times[times.len() / 2],
            times.len()
        );
    }
    if let Some(path) = &args.save {
        let mut tensors = HashMap::new();
        tensors.insert("logits".to_string(), logits.to_dtype(candle_core::DType::F32)?);
        let n = ids.len();
        tensors.insert(
            "input_ids".to_string(),
            candle_core::Tensor::from_vec(ids, (1, n), &candle_core::Device::Cpu)?,
        );
        for (point, act) in cache.activations {
            tensors.insert(point.to_string(), act.to_dtype(candle_core::DType::F32)?);
        }
        let bytes = safetensors_bytes(&tensors)?;
        write_atomic(path, &bytes)?;
        println!("saved {} tensors to {}", tensors.len(), path.display());
    }
    Ok(())
}

fn safetensors_bytes(tensors: &HashMap<String, candle_core::Tensor>) -> Result<Vec<u8>> {
    safetensors::serialize(tensors, None).context("serialising tensors")
}

/// `*` matches any run of characters, `?` one character.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}
