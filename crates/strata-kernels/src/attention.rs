//! Attention in one kernel (kernels/fused_attention.cu): q·kᵀ, scale, soft-cap, mask, softmax and
//! ·v without the `[b, heads, q, k]` scores and pattern in memory, writing `z` in the
//! `[b, q, heads, e]` layout the output projection reads.
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, WithDType};

/// Head dimensions the CUDA kernel is compiled for (bf16 and f16).
pub const FUSED_ATTENTION_HEAD_DIMS: [usize; 4] = [64, 96, 128, 256];

/// Keys per tile of the CUDA kernel: 32, or 16 above head dim 128 (`FA_TILE_KEYS` in
/// kernels/fused_attention.cu). The tile classes (`attention_tile_classes`) are counted in them.
pub fn fused_attention_tile_keys(head_dim: usize) -> usize {
    if head_dim > 128 {
        16
    } else {
        32
    }
}

/// The tile classes' length, one byte per (mask row, 16-query row group, key tile): what
/// `attention_tile_classes` writes and the attention kernel reads.
pub fn fused_attention_tile_classes_len(
    mask_rows: usize,
    queries: usize,
    keys: usize,
    head_dim: usize,
) -> usize {
    mask_rows * queries.div_ceil(16) * keys.div_ceil(fused_attention_tile_keys(head_dim))
}

/// Dynamic shared memory per block of the CUDA kernel for `dtype` (2-byte types) and `head_dim`:
/// above head dim 128 the block's 64 queries stay in shared memory, rows padded by 8 elements
/// (kernels/fused_attention.cu, which traps when launched with less); 0 below.
pub fn fused_attention_dynamic_shared_bytes(dtype: DType, head_dim: usize) -> usize {
    if head_dim > 128 {
        64 * (head_dim + 8) * dtype.size_in_bytes()
    } else {
        0
    }
}

/// Whether [`fused_attention`] runs for this dtype and head dimension on `device`: always on the
/// CPU (the twin), on CUDA for bf16/f16 and the head dims in [`FUSED_ATTENTION_HEAD_DIMS`]
/// (f32 keeps the composite path, whose products are exact f32 rather than tensor-core ones)
/// when the build targets compute capability 8.0 or newer (`CUDA_COMPUTE_CAP`).
pub fn fused_attention_supported(dtype: DType, head_dim: usize, device: &Device) -> bool {
    match device {
        Device::Cpu => matches!(dtype, DType::F32 | DType::BF16 | DType::F16),
        Device::Cuda(_) => {
            cfg!(not(fused_attention_unavailable))
                && matches!(dtype, DType::BF16 | DType::F16)
                && FUSED_ATTENTION_HEAD_DIMS.contains(&head_dim)
        }
        _ => false,
    }
}

/// Shapes of one attention call: batch, query heads, kv heads (groups), queries, keys, head dim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttentionDims {
    pub batch: usize,
    pub heads: usize,
    pub groups: usize,
    pub queries: usize,
    pub keys: usize,
    pub head_dim: usize,
}

/// CPU twin of `fused_attention`: for each batch row b, head h (kv group `h / (heads / groups)`)
/// and query i, `x_j = softcap(q·k_j · scale) + mask[b % mb, 0, i, j]` with the dot products in
/// f64, `p_j = exp(x_j − max) / Σ exp` in f32 rounded to `T` (as the composite path rounds its
/// pattern), `z[b, i, h, :] = Σ_j p_j v_j` accumulated in f32 and stored as `T`. (The kernel rounds
/// `exp(x_j − running max)` instead and divides by the sum at the end, as flash attention does:
/// the two differ by rounding, one unit in the last place of z in the conformance cases.)
/// A query that sees no key gets zeros. `q` is `[b, heads, queries, e]`, `k`/`v`
/// `[b, groups, keys, e]`, `mask` `[mb, 1, queries, keys]`; returns `[b, queries, heads, e]`.
pub fn fused_attention_cpu<T: WithDType>(
    q: &[T],
    k: &[T],
    v: &[T],
    mask: &[f32],
    d: AttentionDims,
    scale: f32,
    softcap: Option<f32>,
) -> Vec<T> {
    let AttentionDims {
        batch,
        heads,
        groups,
        queries,
        keys,
        head_dim: e,
    } = d;
    assert!(
        groups > 0
            && heads.is_multiple_of(groups)
            && q.len() == batch * heads * queries * e
            && k.len() == batch * groups * keys * e
            && v.len() == k.len()
            && mask.len().is_multiple_of((queries * keys).max(1)),
        "q, k, v or mask do not have the shapes {d:?}"
    );
    let mb = (mask.len() / (queries * keys).max(1)).max(1);
    let f = |x: &T| x.to_f64();
    let mut z = vec![T::zero(); batch * queries * heads * e];
    for b in 0..batch {
        for h in 0..heads {
            let g = h / (heads / groups);
            let kv = |t: &[T], j: usize| -> Vec<f64> {
                t[((b * groups + g) * keys + j) * e..][..e]
                    .iter()
                    .map(f)
                    .collect()
            };
            let (kr, vr): (Vec<_>, Vec<_>) = (0..keys).map(|j| (kv(k, j), kv(v, j))).unzip();
            for i in 0..queries {
                let qr = &q[((b * heads + h) * queries + i) * e..][..e];
                let mrow = &mask[((b % mb) * queries + i) * keys..][..keys];
                let x: Vec<f32> = (0..keys)
                    .map(|j| {
                        let dot: f64 = qr.iter().zip(&kr[j]).map(|(a, c)| f(a) * c).sum();
                        let s = dot as f32 * scale;
                        let s = softcap.map_or(s, |cap| (s * (1.0 / cap)).tanh() * cap);
                        s + mrow[j]
                    })
                    .collect();
                let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                if m == f32::NEG_INFINITY {
                    continue;
                }
                let sum: f32 = x.iter().map(|&xj| (xj - m).exp()).sum();
                let out = &mut z[((b * queries + i) * heads + h) * e..][..e];
                let mut acc = vec![0f32; e];
                for (j, &xj) in x.iter().enumerate() {
                    let p = T::from_f64(((xj - m).exp() / sum) as f64).to_f64() as f32;
                    for (a, vv) in acc.iter_mut().zip(&vr[j]) {
                        *a += p * *vv as f32;
                    }
                }
                for (o, a) in out.iter_mut().zip(acc) {
                    *o = T::from_f64(a as f64);
                }
            }
        }
    }
    z
}

/// `z = softmax(softcap(q·kᵀ · scale) + mask) · v` per head, in one pass on q's device (see
/// [`fused_attention_cpu`]): `q` `[b, heads, queries, e]`, `k`/`v` `[b, groups, keys, e]` (grouped
/// queries: `heads` a multiple of `groups`), `mask` an additive f32 bias `[b or 1, 1, queries,
/// keys]`. Returns `[b, queries, heads, e]` in q's dtype. On CUDA only where
/// [`fused_attention_supported`].
pub fn fused_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    scale: f32,
    softcap: Option<f32>,
) -> Result<Tensor> {
    let (batch, heads, queries, head_dim) = q.dims4()?;
    let (kb, groups, keys, ke) = k.dims4()?;
    let (mb, one, mq, mk) = mask.dims4()?;
    if kb != batch || ke != head_dim || v.dims() != k.dims() || groups == 0 || heads % groups != 0 {
        bail!(
            "fused_attention: q {:?} needs k and v [{batch}, g, keys, {head_dim}] with g dividing {heads}, got {:?} and {:?}",
            q.dims(),
            k.dims(),
            v.dims()
        );
    }
    if !(mb == batch || mb == 1) || one != 1 || mq != queries || mk != keys {
        bail!(
            "fused_attention: needs a mask [{batch} or 1, 1, {queries}, {keys}], got {:?}",
            mask.dims()
        );
    }
    if k.dtype() != q.dtype() || v.dtype() != q.dtype() {
        bail!(
            "fused_attention: q, k and v must share a dtype, got {:?}, {:?}, {:?}",
            q.dtype(),
            k.dtype(),
            v.dtype()
        );
    }
    if !fused_attention_supported(q.dtype(), head_dim, q.device()) {
        bail!(
            "fused_attention: no kernel for {:?} with head dim {head_dim} on {:?} (bf16/f16 and head dims {FUSED_ATTENTION_HEAD_DIMS:?} on CUDA)",
            q.dtype(),
            q.device()
        );
    }
    let op = AttentionOp {
        dims: AttentionDims {
            batch,
            heads,
            groups,
            queries,
            keys,
            head_dim,
        },
        mask: mask.to_dtype(DType::F32)?.contiguous()?,
        scale,
        softcap,
    };
    q.contiguous()?
        .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op)
}

struct AttentionOp {
    dims: AttentionDims,
    /// A fourth input, read through its storage (candle's custom ops take three).
    mask: Tensor,
    scale: f32,
    softcap: Option<f32>,
}

impl AttentionOp {
    fn out_shape(&self) -> Shape {
        let d = self.dims;
        Shape::from((d.batch, d.queries, d.heads, d.head_dim))
    }
}

impl CustomOp3 for AttentionOp {
    fn name(&self) -> &'static str {
        "strata-fused-attention"
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
        let (mask_storage, ml) = self.mask.storage_and_layout();
        let candle_core::Storage::Cpu(CpuStorage::F32(mask)) = &*mask_storage else {
            bail!("fused_attention: the mask must be an f32 CPU tensor here")
        };
        let mask = crate::contiguous(mask, ml, "mask")?;
        let out = crate::map_float_storages3!((s1, s2, s3), "fused_attention (q, k, v)", |q, k, v| {
            fused_attention_cpu(
                crate::contiguous(q, l1, "q")?,
                crate::contiguous(k, l2, "k")?,
                crate::contiguous(v, l3, "v")?,
                mask,
                self.dims,
                self.scale,
                self.softcap,
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
        let (mask_storage, ml) = self.mask.storage_and_layout();
        let candle_core::Storage::Cuda(mask) = &*mask_storage else {
            bail!("fused_attention: the mask must be on the same CUDA device as q")
        };
        let out = crate::cuda::fused_attention(
            [(s1, l1), (s2, l2), (s3, l3), (mask, ml)],
            self.dims,
            self.scale,
            self.softcap.unwrap_or(0.0),
        )?;
        Ok((out, self.out_shape()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The composite path the kernel replaces, on the CPU: scores, masked softmax (rounded to the
    /// dtype like the decoder's pattern), pattern · v, heads moved behind positions.
    fn composite(q: &Tensor, k: &Tensor, v: &Tensor, mask: &Tensor, scale: f32, cap: Option<f32>) -> Tensor {
        let (b, h, p, e) = q.dims4().unwrap();
        let (_, g, n, _) = k.dims4().unwrap();
        let r = h / g;
        let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
        let scores = f32(q)
            .reshape((b, g, r * p, e))
            .unwrap()
            .matmul(&f32(k).t().unwrap())
            .unwrap()
            .reshape((b, h, p, n))
            .unwrap();
        let pattern = crate::masked_softmax(&scores, mask, scale, cap)
            .unwrap()
            .to_dtype(q.dtype())
            .unwrap();
        f32(&pattern)
            .reshape((b, g, r * p, n))
            .unwrap()
            .matmul(&f32(v))
            .unwrap()
            .reshape((b, h, p, e))
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .to_dtype(q.dtype())
            .unwrap()
    }

    #[test]
    fn cpu_twin_matches_the_composite_path() {
        let (b, h, g, p, n, e) = (2, 4, 2, 5, 7, 16);
        let t = |dims: &[usize], seed| {
            let n: usize = dims.iter().product();
            Tensor::from_vec(crate::conformance::wave(n, seed, 1.5), dims, &Device::Cpu).unwrap()
        };
        let (q, k, v) = (
            t(&[b, h, p, e], 0.1),
            t(&[b, g, n, e], 0.7),
            t(&[b, g, n, e], 1.9),
        );
        let mask = Tensor::from_vec(
            crate::conformance::causal_mask(b, p, n),
            (b, 1, p, n),
            &Device::Cpu,
        )
        .unwrap();
        for cap in [None, Some(2.0f32)] {
            for dt in [DType::F32, DType::BF16] {
                let (q, k, v) = (
                    q.to_dtype(dt).unwrap(),
                    k.to_dtype(dt).unwrap(),
                    v.to_dtype(dt).unwrap(),
                );
                let got = fused_attention(&q, &k, &v, &mask, 0.3, cap).unwrap();
                assert_eq!(got.dims(), [b, p, h, e]);
                let want = composite(&q, &k, &v, &mask, 0.3, cap);
                // f32: summation order; bf16: one ulp of |z| ≤ 1.5 (both round p, then z)
                crate::testing::assert_close(&got, &want, dt, [1e-5, 0.016, 0.002], &format!("cap {cap:?}"));
            }
        }
    }

    #[test]
    fn shape_errors_and_support() {
        let z = |dims: &[usize]| Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap();
        let (q, kv) = (z(&[1, 4, 3, 8]), z(&[1, 3, 5, 8]));
        let e = fused_attention(&q, &kv, &kv, &z(&[1, 1, 3, 5]), 1.0, None).unwrap_err();
        assert!(e.to_string().contains("g dividing 4"), "{e}");
        let kv = z(&[1, 2, 5, 8]);
        let e = fused_attention(&q, &kv, &kv, &z(&[1, 1, 3, 4]), 1.0, None).unwrap_err();
        assert!(e.to_string().contains("mask"), "{e}");
        assert!(fused_attention(&q, &kv, &kv, &z(&[1, 1, 3, 5]), 1.0, None).is_ok());
        assert!(fused_attention_supported(DType::F32, 80, &Device::Cpu));
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_fused_attention_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_fused_attention_matches_cpu_twin") else {
            return;
        };
        crate::conformance::fused_attention(|q, k, v, mask, scale, cap| {
            fused_attention(&gpu(q)?, &gpu(k)?, &gpu(v)?, &gpu(mask)?, scale, cap)
        });
    }
}
