//! Attribution patching (Nanda 2023; Syed et al. 2023): a first-order estimate of every
//! activation patching effect from one clean forward, one base forward and one backward.
//!
//! Patching `a_base → a_source` at one site changes the metric by about
//! `attr = Σ_d (a_source − a_base)_d · ∂M/∂a_d`, the gradient taken on the base run (under
//! denoising: base = corrupted, source = clean). Rows are those of exact patching
//! ([`crate::patch`]) with `value = M_base + attr`, so `normalized = (value − corrupted) /
//! (clean − corrupted)` is comparable with exact patching's. Without `per_position`, the estimate
//! of patching all positions at once is the sum over positions.
//!
//! Gradients: `backward()` keeps gradients of `Var`s only, so the base run adds a zero `Var` to
//! every wanted activation ([`GradSites`]) and reads its gradient; the base forward uses the
//! decoder's differentiable mode ([`HookedDecoder::differentiable`], f32 only).

use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var, D};
use std::collections::{BTreeMap, HashSet};
use strata_model::{Hook, HookPoint, Model};

use crate::engine::{cached_run, last_residual, BaseRun};
use crate::error::{input, Result};
use crate::item::Item;
use crate::metric::{metric_tensor, metric_values, normalize, MetricSpec};
use crate::patch::{
    corrupted_ids, patch_result, sweep_points, Direction, PatchComponent, PatchOptions, PatchResult,
};
use crate::prepare::{prepare_all, Prepared};
use crate::results::{ItemSummary, SweepRow};

/// Adds a zero `Var` to each wanted activation, keeping the activation and the `Var` so that the
/// gradient of the metric with respect to the activation can be read after `backward()`.
pub struct GradSites {
    wanted: HashSet<HookPoint>,
    sites: BTreeMap<HookPoint, (Tensor, Var)>,
}

impl GradSites {
    pub fn new(points: impl IntoIterator<Item = HookPoint>) -> Self {
        GradSites {
            wanted: points.into_iter().collect(),
            sites: BTreeMap::new(),
        }
    }

    /// The activation seen at `point` (before the zero was added) and `∂M/∂activation` (zeros
    /// where the metric does not depend on it).
    pub fn activation_and_grad(&self, point: HookPoint, grads: &GradStore) -> Result<(Tensor, Tensor)> {
        let Some((act, var)) = self.sites.get(&point) else {
            return input(format!("{point} was not reached by the tracked forward"));
        };
        let grad = match grads.get(var.as_tensor()) {
            Some(g) => g.clone(),
            None => act.zeros_like()?,
        };
        Ok((act.clone(), grad))
    }
}

impl Hook for GradSites {
    fn wants(&self, point: HookPoint) -> bool {
        self.wanted.contains(&point)
    }

    fn visit(&mut self, point: HookPoint, act: Tensor) -> strata_model::Result<Tensor> {
        let var = Var::zeros(act.shape(), act.dtype(), act.device())?;
        let out = (&act + var.as_tensor())?;
        self.sites.insert(point, (act.detach(), var));
        Ok(out)
    }
}

pub fn attribution_patching(model: &Model, items: &[Item], opts: &PatchOptions) -> Result<PatchResult> {
    let prepared = prepare_all(model, items)?;
    attribution_patching_prepared(model, &prepared, opts)
}

/// Attribution patching of every component, layer and position (and head for per-head ones) of
/// `opts`; `exact_naive` and `max_batch` do not apply.
pub fn attribution_patching_prepared(
    model: &Model,
    items: &[Prepared],
    opts: &PatchOptions,
) -> Result<PatchResult> {
    let dec = &model.decoder;
    let grad_dec = dec.differentiable()?;
    let (layers, points) = sweep_points(model.config.n_layers, opts)?;
    let mut rows = Vec::new();
    let mut summaries = Vec::new();
    for item in items {
        let corrupted_ids = corrupted_ids(item, opts.metric)?;
        let (base_ids, source_ids) = match opts.direction {
            Direction::Denoising => (&corrupted_ids, &item.ids),
            Direction::Noising => (&item.ids, &corrupted_ids),
        };
        let (source, source_last) = cached_run(dec, &BaseRun::of(source_ids), points.clone())?;
        let mut sites = GradSites::new(points.clone());
        let base_last = last_residual(&grad_dec, base_ids, &mut sites)?;
        // The clean run defines the metric (KL's reference distribution).
        let clean_last = match opts.direction {
            Direction::Denoising => source_last.clone(),
            Direction::Noising => base_last.detach(),
        };
        let (spec, clean) = MetricSpec::for_clean_run(dec, opts.metric, item, &clean_last)?;
        let metric = metric_tensor(&grad_dec, &base_last, &spec)?;
        let base_value = metric.to_vec1::<f32>()?[0] as f64;
        let grads = metric.backward()?;
        let corrupted = match opts.direction {
            Direction::Denoising => base_value,
            Direction::Noising => metric_values(dec, &source_last, &spec)?[0],
        };
        for &c in &opts.components {
            for &l in &layers {
                let (base_act, grad) = sites.activation_and_grad(c.point(l), &grads)?;
                // Summed over the last axis: [1, pos]; per head [1, pos, head] (z, q, k, v) or
                // [1, head, query pos] (pattern) → [head, pos] (exact patching's row order).
                let attr = ((source.get(c.point(l))? - base_act)? * grad)?
                    .sum(D::Minus1)?
                    .squeeze(0)?;
                let per_head = c.heads(&model.config).is_some();
                let attr = match c {
                    PatchComponent::Pattern => attr.to_vec2::<f32>()?,
                    _ if per_head => attr.t()?.to_vec2::<f32>()?,
                    _ => vec![attr.to_vec1::<f32>()?],
                };
                for (h, by_pos) in attr.iter().enumerate() {
                    let cells: Vec<(Option<usize>, f64)> = if opts.per_position {
                        by_pos
                            .iter()
                            .enumerate()
                            .map(|(p, &a)| (Some(p), a as f64))
                            .collect()
                    } else {
                        vec![(None, by_pos.iter().map(|&a| a as f64).sum())]
                    };
                    for (p, a) in cells {
                        let value = base_value + a;
                        rows.push(SweepRow {
                            item: item.id.clone(),
                            component: c.name().into(),
                            layer: l,
                            position: p,
                            head: per_head.then_some(h),
                            value,
                            normalized: normalize(value, clean, corrupted),
                            n: None,
                        });
                    }
                }
            }
        }
        summaries.push(ItemSummary::new(item, clean, Some(corrupted)));
    }
    let mut res = patch_result(model, opts, rows, summaries);
    res.method = Some("attribution".into());
    Ok(res)
}

/// Pearson correlation of two equally long series (`None` if either is constant or empty).
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n == 0 {
        return None;
    }
    let mean = |x: &[f64]| x[..n].iter().sum::<f64>() / n as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a[..n].iter().zip(&b[..n]) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    (saa > 0.0 && sbb > 0.0).then(|| sab / (saa * sbb).sqrt())
}

/// Agreement of attribution with exact patching: Pearson r of normalized effects over all rows
/// both have, and per component (in the order of `attr.components`).
#[derive(Debug, Clone, PartialEq)]
pub struct Agreement {
    pub overall: Option<f64>,
    pub per_component: Vec<(String, Option<f64>)>,
    pub n_rows: usize,
}

/// Pairs rows by (item, component, layer, position, head); rows lacking a normalized value on
/// either side are left out.
pub fn agreement(attr: &PatchResult, exact: &PatchResult) -> Agreement {
    type Key<'a> = (&'a str, &'a str, usize, Option<usize>, Option<usize>);
    fn key(r: &SweepRow) -> Key<'_> {
        (&r.item, &r.component, r.layer, r.position, r.head)
    }
    let exact_by: BTreeMap<Key, f64> = exact
        .rows
        .iter()
        .filter_map(|r| Some((key(r), r.normalized?)))
        .collect();
    let pairs: Vec<(&str, f64, f64)> = attr
        .rows
        .iter()
        .filter_map(|r| Some((r.component.as_str(), r.normalized?, *exact_by.get(&key(r))?)))
        .collect();
    let r_of = |comp: Option<&str>| {
        let (a, e): (Vec<f64>, Vec<f64>) = pairs
            .iter()
            .filter(|(c, ..)| comp.is_none_or(|x| x == *c))
            .map(|&(_, a, e)| (a, e))
            .unzip();
        pearson(&a, &e)
    };
    Agreement {
        overall: r_of(None),
        per_component: attr
            .components
            .iter()
            .map(|c| (c.name().to_string(), r_of(Some(c.name()))))
            .collect(),
        n_rows: pairs.len(),
    }
}
