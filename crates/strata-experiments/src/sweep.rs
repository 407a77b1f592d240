//! Per-layer findings of one model over a probe suite, summarised so that many models can be
//! set beside the structural dataset (`strata sweep`, then `strata correlate`).
//!
//! For every block `l` of an `L`-block model, averaged over the items:
//! * the logit lens at the last position after block `l` (target probability and rank);
//! * zero ablation of the block's attention and MLP outputs: the normalised logit difference
//!   left (1 = no effect, 0 = the answer's margin is gone);
//! * direct logit attribution of the block's attention and MLP outputs to the logit difference
//!   (target − distractor) through the final norm frozen at the final residual's scale.

use candle_core::{DType, IndexOp, Tensor};
use serde::{Deserialize, Serialize};
use strata_model::{ActivationCache, HookPoint, Model, TokenBatch};

use crate::ablate::{ablate_prepared, AblateComponent, AblateOptions, AblationKind};
use crate::batch_size::BatchSize;
use crate::error::{ExperimentError, Result};
use crate::lens::{logit_lens_prepared, LensOptions};
use crate::metric::Metric;
use crate::prepare::Prepared;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    /// A layer's ablation is "costly" when it removes more than this share of the clean logit
    /// difference (normalised metric below `1 - threshold`).
    pub costly_threshold: f64,
    pub max_batch: BatchSize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            costly_threshold: 0.1,
            max_batch: BatchSize::Auto,
        }
    }
}

/// One block of one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerFinding {
    pub model: String,
    pub layer: usize,
    /// `(layer + 1) / L`: 1 is the last block.
    pub relative_depth: f64,
    pub lens_target_prob: f64,
    /// Mean rank of the target (0 = top) after this block.
    pub lens_target_rank: f64,
    /// Normalised logit difference left when the block's attention output is zeroed.
    pub attn_ablation: f64,
    pub mlp_ablation: f64,
    /// Direct logit attribution (logit difference units) of attention and MLP outputs.
    pub attn_attribution: f64,
    pub mlp_attribution: f64,
}

/// The per-model summary joined to the dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFindings {
    /// Model as named on the command line.
    pub model: String,
    /// Key into the structural dataset (`model_id`), when given.
    pub model_id: String,
    pub n_layers: usize,
    pub n_items: usize,
    /// Mean over items of `l / L`, `l` the first lens layer (0 = embeddings) with the target
    /// top-1; items whose target never becomes top-1 are left out (see `items_reaching_top1`).
    pub first_top1_relative_depth: Option<f64>,
    pub items_reaching_top1: usize,
    /// Share of blocks whose attention (MLP) ablation is costly (see [`SweepOptions`]).
    pub costly_attn_share: f64,
    pub costly_mlp_share: f64,
    /// Σ|MLP attribution| / (Σ|attention| + Σ|MLP|) over blocks and items.
    pub mlp_attribution_share: f64,
    /// Mean clean logit difference.
    pub clean_logit_diff: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSweep {
    pub summary: ModelFindings,
    pub layers: Vec<LayerFinding>,
}

/// Runs the lens, attention/MLP ablation and direct logit attribution of one model.
pub fn sweep_model(
    model: &Model,
    model_id: &str,
    items: &[Prepared],
    opts: &SweepOptions,
    on_done: &mut dyn FnMut(usize),
) -> Result<ModelSweep> {
    if items.is_empty() {
        return Err(ExperimentError::Input("the sweep needs at least one item".into()));
    }
    if let Some(it) = items.iter().find(|it| it.distractor.is_none()) {
        return Err(ExperimentError::Input(format!(
            "item '{}' has no distractor; the sweep measures logit differences",
            it.id
        )));
    }
    let n = model.config.n_layers;
    let n_items = items.len() as f64;

    let lens = logit_lens_prepared(
        model,
        items,
        &LensOptions {
            top_k: 1,
            last_position_only: true,
            max_batch: opts.max_batch.fixed_or(LensOptions::default().max_batch),
            ..Default::default()
        },
    )?;
    let mut prob = vec![0.0; n + 1];
    let mut rank = vec![0.0; n + 1];
    let (mut depth_sum, mut reaching) = (0.0, 0usize);
    for r in &lens {
        let mut first_top1 = None;
        for row in &r.rows {
            prob[row.layer] += row.target_prob / n_items;
            rank[row.layer] += row.target_rank as f64 / n_items;
            if row.target_rank == 0 && first_top1.is_none() {
                first_top1 = Some(row.layer);
            }
        }
        if let Some(l) = first_top1 {
            depth_sum += l as f64 / n as f64;
            reaching += 1;
        }
    }
    on_done(items.len());

    let ablation = ablate_prepared(
        model,
        items,
        items,
        &AblateOptions {
            components: vec![AblateComponent::AttnOut, AblateComponent::MlpOut],
            kind: AblationKind::Zero,
            metric: Metric::LogitDiff,
            max_batch: opts.max_batch,
            ..Default::default()
        },
        &mut |_| {},
    )?;
    let mut attn_ablation = vec![0.0; n];
    let mut mlp_ablation = vec![0.0; n];
    for row in ablation.rows.iter().filter(|r| r.position.is_none()) {
        let slot = match row.component.as_str() {
            "attn_out" => &mut attn_ablation[row.layer],
            "mlp_out" => &mut mlp_ablation[row.layer],
            _ => continue,
        };
        *slot += row.normalized.unwrap_or(f64::NAN) / n_items;
    }
    on_done(items.len());

    let (attn_attr, mlp_attr, clean) = attribution(model, items)?;
    on_done(items.len());

    let layers: Vec<LayerFinding> = (0..n)
        .map(|l| LayerFinding {
            model: model.name.clone(),
            layer: l,
            relative_depth: (l + 1) as f64 / n as f64,
            lens_target_prob: prob[l + 1],
            lens_target_rank: rank[l + 1],
            attn_ablation: attn_ablation[l],
            mlp_ablation: mlp_ablation[l],
            attn_attribution: attn_attr[l],
            mlp_attribution: mlp_attr[l],
        })
        .collect();
    let costly = |v: &[f64]| v.iter().filter(|&&x| x < 1.0 - opts.costly_threshold).count() as f64 / n as f64;
    let abs_sum = |v: &[f64]| v.iter().map(|x| x.abs()).sum::<f64>();
    let summary = ModelFindings {
        model: model.name.clone(),
        model_id: model_id.to_string(),
        n_layers: n,
        n_items: items.len(),
        first_top1_relative_depth: (reaching > 0).then(|| depth_sum / reaching as f64),
        items_reaching_top1: reaching,
        costly_attn_share: costly(&attn_ablation),
        costly_mlp_share: costly(&mlp_ablation),
        mlp_attribution_share: abs_sum(&mlp_attr) / (abs_sum(&attn_attr) + abs_sum(&mlp_attr)),
        clean_logit_diff: clean,
    };
    Ok(ModelSweep { summary, layers })
}

/// Mean direct logit attribution per block of attention and MLP outputs, and the mean clean
/// logit difference.
fn attribution(model: &Model, items: &[Prepared]) -> Result<(Vec<f64>, Vec<f64>, f64)> {
    let dec = &model.decoder;
    let n = model.config.n_layers;
    let (mut attn, mut mlp, mut clean) = (vec![0.0; n], vec![0.0; n], 0.0);
    for it in items {
        let distractor = it.distractor.expect("checked by the caller");
        let mut cache = ActivationCache::new(move |p| {
            matches!(p, HookPoint::AttnOut(_) | HookPoint::MlpOut(_)) || p == HookPoint::ResidPost(n - 1)
        });
        let logits = dec.forward(&TokenBatch::single(it.ids.clone())?, &mut cache)?;
        let last = it.ids.len() - 1;
        let at = |p: HookPoint| -> Result<Tensor> { Ok(cache.get(p)?.i((0, last))?) };
        let mut parts = Vec::with_capacity(2 * n);
        for l in 0..n {
            parts.push(at(HookPoint::AttnOut(l))?);
            parts.push(at(HookPoint::MlpOut(l))?);
        }
        let parts = Tensor::stack(&parts, 0)?;
        let normed = dec.frozen_final_norm(&at(HookPoint::ResidPost(n - 1))?, &parts)?;
        let rows = dec
            .unembedding_rows(&[it.target, distractor])?
            .to_dtype(DType::F32)?;
        let direction = (rows.get(0)? - rows.get(1)?)?;
        let contrib = normed
            .matmul(&direction.unsqueeze(1)?)?
            .squeeze(1)?
            .to_vec1::<f32>()?;
        for l in 0..n {
            attn[l] += contrib[2 * l] as f64 / items.len() as f64;
            mlp[l] += contrib[2 * l + 1] as f64 / items.len() as f64;
        }
        let row = logits.i((0, last))?.to_dtype(DType::F32)?;
        let diff = row.get(it.target as usize)?.to_scalar::<f32>()?
            - row.get(distractor as usize)?.to_scalar::<f32>()?;
        clean += diff as f64 / items.len() as f64;
    }
    Ok((attn, mlp, clean))
}
