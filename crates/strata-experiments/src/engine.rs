//! Runs many single-prompt variants ("jobs": a set of activation replacements) of one base run
//! and measures a metric at the last position.
//!
//! Two exact paths:
//! * **naive** — one full forward per job from the embeddings, the replacements applied by the
//!   model crate's [`Intervention`]s (what TransformerLens does);
//! * **fast** — the base run's residual stream entering every block, and every block's keys and
//!   values, are cached once. A job whose earliest replacement is in block `l` at position `p`
//!   cannot change anything before block `l` nor any position before `p` (causal attention), so
//!   it restarts at block `l` and computes positions `p..` only, over the cached keys/values of
//!   the earlier positions. Up to `max_batch` jobs sharing `p` run as the rows of one batched
//!   forward that grows as rows reach their first patched block, each row patched at its own
//!   sites by a per-row hook. Only the last position is unembedded, and a logit difference
//!   reads only two rows of the unembedding.

use candle_core::{DType, IndexOp, Tensor};
use std::collections::{BTreeMap, HashMap};
use strata_model::{
    ActivationCache, Axes, Edit, Hook, HookPoint, HookSet, HookedDecoder, Intervention, TokenBatch,
};

use crate::batch_size::{explain_out_of_memory, BatchSize};
use crate::error::{input, Result};
use crate::metric::{metric_of_logits, metric_values, MetricSpec};

/// One replacement: at `point`, take `value` (one row, `[1, ...]` shaped like the activation)
/// at the chosen positions (all if `None`) and head (all if `None`).
#[derive(Debug, Clone)]
pub struct Patch {
    pub point: HookPoint,
    pub positions: Option<Vec<usize>>,
    pub head: Option<usize>,
    pub value: Tensor,
}

/// A variant of the base run: the replacements it makes.
#[derive(Debug, Clone, Default)]
pub struct Job {
    pub patches: Vec<Patch>,
}

impl Job {
    pub fn one(p: Patch) -> Self {
        Job { patches: vec![p] }
    }

    /// The first position a job's patches touch (0 when one covers every position).
    fn start_position(&self) -> usize {
        self.patches
            .iter()
            .map(|p| {
                p.positions
                    .as_ref()
                    .and_then(|ps| ps.iter().min().copied())
                    .unwrap_or(0)
            })
            .min()
            .unwrap_or(0)
    }

    fn start_layer(&self) -> Result<usize> {
        let mut start = usize::MAX;
        for p in &self.patches {
            match p.point.layer() {
                Some(l) => start = start.min(l),
                None => {
                    return input(format!(
                        "the fast path patches block hook points only, not {}; use the naive path",
                        p.point
                    ))
                }
            }
        }
        Ok(if start == usize::MAX { 0 } else { start })
    }
}

/// The blocks a sweep visits: the chosen ones (each checked against the model) or all.
pub fn sweep_layers(n_layers: usize, chosen: Option<&[usize]>) -> Result<Vec<usize>> {
    let layers: Vec<usize> = chosen.map_or_else(|| (0..n_layers).collect(), <[usize]>::to_vec);
    if let Some(&l) = layers.iter().find(|&&l| l >= n_layers) {
        return input(format!("layer {l} out of range: the model has {n_layers} blocks"));
    }
    Ok(layers)
}

/// Runs of a sweep (for progress bars): per item, layers × (positions, or 1) per component,
/// times `runs_per_component[c]` (its heads for a per-head component, else 1).
pub fn count_sweep_runs(
    model: &strata_model::Model,
    items: &[crate::prepare::Prepared],
    layers: Option<&[usize]>,
    per_position: bool,
    runs_per_component: &[usize],
) -> usize {
    let layers = layers.map_or(model.config.n_layers, <[usize]>::len);
    items
        .iter()
        .map(|it| {
            let positions = if per_position { it.len() } else { 1 };
            runs_per_component
                .iter()
                .map(|&runs| layers * positions * runs)
                .sum::<usize>()
        })
        .sum()
}

/// The run jobs modify: token ids and an optional addition to the token embeddings
/// (`hook_embed`, `[1, p, d]`; causal tracing's noise).
#[derive(Debug, Clone)]
pub struct BaseRun {
    pub ids: Vec<u32>,
    pub embed_add: Option<Tensor>,
}

impl BaseRun {
    /// The plain run of a prompt (nothing added to its embeddings).
    pub fn of(ids: &[u32]) -> Self {
        BaseRun {
            ids: ids.to_vec(),
            embed_add: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecMode {
    /// One full forward per job.
    Naive,
    /// Restart at the patched block from cached residuals, `max_batch` jobs per forward.
    Fast { max_batch: BatchSize },
}

impl ExecMode {
    pub fn new(exact_naive: bool, max_batch: BatchSize) -> Self {
        if exact_naive {
            ExecMode::Naive
        } else {
            ExecMode::Fast { max_batch }
        }
    }
}

fn base_hooks(base: &BaseRun) -> HookSet {
    let mut hs = HookSet::new();
    if let Some(noise) = &base.embed_add {
        hs = hs.with(Intervention::new(HookPoint::Embed, Edit::Add(noise.clone())));
    }
    hs
}

/// Full forward of the base run with a cache of `points`; returns the cache and the metric
/// read from the last position of the final residual stream.
pub fn cached_run(
    dec: &HookedDecoder,
    base: &BaseRun,
    points: impl IntoIterator<Item = HookPoint>,
) -> Result<(ActivationCache, Tensor)> {
    let n = dec.config.n_layers;
    let mut pts: Vec<HookPoint> = points.into_iter().collect();
    pts.push(HookPoint::ResidPost(n - 1));
    let mut hs = base_hooks(base).caching(ActivationCache::of(pts));
    let last = last_residual(dec, &base.ids, &mut hs)?;
    Ok((hs.cache.take().expect("cache set"), last))
}

/// Full forward of one prompt through every block (no unembedding); the final residual stream
/// at the last position, `[1, d]`.
pub fn last_residual(dec: &HookedDecoder, ids: &[u32], hook: &mut dyn Hook) -> Result<Tensor> {
    let batch = TokenBatch::single(ids.to_vec())?;
    let ctx = dec.context(&batch)?;
    let resid = dec.embed_tokens(&batch, hook)?;
    let resid = dec.run_blocks(0..dec.config.n_layers, resid, &ctx, hook)?;
    Ok(resid.i((.., ids.len() - 1, ..))?)
}

/// Per-row replacements of a batched suffix run (positions from `start` on, rows of the
/// growing batch that have joined): for each point, the slices each row replaces and their
/// values, written into a copy of the activation by `strata_kernels::scatter_patches` (on a
/// GPU one kernel that touches only the replaced slices; no activation-sized value or mask
/// tensor per row).
struct RowPatches {
    by_point: HashMap<HookPoint, PointPatches>,
    start: usize,
}

/// The replaced slices of one point. A slice is the activation's last axis at one batch row
/// and one (position, head) of the axes in between; a patch that names no head replaces every
/// head of its positions.
struct PointPatches {
    /// `[slices, width]`: the patches' values at those slices.
    values: Tensor,
    /// Batch row, position and head (0 without a head axis) of each slice.
    slices: Vec<(usize, usize, usize)>,
}

impl RowPatches {
    fn new(jobs: &[&Job], start: usize) -> Result<Self> {
        type Parts = (Vec<Tensor>, Vec<(usize, usize, usize)>);
        let mut parts: BTreeMap<HookPoint, Parts> = BTreeMap::new();
        for (r, job) in jobs.iter().enumerate() {
            let mut points = std::collections::HashSet::new();
            for p in &job.patches {
                if !points.insert(p.point) {
                    return input(format!("a job patches {} twice", p.point));
                }
                let (at, values) = patched_slices(p)?;
                let (all_values, slices) = parts.entry(p.point).or_default();
                all_values.push(values);
                slices.extend(at.into_iter().map(|(pos, head)| (r, pos, head)));
            }
        }
        let by_point = parts
            .into_iter()
            .map(|(point, (values, slices))| {
                let values = Tensor::cat(&values, 0)?;
                Ok((point, PointPatches { values, slices }))
            })
            .collect::<Result<_>>()?;
        Ok(RowPatches { by_point, start })
    }
}

/// The (position, head) slices a patch replaces, and its value's rows at them `[slices, width]`.
fn patched_slices(p: &Patch) -> Result<(Vec<(usize, usize)>, Tensor)> {
    let (point, dims, axes) = (p.point, p.value.dims(), p.point.axes());
    if dims.len() < 3 || dims[0] != 1 || axes.position + 1 >= dims.len() {
        return input(format!(
            "{point}: a patch value must be one activation row [1, ...], got {dims:?}"
        ));
    }
    let check = |what: &str, i: usize, axis: usize| -> Result<()> {
        if i >= dims[axis] {
            return input(format!("{point}: {what} {i} out of range ({})", dims[axis]));
        }
        Ok(())
    };
    let positions: Vec<usize> = match &p.positions {
        Some(ps) => {
            for &q in ps {
                check("position", q, axes.position)?;
            }
            ps.clone()
        }
        None => (0..dims[axes.position]).collect(),
    };
    let heads: Vec<usize> = match (p.head, axes.head) {
        (Some(h), Some(axis)) => {
            check("head", h, axis)?;
            vec![h]
        }
        (Some(_), None) => return input(format!("{point} has no head axis")),
        (None, Some(axis)) => (0..dims[axis]).collect(),
        (None, None) => vec![0],
    };
    let middle = &dims[1..dims.len() - 1];
    let at: Vec<(usize, usize)> = positions
        .iter()
        .flat_map(|&q| heads.iter().map(move |&h| (q, h)))
        .collect();
    let rows: Vec<u32> = at.iter().map(|&(q, h)| slice_index(middle, axes, q, h)).collect();
    let width = dims[dims.len() - 1];
    let values = p
        .value
        .reshape((middle.iter().product::<usize>(), width))?
        .index_select(&Tensor::new(rows, p.value.device())?, 0)?;
    Ok((at, values))
}

/// Row-major index of (position, head) over `middle`, the axes between batch and last axis.
fn slice_index(middle: &[usize], axes: Axes, position: usize, head: usize) -> u32 {
    let index = middle.iter().enumerate().fold(0, |index, (i, &len)| {
        let at = match i + 1 {
            axis if axis == axes.position => position,
            axis if Some(axis) == axes.head => head,
            _ => 0,
        };
        index * len + at
    });
    index as u32
}

impl Hook for RowPatches {
    fn wants(&self, point: HookPoint) -> bool {
        self.by_point.contains_key(&point)
    }

    fn visit(&mut self, point: HookPoint, act: Tensor) -> strata_model::Result<Tensor> {
        let patches = &self.by_point[&point];
        let dims = act.dims().to_vec();
        let middle = &dims[1..dims.len() - 1];
        let axes = point.axes();
        let (mut rows, mut slices, mut kept) = (Vec::new(), Vec::new(), Vec::new());
        for (i, &(row, pos, head)) in patches.slices.iter().enumerate() {
            if row >= dims[0] {
                continue; // the row has not joined the batch yet
            }
            let q = pos.checked_sub(self.start).filter(|&q| q < dims[axes.position]);
            let Some(q) = q else {
                return Err(strata_model::ModelError::Input(format!(
                    "{point}: position {pos} is outside the suffix run from {} ({dims:?})",
                    self.start
                )));
            };
            rows.push(row as u32);
            slices.push(slice_index(middle, axes, q, head));
            kept.push(i as u32);
        }
        if rows.is_empty() {
            return Ok(act);
        }
        let values = if kept.len() == patches.slices.len() {
            patches.values.clone()
        } else {
            patches
                .values
                .index_select(&Tensor::new(kept, act.device())?, 0)?
        };
        // A fresh copy: the activation's storage may be shared with tensors the decoder keeps.
        let out = if act.is_contiguous() {
            act.copy()?
        } else {
            act.contiguous()?
        };
        let as_slices = out.reshape((dims[0], middle.iter().product::<usize>(), dims[dims.len() - 1]))?;
        strata_kernels::scatter_patches(&as_slices, &values, &rows, &slices)?;
        Ok(out)
    }
}

/// Metric of every job (same order as `jobs`). `on_done(k)` is called after each `k` jobs finish.
pub fn run_jobs(
    dec: &HookedDecoder,
    base: &BaseRun,
    jobs: &[Job],
    spec: &MetricSpec,
    mode: ExecMode,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<f64>> {
    let positions = base.ids.len();
    let (result, runs, hint) = match mode {
        ExecMode::Naive => (
            run_naive(dec, base, jobs, spec, on_done),
            1,
            "use --dtype bf16 or a shorter prompt",
        ),
        ExecMode::Fast { max_batch } => {
            let max_batch = max_batch.resolve(dec, positions)?;
            (
                run_fast(dec, base, jobs, spec, max_batch, on_done),
                max_batch.min(jobs.len()),
                "use a smaller --max-batch, --dtype bf16 or a shorter prompt",
            )
        }
    };
    result.map_err(|e| explain_out_of_memory(e, dec, runs, positions, hint))
}

fn run_naive(
    dec: &HookedDecoder,
    base: &BaseRun,
    jobs: &[Job],
    spec: &MetricSpec,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<f64>> {
    let batch = TokenBatch::single(base.ids.clone())?;
    let last = base.ids.len() - 1;
    let mut out = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut hs = base_hooks(base);
        for p in &job.patches {
            let mut iv = Intervention::new(p.point, Edit::Set(p.value.clone()));
            if let Some(ps) = &p.positions {
                iv = iv.at_positions(ps.clone());
            }
            if let Some(h) = p.head {
                iv = iv.at_heads(vec![h]);
            }
            hs = hs.with(iv);
        }
        let logits = dec.forward(&batch, &mut hs)?;
        let row = logits.i((0, last))?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
        out.push(metric_of_logits(&row, spec)?);
        on_done(1);
    }
    Ok(out)
}

fn run_fast(
    dec: &HookedDecoder,
    base: &BaseRun,
    jobs: &[Job],
    spec: &MetricSpec,
    max_batch: usize,
    on_done: &mut dyn FnMut(usize),
) -> Result<Vec<f64>> {
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let n = dec.config.n_layers;
    let t = base.ids.len();
    // The base run once, keeping every block's input and its keys/values.
    let batch = TokenBatch::single(base.ids.clone())?;
    let mut hs = base_hooks(base).caching(ActivationCache::of((0..n).map(HookPoint::ResidPre)));
    let (_, kv, ctx) = dec.forward_with_kv(&batch, &mut hs)?;
    let cache = hs.cache.take().expect("cache set");

    // Jobs grouped by the first position they touch, then by the first block.
    let mut order: Vec<(usize, usize, usize)> = jobs
        .iter()
        .enumerate()
        .map(|(i, j)| Ok((j.start_position(), j.start_layer()?, i)))
        .collect::<Result<_>>()?;
    order.sort();
    let mut out = vec![0f64; jobs.len()];
    let mut rest = order.as_slice();
    while !rest.is_empty() {
        let p = rest[0].0;
        let same_p = rest.iter().take_while(|o| o.0 == p).count().min(max_batch);
        let (chunk, tail) = rest.split_at(same_p);
        rest = tail;
        let chunk_jobs: Vec<&Job> = chunk.iter().map(|&(_, _, i)| &jobs[i]).collect();
        let mut hook = RowPatches::new(&chunk_jobs, p)?;
        // A growing batch: row r joins at its first patched block (rows are sorted by it);
        // before that it would only recompute the cached base run.
        let mut active: Option<Tensor> = None;
        let mut joined = 0;
        for layer in chunk[0].1..n {
            let joining = chunk[joined..].iter().take_while(|o| o.1 == layer).count();
            if joining > 0 {
                let base_suffix = cache.get(HookPoint::ResidPre(layer))?.narrow(1, p, t - p)?;
                let new_rows = base_suffix.broadcast_as((joining, t - p, base_suffix.dim(2)?))?;
                active = Some(match active {
                    Some(a) => Tensor::cat(&[&a, &new_rows.contiguous()?], 0)?,
                    None => new_rows.contiguous()?,
                });
                joined += joining;
            }
            let resid = active.take().expect("a row has joined");
            active = Some(dec.run_suffix(layer..layer + 1, resid, p, &kv, &ctx, &mut hook)?);
        }
        let resid = active.expect("a row has joined");
        let resid_last = resid.i((.., t - p - 1, ..))?.contiguous()?;
        let values = metric_values(dec, &resid_last, spec)?;
        for (&(_, _, i), v) in chunk.iter().zip(values) {
            out[i] = v;
        }
        on_done(chunk.len());
    }
    Ok(out)
}
