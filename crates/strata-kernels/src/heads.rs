//! Queries, keys or values of every head straight out of the fused qkv projection, rotary
//! embeddings applied, in one pass (kernels/split_heads.cu): instead of a strided transpose copy
//! to `[b, heads, p, e]` and a separate rope pass over it. Families that normalise each head
//! first (q/k norm: Qwen3, Gemma 3) get the norm in the same pass (kernels/split_heads_normed.cu).
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, WithDType};

/// Where one of q, k and v sits in the last axis of the projection `[b, p, width]`: `heads`
/// heads of `head_dim` values from column `col0` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadSlice {
    pub col0: usize,
    pub heads: usize,
    pub head_dim: usize,
}

/// Rotary tables for [`split_heads`]: `cos`/`sin` `[p, rot/2]` shared by the batch or
/// `[b, p, rot/2]` per row, in the projection's dtype; the first `rotary_dim` values of each
/// head are rotated ("rotate half" layout), the rest pass through.
#[derive(Debug, Clone, Copy)]
pub struct Rotary<'a> {
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    pub rotary_dim: usize,
}

/// An RMSNorm of each head before the rotation (q_norm / k_norm): `x / sqrt(mean(x²) + eps) ·
/// weight` over the head dim, `weight` f32 `[head_dim]` (the effective scale: `1 + w` for Gemma).
#[derive(Debug, Clone, Copy)]
pub struct HeadNorm<'a> {
    pub weight: &'a Tensor,
    pub eps: f32,
}

/// Largest head dim [`split_heads`] normalises on CUDA (kernels/split_heads_normed.cu).
pub const SPLIT_HEADS_NORMED_MAX_HEAD_DIM: usize = 256;

/// Whether [`split_heads`] takes a [`HeadNorm`] for heads of `head_dim` on `device`: always on
/// the CPU (the twin), on CUDA up to [`SPLIT_HEADS_NORMED_MAX_HEAD_DIM`].
pub fn split_heads_norm_supported(head_dim: usize, device: &Device) -> bool {
    device.is_cpu() || head_dim <= SPLIT_HEADS_NORMED_MAX_HEAD_DIM
}

/// CPU twin of `split_heads`: `out[b, h, p, i] = x[b, p, col0 + h·e + i]`, normalised over the
/// head by `norm` (`weight [e]`, eps) when given, the first `rot` values of each head rotated
/// with `cos`/`sin` rows `[(b % cos_batch), p]` (`half = rot / 2` wide), all in f32, stored in
/// x's type. `x` is row-major `[batch, pos, width]`.
pub fn split_heads_cpu<T: WithDType>(
    x: &[T],
    (batch, pos, width): (usize, usize, usize),
    s: HeadSlice,
    rope: Option<(&[T], &[T], usize, usize)>,
    norm: Option<(&[f32], f32)>,
) -> Vec<T> {
    let (h, e) = (s.heads, s.head_dim);
    assert!(
        x.len() == batch * pos * width && s.col0 + h * e <= width,
        "x is not [{batch}, {pos}, {width}] or the heads do not fit in it"
    );
    let f = |v: &T| v.to_f64() as f32;
    let mut out = Vec::with_capacity(batch * h * pos * e);
    for b in 0..batch {
        for hi in 0..h {
            for p in 0..pos {
                let mut row: Vec<f32> = x[(b * pos + p) * width + s.col0 + hi * e..][..e]
                    .iter()
                    .map(f)
                    .collect();
                if let Some((weight, eps)) = norm {
                    let inv = 1.0 / (row.iter().map(|v| v * v).sum::<f32>() / e as f32 + eps).sqrt();
                    row.iter_mut().zip(weight).for_each(|(v, w)| *v *= inv * w);
                }
                for i in 0..e {
                    let mut v = row[i];
                    if let Some((cos, sin, cos_batch, rot)) = rope.filter(|r| i < r.3) {
                        let half = rot / 2;
                        let j = if i < half { i } else { i - half };
                        let at = ((b % cos_batch) * pos + p) * half + j;
                        let (c, sn) = (f(&cos[at]), f(&sin[at]));
                        v = if i < half {
                            v * c - row[i + half] * sn
                        } else {
                            v * c + row[i - half] * sn
                        };
                    }
                    out.push(T::from_f64(v as f64));
                }
            }
        }
    }
    out
}

/// `[b, heads, p, head_dim]` (contiguous) of the heads `slice` of the projection `x`
/// (`[b, p, width]`, f32/bf16/f16), normalised by `norm` and rotated by `rope` when given; see
/// [`split_heads_cpu`].
pub fn split_heads(
    x: &Tensor,
    slice: HeadSlice,
    rope: Option<Rotary>,
    norm: Option<HeadNorm>,
) -> Result<Tensor> {
    let (b, p, width) = x.dims3()?;
    let HeadSlice {
        col0,
        heads,
        head_dim,
    } = slice;
    if heads == 0 || head_dim == 0 || col0 + heads * head_dim > width {
        bail!(
            "split_heads: {heads} heads of {head_dim} from column {col0} do not fit in {:?}",
            x.dims()
        );
    }
    if !matches!(x.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!("split_heads: x must be f32, bf16 or f16, got {:?}", x.dtype());
    }
    let x = x.contiguous()?;
    let (cos, sin, rot, cos_batch) = match rope {
        Some(Rotary { cos, sin, rotary_dim }) => {
            let half = rotary_dim / 2;
            let cos_batch = match cos.dims() {
                [cp, ch] if (*cp, *ch) == (p, half) => 1,
                [cb, cp, ch] if (*cb == b || *cb == 1) && (*cp, *ch) == (p, half) => *cb,
                _ => bail!(
                    "split_heads: cos {:?} is not [{p}, {half}] or [{b} or 1, {p}, {half}]",
                    cos.dims()
                ),
            };
            if sin.dims() != cos.dims() || cos.dtype() != x.dtype() || sin.dtype() != x.dtype() {
                bail!(
                    "split_heads: sin {:?} {:?} must match cos {:?} {:?} and x's dtype {:?}",
                    sin.dims(),
                    sin.dtype(),
                    cos.dims(),
                    cos.dtype(),
                    x.dtype()
                );
            }
            if rotary_dim % 2 != 0 || rotary_dim > head_dim {
                bail!("split_heads: rotary dim {rotary_dim} must be even and at most {head_dim}");
            }
            (cos.contiguous()?, sin.contiguous()?, rotary_dim, cos_batch)
        }
        // No rotation: the tables are never read; x stands in for them.
        None => (x.clone(), x.clone(), 0, 1),
    };
    let norm = match norm {
        Some(HeadNorm { weight, eps }) => {
            if weight.dims() != [head_dim] {
                bail!("split_heads: norm weight {:?} is not [{head_dim}]", weight.dims());
            }
            if !split_heads_norm_supported(head_dim, x.device()) {
                bail!("split_heads: the norm kernel takes head dims up to {SPLIT_HEADS_NORMED_MAX_HEAD_DIM}, got {head_dim}");
            }
            Some((weight.to_dtype(DType::F32)?.contiguous()?, eps))
        }
        None => None,
    };
    x.apply_op3_no_bwd(
        &cos,
        &sin,
        &SplitHeadsOp {
            shape: (b, p, width),
            slice,
            rot,
            cos_batch,
            norm,
        },
    )
}

/// Elements per thread of `kernels/split_heads.cu` for `slice` of rows `width` wide, rotary dim
/// `rot`, and x, cos and sin starting `offsets` elements into their storages (see
/// `vector_width`): every row, head, rotary half and start must be whole vectors.
pub fn split_heads_vector_width(
    dtype: DType,
    width: usize,
    slice: HeadSlice,
    rot: usize,
    offsets: [usize; 3],
) -> usize {
    let [x, cos, sin] = offsets;
    crate::vector_width(dtype, &[slice.head_dim, rot / 2, width, slice.col0, x, cos, sin])
}

struct SplitHeadsOp {
    shape: (usize, usize, usize),
    slice: HeadSlice,
    rot: usize,
    cos_batch: usize,
    /// f32 weight `[head_dim]` (a fourth input, read through its storage) and eps.
    norm: Option<(Tensor, f32)>,
}

impl SplitHeadsOp {
    fn out_shape(&self) -> Shape {
        let (b, p, _) = self.shape;
        Shape::from((b, self.slice.heads, p, self.slice.head_dim))
    }
}

impl CustomOp3 for SplitHeadsOp {
    fn name(&self) -> &'static str {
        "strata-split-heads"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let weight = self.norm.as_ref().map(|(w, eps)| (w.storage_and_layout(), *eps));
        let norm = match &weight {
            Some(((storage, layout), eps)) => match &**storage {
                candle_core::Storage::Cpu(CpuStorage::F32(w)) => {
                    Some((crate::contiguous(w, layout, "norm weight")?, *eps))
                }
                _ => bail!("split_heads: the norm weight must be an f32 CPU tensor here"),
            },
            None => None,
        };
        let out = crate::map_float_storages3!((s1, s2, s3), "split_heads (x, cos, sin)", |x, c, s| {
            let rope = (self.rot > 0).then(|| -> Result<_> {
                Ok((
                    crate::contiguous(c, l2, "cos")?,
                    crate::contiguous(s, l3, "sin")?,
                    self.cos_batch,
                    self.rot,
                ))
            });
            split_heads_cpu(
                crate::contiguous(x, l1, "x")?,
                self.shape,
                self.slice,
                rope.transpose()?,
                norm,
            )
        });
        Ok((out, self.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
        s3: &candle_core::CudaStorage,
        l3: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let args = (
            (s1, l1),
            (s2, l2),
            (s3, l3),
            self.shape,
            self.slice,
            self.rot,
            self.cos_batch,
        );
        let weight = self.norm.as_ref().map(|(w, eps)| (w.storage_and_layout(), *eps));
        let norm = match &weight {
            Some(((storage, layout), eps)) => match &**storage {
                candle_core::Storage::Cuda(w) => Some(((w, *layout), *eps)),
                _ => bail!("split_heads: the norm weight must be on the same CUDA device as x"),
            },
            None => None,
        };
        let out = crate::cuda::split_heads(args, norm)?;
        Ok((out, self.out_shape()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    fn data(n: usize, seed: f32) -> Vec<f32> {
        crate::conformance::wave(n, seed, 2.0)
    }

    /// The decoder's composite path: a strided view, candle's RMSNorm of each head (`norm`:
    /// weight, eps), a transpose copy and candle's rope (on the first `rot` values of each head).
    fn composite(
        x: &Tensor,
        s: HeadSlice,
        rope: Option<(&Tensor, &Tensor, usize)>,
        norm: Option<(&Tensor, f32)>,
    ) -> Tensor {
        let (b, p, _) = x.dims3().unwrap();
        let mut heads = x
            .narrow(D::Minus1, s.col0, s.heads * s.head_dim)
            .unwrap()
            .reshape((b, p, s.heads, s.head_dim))
            .unwrap();
        if let Some((weight, eps)) = norm {
            heads = candle_nn::ops::rms_norm(&heads, weight, eps).unwrap();
        }
        let heads = heads.transpose(1, 2).unwrap().contiguous().unwrap();
        let Some((cos, sin, rot)) = rope else {
            return heads;
        };
        let rotated = heads.narrow(D::Minus1, 0, rot).unwrap().contiguous().unwrap();
        let rotated = candle_nn::rotary_emb::rope(&rotated, cos, sin).unwrap();
        if rot == s.head_dim {
            return rotated;
        }
        let pass = heads.narrow(D::Minus1, rot, s.head_dim - rot).unwrap();
        Tensor::cat(&[&rotated, &pass], D::Minus1).unwrap()
    }

    #[test]
    fn cpu_twin_matches_transpose_and_rope() {
        let (b, p, h, g, e) = (2, 5, 4, 2, 8);
        let width = (h + 2 * g) * e;
        let dev = Device::Cpu;
        let x = Tensor::from_vec(data(b * p * width, 0.1), (b, p, width), &dev).unwrap();
        let weight = Tensor::from_vec(data(e, 0.9), e, &dev).unwrap();
        let q = HeadSlice {
            col0: 0,
            heads: h,
            head_dim: e,
        };
        let k = HeadSlice {
            col0: h * e,
            heads: g,
            head_dim: e,
        };
        let v = HeadSlice {
            col0: (h + g) * e,
            heads: g,
            head_dim: e,
        };
        for rot in [e, e / 2] {
            let half = rot / 2;
            // shared tables [p, half] and per-row tables [b, p, half]
            for dims in [vec![p, half], vec![b, p, half]] {
                let n: usize = dims.iter().product();
                let cos = Tensor::from_vec(data(n, 0.5), dims.clone(), &dev).unwrap();
                let sin = Tensor::from_vec(data(n, 1.5), dims.clone(), &dev).unwrap();
                for (s, norm) in [q, k]
                    .into_iter()
                    .flat_map(|s| [(s, None), (s, Some((&weight, 1e-5)))])
                {
                    let rope = Rotary {
                        cos: &cos,
                        sin: &sin,
                        rotary_dim: rot,
                    };
                    let head_norm = norm.map(|(weight, eps)| HeadNorm { weight, eps });
                    let got = split_heads(&x, s, Some(rope), head_norm).unwrap();
                    assert_eq!(got.dims(), [b, s.heads, p, e]);
                    let want = composite(&x, s, Some((&cos, &sin, rot)), norm);
                    let diff = crate::testing::max_abs_diff(&got, &want);
                    let what = format!("rot {rot} tables {dims:?} {s:?} norm {}", norm.is_some());
                    assert!(diff < 1e-6, "{what}: max diff {diff}");
                }
            }
        }
        let diff = crate::testing::max_abs_diff(
            &split_heads(&x, v, None, None).unwrap(),
            &composite(&x, v, None, None),
        );
        assert_eq!(diff, 0.0);
    }

    #[test]
    fn shape_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((1, 3, 16), DType::F32, &dev).unwrap();
        let s = HeadSlice {
            col0: 8,
            heads: 2,
            head_dim: 8,
        };
        assert!(split_heads(&x, s, None, None).is_err()); // 8 + 16 > 16
        let s = HeadSlice {
            col0: 0,
            heads: 2,
            head_dim: 8,
        };
        let cos = Tensor::zeros((3, 4), DType::F32, &dev).unwrap();
        let wrong = Tensor::zeros((2, 4), DType::F32, &dev).unwrap();
        let rope = |c, s, r| {
            Some(Rotary {
                cos: c,
                sin: s,
                rotary_dim: r,
            })
        };
        assert!(split_heads(&x, s, rope(&wrong, &wrong, 8), None).is_err());
        assert!(split_heads(&x, s, rope(&cos, &cos, 7), None).is_err());
        let cos16 = cos.to_dtype(DType::BF16).unwrap();
        assert!(split_heads(&x, s, rope(&cos16, &cos16, 8), None).is_err());
        assert!(split_heads(&x, s, rope(&cos, &cos, 8), None).is_ok());
        let weight = Tensor::zeros(4, DType::F32, &dev).unwrap();
        let norm = Some(HeadNorm {
            weight: &weight,
            eps: 1e-6,
        });
        assert!(split_heads(&x, s, rope(&cos, &cos, 8), norm).is_err()); // weight [4], head dim 8
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_split_heads_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_split_heads_matches_cpu_twin") else {
            return;
        };
        crate::conformance::split_heads(|x, slice, rotary, norm| {
            let tables =
                rotary.map(|r| Ok::<_, candle_core::Error>((gpu(r.cos)?, gpu(r.sin)?, r.rotary_dim)));
            let tables = tables.transpose()?;
            let rotary = tables.as_ref().map(|(cos, sin, rotary_dim)| Rotary {
                cos,
                sin,
                rotary_dim: *rotary_dim,
            });
            let weight = norm
                .map(|n| Ok::<_, candle_core::Error>((gpu(n.weight)?, n.eps)))
                .transpose()?;
            let norm = weight
                .as_ref()
                .map(|(weight, eps)| HeadNorm { weight, eps: *eps });
            split_heads(&gpu(x)?, slice, rotary, norm)
        });
    }
}
