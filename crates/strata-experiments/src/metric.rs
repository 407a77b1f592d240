//! Metrics read from the final logits at a prompt's last position.

use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use strata_model::HookedDecoder;

use crate::error::{input, ExperimentError, Result};

/// What an ablation or patching run measures at the last position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// logit(target) − logit(distractor).
    LogitDiff,
    /// p(target).
    TargetProb,
    /// −log p(target).
    Loss,
    /// KL(clean ‖ run) over the vocabulary.
    Kl,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::LogitDiff => "logit_diff",
            Metric::TargetProb => "target_prob",
            Metric::Loss => "loss",
            Metric::Kl => "kl",
        }
    }

    /// Whether the metric reads the whole vocabulary (softmax) or only two unembedding rows.
    pub fn needs_full_vocab(self) -> bool {
        self != Metric::LogitDiff
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.replace('-', "_").as_str() {
            "logit_diff" | "ld" => Metric::LogitDiff,
            "target_prob" | "prob" | "p" => Metric::TargetProb,
            "loss" | "nll" => Metric::Loss,
            "kl" => Metric::Kl,
            _ => {
                return input(format!(
                    "unknown metric '{s}'; use logit_diff, target_prob, loss or kl"
                ))
            }
        })
    }
}

/// What a metric needs to know about one item.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    pub metric: Metric,
    pub target: u32,
    pub distractor: Option<u32>,
    /// Log-probabilities of the clean run at the last position (for KL).
    pub clean_logprobs: Option<Vec<f64>>,
}

impl MetricSpec {
    /// The metric of an item whose clean run ended in `clean_last` (the last position's
    /// residual stream): the spec (KL takes the clean distribution as its reference) and the
    /// clean run's metric value.
    pub fn for_clean_run(
        dec: &HookedDecoder,
        metric: Metric,
        item: &crate::prepare::Prepared,
        clean_last: &Tensor,
    ) -> Result<(MetricSpec, f64)> {
        let mut spec = MetricSpec {
            metric,
            target: item.target,
            distractor: item.distractor,
            clean_logprobs: None,
        };
        if metric == Metric::Kl {
            let row = full_logits(dec, clean_last)?;
            spec.clean_logprobs = Some(log_softmax(&row[0]));
        }
        let clean = metric_values(dec, clean_last, &spec)?[0];
        Ok((spec, clean))
    }
}

/// Log-softmax of one row in f64.
pub fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)) as f64;
    let sum: f64 = row.iter().map(|&x| (x as f64 - max).exp()).sum();
    let lse = max + sum.ln();
    row.iter().map(|&x| x as f64 - lse).collect()
}

/// Full logits `[n, V]` (f32) of residual rows `[n, d]` (before the final norm).
pub fn full_logits(decoder: &HookedDecoder, resid: &Tensor) -> Result<Vec<Vec<f32>>> {
    let normed = decoder.final_norm(resid)?;
    let logits = decoder.unembed(&normed)?;
    let logits = decoder.cap_logits(&logits)?;
    Ok(logits.to_dtype(DType::F32)?.to_vec2::<f32>()?)
}

/// Metric values of residual rows `[n, d]` (the last position of each run, before the final norm).
/// A logit difference unembeds only the two rows it reads.
pub fn metric_values(decoder: &HookedDecoder, resid: &Tensor, spec: &MetricSpec) -> Result<Vec<f64>> {
    if spec.metric == Metric::LogitDiff {
        let d = spec
            .distractor
            .ok_or_else(|| ExperimentError::Input("the logit-difference metric needs a distractor".into()))?;
        let rows = decoder.unembedding_rows(&[spec.target, d])?;
        let normed = decoder.final_norm(resid)?;
        let logits = decoder.cap_logits(&normed.matmul(&rows.t()?)?)?;
        let logits = logits.to_dtype(DType::F32)?.to_vec2::<f32>()?;
        return Ok(logits.iter().map(|r| r[0] as f64 - r[1] as f64).collect());
    }
    let rows = full_logits(decoder, resid)?;
    rows.iter().map(|row| metric_of_logits(row, spec)).collect()
}

/// The metric of residual rows `[n, d]` (as [`metric_values`]) as an f32 tensor `[n]` built
/// from tensor ops, so that candle can backpropagate it when `decoder` is differentiable
/// ([`HookedDecoder::differentiable`]; attribution patching).
pub fn metric_tensor(decoder: &HookedDecoder, resid: &Tensor, spec: &MetricSpec) -> Result<Tensor> {
    let pick = |t: &Tensor, i: u32| -> Result<Tensor> { Ok(t.narrow(1, i as usize, 1)?.squeeze(1)?) };
    if spec.metric == Metric::LogitDiff {
        let d = spec
            .distractor
            .ok_or_else(|| ExperimentError::Input("the logit-difference metric needs a distractor".into()))?;
        let logits = decoder.logits_of(resid, &[spec.target, d])?;
        return Ok((pick(&logits, 0)? - pick(&logits, 1)?)?);
    }
    let normed = decoder.final_norm(resid)?;
    let logq = log_softmax_rows(&decoder.cap_logits(&decoder.unembed(&normed)?)?)?;
    Ok(match spec.metric {
        Metric::LogitDiff => unreachable!("handled above"),
        Metric::TargetProb => pick(&logq, spec.target)?.exp()?,
        Metric::Loss => pick(&logq, spec.target)?.neg()?,
        Metric::Kl => {
            let clean = spec
                .clean_logprobs
                .as_ref()
                .ok_or_else(|| ExperimentError::Input("KL needs the clean run's log-probabilities".into()))?;
            let logp: Vec<f32> = clean.iter().map(|&x| x.max(-1e30) as f32).collect();
            let logp = Tensor::new(logp.as_slice(), resid.device())?.unsqueeze(0)?;
            let p = logp.exp()?;
            p.broadcast_mul(&logq.broadcast_sub(&logp)?.neg()?)?.sum(1)?
        }
    })
}

/// `log_softmax` of each row of `[n, vocab]` logits, in f32, on their device, from tensor ops
/// (differentiable).
pub fn log_softmax_rows(logits: &Tensor) -> Result<Tensor> {
    let x = logits.to_dtype(DType::F32)?;
    let shifted = x.broadcast_sub(&x.max_keepdim(1)?)?;
    Ok(shifted.broadcast_sub(&shifted.exp()?.sum_keepdim(1)?.log()?)?)
}

/// One metric value from a full logit row.
pub fn metric_of_logits(row: &[f32], spec: &MetricSpec) -> Result<f64> {
    let t = spec.target as usize;
    Ok(match spec.metric {
        Metric::LogitDiff => {
            let d = spec.distractor.ok_or_else(|| {
                ExperimentError::Input("the logit-difference metric needs a distractor".into())
            })?;
            row[t] as f64 - row[d as usize] as f64
        }
        Metric::TargetProb => log_softmax(row)[t].exp(),
        Metric::Loss => -log_softmax(row)[t],
        Metric::Kl => {
            let clean = spec
                .clean_logprobs
                .as_ref()
                .ok_or_else(|| ExperimentError::Input("KL needs the clean run's log-probabilities".into()))?;
            kl(clean, &log_softmax(row))
        }
    })
}

/// KL(p ‖ q) from log-probabilities.
pub fn kl(logp: &[f64], logq: &[f64]) -> f64 {
    logp.iter()
        .zip(logq)
        .map(|(&lp, &lq)| {
            if lp == f64::NEG_INFINITY {
                0.0
            } else {
                lp.exp() * (lp - lq)
            }
        })
        .sum::<f64>()
        .max(0.0)
}

/// `(value − corrupted) / (clean − corrupted)`, `None` when clean and corrupted coincide.
pub fn normalize(value: f64, clean: f64, corrupted: f64) -> Option<f64> {
    let den = clean - corrupted;
    (den.abs() > 1e-12).then(|| (value - corrupted) / den)
}
