//! The hooked decoder: one forward for every family, driven by [`ModelConfig`].
//!
//! Weights are read with Hugging Face transformers' parameter names (whatever the file format);
//! q/k/v and gate/up projections are fused at load time so that each costs one matmul.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;
use std::collections::HashMap;

use crate::batch::TokenBatch;
use crate::config::{Activation, Family, ModelConfig, NormKind, Positions, Rope, RopeScaling};
use crate::error::{ModelError, Result};
use crate::hooks::{Hook, HookPoint, NoHooks};
use crate::linear::Linear;
use strata_kernels::{split_heads, HeadNorm, HeadSlice, Rotary};

/// LayerNorm or RMSNorm, computed in f32 as transformers does, weights kept in f32.
#[derive(Debug, Clone)]
struct Norm {
    /// Effective scale (`1 + w` already applied for Gemma).
    weight: Tensor,
    bias: Option<Tensor>,
    eps: f32,
}

impl Norm {
    fn forward(&self, x: &Tensor, path: OpPath) -> Result<Tensor> {
        if path == OpPath::Fused {
            // The same f32 math in one kernel pass, without f32 copies of the activations.
            return Ok(strata_kernels::row_norm(
                x,
                &self.weight,
                self.bias.as_ref(),
                self.eps,
            )?);
        }
        let dtype = x.dtype();
        let x32 = x.to_dtype(DType::F32)?.contiguous()?;
        let differentiable = path == OpPath::Differentiable;
        let y = match (&self.bias, differentiable) {
            (Some(b), false) => candle_nn::ops::layer_norm(&x32, &self.weight, b, self.eps)?,
            (None, false) => candle_nn::ops::rms_norm(&x32, &self.weight, self.eps)?,
            (Some(b), true) => candle_nn::ops::layer_norm_slow(&x32, &self.weight, b, self.eps)?,
            (None, true) => candle_nn::ops::rms_norm_slow(&x32, &self.weight, self.eps)?,
        };
        Ok(y.to_dtype(dtype)?)
    }

    /// `x` in f32, centred for a LayerNorm (an RMSNorm keeps the mean).
    fn centred(&self, x: &Tensor) -> Result<Tensor> {
        let x = x.to_dtype(DType::F32)?;
        Ok(match self.bias {
            Some(_) => x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?,
            None => x,
        })
    }

    /// What the norm divides centred rows by, `[.., 1]` (TransformerLens' `hook_scale`):
    /// sqrt(mean(x²) + eps).
    fn scale(&self, centred: &Tensor) -> Result<Tensor> {
        Ok((centred.sqr()?.mean_keepdim(D::Minus1)? + self.eps as f64)?.sqrt()?)
    }

    /// The norm with its scale shown to `hook` at `point` (and replaced if the hook edits it),
    /// in f32 basic ops; the output has `x`'s dtype.
    fn forward_through_scale(&self, x: &Tensor, point: HookPoint, hook: &mut dyn Hook) -> Result<Tensor> {
        let centred = self.centred(x)?;
        let scale = self.scale(&centred)?.to_dtype(x.dtype())?;
        let scale = hook.visit(point, scale)?.to_dtype(DType::F32)?;
        let y = centred.broadcast_div(&scale)?.broadcast_mul(&self.weight)?;
        let y = match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        };
        Ok(y.to_dtype(x.dtype())?)
    }

    /// This RMSNorm as the per-head norm that `split_heads` applies before rotary embeddings.
    fn as_head_norm(&self) -> HeadNorm<'_> {
        HeadNorm {
            weight: &self.weight,
            eps: self.eps,
        }
    }
}

/// How a forward computes the steps that strata's fused kernels can replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpPath {
    /// strata's fused kernels (CUDA; their CPU twins elsewhere), where no hook needs what they skip.
    Fused,
    /// candle's ops, with candle-nn's fused norm / softmax / rope kernels.
    Composite,
    /// Basic ops only, which candle can backpropagate through.
    Differentiable,
}

#[derive(Debug, Clone)]
struct Block {
    ln1: Norm,
    qkv: Linear,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    out: Linear,
    post_attn_norm: Option<Norm>,
    ln2: Norm,
    /// `c_fc` (GPT-2) or gate|up stacked.
    mlp_in: Linear,
    mlp_out: Linear,
    post_mlp_norm: Option<Norm>,
    window: Option<usize>,
    /// Index into the decoder's rotary tables (0 = global, 1 = local).
    rope_table: usize,
}

impl Block {
    /// The block with each projection in its device's fastest layout ([`Linear::prepared`]).
    fn prepared(self) -> Result<Block> {
        Ok(Block {
            qkv: self.qkv.prepared()?,
            out: self.out.prepared()?,
            mlp_in: self.mlp_in.prepared()?,
            mlp_out: self.mlp_out.prepared()?,
            ..self
        })
    }
}

/// Inverse frequencies of one rotary scheme.
#[derive(Debug, Clone)]
struct RopeTable {
    inv_freq: Vec<f32>,
    rotary_dim: usize,
}

impl RopeTable {
    fn new(rope: &Rope) -> Self {
        let dim = rope.rotary_dim;
        let mut inv_freq: Vec<f64> = (0..dim / 2)
            .map(|i| 1.0 / rope.theta.powf((2 * i) as f64 / dim as f64))
            .collect();
        match rope.scaling {
            RopeScaling::None => {}
            RopeScaling::Linear { factor } => inv_freq.iter_mut().for_each(|f| *f /= factor),
            RopeScaling::Llama3 {
                factor,
                low_freq_factor,
                high_freq_factor,
                original_max_position_embeddings,
            } => {
                let low_wavelen = original_max_position_embeddings / low_freq_factor;
                let high_wavelen = original_max_position_embeddings / high_freq_factor;
                for f in inv_freq.iter_mut() {
                    let wavelen = 2.0 * std::f64::consts::PI / *f;
                    if wavelen > low_wavelen {
                        *f /= factor;
                    } else if wavelen >= high_wavelen {
                        let smooth = (original_max_position_embeddings / wavelen - low_freq_factor)
                            / (high_freq_factor - low_freq_factor);
                        *f = (1.0 - smooth) * *f / factor + smooth * *f;
                    }
                }
            }
        }
        RopeTable {
            inv_freq: inv_freq.into_iter().map(|f| f as f32).collect(),
            rotary_dim: dim,
        }
    }

    /// cos and sin, `[batch, pos, rotary_dim / 2]`, for the batch's position ids.
    /// Tables `[b, p, half]`, or `[p, half]` shared by the batch when every row has the same
    /// positions (no padding, as a rule): one row computed and copied to the device instead of `b`.
    fn cos_sin(&self, positions: &[Vec<u32>], dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let shared = positions.iter().all(|row| *row == positions[0]);
        let positions = if shared { &positions[..1] } else { positions };
        let (b, p, half) = (positions.len(), positions[0].len(), self.inv_freq.len());
        let mut cos = Vec::with_capacity(b * p * half);
        let mut sin = Vec::with_capacity(b * p * half);
        for row in positions {
            for &pos in row {
                for &f in &self.inv_freq {
                    let angle = pos as f32 * f;
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let table = |v: Vec<f32>| -> Result<Tensor> {
            let t = Tensor::from_vec(v, (b, p, half), device)?;
            Ok(if shared { t.squeeze(0)? } else { t }.to_dtype(dtype)?)
        };
        Ok((table(cos)?, table(sin)?))
    }
}

/// Per-forward values shared by all blocks: rotary tables and attention masks.
pub struct ForwardContext {
    batch_size: usize,
    cos_sin: Vec<(Tensor, Tensor)>,
    masks: HashMap<Option<usize>, Tensor>,
}

/// Where a forward stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Run blocks `0..=l` only and return the residual stream after block `l` (no logits).
    pub stop_after_layer: Option<usize>,
}

/// Output of a forward: logits (unless stopped early) and the last residual stream.
pub struct ForwardOutput {
    pub logits: Option<Tensor>,
    pub residual: Tensor,
}

/// One decoder for every family, with a hook point at every activation.
///
/// Cloning is cheap: weights are shared (reference-counted tensors).
#[derive(Clone)]
pub struct HookedDecoder {
    pub config: ModelConfig,
    /// W_E `[vocab, d]`; `None` when tied: rows are read from the unembedding's matrix.
    embed: Option<Tensor>,
    pos_embed: Option<Tensor>,
    blocks: Vec<Block>,
    ln_final: Norm,
    /// W_U as a projection `d -> vocab` (panels on the CPU in f32, see [`Linear`]).
    unembed: Linear,
    rope_tables: Vec<RopeTable>,
    dtype: DType,
    device: Device,
    /// Forward built from ops that candle can differentiate (see [`Self::differentiable`]).
    differentiable: bool,
    /// The fused kernels' path on the CPU too (see [`Self::with_fused_kernels`]).
    fused_on_cpu: bool,
    /// Attention in one kernel where the fused path allows it (see [`Self::with_fused_attention`]).
    fused_attention: bool,
}

/// Tensor names of one family's checkpoint layout.
struct Names {
    prefix: String,
    gpt2: bool,
}

impl Names {
    fn detect(vb: &VarBuilder, family: Family) -> Result<Self> {
        let gpt2 = family == Family::Gpt2;
        let probe = if gpt2 { "wte.weight" } else { "embed_tokens.weight" };
        let candidates: &[&str] = if gpt2 {
            &["transformer.", ""]
        } else {
            &["model.", "model.language_model.", "language_model.model.", ""]
        };
        candidates
            .iter()
            .find(|p| vb.contains_tensor(&format!("{p}{probe}")))
            .map(|p| Names { prefix: p.to_string(), gpt2 })
            .ok_or_else(|| {
                ModelError::Input(format!(
                    "no token embedding found: expected a tensor named '{}{probe}' (or with one of the prefixes {})",
                    candidates[0],
                    candidates.join(", ")
                ))
            })
    }

    fn embed(&self) -> String {
        format!(
            "{}{}",
            self.prefix,
            if self.gpt2 {
                "wte.weight"
            } else {
                "embed_tokens.weight"
            }
        )
    }

    fn block(&self, l: usize) -> String {
        format!("{}{}.{l}", self.prefix, if self.gpt2 { "h" } else { "layers" })
    }

    fn final_norm(&self) -> String {
        format!("{}{}", self.prefix, if self.gpt2 { "ln_f" } else { "norm" })
    }
}

struct Loader<'a> {
    vb: &'a VarBuilder<'a>,
    cfg: &'a ModelConfig,
}

impl Loader<'_> {
    fn tensor(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        if !self.vb.contains_tensor(name) {
            return Err(ModelError::Input(format!(
                "weights lack tensor '{name}' (expected shape {shape:?})"
            )));
        }
        self.vb
            .get(shape, name)
            .map_err(|e| ModelError::Input(format!("tensor '{name}': {e}")))
    }

    fn linear(&self, name: &str, n_out: usize, n_in: usize, bias: bool) -> Result<Linear> {
        let weight = self.tensor(&format!("{name}.weight"), &[n_out, n_in])?;
        let bias = if bias {
            Some(self.tensor(&format!("{name}.bias"), &[n_out])?)
        } else {
            None
        };
        Ok(Linear::new(weight, bias))
    }

    /// GPT-2's Conv1D stores `[in, out]`: transposed once here.
    fn conv1d(&self, name: &str, n_out: usize, n_in: usize) -> Result<Linear> {
        let weight = self
            .tensor(&format!("{name}.weight"), &[n_in, n_out])?
            .t()?
            .contiguous()?;
        let bias = Some(self.tensor(&format!("{name}.bias"), &[n_out])?);
        Ok(Linear::new(weight, bias))
    }

    fn norm(&self, name: &str, dim: usize) -> Result<Norm> {
        let weight = self
            .tensor(&format!("{name}.weight"), &[dim])?
            .to_dtype(DType::F32)?;
        let eps = self.cfg.norm_eps as f32;
        Ok(match self.cfg.norm {
            NormKind::LayerNorm => Norm {
                weight,
                bias: Some(
                    self.tensor(&format!("{name}.bias"), &[dim])?
                        .to_dtype(DType::F32)?,
                ),
                eps,
            },
            NormKind::RmsNorm => Norm {
                weight,
                bias: None,
                eps,
            },
            NormKind::RmsNormOnePlus => Norm {
                weight: (weight + 1.0)?,
                bias: None,
                eps,
            },
        })
    }

    fn block(&self, names: &Names, l: usize) -> Result<Block> {
        let c = self.cfg;
        let p = names.block(l);
        let (d, q_dim, kv_dim, m) = (c.d_model, c.n_heads * c.d_head, c.n_kv_heads * c.d_head, c.d_mlp);
        let rope_table = match &c.positions {
            Positions::Rotary { local: Some(_), .. } if c.layer_windows[l].is_some() => 1,
            _ => 0,
        };
        if names.gpt2 {
            return Ok(Block {
                ln1: self.norm(&format!("{p}.ln_1"), d)?,
                qkv: self.conv1d(&format!("{p}.attn.c_attn"), 3 * d, d)?,
                q_norm: None,
                k_norm: None,
                out: self.conv1d(&format!("{p}.attn.c_proj"), d, d)?,
                post_attn_norm: None,
                ln2: self.norm(&format!("{p}.ln_2"), d)?,
                mlp_in: self.conv1d(&format!("{p}.mlp.c_fc"), m, d)?,
                mlp_out: self.conv1d(&format!("{p}.mlp.c_proj"), d, m)?,
                post_mlp_norm: None,
                window: c.layer_windows[l],
                rope_table,
            });
        }
        let attn = format!("{p}.self_attn");
        let qkv = if self.vb.contains_tensor(&format!("{attn}.qkv_proj.weight")) {
            self.linear(&format!("{attn}.qkv_proj"), q_dim + 2 * kv_dim, d, c.qkv_bias)?
        } else {
            Linear::fused(vec![
                self.linear(&format!("{attn}.q_proj"), q_dim, d, c.qkv_bias)?,
                self.linear(&format!("{attn}.k_proj"), kv_dim, d, c.qkv_bias)?,
                self.linear(&format!("{attn}.v_proj"), kv_dim, d, c.qkv_bias)?,
            ])?
        };
        let mlp_in = if self.vb.contains_tensor(&format!("{p}.mlp.gate_up_proj.weight")) {
            self.linear(&format!("{p}.mlp.gate_up_proj"), 2 * m, d, false)?
        } else {
            Linear::fused(vec![
                self.linear(&format!("{p}.mlp.gate_proj"), m, d, false)?,
                self.linear(&format!("{p}.mlp.up_proj"), m, d, false)?,
            ])?
        };
        let qk_norm = |which: &str| -> Result<Option<Norm>> {
            c.qk_norm
                .then(|| self.norm(&format!("{attn}.{which}"), c.d_head))
                .transpose()
        };
        // Sandwich norms: post_attention_layernorm follows attention, pre_feedforward_layernorm
        // precedes the MLP. Elsewhere post_attention_layernorm is the pre-MLP norm.
        let (post_attn_norm, ln2, post_mlp_norm) = if c.sandwich_norms {
            (
                Some(self.norm(&format!("{p}.post_attention_layernorm"), d)?),
                self.norm(&format!("{p}.pre_feedforward_layernorm"), d)?,
                Some(self.norm(&format!("{p}.post_feedforward_layernorm"), d)?),
            )
        } else {
            (
                None,
                self.norm(&format!("{p}.post_attention_layernorm"), d)?,
                None,
            )
        };
        Ok(Block {
            ln1: self.norm(&format!("{p}.input_layernorm"), d)?,
            qkv,
            q_norm: qk_norm("q_norm")?,
            k_norm: qk_norm("k_norm")?,
            out: self.linear(&format!("{attn}.o_proj"), d, q_dim, c.proj_bias)?,
            post_attn_norm,
            ln2,
            mlp_in,
            mlp_out: self.linear(&format!("{p}.mlp.down_proj"), d, m, c.proj_bias)?,
            post_mlp_norm,
            window: c.layer_windows[l],
            rope_table,
        })
    }
}

fn softcap(x: &Tensor, cap: Option<f64>) -> Result<Tensor> {
    Ok(match cap {
        Some(cap) => ((x / cap)?.tanh()? * cap)?,
        None => x.clone(),
    })
}

fn visit(hook: &mut dyn Hook, point: HookPoint, act: Tensor) -> Result<Tensor> {
    if hook.wants(point) {
        hook.visit(point, act)
    } else {
        Ok(act)
    }
}

/// [`visit`] for heads held as `[b, heads, p, e]`: the hook sees them as TransformerLens lays
/// them out, `[b, p, heads, e]`.
fn visit_heads(hook: &mut dyn Hook, point: HookPoint, heads: Tensor) -> Result<Tensor> {
    if !hook.wants(point) {
        return Ok(heads);
    }
    let seen = hook.visit(point, heads.transpose(1, 2)?)?;
    Ok(seen.transpose(1, 2)?.contiguous()?)
}

impl HookedDecoder {
    /// Builds the decoder from HF-named weights (converted to `vb`'s dtype and device).
    pub fn load(config: ModelConfig, vb: &VarBuilder) -> Result<Self> {
        let names = Names::detect(vb, config.family)?;
        let loader = Loader { vb, cfg: &config };
        let (d, v) = (config.d_model, config.vocab_size);
        let embed = loader.tensor(&names.embed(), &[v, d])?;
        let pos_embed = match config.positions {
            Positions::Learned { n_ctx } => {
                Some(loader.tensor(&format!("{}wpe.weight", names.prefix), &[n_ctx, d])?)
            }
            Positions::Rotary { .. } => None,
        };
        let lm_head = ["lm_head.weight", "language_model.lm_head.weight"]
            .into_iter()
            .find(|n| vb.contains_tensor(n));
        let (embed, unembed) = match (config.tie_embeddings, lm_head) {
            (false, Some(name)) => (Some(embed), loader.tensor(name, &[v, d])?),
            (false, None) => {
                return Err(ModelError::Input(
                    "config says tie_word_embeddings=false but the weights have no 'lm_head.weight'".into(),
                ))
            }
            (true, _) => (None, embed),
        };
        // Re-laid out first, so that a tied matrix's rows are freed before the blocks load.
        let unembed = Linear::new(unembed, None).prepared()?;
        let blocks = (0..config.n_layers)
            .map(|l| loader.block(&names, l)?.prepared())
            .collect::<Result<Vec<_>>>()?;
        let ln_final = loader.norm(&names.final_norm(), d)?;
        let rope_tables = match &config.positions {
            Positions::Rotary { global, local } => {
                let mut t = vec![RopeTable::new(global)];
                t.extend(local.iter().map(RopeTable::new));
                t
            }
            Positions::Learned { .. } => Vec::new(),
        };
        Ok(HookedDecoder {
            embed,
            pos_embed,
            blocks,
            ln_final,
            unembed,
            rope_tables,
            dtype: vb.dtype(),
            device: vb.device().clone(),
            config,
            differentiable: false,
            fused_on_cpu: false,
            fused_attention: std::env::var("STRATA_FUSED_ATTENTION").map_or(true, |v| v != "0"),
        })
    }

    /// A copy (weights shared) whose forward candle can backpropagate through: norms, attention
    /// softmax and rotary embedding use basic-op formulations instead of candle-nn's fused
    /// kernels, which have no backward, and the CUDA fused kernels are skipped. Slower; the
    /// default forward is unchanged. f32 weights only (gradients in half precision would be
    /// too coarse for attribution, and the basic-op norms would round differently).
    pub fn differentiable(&self) -> Result<HookedDecoder> {
        if self.dtype != DType::F32 {
            return Err(ModelError::Input(format!(
                "the differentiable forward needs f32 weights, not {:?}; load with --dtype f32",
                self.dtype
            )));
        }
        Ok(HookedDecoder {
            differentiable: true,
            ..self.clone()
        })
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A copy (weights shared) whose forward takes the GPU's path on any device: wherever a
    /// fused CUDA kernel runs on a GPU, its CPU twin runs here. Slower than the default CPU
    /// forward; it exists so that the decoder's use of the kernels (head slices, rotary tables,
    /// masks, norms) is tested against transformers on machines without a GPU.
    pub fn with_fused_kernels(&self) -> HookedDecoder {
        HookedDecoder {
            fused_on_cpu: true,
            ..self.clone()
        }
    }

    /// A copy (weights shared) that computes attention with strata's fused attention kernel
    /// (`on`) or as q·kᵀ, masked softmax and ·v (`!on`) wherever the fused path applies and no
    /// hook reads the scores or the pattern. On by default; `STRATA_FUSED_ATTENTION=0` turns it
    /// off for a whole process. The kernel exists for bf16/f16 and head dims 64/96/128/256 on CUDA
    /// (its CPU twin everywhere on the CPU); elsewhere the composite path runs regardless.
    pub fn with_fused_attention(&self, on: bool) -> HookedDecoder {
        HookedDecoder {
            fused_attention: on,
            ..self.clone()
        }
    }

    /// strata's fused kernels on CUDA (or when asked for), outside the differentiable mode
    /// (they have no backward); each is used only where no hook needs the activations it skips.
    fn path(&self) -> OpPath {
        if self.differentiable {
            OpPath::Differentiable
        } else if self.device.is_cuda() || self.fused_on_cpu {
            OpPath::Fused
        } else {
            OpPath::Composite
        }
    }

    fn fused_kernels(&self) -> bool {
        self.path() == OpPath::Fused
    }

    /// The token embedding matrix `[vocab, d_model]` (before any family scaling). A copy where
    /// it is the unembedding's matrix stored as panels (tied, CPU f32).
    pub fn embedding(&self) -> Result<Tensor> {
        match &self.embed {
            Some(e) => Ok(e.clone()),
            None => self.unembed.rows(),
        }
    }

    /// The unembedding matrix `[vocab, d_model]` (rows are token directions); a copy on the CPU
    /// in f32, where it is stored as panels. [`Self::unembed`] and [`Self::unembedding_rows`]
    /// read it in place.
    pub fn unembedding(&self) -> Result<Tensor> {
        self.unembed.rows()
    }

    /// `x W_Uᵀ`: raw logits `[.., vocab]` of rows `x` `[.., d]` already through the final norm
    /// (no soft-capping).
    pub fn unembed(&self, x: &Tensor) -> Result<Tensor> {
        self.unembed.forward(x)
    }

    /// Rows `tokens` of W_U, `[tokens.len(), d]`.
    pub fn unembedding_rows(&self, tokens: &[u32]) -> Result<Tensor> {
        self.unembed.rows_of(&Tensor::new(tokens, &self.device)?)
    }

    /// Logits of a full forward.
    pub fn forward(&self, batch: &TokenBatch, hook: &mut dyn Hook) -> Result<Tensor> {
        let out = self.run(batch, hook, RunOptions::default())?;
        out.logits
            .ok_or_else(|| ModelError::Input("forward stopped before the logits".into()))
    }

    /// Forward with options (early stop).
    pub fn run(&self, batch: &TokenBatch, hook: &mut dyn Hook, opts: RunOptions) -> Result<ForwardOutput> {
        let n = self.config.n_layers;
        if let Some(l) = opts.stop_after_layer.filter(|&l| l >= n) {
            return Err(ModelError::Input(format!(
                "cannot stop after layer {l}: the model has {n} blocks"
            )));
        }
        let ctx = self.context(batch)?;
        let resid = self.embed_tokens(batch, hook)?;
        let last = opts.stop_after_layer.map_or(n, |l| l + 1);
        let resid = self.run_blocks(0..last, resid, &ctx, hook)?;
        if last < n {
            return Ok(ForwardOutput {
                logits: None,
                residual: resid,
            });
        }
        let logits = self.unembed_residual(&resid, hook)?;
        Ok(ForwardOutput {
            logits: Some(logits),
            residual: resid,
        })
    }

    /// Rotary tables and masks for a batch; reusable by every forward over the same batch.
    pub fn context(&self, batch: &TokenBatch) -> Result<ForwardContext> {
        self.check_batch(batch)?;
        let cos_sin = self
            .rope_tables
            .iter()
            .map(|t| t.cos_sin(&batch.positions, self.dtype, &self.device))
            .collect::<Result<Vec<_>>>()?;
        let mut masks = HashMap::new();
        for b in &self.blocks {
            if let std::collections::hash_map::Entry::Vacant(e) = masks.entry(b.window) {
                e.insert(batch.attention_bias(b.window, &self.device)?);
            }
        }
        Ok(ForwardContext {
            batch_size: batch.len(),
            cos_sin,
            masks,
        })
    }

    fn check_batch(&self, batch: &TokenBatch) -> Result<()> {
        let v = self.config.vocab_size as u32;
        for (b, row) in batch.ids.iter().enumerate() {
            if let Some((p, id)) = row.iter().enumerate().find(|(_, &id)| id >= v) {
                return Err(ModelError::Input(format!(
                    "token id {id} at batch row {b}, position {p} is outside the vocabulary (size {v})"
                )));
            }
        }
        let context = match self.config.positions {
            Positions::Learned { n_ctx } => n_ctx,
            Positions::Rotary { .. } => self.config.max_position_embeddings,
        };
        let longest = batch
            .positions
            .iter()
            .flatten()
            .max()
            .map_or(0, |&p| p as usize + 1);
        if longest > context {
            return Err(ModelError::Input(format!(
                "prompt of {longest} tokens exceeds the model's context length of {context} tokens; shorten it"
            )));
        }
        Ok(())
    }

    /// Token (and position) embeddings: `blocks.0.hook_resid_pre` before the hook.
    pub fn embed_tokens(&self, batch: &TokenBatch, hook: &mut dyn Hook) -> Result<Tensor> {
        let ids = batch.ids_tensor(&self.device)?;
        let (b, p) = ids.dims2()?;
        let rows = match &self.embed {
            Some(e) => e.index_select(&ids.flatten_all()?, 0)?,
            None => self.unembed.rows_of(&ids)?,
        };
        let mut x = rows.reshape((b, p, self.config.d_model))?;
        if let Some(scale) = self.config.embed_scale {
            let scale = Tensor::new(scale as f32, &self.device)?.to_dtype(self.dtype)?;
            x = x.broadcast_mul(&scale)?;
        }
        x = visit(hook, HookPoint::Embed, x)?;
        if let Some(wpe) = &self.pos_embed {
            let pos = batch.positions_tensor(&self.device)?;
            let pe = wpe
                .index_select(&pos.flatten_all()?, 0)?
                .reshape((b, p, self.config.d_model))?;
            let pe = visit(hook, HookPoint::PosEmbed, pe)?;
            x = (x + pe)?;
        }
        Ok(x)
    }

    /// Runs the given blocks on a residual stream (`resid` is the stream entering the first).
    pub fn run_blocks(
        &self,
        layers: std::ops::Range<usize>,
        mut resid: Tensor,
        ctx: &ForwardContext,
        hook: &mut dyn Hook,
    ) -> Result<Tensor> {
        let mut span = Span::full();
        for l in layers {
            resid = self.block_forward(l, resid, ctx, hook, &mut span)?;
        }
        Ok(resid)
    }

    /// A full forward of a batch that also returns every block's keys (after rotary) and values,
    /// so that runs differing only from some position on can be resumed with [`Self::run_suffix`].
    pub fn forward_with_kv(
        &self,
        batch: &TokenBatch,
        hook: &mut dyn Hook,
    ) -> Result<(Tensor, KvCache, ForwardContext)> {
        self.forward_recording(batch, None, hook)
    }

    /// Incremental decoding of the single prompt `ids`: logits `[1, len - cached, vocab]` of the
    /// positions after the `cached` ones whose keys and values `kv` holds (from
    /// [`Self::forward_with_kv`] or an earlier call), and the cache extended to all of `ids`.
    /// Each new position costs one pass through the blocks instead of a forward of the whole
    /// prompt; the logits equal a full forward's at those positions. No hooks run.
    pub fn forward_cached(&self, ids: &[u32], kv: &KvCache) -> Result<(Tensor, KvCache)> {
        let start = kv.len();
        if start == 0 || start >= ids.len() || kv.layers.len() != self.config.n_layers {
            return Err(ModelError::Input(format!(
                "forward_cached: a cache of {start} positions and {} layers for {} tokens (needs 1 to {} positions, {} layers)",
                kv.layers.len(),
                ids.len(),
                ids.len().saturating_sub(1),
                self.config.n_layers
            )));
        }
        let batch = TokenBatch::single(ids.to_vec())?;
        let (logits, kv, _) = self.forward_recording(&batch, Some(kv), &mut NoHooks)?;
        Ok((logits, kv))
    }

    /// Every block over the positions after those `prefix` caches (all without one), recording
    /// every position's keys and values; logits of the computed positions.
    fn forward_recording(
        &self,
        batch: &TokenBatch,
        prefix: Option<&KvCache>,
        hook: &mut dyn Hook,
    ) -> Result<(Tensor, KvCache, ForwardContext)> {
        let ctx = self.context(batch)?;
        let start = prefix.map_or(0, KvCache::len);
        let mut resid = self.embed_tokens(batch, hook)?;
        if start > 0 {
            resid = resid.narrow(1, start, batch.seq_len() - start)?;
        }
        let mut layers = Vec::with_capacity(self.config.n_layers);
        let mut span = Span {
            start,
            prefix,
            record: Some(&mut layers),
        };
        for l in 0..self.config.n_layers {
            resid = self.block_forward(l, resid, &ctx, hook, &mut span)?;
        }
        let logits = self.unembed_residual(&resid, hook)?;
        Ok((logits, KvCache { layers }, ctx))
    }

    /// Runs blocks on positions `start..` only, for `rows` variants of the prompt of `ctx` (a
    /// single prompt) whose residual streams equal the cached run before `start`.
    ///
    /// Under causal attention positions before `start` are unchanged by anything done at or
    /// after it, so their cached keys and values serve every row. `resid` is
    /// `[rows, len - start, d]`; hooks see tensors of those positions only.
    pub fn run_suffix(
        &self,
        layers: std::ops::Range<usize>,
        resid: Tensor,
        start: usize,
        kv: &KvCache,
        ctx: &ForwardContext,
        hook: &mut dyn Hook,
    ) -> Result<Tensor> {
        if ctx.batch_size != 1 {
            return Err(ModelError::Input(
                "run_suffix needs the context of a single prompt".into(),
            ));
        }
        let mut span = Span {
            start,
            prefix: Some(kv),
            record: None,
        };
        let mut resid = resid;
        for l in layers {
            resid = self.block_forward(l, resid, ctx, hook, &mut span)?;
        }
        Ok(resid)
    }

    /// The MLP half of block `l`: `hook_resid_post` from `hook_resid_mid` (any positions).
    pub fn mlp_half(&self, l: usize, resid_mid: &Tensor, hook: &mut dyn Hook) -> Result<Tensor> {
        // `hook_mlp_in` (on request) edits what the MLP reads, not the residual stream.
        let mlp_in = visit(hook, HookPoint::MlpIn(l), resid_mid.clone())?;
        let mlp_out = self.mlp(l, &mlp_in, hook)?;
        visit(hook, HookPoint::ResidPost(l), (resid_mid + mlp_out)?)
    }

    /// What attention of block `l` adds to the residual, from per-head outputs `[.., h, e]`
    /// (output projection, and the post-attention norm where the family has one).
    pub fn attn_out_from_z(&self, l: usize, z: &Tensor) -> Result<Tensor> {
        let blk = &self.blocks[l];
        let z = z.flatten_from(D::Minus2)?;
        let out = blk.out.forward(&z)?;
        self.post_attn_norm(l, out)
    }

    fn post_attn_norm(&self, l: usize, out: Tensor) -> Result<Tensor> {
        match &self.blocks[l].post_attn_norm {
            Some(n) => n.forward(&out, self.path()),
            None => Ok(out),
        }
    }

    /// Each head's share of block `l`'s attention output, `[b, p, h, d]` from z `[b, p, h, e]`:
    /// head h's z times its `e` columns of the output projection (no bias, no post-attention
    /// norm), so that the output projection is their sum over heads plus the bias.
    pub fn head_results(&self, l: usize, z: &Tensor) -> Result<Tensor> {
        let (b, p, h, e) = z.dims4()?;
        let w = self.blocks[l].out.rows()?; // [d, h * e]
        let d = w.dim(0)?;
        let w = w.reshape((d, h, e))?.permute((1, 2, 0))?.contiguous()?; // [h, e, d]
        let z = z.reshape((b * p, h, e))?.transpose(0, 1)?.contiguous()?; // [h, b * p, e]
        Ok(z.matmul(&w)?.transpose(0, 1)?.reshape((b, p, h, d))?)
    }

    /// `hook_attn_out` of block `l` from z, through `attn.hook_result` when a hook wants the
    /// heads' shares: the output is then their (possibly edited) sum, plus the bias.
    fn attn_out_hooked(&self, l: usize, z: &Tensor, hook: &mut dyn Hook) -> Result<Tensor> {
        let attn_out = if hook.wants(HookPoint::HeadResult(l)) {
            let result = hook.visit(HookPoint::HeadResult(l), self.head_results(l, z)?)?;
            let out = result.sum(2)?;
            let out = match self.blocks[l].out.bias() {
                Some(bias) => out.broadcast_add(bias)?,
                None => out,
            };
            self.post_attn_norm(l, out)?
        } else {
            self.attn_out_from_z(l, z)?
        };
        visit(hook, HookPoint::AttnOut(l), attn_out)
    }

    /// Logits of a few tokens only: final norm, the unembedding rows of `tokens`, soft-capping.
    /// `resid` is `[.., d]`; the result is `[.., tokens.len()]`.
    pub fn logits_of(&self, resid: &Tensor, tokens: &[u32]) -> Result<Tensor> {
        let rows = self.unembedding_rows(tokens)?;
        let logits = Linear::new(rows, None).forward(&self.ln_final.forward(resid, self.path())?)?;
        softcap(&logits, self.config.final_softcap)
    }

    /// `norm` of `x` shown to the hook at `point`, through its scale at `scale_point` when a hook
    /// wants that (the fused and candle-nn norms never form it).
    fn normalize(
        &self,
        norm: &Norm,
        x: &Tensor,
        (scale_point, point): (HookPoint, HookPoint),
        hook: &mut dyn Hook,
    ) -> Result<Tensor> {
        let y = if hook.wants(scale_point) {
            norm.forward_through_scale(x, scale_point, hook)?
        } else {
            norm.forward(x, self.path())?
        };
        visit(hook, point, y)
    }

    /// Final norm, unembedding and soft-capping.
    pub fn unembed_residual(&self, resid: &Tensor, hook: &mut dyn Hook) -> Result<Tensor> {
        let points = (HookPoint::LnFinalScale, HookPoint::LnFinal);
        let x = self.normalize(&self.ln_final, resid, points, hook)?;
        let logits = self.unembed.forward(&x)?;
        visit(
            hook,
            HookPoint::Logits,
            softcap(&logits, self.config.final_softcap)?,
        )
    }

    /// The model's final norm alone (for the logit lens).
    pub fn final_norm(&self, resid: &Tensor) -> Result<Tensor> {
        self.ln_final.forward(resid, self.path())
    }

    /// The final norm with its scale frozen at `resid`'s (`[.., d]`), applied to `parts`
    /// (`[.., k, d]`): the linear map that direct logit attribution splits the residual with.
    /// LayerNorm parts are centred; the norm's bias is a constant and is not attributed.
    pub fn frozen_final_norm(&self, resid: &Tensor, parts: &Tensor) -> Result<Tensor> {
        let norm = &self.ln_final;
        let scale = norm.scale(&norm.centred(resid)?)?;
        Ok(norm
            .centred(parts)?
            .broadcast_div(&scale.unsqueeze(D::Minus2)?)?
            .broadcast_mul(&norm.weight)?)
    }

    /// Final soft-capping of logits (identity for most families).
    pub fn cap_logits(&self, logits: &Tensor) -> Result<Tensor> {
        softcap(logits, self.config.final_softcap)
    }

    fn block_forward(
        &self,
        l: usize,
        x: Tensor,
        ctx: &ForwardContext,
        hook: &mut dyn Hook,
        span: &mut Span,
    ) -> Result<Tensor> {
        let x = visit(hook, HookPoint::ResidPre(l), x)?;
        let attn_out = self.attention(l, &x, ctx, hook, span)?;
        let x = visit(hook, HookPoint::ResidMid(l), (x + attn_out)?)?;
        self.mlp_half(l, &x, hook)
    }

    /// q `[b, p, h, e]`, k and v `[b, p, g, e]` from split inputs: each head's copy of the
    /// residual stream `x` (`hook_q_input` `[b, p, h, d]`, `hook_k_input` / `hook_v_input`
    /// `[b, p, g, d]`, as TransformerLens' `use_split_qkv_input`) through the block's first norm
    /// and that head's rows of the projection. The norm's own hooks are not visited here: it
    /// runs once per head.
    fn heads_from_split_inputs(
        &self,
        l: usize,
        x: &Tensor,
        hook: &mut dyn Hook,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let blk = &self.blocks[l];
        let c = &self.config;
        let (b, p, d) = x.dims3()?;
        let (h, g, e) = (c.n_heads, c.n_kv_heads, c.d_head);
        let weight = blk.qkv.rows()?;
        // The `n` heads from projection row `n0 · e` on, each reading its copy at `point`.
        let mut project = |point, n, n0| -> Result<Tensor> {
            let input = visit(
                hook,
                point,
                x.unsqueeze(2)?.broadcast_as((b, p, n, d))?.contiguous()?,
            )?;
            let normed = blk.ln1.forward(&input.reshape((b * p * n, d))?, self.path())?;
            // [n, b·p, d] · [n, d, e]: each head by its own rows of the projection
            let normed = normed.reshape((b * p, n, d))?.transpose(0, 1)?.contiguous()?;
            let rows = weight.narrow(0, n0 * e, n * e)?;
            let w = rows.reshape((n, e, d))?.transpose(1, 2)?.contiguous()?;
            let out = normed.matmul(&w)?.transpose(0, 1)?.reshape((b, p, n, e))?;
            Ok(match blk.qkv.bias() {
                Some(bias) => out.broadcast_add(&bias.narrow(0, n0 * e, n * e)?.reshape((n, e))?)?,
                None => out,
            })
        };
        Ok((
            project(HookPoint::QInput(l), h, 0)?,
            project(HookPoint::KInput(l), g, h)?,
            project(HookPoint::VInput(l), g, h + g)?,
        ))
    }

    /// Attention of block `l` for the positions of `span` (all positions in a plain forward).
    fn attention(
        &self,
        l: usize,
        x: &Tensor,
        ctx: &ForwardContext,
        hook: &mut dyn Hook,
        span: &mut Span,
    ) -> Result<Tensor> {
        let blk = &self.blocks[l];
        let c = &self.config;
        let (b, p, _) = x.dims3()?;
        let (h, g, e) = (c.n_heads, c.n_kv_heads, c.d_head);
        use HookPoint::{KInput, QInput, RotK, RotQ, VInput, K, Q, V};
        // Split inputs (on request): each head reads its own copy of the residual stream.
        let split_inputs = [QInput(l), KInput(l), VInput(l)]
            .iter()
            .any(|&point| hook.wants(point));
        let qkv = if split_inputs {
            None
        } else {
            let normed = self.normalize(&blk.ln1, x, (HookPoint::Ln1Scale(l), HookPoint::Ln1(l)), hook)?;
            Some(blk.qkv.forward(&normed)?)
        };
        let fused = self.fused_kernels();
        let rope = match self.rope_tables.get(blk.rope_table) {
            Some(table) => Some((span.rows_of(&ctx.cos_sin[blk.rope_table], p)?, table.rotary_dim)),
            None => None,
        };
        let wants_heads = [Q(l), K(l), V(l), RotQ(l), RotK(l)]
            .iter()
            .any(|&point| hook.wants(point));
        // q/k norms (RMSNorm over each head) go into the same pass where the kernel takes them.
        let norms_fuse = match (&blk.q_norm, &blk.k_norm) {
            (None, None) => true,
            (Some(qn), Some(kn)) => {
                qn.bias.is_none()
                    && kn.bias.is_none()
                    && strata_kernels::split_heads_norm_supported(e, &self.device)
            }
            _ => false,
        };
        let (q, mut k, mut v) = if let (Some(qkv), true) = (&qkv, fused && norms_fuse && !wants_heads) {
            // Heads out of the projection, normalised and rotated in one pass per q, k and v.
            let rotary = rope.as_ref().map(|((cos, sin), rotary_dim)| Rotary {
                cos,
                sin,
                rotary_dim: *rotary_dim,
            });
            let heads = |col0, heads, rotary, norm| {
                let slice = HeadSlice {
                    col0,
                    heads,
                    head_dim: e,
                };
                split_heads(qkv, slice, rotary, norm)
            };
            (
                heads(0, h, rotary, blk.q_norm.as_ref().map(Norm::as_head_norm))?,
                heads(h * e, g, rotary, blk.k_norm.as_ref().map(Norm::as_head_norm))?,
                heads((h + g) * e, g, None, None)?,
            )
        } else {
            let (mut q, mut k, v) = match &qkv {
                Some(qkv) => (
                    qkv.narrow(D::Minus1, 0, h * e)?.reshape((b, p, h, e))?,
                    qkv.narrow(D::Minus1, h * e, g * e)?.reshape((b, p, g, e))?,
                    qkv.narrow(D::Minus1, (h + g) * e, g * e)?.reshape((b, p, g, e))?,
                ),
                None => self.heads_from_split_inputs(l, x, hook)?,
            };
            if let (Some(qn), Some(kn)) = (&blk.q_norm, &blk.k_norm) {
                q = qn.forward(&q, self.path())?;
                k = kn.forward(&k, self.path())?;
            }
            let q = visit(hook, HookPoint::Q(l), q)?;
            let k = visit(hook, HookPoint::K(l), k)?;
            let v = visit(hook, HookPoint::V(l), v)?;

            let mut q = q.transpose(1, 2)?.contiguous()?; // [b, h, p, e]
            let mut k = k.transpose(1, 2)?.contiguous()?; // [b, g, p, e]
            let v = v.transpose(1, 2)?.contiguous()?;
            if let Some(((cos, sin), rotary_dim)) = &rope {
                q = visit_heads(
                    hook,
                    RotQ(l),
                    apply_rope(&q, cos, sin, *rotary_dim, self.differentiable)?,
                )?;
                k = visit_heads(
                    hook,
                    RotK(l),
                    apply_rope(&k, cos, sin, *rotary_dim, self.differentiable)?,
                )?;
            }
            (q, k, v)
        };
        if let Some(cache) = span.prefix.filter(|_| span.start > 0) {
            let (pk, pv) = &cache.layers[l];
            let prefix = |t: &Tensor| -> Result<Tensor> {
                Ok(t.narrow(2, 0, span.start)?.broadcast_as((b, g, span.start, e))?)
            };
            k = Tensor::cat(&[&prefix(pk)?, &k], 2)?.contiguous()?;
            v = Tensor::cat(&[&prefix(pv)?, &v], 2)?.contiguous()?;
        }
        // Every position's keys and values, the cached prefix's included.
        if let Some(record) = span.record.as_deref_mut() {
            record.push((k.clone(), v.clone()));
        }
        let mask = ctx.masks[&blk.window].narrow(2, span.start, p)?;
        let cap = c.attn_softcap.map(|cap| cap as f32);
        let reads_pattern = hook.wants(HookPoint::AttnScores(l)) || hook.wants(HookPoint::Pattern(l));
        if fused
            && self.fused_attention
            && !reads_pattern
            && strata_kernels::fused_attention_supported(self.dtype, e, &self.device)
        {
            // Scores, pattern and their product with v in one kernel; z comes out [b, p, h, e].
            let z = strata_kernels::fused_attention(&q, &k, &v, &mask, c.attn_scale as f32, cap)?;
            let z = visit(hook, HookPoint::Z(l), z)?;
            return self.attn_out_hooked(l, &z, hook);
        }
        let n_keys = k.dim(2)?;
        // Grouped-query attention without copying keys: queries of one kv group side by side.
        let r = h / g;
        let scores = q
            .reshape((b, g, r * p, e))?
            .matmul(&k.t()?)?
            .reshape((b, h, p, n_keys))?;
        let pattern = if fused && !hook.wants(HookPoint::AttnScores(l)) {
            // The same f32 math in one kernel pass, when no hook needs the scores in between.
            strata_kernels::masked_softmax(&scores, &mask, c.attn_scale as f32, cap)?
        } else {
            // Scaling, soft-capping, masking and softmax in f32 (as transformers does); with
            // bf16/f16 weights the scores are rounded to the model dtype only when a hook asks.
            let scores = softcap(&(scores.to_dtype(DType::F32)? * c.attn_scale)?, c.attn_softcap)?;
            let mut scores = scores.broadcast_add(&mask)?;
            if hook.wants(HookPoint::AttnScores(l)) {
                scores = hook
                    .visit(HookPoint::AttnScores(l), scores.to_dtype(self.dtype)?)?
                    .to_dtype(DType::F32)?;
            }
            let pattern = if self.differentiable {
                candle_nn::ops::softmax(&scores, D::Minus1)?
            } else {
                candle_nn::ops::softmax_last_dim(&scores)?
            };
            pattern.to_dtype(self.dtype)?
        };
        let pattern = visit(hook, HookPoint::Pattern(l), pattern)?;
        let z = pattern
            .reshape((b, g, r * p, n_keys))?
            .matmul(&v)?
            .reshape((b, h, p, e))?;
        let z = visit(hook, HookPoint::Z(l), z.transpose(1, 2)?)?; // [b, p, h, e]
        self.attn_out_hooked(l, &z, hook)
    }

    /// The MLP of block `l` on the residual stream after attention: `hook_mlp_out`.
    fn mlp(&self, l: usize, x: &Tensor, hook: &mut dyn Hook) -> Result<Tensor> {
        let blk = &self.blocks[l];
        let c = &self.config;
        let normed = self.normalize(&blk.ln2, x, (HookPoint::Ln2Scale(l), HookPoint::Ln2(l)), hook)?;
        let hidden = blk.mlp_in.forward(&normed)?;
        let wants_halves = hook.wants(HookPoint::MlpPre(l)) || hook.wants(HookPoint::MlpPreLinear(l));
        let post = if c.gated_mlp && self.fused_kernels() && !wants_halves {
            // act(gate) * up in one kernel pass over the fused projection, when no hook needs either.
            strata_kernels::gated_act(&hidden, gated_act(c.activation))?
        } else if c.gated_mlp {
            let m = c.d_mlp;
            let gate = visit(hook, HookPoint::MlpPre(l), hidden.narrow(D::Minus1, 0, m)?)?;
            let up = visit(hook, HookPoint::MlpPreLinear(l), hidden.narrow(D::Minus1, m, m)?)?;
            (activate(&gate, c.activation)? * up)?
        } else {
            let pre = visit(hook, HookPoint::MlpPre(l), hidden)?;
            activate(&pre, c.activation)?
        };
        let post = visit(hook, HookPoint::MlpPost(l), post)?;
        let mut mlp_out = blk.mlp_out.forward(&post)?;
        if let Some(n) = &blk.post_mlp_norm {
            mlp_out = n.forward(&mlp_out, self.path())?;
        }
        visit(hook, HookPoint::MlpOut(l), mlp_out)
    }
}

/// Keys (after rotary) and values of every block of one run, `[b, g, len, e]` each.
pub struct KvCache {
    pub layers: Vec<(Tensor, Tensor)>,
}

impl KvCache {
    /// Positions cached (0 for a cache without layers).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |(k, _)| k.dim(2).unwrap_or(0))
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which positions a block computes: all (`start` 0), or a suffix over cached keys/values.
struct Span<'a> {
    start: usize,
    prefix: Option<&'a KvCache>,
    record: Option<&'a mut Vec<(Tensor, Tensor)>>,
}

impl Span<'_> {
    fn full() -> Self {
        Span {
            start: 0,
            prefix: None,
            record: None,
        }
    }

    /// cos/sin rows of this span's `len` positions; suffixes of a single prompt broadcast over rows.
    fn rows_of(&self, cos_sin: &(Tensor, Tensor), len: usize) -> Result<(Tensor, Tensor)> {
        if self.prefix.is_none() {
            return Ok(cos_sin.clone());
        }
        // Tables are [p, half] or [1, p, half] (the cached run is a single prompt).
        let rows =
            |t: &Tensor| -> Result<Tensor> { Ok(t.narrow(t.rank() - 2, self.start, len)?.contiguous()?) };
        Ok((rows(&cos_sin.0)?, rows(&cos_sin.1)?))
    }
}

fn activate(x: &Tensor, act: Activation) -> Result<Tensor> {
    Ok(match act {
        Activation::GeluTanh => x.gelu()?,
        Activation::Gelu => x.gelu_erf()?,
        Activation::Silu => candle_nn::Activation::Silu.forward(x)?,
        Activation::Relu => x.relu()?,
    })
}

/// The fused kernel's name for an activation (same definitions as [`activate`]).
fn gated_act(act: Activation) -> strata_kernels::GatedAct {
    match act {
        Activation::GeluTanh => strata_kernels::GatedAct::GeluTanh,
        Activation::Gelu => strata_kernels::GatedAct::GeluErf,
        Activation::Silu => strata_kernels::GatedAct::Silu,
        Activation::Relu => strata_kernels::GatedAct::Relu,
    }
}

/// Rotary embedding (rotate-half convention) of the first `rotary_dim` dimensions of each head.
/// `differentiable`: `x·cos + rotate_half(x)·sin` from basic ops (candle-nn's fused `rope` has no
/// backward); `cos`/`sin` are `[b, p, rotary_dim / 2]` or `[p, rotary_dim / 2]`.
fn apply_rope(
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
    rotary_dim: usize,
    differentiable: bool,
) -> Result<Tensor> {
    let rope = |x: &Tensor| -> Result<Tensor> {
        if !differentiable {
            return Ok(candle_nn::rotary_emb::rope(x, cos, sin)?);
        }
        let full = |t: &Tensor| -> Result<Tensor> {
            let t = Tensor::cat(&[t, t], D::Minus1)?;
            let t = if t.rank() == 2 { t.unsqueeze(0)? } else { t };
            Ok(t.unsqueeze(1)?) // [b or 1, 1, p, rotary_dim]
        };
        let half = rotary_dim / 2;
        let rotated = Tensor::cat(
            &[
                &x.narrow(D::Minus1, half, half)?.neg()?,
                &x.narrow(D::Minus1, 0, half)?,
            ],
            D::Minus1,
        )?;
        Ok((x.broadcast_mul(&full(cos)?)? + rotated.broadcast_mul(&full(sin)?)?)?)
    };
    let e = x.dim(D::Minus1)?;
    if rotary_dim == e {
        return rope(x);
    }
    let rot = x.narrow(D::Minus1, 0, rotary_dim)?.contiguous()?;
    let pass = x.narrow(D::Minus1, rotary_dim, e - rotary_dim)?;
    Ok(Tensor::cat(&[&rope(&rot)?, &pass], D::Minus1)?)
}
