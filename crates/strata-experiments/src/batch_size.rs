//! How many patched runs one batched forward holds: fixed (`--max-batch N`) or sized from the
//! device memory still free (`--max-batch auto`, the default), and what to say when a batch
//! does not fit after all.

use std::fmt;

use candle_core::DType;
use strata_model::{available_device_memory, HookedDecoder, ModelConfig};

use crate::error::{input, ExperimentError, Result};

/// Patched runs per batched forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BatchSize {
    /// As many as fit in [`AUTO_MEMORY_SHARE`] of the device memory still free (CUDA);
    /// [`CPU_BATCH`] where free memory cannot be asked (CPU, Metal).
    #[default]
    Auto,
    Fixed(usize),
}

/// Runs per forward on devices whose free memory is unknown. On the CPU larger batches gain
/// little: the matmuls are already large enough to keep both cores busy.
pub const CPU_BATCH: usize = 32;
/// Share of the free device memory an automatic batch plans for; the rest absorbs what the
/// estimate leaves out (allocator rounding, cuBLAS workspaces, temporaries).
pub const AUTO_MEMORY_SHARE: f64 = 0.8;
/// Upper bound of an automatic batch: beyond it a forward gains no throughput on any GPU.
pub const MAX_AUTO_BATCH: usize = 1024;

impl BatchSize {
    /// The fixed size, or `fallback` for [`BatchSize::Auto`] (callers that batch prompts, not
    /// patched runs).
    pub fn fixed_or(self, fallback: usize) -> usize {
        match self {
            BatchSize::Fixed(n) => n.max(1),
            BatchSize::Auto => fallback,
        }
    }

    /// The number of runs per forward for runs of `positions` tokens on `dec`'s device.
    pub fn resolve(self, dec: &HookedDecoder, positions: usize) -> Result<usize> {
        match self {
            BatchSize::Fixed(n) => Ok(n.max(1)),
            BatchSize::Auto => Ok(match available_device_memory(dec.device())? {
                Some(free) => runs_that_fit(&dec.config, dec.dtype(), positions, free),
                None => CPU_BATCH,
            }),
        }
    }
}

impl std::str::FromStr for BatchSize {
    type Err = ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        if s == "auto" {
            return Ok(BatchSize::Auto);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(BatchSize::Fixed(n)),
            _ => input(format!(
                "batch size '{s}': use a positive number of runs per forward, or 'auto'"
            )),
        }
    }
}

impl fmt::Display for BatchSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchSize::Auto => f.write_str("auto"),
            BatchSize::Fixed(n) => write!(f, "{n}"),
        }
    }
}

/// Device memory of a batch of patched runs of `positions` tokens, by what holds it (bytes).
/// The fast path recomputes at most every position of every block for each run; one block's
/// activations are alive at a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatchFootprint {
    /// Attention scores and probabilities of one block (f32).
    pub attention_scores: usize,
    /// Queries, keys and values of one block, before and after rotary embeddings.
    pub qkv: usize,
    /// The MLP's hidden activations of one block (gate, up and their product when gated).
    pub mlp: usize,
    /// Residual-stream-sized tensors alive in one block (input, norms, outputs, the batch copy).
    pub residual: usize,
    /// Each run's replacement values: at most every position of one point, at the widest
    /// activation (a sweep's run patches one site).
    pub patches: usize,
    /// The unpatched run kept for every batch: each block's input, keys and values.
    pub base_run: usize,
}

/// Residual-sized tensors alive at once in a block (see [`BatchFootprint::residual`]).
const RESIDUAL_COPIES: usize = 6;

impl BatchFootprint {
    pub fn of(c: &ModelConfig, dtype: DType, runs: usize, positions: usize) -> Self {
        let (elem, t) = (dtype.size_in_bytes(), positions);
        let kv_width = 2 * c.n_kv_heads * c.d_head;
        let widest = c.d_model.max(c.n_heads * c.d_head);
        BatchFootprint {
            attention_scores: runs * 2 * c.n_heads * t * t * 4,
            qkv: runs * 2 * t * (c.n_heads * c.d_head + kv_width) * elem,
            mlp: runs * t * c.d_mlp * if c.gated_mlp { 3 } else { 1 } * elem,
            residual: runs * RESIDUAL_COPIES * t * c.d_model * elem,
            patches: runs * t * widest * elem,
            base_run: c.n_layers * t * (c.d_model + kv_width) * elem,
        }
    }

    pub fn total(&self) -> usize {
        self.attention_scores + self.qkv + self.mlp + self.residual + self.patches + self.base_run
    }
}

/// The most runs of `positions` tokens whose [`BatchFootprint`] fits in [`AUTO_MEMORY_SHARE`]
/// of `free` bytes (at least 1: a single run that does not fit fails with the device's own
/// out-of-memory error, restated by [`explain_out_of_memory`]).
pub fn runs_that_fit(c: &ModelConfig, dtype: DType, positions: usize, free: u64) -> usize {
    let budget = (free as f64 * AUTO_MEMORY_SHARE) as usize;
    let fixed = BatchFootprint::of(c, dtype, 0, positions).total();
    let per_run = BatchFootprint::of(c, dtype, 1, positions).total() - fixed;
    (budget.saturating_sub(fixed) / per_run.max(1)).clamp(1, MAX_AUTO_BATCH)
}

/// A device allocation failure (CUDA's `CUDA_ERROR_OUT_OF_MEMORY`, Metal's "out of memory")
/// restated with what was being run, the memory it takes and what to change.
pub fn explain_out_of_memory(
    e: ExperimentError,
    dec: &HookedDecoder,
    runs: usize,
    positions: usize,
    hint: &str,
) -> ExperimentError {
    let text = e.to_string();
    if !(text.contains("OUT_OF_MEMORY") || text.to_lowercase().contains("out of memory")) {
        return e;
    }
    let c = &dec.config;
    let elem = dec.dtype().size_in_bytes();
    let need = BatchFootprint::of(c, dec.dtype(), runs, positions);
    let mib = |b: usize| b as f64 / (1u64 << 20) as f64;
    ExperimentError::Input(format!(
        "the device ran out of memory running {runs} patched run(s) of {positions} tokens at once \
         (one block's attention scores take {:.1} MiB and its MLP activations {:.1} MiB, about \
         {:.1} MiB in all, next to {:.1} MiB of {:?} weights): {hint}, or run on --device cpu \
         ({text})",
        mib(need.attention_scores),
        mib(need.mlp),
        mib(need.total()),
        mib(c.parameter_count() * elem),
        dec.dtype(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Llama-3-8B's shape.
    fn llama_8b() -> ModelConfig {
        ModelConfig::from_hf_json(&serde_json::json!({"model_type": "llama", "hidden_size": 4096,
            "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
            "intermediate_size": 14336, "vocab_size": 128256}))
        .unwrap()
    }

    #[test]
    fn parses_auto_and_positive_counts_only() {
        assert_eq!("auto".parse::<BatchSize>().unwrap(), BatchSize::Auto);
        assert_eq!("12".parse::<BatchSize>().unwrap(), BatchSize::Fixed(12));
        for bad in ["0", "-3", "many", ""] {
            let e = bad.parse::<BatchSize>().unwrap_err().to_string();
            assert!(e.contains("'auto'") && e.contains(&format!("'{bad}'")), "{e}");
        }
        assert_eq!(BatchSize::Fixed(7).to_string(), "7");
        assert_eq!(BatchSize::Auto.fixed_or(8), 8);
    }

    /// The footprint grows linearly in runs, the batch fills the budget without passing it,
    /// and more free memory or shorter prompts never give a smaller batch.
    #[test]
    fn automatic_batch_fills_the_memory_budget() {
        let c = llama_8b();
        let gib = 1u64 << 30;
        for positions in [20, 128, 512] {
            let one = BatchFootprint::of(&c, DType::BF16, 1, positions);
            let ten = BatchFootprint::of(&c, DType::BF16, 10, positions);
            assert_eq!(ten.total() - one.base_run, 10 * (one.total() - one.base_run));
            let mut last = 0;
            for free in [gib, 8 * gib, 60 * gib] {
                let n = runs_that_fit(&c, DType::BF16, positions, free);
                let budget = (free as f64 * AUTO_MEMORY_SHARE) as usize;
                if n > 1 && n < MAX_AUTO_BATCH {
                    assert!(BatchFootprint::of(&c, DType::BF16, n, positions).total() <= budget);
                    assert!(BatchFootprint::of(&c, DType::BF16, n + 1, positions).total() > budget);
                }
                assert!(n >= last, "{n} runs with {free} B free after {last}");
                last = n;
            }
            assert!(
                runs_that_fit(&c, DType::BF16, positions / 2, 8 * gib)
                    >= runs_that_fit(&c, DType::BF16, positions, 8 * gib)
            );
        }
        // A 20-token sweep of the 8B shape on an 80 GB card with 64 GB free: every run of a
        // 32-layer position group fits in one forward.
        assert!(runs_that_fit(&c, DType::BF16, 20, 64 * gib) >= 32);
        // Nothing free: still one run (the device then reports its own error).
        assert_eq!(runs_that_fit(&c, DType::BF16, 512, 0), 1);
    }
}
