//! Attention pattern from raw scores in one pass (kernels/masked_softmax.cu): scaling,
//! soft-capping, the additive mask and softmax over keys, in f32, without f32 intermediates.
use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, WithDType};

/// CPU twin of `masked_softmax`, in f32 like the kernel: for each row of `scores`
/// (`[b, heads, q, k]` row-major) `v = s · scale`, then `v = tanh(v / cap) · cap` when `softcap`
/// is `Some(cap)`, then `v += mask[b % mb, 0, q, :]` (`mask` `[mb, 1, q, k]`, `mb` = b or 1) and
/// the row's softmax, stored in scores' type.
pub fn masked_softmax_cpu<T: WithDType>(
    scores: &[T],
    mask: &[f32],
    (heads, q, k): (usize, usize, usize),
    scale: f32,
    softcap: Option<f32>,
) -> Vec<T> {
    let per_b = heads * q * k;
    assert!(
        per_b > 0 && scores.len().is_multiple_of(per_b) && mask.len().is_multiple_of(q * k),
        "scores is not [b, heads, q, k] or mask not [mb, 1, q, k]"
    );
    let mb = mask.len() / (q * k);
    let mut out = Vec::with_capacity(scores.len());
    for (row, s) in scores.chunks(k).enumerate() {
        let (b, qi) = (row / (heads * q), row % q);
        let mk = &mask[((b % mb) * q + qi) * k..][..k];
        let v: Vec<f32> = s
            .iter()
            .zip(mk)
            .map(|(&x, &mv)| {
                let v = x.to_f64() as f32 * scale;
                let v = match softcap {
                    Some(cap) => (v * (1.0 / cap)).tanh() * cap,
                    None => v,
                };
                v + mv
            })
            .collect();
        let m = v.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let e: Vec<f32> = v.iter().map(|&x| (x - m).exp()).collect();
        let sum: f32 = e.iter().sum();
        out.extend(e.iter().map(|&x| T::from_f64((x / sum) as f64)));
    }
    out
}

/// Attention pattern on scores' device: `softmax(softcap(scores · scale) + mask)` over the last
/// axis, see [`masked_softmax_cpu`]. `scores` is `[b, heads, q, k]` (f32/bf16/f16), `mask` an
/// additive bias `[b or 1, 1, q, k]` (converted to f32; 0 or -inf, no row fully masked).
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f32, softcap: Option<f32>) -> Result<Tensor> {
    let (b, heads, q, k) = scores.dims4()?;
    let (mb, one, mq, mk) = mask.dims4()?;
    if !(mb == b || mb == 1) || one != 1 || mq != q || mk != k {
        bail!(
            "masked_softmax: scores {:?} need a mask [{b} or 1, 1, {q}, {k}], got {:?}",
            scores.dims(),
            mask.dims()
        );
    }
    if !matches!(scores.dtype(), DType::F32 | DType::BF16 | DType::F16) {
        bail!(
            "masked_softmax: scores must be f32, bf16 or f16, got {:?}",
            scores.dtype()
        );
    }
    if softcap.is_some_and(|c| c <= 0.0) {
        bail!("masked_softmax: softcap must be positive, got {softcap:?}");
    }
    let mask = mask.to_dtype(DType::F32)?.contiguous()?;
    let op = SoftmaxOp {
        shape: (heads, q, k),
        scale,
        softcap,
    };
    scores.contiguous()?.apply_op2_no_bwd(&mask, &op)
}

struct SoftmaxOp {
    shape: (usize, usize, usize),
    scale: f32,
    softcap: Option<f32>,
}

impl CustomOp2 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "strata-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(mask) = s2 else {
            bail!("masked_softmax: mask must be f32")
        };
        let mask = crate::contiguous(mask, l2, "mask")?;
        let (sh, sc, cap) = (self.shape, self.scale, self.softcap);
        let out = crate::map_float_storage!(s1, "masked_softmax", |v| masked_softmax_cpu(
            crate::contiguous(v, l1, "scores")?,
            mask,
            sh,
            sc,
            cap
        ));
        Ok((out, l1.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let out = crate::cuda::masked_softmax(
            s1,
            l1,
            s2,
            l2,
            self.shape,
            self.scale,
            self.softcap.unwrap_or(0.0),
        )?;
        Ok((out, l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn data(n: usize, seed: f32) -> Vec<f32> {
        crate::conformance::wave(n, seed, 9.0)
    }

    /// softmax(softcap(s · scale) + mask) in f64, row by row.
    fn naive(
        s: &[f32],
        mask: &[f32],
        (b, h, q, k): (usize, usize, usize, usize),
        mb: usize,
        scale: f64,
        cap: Option<f64>,
    ) -> Vec<f64> {
        let mut out = Vec::new();
        for bi in 0..b {
            for hi in 0..h {
                for qi in 0..q {
                    let row = &s[((bi * h + hi) * q + qi) * k..][..k];
                    let mk = &mask[((bi % mb) * q + qi) * k..][..k];
                    let v: Vec<f64> = row
                        .iter()
                        .zip(mk)
                        .map(|(&x, &m)| {
                            let v = x as f64 * scale;
                            cap.map_or(v, |c| (v / c).tanh() * c) + m as f64
                        })
                        .collect();
                    let mx = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = v.iter().map(|x| (x - mx).exp()).sum();
                    out.extend(v.iter().map(|x| (x - mx).exp() / z));
                }
            }
        }
        out
    }

    #[test]
    fn cpu_twin_matches_naive_softmax() {
        let (b, h, q, k) = (2, 3, 5, 7);
        let s = data(b * h * q * k, 0.4);
        for (mb, cap) in [(b, None), (b, Some(3.0f32)), (1, Some(50.0))] {
            let m = crate::conformance::causal_mask(mb, q, k);
            let st = Tensor::from_vec(s.clone(), (b, h, q, k), &Device::Cpu).unwrap();
            let mt = Tensor::from_vec(m.clone(), (mb, 1, q, k), &Device::Cpu).unwrap();
            let got: Vec<f32> = masked_softmax(&st, &mt, 0.3, cap)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let want = naive(&s, &m, (b, h, q, k), mb, 0.3f32 as f64, cap.map(|c| c as f64));
            for (i, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g as f64 - w).abs() <= 1e-6 * (1.0 + w),
                    "mb {mb} cap {cap:?} [{i}]: {g} vs {w}"
                );
            }
            for row in got.chunks(k) {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
            }
        }
        // masked keys get exactly zero
        let st = Tensor::from_vec(s.clone(), (b, h, q, k), &Device::Cpu).unwrap();
        let mt = Tensor::from_vec(
            crate::conformance::causal_mask(b, q, k),
            (b, 1, q, k),
            &Device::Cpu,
        )
        .unwrap();
        let p: Vec<f32> = masked_softmax(&st, &mt, 1.0, None)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(p[k - 1], 0.0);
    }

    #[test]
    fn shape_errors() {
        let s = Tensor::zeros((2, 3, 4, 5), DType::F32, &Device::Cpu).unwrap();
        let bad = Tensor::zeros((2, 3, 4, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(masked_softmax(&s, &bad, 1.0, None).is_err());
        let ok = Tensor::zeros((1, 1, 4, 5), DType::F32, &Device::Cpu).unwrap();
        assert!(masked_softmax(&s, &ok, 1.0, Some(0.0)).is_err());
        assert!(masked_softmax(&s, &ok, 1.0, None).is_ok());
    }

    #[cfg(feature = "cuda")]
    #[test]
    #[ignore = "needs a CUDA device: scripts/gpu-check.sh runs it with --include-ignored"]
    fn gpu_masked_softmax_matches_cpu_twin() {
        let Some(gpu) = crate::testing::to_gpu("gpu_masked_softmax_matches_cpu_twin") else {
            return;
        };
        crate::conformance::masked_softmax(|scores, mask, scale, cap| {
            masked_softmax(&gpu(scores)?, &gpu(mask)?, scale, cap)
        });
    }
}
