//! Causal tracing (Meng et al. 2022, "Locating and Editing Factual Associations in GPT").
//!
//! The subject's token embeddings (`hook_embed`, i.e. after Gemma's scaling and before GPT-2's
//! position embeddings) get Gaussian noise of standard deviation `noise_multiplier × σ`, where σ
//! is the standard deviation of the model's token embeddings ([`embedding_std`]; ROME uses the
//! subject tokens of its fact set) or a fixed value. The noise of an item is drawn from a
//! generator seeded by the seed and the item's id ([`item_seed`]), so results do not depend on
//! which other items share the call. For every layer `l` and
//! token `t`, the corrupted run is re-run with the clean activation restored at `t`:
//! * `hidden`: `blocks.{l}.hook_resid_post`;
//! * `mlp` / `attn`: `hook_mlp_out` / `hook_attn_out` of every block in the window
//!   `[l − w/2, l + ⌈w/2⌉)` clamped to the model (ROME's `window`, default 10).
//!
//! `value` is the metric (default: target probability) averaged over the noise samples;
//! `normalized = (value − corrupted) / (clean − corrupted)`.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use strata_model::{HookPoint, Model};

use crate::batch_size::BatchSize;
use crate::engine::{cached_run, run_jobs, BaseRun, ExecMode, Job, Patch};
use crate::error::{input, Result};
use crate::item::Item;
use crate::metric::{metric_values, normalize, Metric, MetricSpec};
use crate::prepare::{prepare_all, Prepared};
use crate::results::SCHEMA_VERSION;
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceKind {
    Hidden,
    Mlp,
    Attn,
}

impl TraceKind {
    pub const ALL: [TraceKind; 3] = [TraceKind::Hidden, TraceKind::Mlp, TraceKind::Attn];

    pub fn name(self) -> &'static str {
        match self {
            TraceKind::Hidden => "hidden",
            TraceKind::Mlp => "mlp",
            TraceKind::Attn => "attn",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseLevel {
    /// `multiplier ×` the standard deviation of the token embeddings (ROME: 3).
    EmbeddingStd { multiplier: f64 },
    /// A fixed standard deviation.
    Fixed { std: f64 },
}

#[derive(Debug, Clone)]
pub struct TraceOptions {
    pub samples: usize,
    pub noise: NoiseLevel,
    pub seed: u64,
    pub window: usize,
    pub kinds: Vec<TraceKind>,
    pub metric: Metric,
    pub exact_naive: bool,
    pub max_batch: BatchSize,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            samples: 10,
            noise: NoiseLevel::EmbeddingStd { multiplier: 3.0 },
            seed: 0,
            window: 10,
            kinds: TraceKind::ALL.to_vec(),
            metric: Metric::TargetProb,
            exact_naive: false,
            max_batch: BatchSize::Auto,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRow {
    pub kind: TraceKind,
    pub layer: usize,
    pub position: usize,
    pub value: f64,
    pub normalized: Option<f64>,
}

/// `trace.json` for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceResult {
    pub schema_version: u32,
    pub experiment: String,
    pub model: String,
    pub id: String,
    pub prompt: String,
    pub tokens: Vec<String>,
    pub subject_positions: Vec<usize>,
    pub target: String,
    pub target_id: u32,
    pub metric: Metric,
    pub n_layers: usize,
    pub samples: usize,
    pub seed: u64,
    pub window: usize,
    pub noise_std: f64,
    /// Metric of the clean run.
    pub clean: f64,
    /// Metric of the noised run, averaged over samples.
    pub corrupted: f64,
    pub rows: Vec<TraceRow>,
}

/// Layers restored for a window centred on `layer`.
pub fn window_layers(layer: usize, window: usize, n_layers: usize) -> std::ops::Range<usize> {
    let lo = layer.saturating_sub(window / 2);
    let hi = (layer + window.div_ceil(2)).clamp(layer + 1, n_layers);
    lo..hi
}

/// σ of the model's token embeddings as `hook_embed` sees them: the (unbiased, as `torch.std`)
/// standard deviation of every entry of W_E, times the family's embedding scale (Gemma's √d).
/// One σ per model, so a suite traced at once and its items traced one by one get the same
/// noise. ROME takes σ over the subject tokens of its whole fact set instead; that depends on
/// which prompts are in the set.
pub fn embedding_std(model: &Model) -> Result<f64> {
    let w = model.decoder.embedding()?;
    let (rows, cols) = w.dims2()?;
    let n = (rows * cols) as f64;
    if n < 2.0 {
        return input("causal tracing: the embedding matrix has fewer than two entries");
    }
    // Row sums in f32 (at most a few thousand terms each), accumulated in f64; two passes.
    let chunks = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| -> Result<f64> {
        let mut total = 0f64;
        for start in (0..rows).step_by(8192) {
            let part = w.narrow(0, start, 8192.min(rows - start))?.to_dtype(DType::F32)?;
            total += f(&part)?
                .sum(1)?
                .to_vec1::<f32>()?
                .iter()
                .map(|&x| x as f64)
                .sum::<f64>();
        }
        Ok(total)
    };
    let mean = chunks(&|t| Ok(t.clone()))? / n;
    let ss = chunks(&|t| (t - mean)?.sqr())?;
    let scale = model.config.embed_scale.unwrap_or(1.0).abs();
    Ok((ss / (n - 1.0)).sqrt() * scale)
}

/// The noise generator's seed for one item: `seed` mixed with the item's id (FNV-1a), so an
/// item gets the same noise whatever else is traced with it.
pub fn item_seed(seed: u64, id: &str) -> u64 {
    let fnv = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    seed ^ fnv
}

/// Noise `[1, p, d]`: N(0, std²) on the subject rows, zero elsewhere.
pub fn noise_tensor(
    item: &Prepared,
    d: usize,
    std: f64,
    rng: &mut Rng,
    dtype: DType,
    device: &candle_core::Device,
) -> Result<Tensor> {
    let pos = item.require_subject()?;
    let mut v = vec![0f32; item.len() * d];
    for &p in pos {
        for x in &mut v[p * d..(p + 1) * d] {
            *x = (rng.normal() * std) as f32;
        }
    }
    Ok(Tensor::from_vec(v, (1, item.len(), d), device)?.to_dtype(dtype)?)
}

pub fn causal_trace(
    model: &Model,
    items: &[Item],
    opts: &TraceOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<TraceResult>> {
    let prepared = prepare_all(model, items)?;
    causal_trace_prepared(model, &prepared, opts, on_done)
}

/// Restored runs per item (for progress bars).
pub fn count_runs(model: &Model, items: &[Prepared], opts: &TraceOptions) -> usize {
    items
        .iter()
        .map(|it| opts.kinds.len() * model.config.n_layers * it.len() * opts.samples)
        .sum()
}

pub fn causal_trace_prepared(
    model: &Model,
    items: &[Prepared],
    opts: &TraceOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<TraceResult>> {
    if opts.samples == 0 {
        return input("causal tracing needs at least one noise sample");
    }
    let dec = &model.decoder;
    let n = model.config.n_layers;
    let d = model.config.d_model;
    let noise_std = match opts.noise {
        NoiseLevel::EmbeddingStd { multiplier } => multiplier * embedding_std(model)?,
        NoiseLevel::Fixed { std } => std,
    };
    let mode = ExecMode::new(opts.exact_naive, opts.max_batch);
    let mut out = Vec::new();
    for item in items {
        item.require_subject()?;
        let clean_run = BaseRun::of(&item.ids);
        let points = (0..n).flat_map(|l| {
            [
                HookPoint::ResidPost(l),
                HookPoint::MlpOut(l),
                HookPoint::AttnOut(l),
            ]
        });
        let (clean_cache, clean_last) = cached_run(dec, &clean_run, points)?;
        let (spec, clean) = MetricSpec::for_clean_run(dec, opts.metric, item, &clean_last)?;

        // Jobs are the same for every sample: restorations of clean activations.
        let mut jobs = Vec::new();
        let mut keys = Vec::new();
        for &kind in &opts.kinds {
            for l in 0..n {
                for t in 0..item.len() {
                    let layers = match kind {
                        TraceKind::Hidden => l..l + 1,
                        _ => window_layers(l, opts.window, n),
                    };
                    let patches = layers
                        .map(|ll| {
                            let point = match kind {
                                TraceKind::Hidden => HookPoint::ResidPost(ll),
                                TraceKind::Mlp => HookPoint::MlpOut(ll),
                                TraceKind::Attn => HookPoint::AttnOut(ll),
                            };
                            Ok(Patch {
                                point,
                                positions: Some(vec![t]),
                                head: None,
                                value: clean_cache.get(point)?.clone(),
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    jobs.push(Job { patches });
                    keys.push((kind, l, t));
                }
            }
        }
        let mut sums = vec![0f64; jobs.len()];
        let mut corrupted = 0f64;
        let mut rng = Rng::new(item_seed(opts.seed, &item.id));
        for _ in 0..opts.samples {
            let noise = noise_tensor(item, d, noise_std, &mut rng, dec.dtype(), dec.device())?;
            let base = BaseRun {
                ids: item.ids.clone(),
                embed_add: Some(noise),
            };
            let (_, last) = cached_run(dec, &base, [])?;
            corrupted += metric_values(dec, &last, &spec)?[0];
            let values = run_jobs(dec, &base, &jobs, &spec, mode, on_done)?;
            for (s, v) in sums.iter_mut().zip(values) {
                *s += v;
            }
        }
        let k = opts.samples as f64;
        let corrupted = corrupted / k;
        let rows = keys
            .into_iter()
            .zip(sums)
            .map(|((kind, layer, position), s)| {
                let value = s / k;
                TraceRow {
                    kind,
                    layer,
                    position,
                    value,
                    normalized: normalize(value, clean, corrupted),
                }
            })
            .collect();
        out.push(TraceResult {
            schema_version: SCHEMA_VERSION,
            experiment: "trace".into(),
            model: model.name.clone(),
            id: item.id.clone(),
            prompt: item.prompt.clone(),
            tokens: item.tokens.clone(),
            subject_positions: item.subject_positions.clone().unwrap_or_default(),
            target: item.target_text.clone(),
            target_id: item.target,
            metric: opts.metric,
            n_layers: n,
            samples: opts.samples,
            seed: opts.seed,
            window: opts.window,
            noise_std,
            clean,
            corrupted,
            rows,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{item_seed, window_layers};

    #[test]
    fn item_seeds_follow_fnv1a_and_differ_by_id() {
        // FNV-1a 64 of "" is its offset basis; of "a" the published test vector.
        assert_eq!(item_seed(0, ""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(item_seed(0, "a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(item_seed(7, "a"), 0xaf63_dc4c_8601_ec8c ^ 7);
        assert_ne!(item_seed(0, "paris"), item_seed(0, "rome"));
    }

    #[test]
    fn windows_clamp_at_edges() {
        assert_eq!(window_layers(0, 10, 30), 0..5);
        assert_eq!(window_layers(12, 10, 30), 7..17);
        assert_eq!(window_layers(29, 10, 30), 24..30);
        assert_eq!(window_layers(3, 1, 30), 3..4);
        assert_eq!(window_layers(1, 10, 2), 0..2);
    }
}
