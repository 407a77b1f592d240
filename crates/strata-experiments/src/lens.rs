//! Logit lens: the model's own final norm and unembedding (and final soft-cap) applied to the
//! residual stream at every layer and position.
//!
//! Layer `l` of the lens is `blocks.{l}.hook_resid_pre` for `l < L` (layer 0 = the embeddings)
//! and `blocks.{L-1}.hook_resid_post` for `l = L`, whose lens equals the model's logits. With
//! [`LensSource::AttnOut`] / [`LensSource::MlpOut`] the lens reads one block's attention or MLP
//! output alone (layer `l` = block `l`). Each layer's logits are reduced to the reported
//! statistics at once; no `[layers, positions, vocab]` tensor is ever built.

use candle_core::{DType, Tensor};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use strata_model::{ActivationCache, HookPoint, Model, Padding, TokenBatch};

use crate::error::{input, Result};
use crate::item::Item;
use crate::prepare::{prepare_all, Prepared};
use crate::results::SCHEMA_VERSION;

/// What the lens reads at each layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LensSource {
    /// The residual stream (layers 0..=L).
    #[default]
    Resid,
    /// Each block's attention output alone (layers 0..L).
    AttnOut,
    /// Each block's MLP output alone (layers 0..L).
    MlpOut,
}

impl std::str::FromStr for LensSource {
    type Err = crate::error::ExperimentError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.replace('-', "_").as_str() {
            "resid" | "resid_pre" | "residual" => LensSource::Resid,
            "attn_out" | "attn" => LensSource::AttnOut,
            "mlp_out" | "mlp" => LensSource::MlpOut,
            _ => {
                return input(format!(
                    "unknown lens component '{s}'; use resid, attn_out or mlp_out"
                ))
            }
        })
    }
}

impl LensSource {
    pub fn name(self) -> &'static str {
        match self {
            LensSource::Resid => "resid",
            LensSource::AttnOut => "attn_out",
            LensSource::MlpOut => "mlp_out",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LensOptions {
    /// How many top tokens to keep per (layer, position).
    pub top_k: usize,
    /// Only the last position of each prompt (much cheaper on large vocabularies).
    pub last_position_only: bool,
    pub source: LensSource,
    /// Prompts per forward when several items are given.
    pub max_batch: usize,
}

impl Default for LensOptions {
    fn default() -> Self {
        LensOptions {
            top_k: 5,
            last_position_only: false,
            source: LensSource::Resid,
            max_batch: 8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopToken {
    pub id: u32,
    pub token: String,
    pub prob: f64,
}

/// Lens statistics at one (layer, position).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensRow {
    pub layer: usize,
    pub position: usize,
    /// Number of tokens with a strictly larger logit (0 = top-1).
    pub target_rank: usize,
    pub target_prob: f64,
    pub target_logit: f64,
    /// KL(final ‖ this layer), nats.
    pub kl_to_final: f64,
    /// Entropy of this layer's distribution, nats.
    pub entropy: f64,
    pub top: Vec<TopToken>,
}

/// The lens of one prompt (`lens.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LensResult {
    pub schema_version: u32,
    pub experiment: String,
    pub model: String,
    pub id: String,
    pub prompt: String,
    pub source: LensSource,
    pub n_layers: usize,
    pub tokens: Vec<String>,
    pub token_ids: Vec<u32>,
    pub target: String,
    pub target_id: u32,
    pub rows: Vec<LensRow>,
    /// Wall-clock seconds of the lens call that produced this result (model loading excluded;
    /// a suite's items share one call), set by the caller that timed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_seconds: Option<f64>,
}

impl LensResult {
    pub fn row(&self, layer: usize, position: usize) -> Option<&LensRow> {
        self.rows
            .iter()
            .find(|r| r.layer == layer && r.position == position)
    }

    /// First layer from which the target stays top-1 at `position` through the last layer.
    pub fn top1_from_layer(&self, position: usize) -> Option<usize> {
        let mut rows: Vec<&LensRow> = self.rows.iter().filter(|r| r.position == position).collect();
        rows.sort_by_key(|r| r.layer);
        let mut first = None;
        for r in rows {
            match (r.target_rank == 0, first) {
                (true, None) => first = Some(r.layer),
                (false, _) => first = None,
                _ => {}
            }
        }
        first
    }

    /// First layer at which the target is top-1 at `position`.
    pub fn first_top1_layer(&self, position: usize) -> Option<usize> {
        self.rows
            .iter()
            .filter(|r| r.position == position && r.target_rank == 0)
            .map(|r| r.layer)
            .min()
    }
}

/// Runs the lens on every item (batched, left-padded; identical to one-by-one runs).
pub fn logit_lens(model: &Model, items: &[Item], opts: &LensOptions) -> Result<Vec<LensResult>> {
    let prepared = prepare_all(model, items)?;
    logit_lens_prepared(model, &prepared, opts)
}

pub fn logit_lens_prepared(model: &Model, items: &[Prepared], opts: &LensOptions) -> Result<Vec<LensResult>> {
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(opts.max_batch.max(1)) {
        out.extend(lens_batch(model, chunk, opts)?);
    }
    Ok(out)
}

fn lens_points(n_layers: usize, source: LensSource) -> Vec<(usize, HookPoint)> {
    match source {
        LensSource::Resid => (0..n_layers)
            .map(|l| (l, HookPoint::ResidPre(l)))
            .chain([(n_layers, HookPoint::ResidPost(n_layers - 1))])
            .collect(),
        LensSource::AttnOut => (0..n_layers).map(|l| (l, HookPoint::AttnOut(l))).collect(),
        LensSource::MlpOut => (0..n_layers).map(|l| (l, HookPoint::MlpOut(l))).collect(),
    }
}

fn lens_batch(model: &Model, items: &[Prepared], opts: &LensOptions) -> Result<Vec<LensResult>> {
    let dec = &model.decoder;
    let n_layers = model.config.n_layers;
    let tok = model.tokenizer()?;
    let pad = model.config.pad_token_id.unwrap_or(0);
    let prompts: Vec<Vec<u32>> = items.iter().map(|p| p.ids.clone()).collect();
    let batch = TokenBatch::padded(&prompts, Padding::Left, pad)?;
    let seq = batch.seq_len();
    let points = lens_points(n_layers, opts.source);
    let final_point = HookPoint::ResidPost(n_layers - 1);
    let mut wanted: Vec<HookPoint> = points.iter().map(|(_, p)| *p).collect();
    wanted.push(final_point);
    let mut cache = ActivationCache::of(wanted);
    let ctx = dec.context(&batch)?;
    let resid = dec.embed_tokens(&batch, &mut cache)?;
    dec.run_blocks(0..n_layers, resid, &ctx, &mut cache)?;

    // Positions read: all, or the last (left padding puts every prompt's last token at seq-1).
    let (p0, np) = if opts.last_position_only {
        (seq - 1, 1)
    } else {
        (0, seq)
    };
    let v = model.config.vocab_size;
    let d = model.config.d_model;
    let b = items.len();
    let per_layer = b * np;
    // Normed residuals of the positions read, `[b * np, d]` per layer.
    let normed_rows = |point: HookPoint| -> Result<Tensor> {
        let r = cache.get(point)?.narrow(1, p0, np)?;
        Ok(dec.final_norm(&r)?.reshape((per_layer, d))?)
    };
    // Rows unembedded: the model's output rows first (every row's KL needs the final
    // distribution), then each lens layer's; the residual lens' last layer *is* the output.
    let layer_points: Vec<HookPoint> = points
        .iter()
        .map(|&(_, p)| p)
        .filter(|&p| p != final_point)
        .collect();
    let all = Tensor::cat(
        &std::iter::once(final_point)
            .chain(layer_points.iter().copied())
            .map(normed_rows)
            .collect::<Result<Vec<_>>>()?,
        0,
    )?;
    let total = all.dim(0)?;
    // Equal blocks of at most LOGIT_BLOCK_BYTES, each at least the output rows.
    let n_blocks = (total * 4 * v)
        .div_ceil(LOGIT_BLOCK_BYTES)
        .clamp(1, total.div_ceil(per_layer));
    let block = total.div_ceil(n_blocks).max(per_layer);
    let mut stats: Vec<RowStats> = Vec::with_capacity(total);
    // strata's lens kernel runs on CUDA; elsewhere (CPU, Metal) the rows are reduced on the host.
    let lens_kernel = all.device().is_cuda();
    let mut final_dist: Vec<(Vec<f32>, f64)> = Vec::new();
    let mut final_logp: Option<Tensor> = None;
    for start in (0..total).step_by(block) {
        let len = block.min(total - start);
        let logits = dec.cap_logits(&dec.unembed(&all.narrow(0, start, len)?)?)?;
        // Row r of the block: its item's target and its position's output row.
        let output_row = |r: usize| (start + r) % per_layer;
        let target = |r: usize| items[output_row(r) / np].target;
        if lens_kernel {
            // The logits stay on the GPU: only the statistics come back.
            if start == 0 {
                final_logp = Some(crate::metric::log_softmax_rows(&logits.narrow(0, 0, per_layer)?)?);
            }
            let final_logp = final_logp.as_ref().expect("set by the first block");
            stats.extend(device_row_stats(
                &logits,
                final_logp,
                &(0..len).map(target).collect::<Vec<_>>(),
                &(0..len).map(|r| output_row(r) as u32).collect::<Vec<_>>(),
                opts.top_k,
            )?);
            continue;
        }
        with_f32_slice(&logits, |logits| {
            if start == 0 {
                // Final distribution: probabilities (f32) and Σ p log p per output row.
                final_dist = logits[..per_layer * v]
                    .par_chunks(v)
                    .map(|row| {
                        let lp = crate::metric::log_softmax(row);
                        let neg_entropy: f64 = lp
                            .iter()
                            .map(|&x| if x.is_finite() { x.exp() * x } else { 0.0 })
                            .sum();
                        (lp.iter().map(|x| x.exp() as f32).collect(), neg_entropy)
                    })
                    .collect();
            }
            stats.par_extend(logits.par_chunks(v).enumerate().map(|(r, row)| {
                let (final_p, final_neg_entropy) = &final_dist[output_row(r)];
                reduce_row(row, target(r) as usize, final_p, *final_neg_entropy, opts.top_k)
            }));
        })?;
    }
    // Where each lens layer's rows start in `stats`.
    let first_row = |point: HookPoint| match layer_points.iter().position(|&p| p == point) {
        Some(i) => (i + 1) * per_layer,
        None => 0,
    };

    let mut rows: Vec<Vec<LensRow>> = vec![Vec::new(); b];
    for &(layer, point) in &points {
        let first = first_row(point);
        for (bi, item) in items.iter().enumerate() {
            let padding = seq - item.len();
            for j in 0..np {
                let idx = p0 + j;
                if idx < padding {
                    continue;
                }
                let row_stats = &mut stats[first + bi * np + j];
                rows[bi].push(LensRow {
                    layer,
                    position: idx - padding,
                    target_rank: row_stats.rank,
                    target_prob: row_stats.target_prob,
                    target_logit: row_stats.target_logit,
                    kl_to_final: row_stats.kl,
                    entropy: row_stats.entropy,
                    top: std::mem::take(&mut row_stats.top)
                        .into_iter()
                        .map(|(id, prob)| TopToken {
                            id,
                            token: tok.token(id),
                            prob,
                        })
                        .collect(),
                });
            }
        }
    }
    Ok(items
        .iter()
        .zip(rows)
        .map(|(item, rows)| LensResult {
            schema_version: SCHEMA_VERSION,
            experiment: "lens".into(),
            model: model.name.clone(),
            id: item.id.clone(),
            prompt: item.prompt.clone(),
            source: opts.source,
            n_layers,
            tokens: item.tokens.clone(),
            token_ids: item.ids.clone(),
            target: item.target_text.clone(),
            target_id: item.target,
            rows,
            elapsed_seconds: None,
        })
        .collect())
}

/// Logits held at once while reducing lens rows (bounds memory on large vocabularies).
const LOGIT_BLOCK_BYTES: usize = 64 << 20;

/// The statistics of a block of logit rows where they are (a GPU): strata-kernels' lens kernel
/// for rank, probability, entropy and KL in one pass per row, then the top `k` by `k` rounds of
/// argmax over the rows; only `rows × (6 + 2k)` numbers reach the host. Row `r` is scored for
/// `targets[r]` against `final_logp[output_rows[r]]`.
fn device_row_stats(
    logits: &Tensor,
    final_logp: &Tensor,
    targets: &[u32],
    output_rows: &[u32],
    k: usize,
) -> Result<Vec<RowStats>> {
    let logits = logits.to_dtype(DType::F32)?.contiguous()?;
    let rows = strata_kernels::lens_stats(&logits, final_logp, targets, output_rows)?;
    let (n, vocab) = logits.dims2()?;
    let k = k.min(vocab);
    let mut top: Vec<Vec<(u32, f64)>> = vec![Vec::with_capacity(k); n];
    if k > 0 {
        // The best remaining token of every row, then that token taken out of the running.
        let rest = logits.copy()?;
        let taken = Tensor::full(f32::NEG_INFINITY, (n, 1), logits.device())?;
        let (mut ids, mut values) = (Vec::with_capacity(k), Vec::with_capacity(k));
        for _ in 0..k {
            let id = rest.argmax_keepdim(1)?;
            values.push(rest.gather(&id, 1)?);
            rest.scatter_set(&id, &taken, 1)?;
            ids.push(id);
        }
        let ids = Tensor::cat(&ids, 1)?.to_vec2::<u32>()?;
        let values = Tensor::cat(&values, 1)?.to_vec2::<f32>()?;
        for ((t, id), x) in top.iter_mut().zip(ids).zip(values) {
            t.extend(id.into_iter().zip(x).map(|(id, x)| (id, x as f64)));
        }
    }
    Ok(rows
        .into_iter()
        .zip(top)
        .map(|(row, top)| RowStats {
            rank: row.rank as usize,
            target_prob: row.prob as f64,
            target_logit: row.logit as f64,
            kl: (row.kl as f64).max(0.0),
            entropy: row.entropy as f64,
            top: top
                .into_iter()
                .map(|(id, x)| (id, (x - row.logsumexp as f64).exp()))
                .collect(),
        })
        .collect())
}

/// Runs `f` on a tensor's values as one f32 slice: borrowed from CPU storage (the logits are
/// read where the matmul wrote them), copied to the host from other devices.
fn with_f32_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.to_dtype(DType::F32)?.contiguous()?;
    {
        let (storage, layout) = t.storage_and_layout();
        if let (candle_core::Storage::Cpu(cpu), Some((lo, hi))) = (&*storage, layout.contiguous_offsets()) {
            return Ok(f(&cpu.as_slice::<f32>()?[lo..hi]));
        }
    }
    Ok(f(&t.flatten_all()?.to_vec1::<f32>()?))
}

struct RowStats {
    rank: usize,
    target_prob: f64,
    target_logit: f64,
    kl: f64,
    entropy: f64,
    top: Vec<(u32, f64)>,
}

/// All statistics of one logit row: two vectorisable passes over the vocabulary (f32 lanes,
/// partial sums carried to f64 every [`CHUNK`] entries) and a top-k scan that skips whole
/// blocks below the current k-th best. This reduction runs once per (layer, position) over the
/// whole vocabulary, so it must keep up with the unembedding matmul: on x86-64 CPUs with AVX2
/// it runs as code compiled for AVX2 (8 f32 lanes per instruction instead of SSE2's 4).
fn reduce_row(row: &[f32], target: usize, final_p: &[f32], final_neg_entropy: f64, k: usize) -> RowStats {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the running CPU supports AVX2, the only feature the function enables.
        return unsafe { reduce_row_avx2(row, target, final_p, final_neg_entropy, k) };
    }
    reduce_row_portable(row, target, final_p, final_neg_entropy, k)
}

/// [`reduce_row_portable`] compiled for AVX2 (the body is inlined here).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn reduce_row_avx2(
    row: &[f32],
    target: usize,
    final_p: &[f32],
    final_neg_entropy: f64,
    k: usize,
) -> RowStats {
    reduce_row_portable(row, target, final_p, final_neg_entropy, k)
}

#[inline(always)]
fn reduce_row_portable(
    row: &[f32],
    target: usize,
    final_p: &[f32],
    final_neg_entropy: f64,
    k: usize,
) -> RowStats {
    let t = row[target];
    // Pass 1: max, rank of the target (entries above it), Σ p_final · x.
    let (mut max, mut rank, mut sum_pf_x) = (f32::NEG_INFINITY, 0usize, 0f64);
    for (xs, ps) in row.chunks(CHUNK).zip(final_p.chunks(CHUNK)) {
        let (mut m, mut above, mut dot) = ([f32::NEG_INFINITY; LANES], [0u32; LANES], [0f32; LANES]);
        let (xv, xr) = xs.split_at(xs.len() / LANES * LANES);
        let (pv, pr) = ps.split_at(xv.len());
        for (xc, pc) in xv.chunks_exact(LANES).zip(pv.chunks_exact(LANES)) {
            for i in 0..LANES {
                m[i] = m[i].max(xc[i]);
                above[i] += u32::from(xc[i] > t);
                dot[i] += pc[i] * xc[i];
            }
        }
        for (&x, &p) in xr.iter().zip(pr) {
            m[0] = m[0].max(x);
            above[0] += u32::from(x > t);
            dot[0] += p * x;
        }
        max = m.iter().fold(max, |a, &b| a.max(b));
        rank += above.iter().map(|&c| c as usize).sum::<usize>();
        sum_pf_x += dot.iter().map(|&d| d as f64).sum::<f64>();
    }
    // Pass 2: Σ e^(x − max) and Σ e^(x − max) · x.
    let (mut sum_e, mut sum_ex) = (0f64, 0f64);
    for xs in row.chunks(CHUNK) {
        let (mut e_acc, mut ex_acc) = ([0f32; LANES], [0f32; LANES]);
        let (xv, xr) = xs.split_at(xs.len() / LANES * LANES);
        for xc in xv.chunks_exact(LANES) {
            for i in 0..LANES {
                let e = exp_nonpositive(xc[i] - max);
                e_acc[i] += e;
                ex_acc[i] += e * xc[i];
            }
        }
        for &x in xr {
            let e = exp_nonpositive(x - max);
            e_acc[0] += e;
            ex_acc[0] += e * x;
        }
        sum_e += e_acc.iter().map(|&v| v as f64).sum::<f64>();
        sum_ex += ex_acc.iter().map(|&v| v as f64).sum::<f64>();
    }
    // Top-k, best first, ties broken by the smaller id: a block whose maximum does not beat the
    // current k-th best (almost all of them) is skipped after one vectorised max.
    let mut top: Vec<(f32, u32)> = Vec::with_capacity(k + 1);
    let mut floor = f32::NEG_INFINITY;
    if k > 0 {
        for (bi, xs) in row.chunks(TOP_K_BLOCK).enumerate() {
            let mut m = [f32::NEG_INFINITY; LANES];
            for xc in xs.chunks(LANES) {
                for (mi, &x) in m.iter_mut().zip(xc) {
                    *mi = mi.max(x);
                }
            }
            if top.len() == k && m.iter().all(|&mi| mi <= floor) {
                continue;
            }
            for (j, &x) in xs.iter().enumerate() {
                if x > floor || top.len() < k {
                    let at = top.partition_point(|&(y, _)| y >= x);
                    top.insert(at, (x, (bi * TOP_K_BLOCK + j) as u32));
                    top.truncate(k);
                    if top.len() == k {
                        floor = top[k - 1].0;
                    }
                }
            }
        }
    }
    let m = max as f64;
    let lse = m + sum_e.ln();
    RowStats {
        rank,
        target_prob: (t as f64 - lse).exp(),
        target_logit: t as f64,
        // KL(f ‖ l) = Σ p_f log p_f − Σ p_f (x − lse)
        kl: (final_neg_entropy - sum_pf_x + lse).max(0.0),
        entropy: lse - sum_ex / sum_e,
        top: top
            .into_iter()
            .map(|(x, id)| (id, (x as f64 - lse).exp()))
            .collect(),
    }
}

/// Lanes of the reduction's f32 accumulators (one AVX or two SSE registers; LLVM vectorises
/// the loops).
const LANES: usize = 8;
/// Entries summed in f32 before the partial sums go to f64.
const CHUNK: usize = 1024;
/// Entries the top-k scan skips at once when none beats the current k-th best.
const TOP_K_BLOCK: usize = 64;

/// e^x for x ≤ 0 in plain f32 arithmetic that vectorises (no libm call): x = n ln2 + r with
/// |r| ≤ ln2/2, e^r by its Taylor polynomial to degree 7 (truncation < 5e-9 relative), 2^n
/// built in the exponent bits. Relative error ≈ 2e-7, like libm's expf; e^x for x < −87 is 0
/// (below f32's normal range, and irrelevant next to e^0 = 1 in a softmax sum).
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // Adding and subtracting 1.5·2^23 rounds to the nearest integer in f32 arithmetic.
    const ROUND: f32 = 12_582_912.0;
    let x = x.max(-87.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[cfg(test)]
mod tests {
    use super::{device_row_stats, exp_nonpositive, reduce_row, reduce_row_portable};
    use crate::metric::log_softmax_rows;
    use candle_core::{Device, Tensor};

    #[test]
    fn fast_exp_matches_libm_over_the_softmax_range() {
        let mut worst = 0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let want = (x as f64).exp();
            let got = exp_nonpositive(x) as f64;
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 5e-7, "max relative error {worst:e}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert_eq!(exp_nonpositive(-1000.0), exp_nonpositive(-87.0));
    }

    /// The vectorised reduction against the formulas in f64, on a row with ties, a long tail
    /// and a length that is not a multiple of the lanes or chunks.
    #[test]
    fn reduction_matches_f64_formulas() {
        let v = 5_003;
        let row: Vec<f32> = (0..v).map(|i| ((i * 7919 % 1013) as f32 / 97.0) - 4.0).collect();
        let final_row: Vec<f32> = (0..v)
            .map(|i| ((i * 104_729 % 997) as f32 / 83.0) - 6.0)
            .collect();
        let lse = |r: &[f32]| {
            let m = r.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            m + r.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln()
        };
        let (l, lf) = (lse(&row), lse(&final_row));
        let pf: Vec<f64> = final_row.iter().map(|&x| (x as f64 - lf).exp()).collect();
        let neg_h_final: f64 = pf.iter().zip(&final_row).map(|(p, &x)| p * (x as f64 - lf)).sum();
        let target = 1234;
        let pf32: Vec<f32> = pf.iter().map(|&p| p as f32).collect();
        // The dispatched reduction (AVX2 where the CPU has it) and the portable one.
        for got in [
            reduce_row(&row, target, &pf32, neg_h_final, 5),
            reduce_row_portable(&row, target, &pf32, neg_h_final, 5),
        ] {
            let p: Vec<f64> = row.iter().map(|&x| (x as f64 - l).exp()).collect();
            let kl: f64 = pf
                .iter()
                .zip(&row)
                .map(|(q, &x)| q * ((q.ln()) - (x as f64 - l)))
                .sum();
            let entropy: f64 = -p.iter().map(|q| q * q.ln()).sum::<f64>();
            assert_eq!(got.rank, row.iter().filter(|&&x| x > row[target]).count());
            assert!((got.target_prob - p[target]).abs() < 1e-6 * p[target].max(1e-3));
            assert!((got.kl - kl).abs() < 1e-5, "{} vs {kl}", got.kl);
            assert!(
                (got.entropy - entropy).abs() < 1e-5,
                "{} vs {entropy}",
                got.entropy
            );
            let mut order: Vec<usize> = (0..v).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
            let ids: Vec<u32> = got.top.iter().map(|&(id, _)| id).collect();
            assert_eq!(ids, order[..5].iter().map(|&i| i as u32).collect::<Vec<_>>());
        }
    }

    /// The GPU path's statistics (lens kernel + argmax top-k), run here on CPU tensors through
    /// the kernel's CPU twin, equal the CPU reduction's.
    #[test]
    fn device_path_matches_the_cpu_reduction() {
        let (rows, v) = (6, 3_001);
        let logits: Vec<f32> = (0..rows * v)
            .map(|i| ((i * 7919 % 10_007) as f32 / 700.0) - 7.0)
            .collect();
        let t = Tensor::from_vec(logits.clone(), (rows, v), &Device::Cpu).unwrap();
        // rows 0..2 are the "output" rows the others are compared with
        let final_logp = log_softmax_rows(&t.narrow(0, 0, 2).unwrap()).unwrap();
        let targets: Vec<u32> = (0..rows as u32).map(|r| 17 * r + 5).collect();
        let output_rows: Vec<u32> = (0..rows as u32).map(|r| r % 2).collect();
        let got = device_row_stats(&t, &final_logp, &targets, &output_rows, 5).unwrap();
        let lp: Vec<Vec<f32>> = final_logp.to_vec2().unwrap();
        for (r, g) in got.iter().enumerate() {
            let f = &lp[r % 2];
            let pf: Vec<f32> = f.iter().map(|x| x.exp()).collect();
            let neg_h: f64 = f.iter().map(|&x| (x as f64).exp() * x as f64).sum();
            let want = reduce_row(&logits[r * v..][..v], targets[r] as usize, &pf, neg_h, 5);
            assert_eq!(g.rank, want.rank, "row {r}");
            for (a, b) in [
                (g.target_prob, want.target_prob),
                (g.kl, want.kl),
                (g.entropy, want.entropy),
            ] {
                assert!((a - b).abs() < 1e-5, "row {r}: {a} vs {b}");
            }
            let ids = |s: &super::RowStats| s.top.iter().map(|t| t.0).collect::<Vec<_>>();
            assert_eq!(ids(g), ids(&want), "row {r}");
        }
    }
}
