//! Ablation of blocks, attention / MLP outputs and single heads.
//!
//! Kinds:
//! * **zero** — the component's output is replaced by zeros; a zero-ablated block is skipped
//!   (`resid_post = resid_pre`).
//! * **mean** — replaced by its mean over the reference prompts (default: the items themselves),
//!   per position: position `p` (counted from each prompt's first token) takes the mean over
//!   the reference prompts that have a token at `p`; positions no reference prompt reaches take
//!   the mean over every position of every reference prompt.
//! * **resample** — replaced by the activation of another reference prompt, position by position
//!   (counted from the first token). The source is drawn with a seeded generator among the
//!   reference prompts with other token ids that are at least as long as the item; when there is
//!   none, among all other reference prompts, and the positions the shorter source lacks keep the
//!   item's own activation.
//!
//! A block's "output" is its contribution `resid_post − resid_pre`: mean / resample ablation of
//! a block sets `resid_post = resid_pre + (mean or resampled) contribution`. Heads are ablated
//! at `attn.hook_z` (the input of the output projection), one head at a time.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use strata_model::{ActivationCache, HookPoint, Model};

use crate::batch_size::BatchSize;
use crate::engine::{cached_run, run_jobs, BaseRun, ExecMode, Job, Patch};
use crate::error::{input, Result};
use crate::item::Item;
use crate::metric::{metric_values, normalize, Metric, MetricSpec};
use crate::prepare::{prepare_all, Prepared};
use crate::results::{mean_clean, mean_corrupted, mean_rows, ItemSummary, SweepRow, SCHEMA_VERSION};
use crate::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AblateComponent {
    /// The whole block (skip it).
    Block,
    AttnOut,
    MlpOut,
    /// One attention head (at `attn.hook_z`).
    Head,
}

impl AblateComponent {
    pub const ALL: [AblateComponent; 4] = [
        AblateComponent::Block,
        AblateComponent::AttnOut,
        AblateComponent::MlpOut,
        AblateComponent::Head,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AblateComponent::Block => "block",
            AblateComponent::AttnOut => "attn_out",
            AblateComponent::MlpOut => "mlp_out",
            AblateComponent::Head => "head",
        }
    }

    /// The hook point whose value is replaced.
    pub fn point(self, layer: usize) -> HookPoint {
        match self {
            AblateComponent::Block => HookPoint::ResidPost(layer),
            AblateComponent::AttnOut => HookPoint::AttnOut(layer),
            AblateComponent::MlpOut => HookPoint::MlpOut(layer),
            AblateComponent::Head => HookPoint::Z(layer),
        }
    }
}

impl std::str::FromStr for AblateComponent {
    type Err = crate::error::ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.replace('-', "_").as_str() {
            "block" | "blocks" | "layer" => AblateComponent::Block,
            "attn_out" | "attn" => AblateComponent::AttnOut,
            "mlp_out" | "mlp" => AblateComponent::MlpOut,
            "head" | "heads" | "z" => AblateComponent::Head,
            _ => {
                return input(format!(
                    "unknown ablation component '{s}'; use block, attn_out, mlp_out or head"
                ))
            }
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AblationKind {
    #[default]
    Zero,
    Mean,
    Resample,
}

impl std::str::FromStr for AblationKind {
    type Err = crate::error::ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "zero" => AblationKind::Zero,
            "mean" => AblationKind::Mean,
            "resample" | "random" => AblationKind::Resample,
            _ => return input(format!("unknown ablation kind '{s}'; use zero, mean or resample")),
        })
    }
}

#[derive(Debug, Clone)]
pub struct AblateOptions {
    pub components: Vec<AblateComponent>,
    pub kind: AblationKind,
    pub metric: Metric,
    /// One ablation per position (`true`) or all positions at once (default).
    pub per_position: bool,
    pub layers: Option<Vec<usize>>,
    /// Prompts for mean / resample ablation; empty = the items themselves.
    pub reference: Vec<Item>,
    pub seed: u64,
    pub exact_naive: bool,
    pub max_batch: BatchSize,
}

impl Default for AblateOptions {
    fn default() -> Self {
        AblateOptions {
            components: vec![AblateComponent::AttnOut, AblateComponent::MlpOut],
            kind: AblationKind::Zero,
            metric: Metric::LogitDiff,
            per_position: false,
            layers: None,
            reference: Vec::new(),
            seed: 0,
            exact_naive: false,
            max_batch: BatchSize::Auto,
        }
    }
}

/// `ablate.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AblateResult {
    pub schema_version: u32,
    pub experiment: String,
    pub model: String,
    pub metric: Metric,
    pub kind: AblationKind,
    pub components: Vec<AblateComponent>,
    pub per_position: bool,
    pub seed: u64,
    /// Metric of the unablated run (mean over items).
    pub clean: f64,
    /// Metric of the corrupted prompts' runs (mean), when every item has one.
    pub corrupted: Option<f64>,
    pub n_layers: usize,
    pub n_heads: usize,
    pub items: Vec<ItemSummary>,
    pub rows: Vec<SweepRow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<SweepRow>,
}

/// Number of ablated runs (for progress bars).
pub fn count_runs(model: &Model, items: &[Prepared], opts: &AblateOptions) -> usize {
    let heads: Vec<usize> = opts
        .components
        .iter()
        .map(|c| {
            if *c == AblateComponent::Head {
                model.config.n_heads
            } else {
                1
            }
        })
        .collect();
    crate::engine::count_sweep_runs(model, items, opts.layers.as_deref(), opts.per_position, &heads)
}

/// The points whose activations an ablation of `components` reads.
fn source_points(components: &[AblateComponent], layers: &[usize]) -> Vec<HookPoint> {
    let mut pts = Vec::new();
    for c in components {
        for &l in layers {
            match c {
                AblateComponent::Block => pts.extend([HookPoint::ResidPre(l), HookPoint::ResidPost(l)]),
                c => pts.push(c.point(l)),
            }
        }
    }
    pts.sort();
    pts.dedup();
    pts
}

/// A component's activation in one run, `[1, p, ...]` (a block's is its contribution).
fn component_value(cache: &ActivationCache, c: AblateComponent, l: usize) -> Result<Tensor> {
    Ok(match c {
        AblateComponent::Block => {
            (cache.get(HookPoint::ResidPost(l))? - cache.get(HookPoint::ResidPre(l))?)?
        }
        c => cache.get(c.point(l))?.clone(),
    })
}

/// Per-position sums (f32) of every component over the reference prompts.
struct MeanTable {
    sums: HashMap<(AblateComponent, usize), Tensor>,
    counts: Vec<usize>,
    total: usize,
}

impl MeanTable {
    fn build(model: &Model, refs: &[Prepared], comps: &[AblateComponent], layers: &[usize]) -> Result<Self> {
        let max_len = refs.iter().map(Prepared::len).max().unwrap_or(0);
        let mut counts = vec![0usize; max_len];
        let mut sums: HashMap<(AblateComponent, usize), Tensor> = HashMap::new();
        let points = source_points(comps, layers);
        for r in refs {
            let base = BaseRun::of(&r.ids);
            let (cache, _) = cached_run(&model.decoder, &base, points.clone())?;
            for &c in comps {
                for &l in layers {
                    let v = component_value(&cache, c, l)?.to_dtype(DType::F32)?;
                    let mut dims = v.dims().to_vec();
                    let pad = max_len - dims[1];
                    let v = if pad > 0 {
                        dims[1] = pad;
                        Tensor::cat(&[&v, &Tensor::zeros(dims, DType::F32, v.device())?], 1)?
                    } else {
                        v
                    };
                    let e = sums.entry((c, l));
                    match e {
                        std::collections::hash_map::Entry::Occupied(mut o) => {
                            let s = (o.get() + v)?;
                            o.insert(s);
                        }
                        std::collections::hash_map::Entry::Vacant(vac) => {
                            vac.insert(v);
                        }
                    }
                }
            }
            for c in counts.iter_mut().take(r.len()) {
                *c += 1;
            }
        }
        Ok(MeanTable {
            sums,
            total: counts.iter().sum(),
            counts,
        })
    }

    /// Mean of a component for a prompt of `len` tokens, `[1, len, ...]` in `dtype`.
    fn mean(&self, c: AblateComponent, l: usize, len: usize, dtype: DType) -> Result<Tensor> {
        let sum = &self.sums[&(c, l)];
        let n = self.counts.len();
        let mut dims = sum.dims().to_vec();
        dims[1] = 1;
        let overall = (sum.sum_keepdim(1)? / self.total as f64)?;
        let mut parts = Vec::with_capacity(len);
        for p in 0..len {
            if p < n && self.counts[p] > 0 {
                parts.push((sum.narrow(1, p, 1)? / self.counts[p] as f64)?);
            } else {
                parts.push(overall.clone());
            }
        }
        Ok(Tensor::cat(&parts, 1)?.to_dtype(dtype)?)
    }
}

pub fn ablate(
    model: &Model,
    items: &[Item],
    opts: &AblateOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<AblateResult> {
    let prepared = prepare_all(model, items)?;
    let reference = if opts.reference.is_empty() {
        prepared.clone()
    } else {
        prepare_all(model, &opts.reference)?
    };
    ablate_prepared(model, &prepared, &reference, opts, on_done)
}

pub fn ablate_prepared(
    model: &Model,
    items: &[Prepared],
    reference: &[Prepared],
    opts: &AblateOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<AblateResult> {
    let dec = &model.decoder;
    let (n_layers, n_heads) = (model.config.n_layers, model.config.n_heads);
    let layers = crate::engine::sweep_layers(n_layers, opts.layers.as_deref())?;
    if opts.components.is_empty() {
        return input("no ablation component given");
    }
    let means = match opts.kind {
        AblationKind::Mean => {
            if reference.is_empty() {
                return input("mean ablation needs reference prompts");
            }
            Some(MeanTable::build(model, reference, &opts.components, &layers)?)
        }
        _ => None,
    };
    let mode = ExecMode::new(opts.exact_naive, opts.max_batch);
    let points = source_points(&opts.components, &layers);
    let mut resample_cache: BTreeMap<usize, ActivationCache> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for (idx, item) in items.iter().enumerate() {
        if opts.metric == Metric::LogitDiff {
            item.require_distractor()?;
        }
        let base = BaseRun::of(&item.ids);
        let (cache, clean_last) = cached_run(dec, &base, points.clone())?;
        let (spec, clean) = MetricSpec::for_clean_run(dec, opts.metric, item, &clean_last)?;
        let corrupted = match &item.corrupted_ids {
            Some(ids) => {
                let run = BaseRun::of(ids);
                let (_, last) = cached_run(dec, &run, [])?;
                Some(metric_values(dec, &last, &spec)?[0])
            }
            None => None,
        };
        // Source prompt for resampling.
        let source = if opts.kind == AblationKind::Resample {
            let others = |min_len: usize| -> Vec<usize> {
                reference
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.ids != item.ids && r.len() >= min_len)
                    .map(|(i, _)| i)
                    .collect()
            };
            let mut candidates = others(item.len());
            if candidates.is_empty() {
                candidates = others(1);
            }
            if candidates.is_empty() {
                return input(format!(
                    "item '{}': resample ablation needs at least one other reference prompt",
                    item.id
                ));
            }
            let mut rng = Rng::new(opts.seed ^ (idx as u64).wrapping_mul(0xA24B_AED4_963E_E407));
            let j = candidates[rng.below(candidates.len())];
            if let std::collections::btree_map::Entry::Vacant(e) = resample_cache.entry(j) {
                let run = BaseRun::of(&reference[j].ids);
                e.insert(cached_run(dec, &run, points.clone())?.0);
            }
            Some(j)
        } else {
            None
        };
        let positions: Vec<Option<usize>> = if opts.per_position {
            (0..item.len()).map(Some).collect()
        } else {
            vec![None]
        };
        let mut jobs = Vec::new();
        let mut keys = Vec::new();
        for &c in &opts.components {
            let heads: Vec<Option<usize>> = if c == AblateComponent::Head {
                (0..n_heads).map(Some).collect()
            } else {
                vec![None]
            };
            for &l in &layers {
                let own = component_value(&cache, c, l)?;
                let replacement = match opts.kind {
                    AblationKind::Zero => own.zeros_like()?,
                    AblationKind::Mean => {
                        means
                            .as_ref()
                            .expect("mean table")
                            .mean(c, l, item.len(), own.dtype())?
                    }
                    AblationKind::Resample => {
                        let src = component_value(&resample_cache[&source.expect("source")], c, l)?;
                        let k = src.dim(1)?.min(item.len());
                        if k < item.len() {
                            Tensor::cat(&[&src.narrow(1, 0, k)?, &own.narrow(1, k, item.len() - k)?], 1)?
                        } else {
                            src.narrow(1, 0, k)?
                        }
                    }
                };
                // A block's replacement is a contribution: add it to the block's own input.
                let value = match c {
                    AblateComponent::Block => (cache.get(HookPoint::ResidPre(l))? + replacement)?,
                    _ => replacement,
                };
                for &h in &heads {
                    for &p in &positions {
                        jobs.push(Job::one(Patch {
                            point: c.point(l),
                            positions: p.map(|p| vec![p]),
                            head: h,
                            value: value.clone(),
                        }));
                        keys.push((c, l, p, h));
                    }
                }
            }
        }
        let values = run_jobs(dec, &base, &jobs, &spec, mode, on_done)?;
        for ((c, l, p, h), v) in keys.into_iter().zip(values) {
            rows.push(SweepRow {
                item: item.id.clone(),
                component: c.name().into(),
                layer: l,
                position: p,
                head: h,
                value: v,
                normalized: ablation_normalized(opts.metric, v, clean, corrupted),
                n: None,
            });
        }
        summaries.push(ItemSummary::new(item, clean, corrupted));
    }
    let summary = if items.len() > 1 {
        mean_rows(&rows)
    } else {
        Vec::new()
    };
    Ok(AblateResult {
        schema_version: SCHEMA_VERSION,
        experiment: "ablate".into(),
        model: model.name.clone(),
        metric: opts.metric,
        kind: opts.kind,
        components: opts.components.clone(),
        per_position: opts.per_position,
        seed: opts.seed,
        clean: mean_clean(&summaries),
        corrupted: mean_corrupted(&summaries),
        n_layers,
        n_heads,
        items: summaries,
        rows,
        summary,
    })
}

/// With a corrupted prompt: `(value − corrupted) / (clean − corrupted)`; without one, for logit
/// difference and target probability: `value / clean` (fraction of the clean metric kept);
/// otherwise (loss, KL) undefined.
pub fn ablation_normalized(metric: Metric, value: f64, clean: f64, corrupted: Option<f64>) -> Option<f64> {
    match corrupted {
        Some(c) => normalize(value, clean, c),
        None if matches!(metric, Metric::LogitDiff | Metric::TargetProb) && clean.abs() > 1e-12 => {
            Some(value / clean)
        }
        None => None,
    }
}
