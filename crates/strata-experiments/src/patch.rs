//! Activation patching between clean and corrupted prompts of equal token length.
//!
//! * **denoising** (default): run the corrupted prompt, patch in the clean activation;
//! * **noising**: run the clean prompt, patch in the corrupted activation.
//!
//! `normalized = (patched − corrupted) / (clean − corrupted)` with `clean` / `corrupted` the
//! metric of the unpatched clean / corrupted runs (1 = patch restores the clean behaviour under
//! denoising; 0 = no effect).

use serde::{Deserialize, Serialize};
use strata_model::{HookPoint, Model};

use crate::batch_size::BatchSize;
use crate::engine::{cached_run, run_jobs, BaseRun, ExecMode, Job, Patch};
use crate::error::{input, Result};
use crate::item::Item;
use crate::metric::{metric_values, normalize, Metric, MetricSpec};
use crate::prepare::{prepare_all, Prepared};
use crate::results::{mean_clean, mean_corrupted, mean_rows, ItemSummary, SweepRow, SCHEMA_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchComponent {
    ResidPre,
    ResidMid,
    ResidPost,
    AttnOut,
    MlpOut,
    /// Per-head attention output (`attn.hook_z`), one head at a time.
    Z,
    /// Per-head queries (`attn.hook_q`), one query head at a time.
    Q,
    /// Per-head keys (`attn.hook_k`), one key/value head at a time.
    K,
    /// Per-head values (`attn.hook_v`), one key/value head at a time.
    V,
    /// Per-head attention pattern (`attn.hook_pattern`), one head at a time; positions are query
    /// positions (each patched row keeps every key).
    Pattern,
}

impl PatchComponent {
    pub const ALL: [PatchComponent; 10] = [
        PatchComponent::ResidPre,
        PatchComponent::ResidMid,
        PatchComponent::ResidPost,
        PatchComponent::AttnOut,
        PatchComponent::MlpOut,
        PatchComponent::Z,
        PatchComponent::Q,
        PatchComponent::K,
        PatchComponent::V,
        PatchComponent::Pattern,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PatchComponent::ResidPre => "resid_pre",
            PatchComponent::ResidMid => "resid_mid",
            PatchComponent::ResidPost => "resid_post",
            PatchComponent::AttnOut => "attn_out",
            PatchComponent::MlpOut => "mlp_out",
            PatchComponent::Z => "z",
            PatchComponent::Q => "q",
            PatchComponent::K => "k",
            PatchComponent::V => "v",
            PatchComponent::Pattern => "pattern",
        }
    }

    pub fn point(self, layer: usize) -> HookPoint {
        match self {
            PatchComponent::ResidPre => HookPoint::ResidPre(layer),
            PatchComponent::ResidMid => HookPoint::ResidMid(layer),
            PatchComponent::ResidPost => HookPoint::ResidPost(layer),
            PatchComponent::AttnOut => HookPoint::AttnOut(layer),
            PatchComponent::MlpOut => HookPoint::MlpOut(layer),
            PatchComponent::Z => HookPoint::Z(layer),
            PatchComponent::Q => HookPoint::Q(layer),
            PatchComponent::K => HookPoint::K(layer),
            PatchComponent::V => HookPoint::V(layer),
            PatchComponent::Pattern => HookPoint::Pattern(layer),
        }
    }

    /// How many heads are patched one at a time (query heads, or key/value heads for `k` and
    /// `v`); `None` for the components patched whole.
    pub fn heads(self, config: &strata_model::ModelConfig) -> Option<usize> {
        match self {
            PatchComponent::Z | PatchComponent::Q | PatchComponent::Pattern => Some(config.n_heads),
            PatchComponent::K | PatchComponent::V => Some(config.n_kv_heads),
            _ => None,
        }
    }
}

impl std::str::FromStr for PatchComponent {
    type Err = crate::error::ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        let s = s.replace('-', "_");
        PatchComponent::ALL
            .into_iter()
            .find(|c| c.name() == s || (s == "head" || s == "heads") && *c == PatchComponent::Z)
            .map_or_else(
                || {
                    let names: Vec<&str> = PatchComponent::ALL.iter().map(|c| c.name()).collect();
                    input(format!(
                        "unknown patching component '{s}'; use one of {}",
                        names.join(", ")
                    ))
                },
                Ok,
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Corrupted run, clean activations patched in.
    #[default]
    Denoising,
    /// Clean run, corrupted activations patched in.
    Noising,
}

impl std::str::FromStr for Direction {
    type Err = crate::error::ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "denoising" | "denoise" => Ok(Direction::Denoising),
            "noising" | "noise" => Ok(Direction::Noising),
            _ => input(format!("unknown direction '{s}'; use denoising or noising")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PatchOptions {
    pub components: Vec<PatchComponent>,
    /// One patch per position (`true`) or all positions at once.
    pub per_position: bool,
    pub direction: Direction,
    pub metric: Metric,
    /// Blocks to sweep (all if `None`).
    pub layers: Option<Vec<usize>>,
    /// One full forward per patch instead of restart + batching.
    pub exact_naive: bool,
    /// Patched runs per batched forward (fast path).
    pub max_batch: BatchSize,
}

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions {
            components: vec![PatchComponent::ResidPre],
            per_position: true,
            direction: Direction::Denoising,
            metric: Metric::LogitDiff,
            layers: None,
            exact_naive: false,
            max_batch: BatchSize::Auto,
        }
    }
}

/// `patch.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchResult {
    pub schema_version: u32,
    pub experiment: String,
    pub model: String,
    pub metric: Metric,
    pub direction: Direction,
    pub components: Vec<PatchComponent>,
    pub per_position: bool,
    /// Metric of the unpatched clean run (mean over items).
    pub clean: f64,
    /// Metric of the unpatched corrupted run (mean over items).
    pub corrupted: f64,
    pub n_layers: usize,
    pub n_heads: usize,
    pub items: Vec<ItemSummary>,
    pub rows: Vec<SweepRow>,
    /// Rows averaged over items (several items only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<SweepRow>,
    /// Wall-clock seconds of the sweep (model loading excluded), set by the caller that timed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
    /// `"attribution"` when `value`s are attribution patching's linear estimates
    /// ([`crate::attribution`]); absent for exact patching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

/// Number of patched runs a sweep makes (for progress bars).
pub fn count_runs(model: &Model, items: &[Prepared], opts: &PatchOptions) -> usize {
    let heads: Vec<usize> = opts
        .components
        .iter()
        .map(|c| c.heads(&model.config).unwrap_or(1))
        .collect();
    crate::engine::count_sweep_runs(model, items, opts.layers.as_deref(), opts.per_position, &heads)
}

/// The blocks a sweep visits and its components' hook points at those blocks (shared by exact
/// and attribution patching).
pub(crate) fn sweep_points(n_layers: usize, opts: &PatchOptions) -> Result<(Vec<usize>, Vec<HookPoint>)> {
    let layers = crate::engine::sweep_layers(n_layers, opts.layers.as_deref())?;
    if opts.components.is_empty() {
        return input("no patching component given");
    }
    let points = opts
        .components
        .iter()
        .flat_map(|c| layers.iter().map(move |&l| c.point(l)))
        .collect();
    Ok((layers, points))
}

/// An item's corrupted prompt, after checking it has everything `metric` needs.
pub(crate) fn corrupted_ids(item: &Prepared, metric: Metric) -> Result<Vec<u32>> {
    let ids = item.require_corrupted()?.to_vec();
    if metric == Metric::LogitDiff {
        item.require_distractor()?;
    }
    Ok(ids)
}

pub fn activation_patching(
    model: &Model,
    items: &[Item],
    opts: &PatchOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<PatchResult> {
    let prepared = prepare_all(model, items)?;
    activation_patching_prepared(model, &prepared, opts, on_done)
}

pub fn activation_patching_prepared(
    model: &Model,
    items: &[Prepared],
    opts: &PatchOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<PatchResult> {
    let dec = &model.decoder;
    let (layers, points) = sweep_points(model.config.n_layers, opts)?;
    let mode = ExecMode::new(opts.exact_naive, opts.max_batch);
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for item in items {
        let corrupted_ids = corrupted_ids(item, opts.metric)?;
        let clean_run = BaseRun::of(&item.ids);
        let corrupt_run = BaseRun::of(&corrupted_ids);
        let (clean_cache, clean_last) = cached_run(dec, &clean_run, points.clone())?;
        let (corrupt_cache, corrupt_last) = cached_run(dec, &corrupt_run, points.clone())?;
        let (spec, clean) = MetricSpec::for_clean_run(dec, opts.metric, item, &clean_last)?;
        let corrupted = metric_values(dec, &corrupt_last, &spec)?[0];
        let (base, source) = match opts.direction {
            Direction::Denoising => (&corrupt_run, &clean_cache),
            Direction::Noising => (&clean_run, &corrupt_cache),
        };
        let mut jobs = Vec::new();
        let mut keys = Vec::new();
        let positions: Vec<Option<usize>> = if opts.per_position {
            (0..item.len()).map(Some).collect()
        } else {
            vec![None]
        };
        for &c in &opts.components {
            let heads: Vec<Option<usize>> = match c.heads(&model.config) {
                Some(n) => (0..n).map(Some).collect(),
                None => vec![None],
            };
            for &l in &layers {
                let value = source.get(c.point(l))?.clone();
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
        let values = run_jobs(dec, base, &jobs, &spec, mode, on_done)?;
        for ((c, l, p, h), v) in keys.into_iter().zip(values) {
            rows.push(SweepRow {
                item: item.id.clone(),
                component: c.name().into(),
                layer: l,
                position: p,
                head: h,
                value: v,
                normalized: normalize(v, clean, corrupted),
                n: None,
            });
        }
        summaries.push(ItemSummary::new(item, clean, Some(corrupted)));
    }
    Ok(patch_result(model, opts, rows, summaries))
}

/// The result of a sweep from its rows and per-item summaries (averages rows over several items).
pub(crate) fn patch_result(
    model: &Model,
    opts: &PatchOptions,
    rows: Vec<SweepRow>,
    summaries: Vec<ItemSummary>,
) -> PatchResult {
    let summary = if summaries.len() > 1 {
        mean_rows(&rows)
    } else {
        Vec::new()
    };
    PatchResult {
        schema_version: SCHEMA_VERSION,
        experiment: "patch".into(),
        model: model.name.clone(),
        metric: opts.metric,
        direction: opts.direction,
        components: opts.components.clone(),
        per_position: opts.per_position,
        clean: mean_clean(&summaries),
        corrupted: mean_corrupted(&summaries).unwrap_or(f64::NAN),
        n_layers: model.config.n_layers,
        n_heads: model.config.n_heads,
        items: summaries,
        rows,
        summary,
        elapsed_seconds: None,
        method: None,
    }
}
